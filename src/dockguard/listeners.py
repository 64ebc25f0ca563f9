"""
A listener's configuration: a C{--listen} URL or a C{[[listeners]]} table
read into a L{ListenerConfig} (and the admin and enrolment listeners), every
mistake a L{ConfigError} naming the option or file, the key and the reason.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from dockguard.errors import ConfigError
from dockguard.names import NAME_RULE, is_plain_name

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
