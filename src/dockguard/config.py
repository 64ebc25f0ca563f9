"""
dockguard's configuration: where to listen, whom callers are, where the
daemon is.  Read from a TOML file (C{--config}) and/or C{--listen} URLs, and
validated completely before anything starts: every error names the file (or
option), the key and the reason.

A listener is one of::

    tls://HOST:PORT?cert=FILE&key=FILE&client_ca=FILE
    tcp://HOST:PORT?identity=NAME[&allow=CIDR,CIDR][&insecure=1][&trust_host=1]
    unix:///PATH?identity=NAME[&mode=0660]

and the same keys as a C{[[listeners]]} table in the file (with C{url} or
C{type} + C{address}/C{path}).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from dockguard.envpolicy import KNOWN_VARIABLES, EnvPolicy
from dockguard.errors import ConfigError
from dockguard.exposure import exposures
from dockguard.groupconfig import policy_from_config
from dockguard.groups import GroupPolicy
from dockguard.names import NAME_RULE, is_plain_name
from dockguard.relay.settings import Limits, Timeouts

DEFAULT_UPSTREAM = "/var/run/docker.sock"
DEFAULT_LISTEN = "tcp://127.0.0.1:2375?identity=local"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class ListenerConfig:
    """
    @ivar kind: C{"tls"}, C{"tcp"} or C{"unix"}.
    @ivar identity: the fixed identity (tcp, unix); L{None} for tls, where
        the client certificate's CN names the caller.
    @ivar allow: source networks a tcp listener accepts (empty: any).
    @ivar insecure: explicit opt-in for plain TCP on a non-loopback address.
    """

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""
    mode: int = 0o660
    identity: str | None = None
    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    #: A CRL (PEM) of client certificates to refuse; re-read on reload.
    crl: Path | None = None
    allow: tuple[Network, ...] = ()
    insecure: bool = False
    #: Every process of the host's network namespace may be this (tcp)
    #: listener's identity: no refusal when callers can reach it from there
    #: (see dockguard.exposure).
    trust_host: bool = False
    #: Learn mode for everyone on this listener: refusals are logged as
    #: would-deny and let through.
    learn: bool = False

    @property
    def name(self) -> str:
        if self.kind == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind}://{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.kind == "unix":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def describe(self) -> str:
        """One start-up log line: where, and where identities come from."""
        if self.kind == "tls":
            who = f"identity from client certificate CN (CA {self.client_ca})"
        else:
            who = f'fixed identity "{self.identity}"'
        extra = ""
        if self.allow:
            extra = ", sources " + ", ".join(str(n) for n in self.allow)
        if self.kind == "unix":
            extra += f", mode {self.mode:04o}"
        if self.learn:
            extra += ", LEARN MODE: refusals are only logged (would-deny), never enforced"
        return f"{self.name}: {who}{extra}"


@attrs.frozen
class EnrolConfig:
    """
    The C{[enrol]} table: a TLS listener that serves only the enrolment
    routes (L{dockguard.enrolserver}), with the CA directory of
    C{dockguard certs} (its server certificate, its CA key to sign with,
    C{tokens.json}, C{issued.json}, C{crl.pem}).
    """

    listener: ListenerConfig
    ca_dir: Path
    #: Validity of the certificates it issues (as certs client --days).
    days: int = 825


#: What the CA directory of an [enrol] table must hold.
ENROL_FILES = ("ca.pem", "ca-key.pem", "server-cert.pem", "server-key.pem", "crl.pem")


def parse_enrol(source: str, table: object, base: Path) -> EnrolConfig:
    """The C{[enrol]} table: C{listen = "tcp://HOST:PORT"}, C{ca = "DIR"}, optional C{days}."""
    if not isinstance(table, dict):
        raise ConfigError(source, "enrol", 'must be a table: [enrol] listen = "tcp://0.0.0.0:2377", ca = "pki"')
    unknown = set(table) - {"listen", "ca", "days"}
    if unknown:
        raise ConfigError(source, f"enrol.{sorted(unknown)[0]}", "unknown key (known: ca, days, listen)")
    if "listen" not in table:
        raise ConfigError(source, "enrol.listen", 'missing: where to listen, e.g. "tcp://0.0.0.0:2377"')
    listen = parse_admin(table["listen"], source, "enrol.listen")
    if listen.kind != "tcp":
        raise ConfigError(source, "enrol.listen", "must be tcp://HOST:PORT (remote hosts enrol over TLS)")
    value = table.get("ca")
    if not isinstance(value, str) or not value:
        raise ConfigError(source, "enrol.ca", "must be the CA directory of dockguard certs (with ca-key.pem)")
    ca_dir = Path(value) if os.path.isabs(value) else base / value
    for name in ENROL_FILES:
        if not (ca_dir / name).is_file():
            raise ConfigError(
                source,
                "enrol.ca",
                f"{ca_dir / name} is missing: run dockguard certs init and certs server on {ca_dir} first",
            )
    days = table.get("days", 825)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= 3650:
        raise ConfigError(source, "enrol.days", "must be a whole number of days between 1 and 3650")
    return EnrolConfig(listener=attrs.evolve(listen, kind="tls"), ca_dir=ca_dir, days=days)


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


_LISTENER_KEYS = {
    "tls": {"cert", "key", "client_ca", "crl", "learn"},
    "tcp": {"identity", "allow", "insecure", "trust_host", "learn"},
    "unix": {"identity", "mode", "learn"},
}


def _truthy(source: str, key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ConfigError(source, key, f"{value!r} is not a boolean (write true or false)")


def _file(source: str, key: str, value: object, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(source, key, "must be a file path")
    path = (base / value) if not os.path.isabs(value) else Path(value)
    if not path.is_file():
        raise ConfigError(source, key, f"{path} does not exist or is not a file")
    return path


def listener_from_mapping(
    source: str, where: str, kind: str, address: str, values: Mapping[str, Any], base: Path
) -> ListenerConfig:
    """
    Build and validate one listener.  C{where} prefixes key names in errors
    (e.g. C{"listeners[0]"} or C{"--listen"}).
    """
    if kind not in _LISTENER_KEYS:
        raise ConfigError(source, f"{where}.type", f"unknown listener type {kind!r} (tls, tcp or unix)")
    unknown = set(values) - _LISTENER_KEYS[kind]
    if unknown:
        raise ConfigError(
            source,
            f"{where}.{sorted(unknown)[0]}",
            f"unknown key for a {kind} listener (known: {', '.join(sorted(_LISTENER_KEYS[kind]))})",
        )
    fields: dict[str, Any] = {"kind": kind}
    if kind == "unix":
        if not address.startswith("/"):
            raise ConfigError(source, f"{where}.path", f"{address!r} is not an absolute path")
        fields["path"] = address
        mode = values.get("mode", "0660")
        try:
            fields["mode"] = int(str(mode), 8)
        except ValueError:
            raise ConfigError(source, f"{where}.mode", f"{mode!r} is not an octal file mode like 0660")
        if fields["mode"] & ~0o777:
            raise ConfigError(source, f"{where}.mode", f"{mode!r} is not a permission mode")
    else:
        host, port = _split_address(source, f"{where}.address", address)
        fields["host"], fields["port"] = host, port
    if kind == "tls":
        for key in ("cert", "key", "client_ca"):
            if key not in values:
                raise ConfigError(
                    source,
                    f"{where}.{key}",
                    "a tls listener needs cert, key and client_ca (the CA that issues client certificates)",
                )
            fields[key] = _file(source, f"{where}.{key}", values[key], base)
        if "crl" in values:
            fields["crl"] = _file(source, f"{where}.crl", values["crl"], base)
    else:
        identity = values.get("identity")
        if identity is None:
            raise ConfigError(
                source,
                f"{where}.identity",
                f"a {kind} listener has no client certificate, so it must name the fixed identity of its callers",
            )
        if not is_plain_name(identity):
            raise ConfigError(
                source,
                f"{where}.identity",
                f"{identity!r} is not a plain name ({NAME_RULE})",
            )
        fields["identity"] = identity
    if kind == "tcp":
        allow = values.get("allow", [])
        if isinstance(allow, str):
            allow = [a for a in allow.split(",") if a]
        networks = []
        for item in allow:
            try:
                networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
            except ValueError:
                raise ConfigError(source, f"{where}.allow", f"{item!r} is not a network like 10.0.0.0/8")
        fields["allow"] = tuple(networks)
        fields["insecure"] = _truthy(source, f"{where}.insecure", values.get("insecure", False))
        fields["trust_host"] = _truthy(source, f"{where}.trust_host", values.get("trust_host", False))
    fields["learn"] = _truthy(source, f"{where}.learn", values.get("learn", False))
    listener = ListenerConfig(**fields)
    if kind == "tcp" and not listener.loopback and not listener.insecure:
        raise ConfigError(
            source,
            f"{where}.insecure",
            f"plain TCP on non-loopback address {listener.host} lets anyone who can reach it "
            "act as the fixed identity; use a tls listener, or set insecure (and ideally allow) "
            "to opt in",
        )
    return listener


def _split_address(source: str, key: str, address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(source, key, f"{address!r} is not HOST:PORT")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(
                source, key, f"{host!r} is not an IP address (names other than localhost are not resolved)"
            )
        host = "127.0.0.1"
    return host, int(port)


def parse_listen(
    spec: str, source: str = "--listen", where: str = "--listen", base: Path = Path(".")
) -> ListenerConfig:
    """
    A listener from its URL form, e.g. C{tcp://127.0.0.1:2375?identity=local}.
    """
    parts = urlsplit(spec)
    if parts.scheme not in _LISTENER_KEYS or parts.fragment:
        raise ConfigError(source, where, f"{spec!r} is not tls://HOST:PORT?…, tcp://HOST:PORT?… or unix:///PATH?…")
    values: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)):
        if key in values:
            raise ConfigError(source, f"{where}.{key}", "given twice")
        values[key] = value
    if parts.scheme == "unix":
        if parts.netloc:
            raise ConfigError(source, where, f"{spec!r}: write unix:///absolute/path (three slashes)")
        address = parts.path
    else:
        if parts.path not in ("", "/"):
            raise ConfigError(source, where, f"{spec!r} has a path; write {parts.scheme}://HOST:PORT")
        address = parts.netloc
    return listener_from_mapping(source, where, parts.scheme, address, values, base)


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


def parse_admin(spec: object, source: str = "--admin", where: str = "--admin") -> ListenerConfig:
    """
    The admin listener from C{tcp://HOST:PORT} or C{unix:///PATH}: plain
    HTTP serving C{/metrics} and C{/health}, never the Docker API.
    """
    parts = urlsplit(spec) if isinstance(spec, str) else None
    if parts is None or parts.scheme not in ("tcp", "unix") or parts.query or parts.fragment:
        raise ConfigError(source, where, f"{spec!r} is not tcp://HOST:PORT or unix:///PATH")
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            raise ConfigError(source, where, f"{spec!r}: write unix:///absolute/path (three slashes)")
        return ListenerConfig(kind="unix", path=parts.path)
    if parts.path not in ("", "/"):
        raise ConfigError(source, where, f"{spec!r} has a path; write tcp://HOST:PORT")
    host, port = _split_address(source, where, parts.netloc)
    return ListenerConfig(kind="tcp", host=host, port=port)


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
