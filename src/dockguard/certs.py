"""
C{dockguard certs}: a small CA for dockguard's mutual-TLS listeners.

Everything lives in one directory::

    ca.pem, ca-key.pem          the CA (EC P-256; the key is mode 0600)
    crl.pem                     the CA's revocation list (empty at first)
    issued.json                 every certificate issued here, and revocations
    server-cert.pem, server-key.pem
    clients/NAME/               a docker CLI DOCKER_CERT_PATH directory:
                                ca.pem, cert.pem, key.pem

Sub-commands: C{init}, C{server}, C{client}, C{revoke}, C{list}, and
C{token}, C{tokens} (L{dockguard.certtokens}: one-time enrolment tokens,
kept hashed in C{tokens.json}); see L{register}.  Private keys are written with C{os.open(O_CREAT|O_EXCL, 0o600)},
so they are never readable by others, not even for a moment, and they are
never printed.

The CRL's nextUpdate is the CA's own expiry.  The listener reads the CRL from
a local file rather than fetching it, so a short nextUpdate would buy nothing
and would add a day on which OpenSSL refuses every client (a CRL past its
nextUpdate fails every handshake).  C{certs revoke} re-signs the whole list
each time.

Library helpers for the listener: L{load_crl}, L{revoked_serials},
L{expiring}.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dockguard.names import NAME_RULE, is_plain_name

CA_DAYS = 3650
LEAF_DAYS = 825
DOCKER_PORT = 2376
# Certificates start a little in the past, so a clock slightly behind ours
# does not see them as not yet valid.
BACKDATE = timedelta(minutes=5)

CA_KEY, CA_CERT, CRL, ISSUED = "ca-key.pem", "ca.pem", "crl.pem", "issued.json"
SERVER_CERT, SERVER_KEY = "server-cert.pem", "server-key.pem"


class CertsError(Exception):
    """A command cannot go on; C{str()} is the message for the user."""


# --- library helpers -----------------------------------------------------


def load_crl(path: str | os.PathLike[str]) -> x509.CertificateRevocationList:
    """A CRL from a PEM (or DER) file."""
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def revoked_serials(crl: x509.CertificateRevocationList) -> frozenset[int]:
    """The serial numbers a CRL lists."""
    return frozenset(revoked.serial_number for revoked in crl)


def expiring(cert: x509.Certificate, within_days: int = 30, now: datetime | None = None) -> int | None:
    """
    Whole days left before C{cert} expires if fewer than C{within_days}
    (0 on its last day, negative once expired), else C{None}.
    """
    now = _aware(now or datetime.now(UTC))
    left = (cert.not_valid_after_utc - now).days
    return left if left < within_days else None


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
            from dockguard.tokens import ca_lock

            with ca_lock(args.dir):
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
    now = _now()
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
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(directory / CA_KEY, key, force=args.force)
    _write_public(directory / CA_CERT, _pem(cert))
    # A new CA starts a new record: the old one's certificates are not its.
    issued = {"crl_number": 0, "certificates": [_record(cert, "ca", args.name, directory / CA_CERT)]}
    _write_crl(directory, key, cert, issued)
    print(f"CA {args.name!r} in {directory.resolve()}: {CA_CERT}, {CA_KEY} (0600), {CRL}, {ISSUED}", file=out)
    print(f"  expires {cert.not_valid_after_utc:%Y-%m-%d}", file=out)
    if replacing:
        print("  replaced the old CA: issue new server and client certificates", file=out)
    return 0


def cmd_server(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir
    ca_key, ca_cert, issued = _load_ca(directory)
    key_path, cert_path = directory / SERVER_KEY, directory / SERVER_CERT
    _refuse_existing([key_path, cert_path], args.force)
    sans = _server_sans(args.name, args.dns, args.ip)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _leaf_builder(ca_key, ca_cert, key.public_key(), args.name, args.days).add_extension(
        x509.SubjectAlternativeName(sans), critical=False
    )
    cert = _sign_leaf(builder, ca_key, ExtendedKeyUsageOID.SERVER_AUTH)
    _write_key(key_path, key, force=args.force)
    _write_public(cert_path, _pem(cert))
    issued["certificates"].append(_record(cert, "server", args.name, cert_path))
    _save_issued(directory, issued)
    base = directory.resolve()
    url = (
        f"tls://0.0.0.0:{DOCKER_PORT}?cert={_q(base / SERVER_CERT)}&key={_q(base / SERVER_KEY)}"
        f"&client_ca={_q(base / CA_CERT)}&crl={_q(base / CRL)}"
    )
    print(f"server certificate for {', '.join(_san_text(s) for s in sans)} in {base}:", file=out)
    print(f"  {SERVER_CERT}, {SERVER_KEY} (0600), expires {cert.not_valid_after_utc:%Y-%m-%d}", file=out)
    print("listen with:", file=out)
    print(f"  {url}", file=out)
    return 0


def cmd_client(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir
    name: str = args.name
    if not is_plain_name(name):
        raise CertsError(f"{name!r} is not a name dockguard accepts as an identity ({NAME_RULE})")
    ca_key, ca_cert, issued = _load_ca(directory)
    target: Path = args.out_dir or directory / "clients" / name
    _refuse_existing([target / "key.pem", target / "cert.pem"], args.force)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign_leaf(
        _leaf_builder(ca_key, ca_cert, key.public_key(), name, args.days), ca_key, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_key(target / "key.pem", key, force=args.force)
    _write_public(target / "cert.pem", _pem(cert))
    # The docker CLI checks the server against DOCKER_CERT_PATH/ca.pem.
    _write_public(target / "ca.pem", _pem(ca_cert))
    issued["certificates"].append(_record(cert, "client", name, target))
    _save_issued(directory, issued)
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
    print(f"docker context create {_context_name(name)} --docker {_dquote(context)}", file=out)
    return 0


def cmd_revoke(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir
    ca_key, ca_cert, issued = _load_ca(directory)
    records = _find(issued["certificates"], args.target)
    if any(r["kind"] == "ca" for r in records):
        raise CertsError("that serial is the CA itself: make a new CA with 'certs init --force' instead")
    fresh = [r for r in records if not r.get("revoked_at")]
    now = _now().isoformat()
    for record in fresh:
        record["revoked_at"] = now
    _write_crl(directory, ca_key, ca_cert, issued)
    for record in records:
        what = "revoked" if any(record is f for f in fresh) else "already revoked"
        print(f"{what}: {record['kind']} {record['name']} serial {record['serial']}", file=out)
    total = sum(1 for r in issued["certificates"] if r.get("revoked_at"))
    print(f"{directory.resolve() / CRL}: {total} revoked serial(s); reload the listener to apply", file=out)
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    issued = _load_issued(args.dir)
    now = _now()
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


def _leaf_builder(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: CertificatePublicKeyTypes,
    common_name: str,
    days: int,
) -> x509.CertificateBuilder:
    now = _now()
    # A certificate outliving its CA would not verify after the CA expires.
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )


def _sign_leaf(
    builder: x509.CertificateBuilder, ca_key: ec.EllipticCurvePrivateKey, usage: x509.ObjectIdentifier
) -> x509.Certificate:
    return builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).sign(ca_key, hashes.SHA256())


def _key_usage(digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


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


def _san_text(san: x509.GeneralName) -> str:
    return f"IP:{san.value}" if isinstance(san, x509.IPAddress) else f"DNS:{san.value}"


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


def _write_crl(
    directory: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, issued: dict[str, Any]
) -> x509.CertificateRevocationList:
    """Sign a CRL listing every revoked serial in C{issued}; write crl.pem and issued.json."""
    issued["crl_number"] = int(issued.get("crl_number", 0)) + 1
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - BACKDATE)
        # See the module docstring: valid as long as the CA is.
        .next_update(max(ca_cert.not_valid_after_utc, now + timedelta(days=1)))
        .add_extension(x509.CRLNumber(issued["crl_number"]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    for record in issued["certificates"]:
        if record.get("revoked_at"):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(record["serial"], 16))
                .revocation_date(datetime.fromisoformat(record["revoked_at"]))
                .build()
            )
    crl = builder.sign(ca_key, hashes.SHA256())
    _write_public(directory / CRL, crl.public_bytes(serialization.Encoding.PEM))
    _save_issued(directory, issued)
    return crl


# --- the CA directory ----------------------------------------------------


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, dict[str, Any]]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not key_path.exists() or not cert_path.exists():
        raise CertsError(
            f"{directory} holds no CA ({CA_CERT} and {CA_KEY}): run 'dockguard certs init {directory}' first"
        )
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertsError(f"{key_path} is not the key of {cert_path}")
    return key, cert, _load_issued(directory)


def _load_issued(directory: Path) -> dict[str, Any]:
    path = directory / ISSUED
    if not path.exists():
        if not (directory / CA_CERT).exists():
            raise CertsError(f"{directory} holds no CA: run 'dockguard certs init {directory}' first")
        return {"crl_number": 0, "certificates": []}
    issued = json.loads(path.read_text())
    if not isinstance(issued, dict) or not isinstance(issued.get("certificates"), list):
        raise CertsError(f"{path} is not an issuance record")
    return issued


def _save_issued(directory: Path, issued: dict[str, Any]) -> None:
    _write_public(directory / ISSUED, (json.dumps(issued, indent=2) + "\n").encode())


def _record(cert: x509.Certificate, kind: str, name: str, path: Path) -> dict[str, Any]:
    try:
        sans = [_san_text(s) for s in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value]
    except x509.ExtensionNotFound:
        sans = []
    return {
        "serial": f"{cert.serial_number:x}",
        "kind": kind,
        "name": name,
        "sans": sans,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "revoked_at": None,
        "path": str(path.resolve()),
    }


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


def _refuse_existing(paths: list[Path], force: bool) -> None:
    for path in paths:
        if path.exists() and not force:
            raise CertsError(f"{path} exists: refusing to overwrite (--force replaces it)")


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, force: bool) -> None:
    """Write a private key with mode 0600 from its first byte on."""
    if force:
        path.unlink(missing_ok=True)
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CertsError(f"{path} exists: refusing to overwrite (--force replaces it)")
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # exactly 0600 whatever the umask
        f.write(data)


def _write_public(path: Path, data: bytes) -> None:
    """Replace a file atomically, so a listener reloading it never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _q(path: Path) -> str:
    """A path as a listen-URL query value (the URL's query is percent-decoded)."""
    return quote(str(path), safe="/")


def _dquote(text: str) -> str:
    return f'"{text}"' if not re.search(r'["$`\\!]', text) else shlex.quote(text)


def _context_name(name: str) -> str:
    # docker context names: ^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$
    context = name.replace("@", "_")
    return context if len(context) > 1 else f"dockguard-{context}"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


if __name__ == "__main__":
    sys.exit(main())
