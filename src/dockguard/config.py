"""
dockguard's configuration: where to listen, whom callers are, where the
daemon is.  Read from a TOML file (C{--config}) and/or C{--listen} URLs, and
validated completely before anything starts: every error names the file (or
option), the key and the reason.

Listeners are read by L{dockguard.listeners}.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dockguard.envpolicy import KNOWN_VARIABLES, EnvPolicy
from dockguard.errors import ConfigError
from dockguard.exposure import exposures
from dockguard.groupconfig import policy_from_config
from dockguard.groups import GroupPolicy
from dockguard.listeners import (
    EnrolConfig,
    ListenerConfig,
    listener_from_mapping,
    parse_admin,
    parse_enrol,
    parse_listen,
)
from dockguard.relay.settings import Limits, Timeouts

DEFAULT_UPSTREAM = "/var/run/docker.sock"
DEFAULT_LISTEN = "tcp://127.0.0.1:2375?identity=local"


_TIMEOUTS, _LIMITS = Timeouts(), Limits()


@attrs.frozen
class Config:
    upstream: str
    listeners: tuple[ListenerConfig, ...]
    # The defaults are the relay's own (dockguard.relay.settings).
    header_timeout: float = _TIMEOUTS.header
    idle_timeout: float = _TIMEOUTS.idle
    max_head_bytes: int = _LIMITS.head_bytes
    max_headers: int = _LIMITS.headers
    max_inspected_body: int = _LIMITS.inspected_body
    max_connections: int = _LIMITS.connections
    max_connections_per_peer: int = _LIMITS.connections_per_peer
    #: None: half of max_connections.
    max_plain_connections: int | None = _LIMITS.plain_connections
    #: None: an eighth of max_connections.
    max_tls_handshakes: int | None = _LIMITS.tls_handshakes
    max_drain_bytes: int = _LIMITS.drain_bytes
    drain_timeout: float = _TIMEOUTS.drain
    source: str = "defaults"
    #: Per-identity permission groups from the file, or None: then the
    #: Tecnativa / linuxserver environment variables apply.
    policy: GroupPolicy | None = None
    #: A file that receives one JSON line per decision (for `dockguard suggest`).
    decision_log: Path | None = None
    #: The admin listener (plain HTTP: /metrics, /health), off when None.
    admin: ListenerConfig | None = None
    #: The enrolment listener (dockguard.enrolserver), off when None.
    enrol: EnrolConfig | None = None


def default_upstream(environ: Mapping[str, str]) -> str:
    """
    The daemon socket: a C{unix://} DOCKER_HOST, else Tecnativa's
    SOCKET_PATH, else /var/run/docker.sock.
    """
    host = environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if environ.get("SOCKET_PATH"):
        return environ["SOCKET_PATH"]
    return DEFAULT_UPSTREAM


_TOP_KEYS = {"upstream", "listeners", "timeouts", "limits", "identities", "groups", "decision_log", "admin", "enrol"}


_LIMIT_KEYS = (
    "max_head_bytes",
    "max_headers",
    "max_inspected_body",
    "max_connections",
    "max_connections_per_peer",
    "max_plain_connections",
    "max_tls_handshakes",
    "max_drain_bytes",
)


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's name (for errors) and its TOML tables, unvalidated."""
    source = str(path)
    try:
        return source, tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(source, "(file)", e.strerror or str(e))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, "(syntax)", str(e))


def choose_policy(
    groups: GroupPolicy | None, environ: Mapping[str, str], source: str = "environment"
) -> tuple[GroupPolicy | EnvPolicy, list[str]]:
    """
    The policy, and its lines for the start-up log: the configuration
    file's identities and groups (C{groups}, read from C{source}) when it
    has them, else the Tecnativa / linuxserver environment variables.  When
    both are present the file wins, and a line says the variables are
    ignored.
    """
    if groups is None:
        policy = EnvPolicy.from_environ(environ)
        return policy, policy.describe()
    lines = groups.describe()
    ignored = sorted(name for name in KNOWN_VARIABLES if environ.get(name))
    if ignored:
        lines.append(
            f"warning: {source} defines identities and groups, so the environment "
            f"variable{'s' if len(ignored) > 1 else ''} {', '.join(ignored)} "
            f"{'are' if len(ignored) > 1 else 'is'} ignored"
        )
    return groups, lines


def load_policy(path: Path | None, environ: Mapping[str, str]) -> GroupPolicy | EnvPolicy:
    """
    Only the policy (L{choose_policy}) of a file, or of the environment
    when C{path} is L{None}, without checking the file's listeners: for
    C{dockguard explain}, which needs no certificate.
    """
    if path is None:
        return choose_policy(None, environ)[0]
    source, data = read_toml(path)
    return choose_policy(policy_from_config(source, data), environ, source)[0]


def load_config(path: Path) -> dict[str, Any]:
    """
    Read and validate a TOML file into keyword arguments for L{build_config}.
    """
    source, data = read_toml(path)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(source, sorted(unknown)[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    out: dict[str, Any] = {"source": source}
    base = path.parent
    if "upstream" in data:
        if not isinstance(data["upstream"], str) or not data["upstream"].startswith("/"):
            raise ConfigError(source, "upstream", "must be the absolute path of the daemon's Unix socket")
        out["upstream"] = data["upstream"]
    listeners = []
    raw = data.get("listeners", [])
    if not isinstance(raw, list):
        raise ConfigError(source, "listeners", "must be an array of tables ([[listeners]])")
    for i, table in enumerate(raw):
        where = f"listeners[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(source, where, "must be a table")
        table = dict(table)
        if "url" in table:
            url = table.pop("url")
            if table:
                raise ConfigError(source, f"{where}.{sorted(table)[0]}", "give either url or separate keys, not both")
            listeners.append(parse_listen(str(url), source, where, base))
            continue
        kind = table.pop("type", None)
        if kind is None:
            raise ConfigError(source, f"{where}.type", "missing (tls, tcp or unix)")
        address = table.pop("path" if kind == "unix" else "address", None)
        if not isinstance(address, str):
            raise ConfigError(source, f"{where}.{'path' if kind == 'unix' else 'address'}", "missing")
        listeners.append(listener_from_mapping(source, where, kind, address, table, base))
    out["listeners"] = tuple(listeners)
    policy = policy_from_config(source, data)
    if policy is not None:
        out["policy"] = policy
    if "decision_log" in data:
        value = data["decision_log"]
        if not isinstance(value, str) or not value:
            raise ConfigError(source, "decision_log", "must be a file path")
        log_path = Path(value) if os.path.isabs(value) else base / value
        if not log_path.parent.is_dir():
            raise ConfigError(source, "decision_log", f"{log_path.parent} is not a directory")
        out["decision_log"] = log_path
    if "admin" in data:
        table = data["admin"]
        if not isinstance(table, dict) or set(table) != {"listen"}:
            raise ConfigError(source, "admin", 'must be a table with one key, listen = "tcp://127.0.0.1:9180"')
        out["admin"] = parse_admin(table["listen"], source, "admin.listen")
    if "enrol" in data:
        out["enrol"] = parse_enrol(source, data["enrol"], base)
    for section, keys, kind in (
        ("timeouts", {"header": "header_timeout", "idle": "idle_timeout", "drain": "drain_timeout"}, (int, float)),
        ("limits", {key: key for key in _LIMIT_KEYS}, int),
    ):
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(source, section, "must be a table")
        for key, value in table.items():
            if key not in keys:
                raise ConfigError(source, f"{section}.{key}", f"unknown key (known: {', '.join(sorted(keys))})")
            if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
                what = "number of seconds" if section == "timeouts" else "whole number"
                raise ConfigError(source, f"{section}.{key}", f"must be a positive {what}")
            out[keys[key]] = value
    _check_connection_budgets(source, out)
    return out


def _check_connection_budgets(source: str, limits: Mapping[str, Any]) -> None:
    """
    Plain-TCP connections and TLS handshakes must leave part of
    max_connections to Unix socket callers and TLS callers with a valid
    certificate, or a network flood could lock them out.
    """
    total = limits.get("max_connections", attrs.fields(Config).max_connections.default)
    plain = limits.get("max_plain_connections")
    handshakes = limits.get("max_tls_handshakes")
    if plain is None and handshakes is None:
        return  # the defaults are shares of max_connections
    plain_now = plain if plain is not None else max(1, total // 2)
    handshakes_now = handshakes if handshakes is not None else max(1, total // 8)
    if plain_now + handshakes_now >= total:
        key = "max_plain_connections" if plain is not None else "max_tls_handshakes"
        raise ConfigError(
            source,
            f"limits.{key}",
            f"{plain_now} plain-TCP connections and {handshakes_now} TLS handshakes take all of "
            f"limits.max_connections ({total}): leave some for Unix socket callers and TLS callers "
            "with a valid certificate (lower it, or raise max_connections)",
        )


def build_config(
    environ: Mapping[str, str],
    config_file: Path | None = None,
    listen: list[str] | None = None,
    upstream: str | None = None,
    admin: str | None = None,
) -> Config:
    """
    The whole configuration from its sources, in order of precedence:
    command-line options, then the config file, then the environment, then
    the safe default (plain TCP on 127.0.0.1:2375 only).
    """
    fields: dict[str, Any] = {}
    if config_file is not None:
        fields = load_config(config_file)
    if listen:
        fields["listeners"] = tuple(parse_listen(spec) for spec in listen)
    if not fields.get("listeners"):
        fields["listeners"] = (parse_listen(DEFAULT_LISTEN, "defaults", "listen"),)
    if upstream is not None:
        fields["upstream"] = upstream
    if admin is not None:
        fields["admin"] = parse_admin(admin)
    fields.setdefault("upstream", default_upstream(environ))
    names = [listener.name for listener in fields["listeners"]]
    if fields.get("admin") is not None:
        names.append(fields["admin"].name)
    if fields.get("enrol") is not None:
        names.append(fields["enrol"].listener.name)
    # tls:// and tcp:// on one address would bind one port twice.
    addresses = [name.removeprefix("tls://").removeprefix("tcp://") for name in names]
    for name, address in zip(names, addresses):
        if addresses.count(address) > 1:
            raise ConfigError(fields.get("source", "--listen"), "listeners", f"{name} is given twice")
    config = Config(**fields)
    _check_exposure(config)
    return config


def _check_exposure(config: Config) -> None:
    """
    Refuse a fixed-identity TCP listener whose identity has writes that a
    caller able to reach the host's network namespace lacks
    (L{dockguard.exposure}); reads only are warned about at start.
    """
    if not isinstance(config.policy, GroupPolicy):
        return
    for exposure in exposures(config.listeners, config.policy):
        if exposure.writes:
            raise ConfigError(config.source, f"listeners[{exposure.index}]", exposure.sentence())


def exposure_warnings(config: Config) -> list[str]:
    """The start-up warnings for listeners whose reads a reaching caller would gain."""
    if not isinstance(config.policy, GroupPolicy):
        return []
    return [e.sentence() for e in exposures(config.listeners, config.policy) if not e.writes]
