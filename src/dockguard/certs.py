"""
C{dockguard certs}: the commands of a small CA for dockguard's mutual-TLS
listeners (the CA directory and what it signs: L{dockguard.ca}).

Sub-commands: C{init}, C{server}, C{client}, C{revoke}, C{list}, and
C{token}, C{tokens} (L{dockguard.certtokens}: one-time enrolment tokens);
see L{register}.  Private keys are never printed.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import shlex
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dockguard import ca
from dockguard.ca import (
    BACKDATE,
    CA_CERT,
    CA_DAYS,
    CA_KEY,
    CRL,
    ISSUED,
    LEAF_DAYS,
    SERVER_CERT,
    SERVER_KEY,
    CertsError,
)
from dockguard.names import NAME_RULE, is_plain_name

__all__ = ["DOCKER_PORT", "CertsError", "context_name", "dquote", "main", "register", "run"]

#: The port of the Docker daemon's TLS socket, by convention.
DOCKER_PORT = 2376


# --- argparse wiring -----------------------------------------------------


def register(subparsers: Any) -> None:
    """Add C{certs} and its sub-commands to an argparse sub-parsers object."""
    certs = subparsers.add_parser(
        "certs",
        help="a small CA: CA, server and client certificates, revocation",
        description="Make and manage the certificates of dockguard's mutual-TLS listeners.",
    )
    sub = certs.add_subparsers(dest="certs_command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="make a CA (ca.pem, ca-key.pem), an empty crl.pem and issued.json")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--name", default="dockguard CA", help="the CA's common name (default: %(default)s)")
    p.add_argument("--days", type=_days, default=CA_DAYS, help="validity (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace an existing CA (its certificates stop verifying)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("server", help="issue the server certificate (server-cert.pem, server-key.pem)")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--name", required=True, metavar="HOST", help="the host name or IP clients connect to")
    p.add_argument("--ip", action="append", default=[], metavar="ADDR", help="another IP address (repeatable)")
    p.add_argument("--dns", action="append", default=[], metavar="NAME", help="another host name (repeatable)")
    p.add_argument("--days", type=_days, default=LEAF_DAYS, help="validity (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace an existing server certificate and key")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("client", help="issue a client certificate as a docker CLI DOCKER_CERT_PATH directory")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("name", metavar="NAME", help="the identity (the certificate's CN)")
    p.add_argument("--days", type=_days, default=LEAF_DAYS, help="validity (default: %(default)s)")
    p.add_argument("--out", dest="out_dir", type=Path, metavar="PATH", help="directory (default: DIR/clients/NAME)")
    p.add_argument("--force", action="store_true", help="replace an existing cert.pem/key.pem there")
    p.set_defaults(func=cmd_client)

    p = sub.add_parser("revoke", help="revoke by client NAME (every one with that CN) or by SERIAL (hex)")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("target", metavar="NAME|SERIAL")
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("list", help="list the certificates issued by the CA in DIR")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.set_defaults(func=cmd_list)

    # Enrolment tokens (dockguard enroll), in a module of their own.
    from dockguard import certtokens

    certtokens.register(sub)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the C{certs} sub-command in C{args}; errors go to stderr, exit 1."""
    func: Callable[[argparse.Namespace, TextIO], int] = args.func
    try:
        if func in (cmd_server, cmd_client, cmd_revoke) and args.dir.is_dir():
            # These rewrite issued.json, as the enrolment listener does.
            with ca.ca_lock(args.dir):
                return func(args, out or sys.stdout)
        return func(args, out or sys.stdout)
    except (CertsError, OSError, ValueError) as e:
        print(f"dockguard certs: {e}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """C{python -m dockguard.certs ...}: the same as C{dockguard certs ...}."""
    parser = argparse.ArgumentParser(prog="dockguard")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv), out)


def _days(text: str) -> int:
    days = int(text)
    if days <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of days")
    return days


# --- commands ------------------------------------------------------------


def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    replacing = (directory / CA_KEY).exists()
    if replacing and not args.force:
        raise CertsError(
            f"{directory / CA_KEY} exists: refusing to overwrite the CA "
            "(--force replaces it, and every certificate it issued stops verifying)"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = ca.utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=args.days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca.key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca.write_key(directory / CA_KEY, key, force=args.force)
    ca.write_public(directory / CA_CERT, ca.pem(cert))
    # A new CA starts a new record: the old one's certificates are not its.
    issued = {"crl_number": 0, "certificates": [ca.issued_record(cert, "ca", args.name, directory / CA_CERT)]}
    ca.write_crl(directory, key, cert, issued)
    print(f"CA {args.name!r} in {directory.resolve()}: {CA_CERT}, {CA_KEY} (0600), {CRL}, {ISSUED}", file=out)
    print(f"  expires {cert.not_valid_after_utc:%Y-%m-%d}", file=out)
    if replacing:
        print("  replaced the old CA: issue new server and client certificates", file=out)
    return 0


def cmd_server(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir
    ca_key, ca_cert, issued = ca.load_ca(directory)
    key_path, cert_path = directory / SERVER_KEY, directory / SERVER_CERT
    ca.refuse_existing([key_path, cert_path], args.force)
    sans = _server_sans(args.name, args.dns, args.ip)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = ca.leaf_builder(ca_key, ca_cert, key.public_key(), args.name, args.days).add_extension(
        x509.SubjectAlternativeName(sans), critical=False
    )
    cert = ca.sign_leaf(builder, ca_key, ExtendedKeyUsageOID.SERVER_AUTH)
    ca.write_key(key_path, key, force=args.force)
    ca.write_public(cert_path, ca.pem(cert))
    issued["certificates"].append(ca.issued_record(cert, "server", args.name, cert_path))
    ca.save_issued(directory, issued)
    base = directory.resolve()
    url = (
        f"tls://0.0.0.0:{DOCKER_PORT}?cert={_q(base / SERVER_CERT)}&key={_q(base / SERVER_KEY)}"
        f"&client_ca={_q(base / CA_CERT)}&crl={_q(base / CRL)}"
    )
    print(f"server certificate for {', '.join(ca.san_text(s) for s in sans)} in {base}:", file=out)
    print(f"  {SERVER_CERT}, {SERVER_KEY} (0600), expires {cert.not_valid_after_utc:%Y-%m-%d}", file=out)
    print("listen with:", file=out)
    print(f"  {url}", file=out)
    return 0


def cmd_client(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir
    name: str = args.name
    if not is_plain_name(name):
        raise CertsError(f"{name!r} is not a name dockguard accepts as an identity ({NAME_RULE})")
    ca_key, ca_cert, issued = ca.load_ca(directory)
    target: Path = args.out_dir or directory / "clients" / name
    ca.refuse_existing([target / "key.pem", target / "cert.pem"], args.force)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.sign_leaf(
        ca.leaf_builder(ca_key, ca_cert, key.public_key(), name, args.days), ca_key, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca.write_key(target / "key.pem", key, force=args.force)
    ca.write_public(target / "cert.pem", ca.pem(cert))
    # The docker CLI checks the server against DOCKER_CERT_PATH/ca.pem.
    ca.write_public(target / "ca.pem", ca.pem(ca_cert))
    issued["certificates"].append(ca.issued_record(cert, "client", name, target))
    ca.save_issued(directory, issued)
    path = target.resolve()
    host = _server_host(directory)
    endpoint = f"tcp://{host}:{DOCKER_PORT}"
    context = f"host={endpoint},ca={path / 'ca.pem'},cert={path / 'cert.pem'},key={path / 'key.pem'}"
    print(f"client {name}: serial {cert.serial_number:x}, expires {cert.not_valid_after_utc:%Y-%m-%d}", file=out)
    if host == "<host>":
        print("# no server certificate yet: replace <host> with the server's name", file=out)
    print(f"export DOCKER_HOST={endpoint}", file=out)
    print("export DOCKER_TLS_VERIFY=1", file=out)
    print(f"export DOCKER_CERT_PATH={shlex.quote(str(path))}", file=out)
    print(f"docker context create {context_name(name)} --docker {dquote(context)}", file=out)
    return 0


def cmd_revoke(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir
    ca_key, ca_cert, issued = ca.load_ca(directory)
    records = _find(issued["certificates"], args.target)
    if any(r["kind"] == "ca" for r in records):
        raise CertsError("that serial is the CA itself: make a new CA with 'certs init --force' instead")
    fresh = [r for r in records if not r.get("revoked_at")]
    now = ca.utcnow().isoformat()
    for record in fresh:
        record["revoked_at"] = now
    ca.write_crl(directory, ca_key, ca_cert, issued)
    for record in records:
        what = "revoked" if any(record is f for f in fresh) else "already revoked"
        print(f"{what}: {record['kind']} {record['name']} serial {record['serial']}", file=out)
    total = sum(1 for r in issued["certificates"] if r.get("revoked_at"))
    print(f"{directory.resolve() / CRL}: {total} revoked serial(s); reload the listener to apply", file=out)
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    issued = ca.load_issued(args.dir)
    now = ca.utcnow()
    rows = [("SERIAL", "KIND", "NAME", "EXPIRES", "DAYS LEFT", "REVOKED")]
    for r in issued["certificates"]:
        not_after = datetime.fromisoformat(r["not_after"])
        revoked = r.get("revoked_at")
        rows.append(
            (
                r["serial"],
                r["kind"],
                r["name"],
                f"{not_after:%Y-%m-%d}",
                str((not_after - now).days),
                f"yes {datetime.fromisoformat(revoked):%Y-%m-%d}" if revoked else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)
    return 0


# --- certificates --------------------------------------------------------


def _server_sans(name: str, dns: list[str], ips: list[str]) -> list[x509.GeneralName]:
    """C{name} first (as an IP if it is one), then C{dns}, then C{ips}."""
    sans: list[x509.GeneralName] = []
    try:
        sans.append(x509.IPAddress(ipaddress.ip_address(name)))
    except ValueError:
        sans.append(_dns(name))
    sans += [_dns(n) for n in dns]
    for text in ips:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            raise CertsError(f"--ip {text!r} is not an IP address")
    unique: list[x509.GeneralName] = []
    for san in sans:
        if san not in unique:
            unique.append(san)
    return unique


_DNS_SYNTAX = re.compile(
    r"^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$"
)


def _dns(name: str) -> x509.DNSName:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise CertsError(f"{name!r} is an IP address: give it with --ip")
    if len(name) > 253 or not _DNS_SYNTAX.match(name):
        raise CertsError(f"{name!r} is not a host name")
    return x509.DNSName(name.lower())


def _server_host(directory: Path) -> str:
    """The server certificate's first SAN as a URL host, or C{<host>}."""
    try:
        cert = x509.load_pem_x509_certificate((directory / SERVER_CERT).read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return "<host>"
    for san in sans:
        if isinstance(san, x509.IPAddress):
            return f"[{san.value}]" if san.value.version == 6 else str(san.value)
        if isinstance(san, x509.DNSName):
            return san.value
    return "<host>"


# --- the CA directory ----------------------------------------------------


def _find(records: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    """Client certificates named C{target}; failing that, the one with serial C{target} (hex)."""
    by_name = [r for r in records if r["kind"] == "client" and r["name"] == target]
    if by_name:
        return by_name
    serial = target.lower().removeprefix("0x").replace(":", "")
    if re.fullmatch(r"[0-9a-f]+", serial):
        by_serial = [r for r in records if int(r["serial"], 16) == int(serial, 16)]
        if by_serial:
            return by_serial
    raise CertsError(f"no client named {target!r} and no certificate with serial {target!r} in {ISSUED}")


# --- files ---------------------------------------------------------------


def _q(path: Path) -> str:
    """A path as a listen-URL query value (the URL's query is percent-decoded)."""
    return quote(str(path), safe="/")


def dquote(text: str) -> str:
    return f'"{text}"' if not re.search(r'["$`\\!]', text) else shlex.quote(text)


def context_name(name: str) -> str:
    # docker context names: ^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$
    context = name.replace("@", "_")
    return context if len(context) > 1 else f"dockguard-{context}"


if __name__ == "__main__":
    sys.exit(main())
