"""
The CA of C{dockguard certs} and of the enrolment listener: its directory,
the files in it, and the certificates it signs.

Everything lives in one directory::

    ca.pem, ca-key.pem          the CA (EC P-256; the key is mode 0600)
    crl.pem                     the CA's revocation list (empty at first)
    issued.json                 every certificate issued here, and revocations
    tokens.json                 one-time enrolment tokens, hashed (L{dockguard.tokens})
    .lock                       held by whatever rewrites issued.json or tokens.json
    server-cert.pem, server-key.pem
    clients/NAME/               a docker CLI DOCKER_CERT_PATH directory:
                                ca.pem, cert.pem, key.pem

Private keys are written with C{os.open(O_CREAT|O_EXCL, 0o600)}, so they are
never readable by others, not even for a moment; public files are replaced
atomically, so a listener reloading one never reads half of it.

The CRL's nextUpdate is the CA's own expiry.  The listener reads the CRL from
a local file rather than fetching it, so a short nextUpdate would buy nothing
and would add a day on which OpenSSL refuses every client (a CRL past its
nextUpdate fails every handshake).  A revocation re-signs the whole list.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

CA_DAYS = 3650
LEAF_DAYS = 825
# Certificates start a little in the past, so a clock slightly behind ours
# does not see them as not yet valid.
BACKDATE = timedelta(minutes=5)

CA_KEY, CA_CERT, CRL, ISSUED = "ca-key.pem", "ca.pem", "crl.pem", "issued.json"
SERVER_CERT, SERVER_KEY = "server-cert.pem", "server-key.pem"
LOCK = ".lock"


class CertsError(Exception):
    """A command cannot go on; C{str()} is the message for the user."""


class Busy(Exception):
    """Another command holds the CA directory's lock just now: try again."""


@contextmanager
def ca_lock(directory: Path, wait: bool = True) -> Iterator[None]:
    """
    Hold the CA directory's lock (C{.lock}, flock): the commands that
    rewrite C{tokens.json} and C{issued.json} take it, so none loses
    another's change.  With C{wait=False} (the listener, which must not
    block) L{Busy} is raised when it is held.
    """
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(f"{directory / LOCK} is held by another dockguard command")
        yield
    finally:
        os.close(fd)  # closing releases the lock


# --- the CA and its record ---------------------------------------------------


def load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, dict[str, Any]]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not key_path.exists() or not cert_path.exists():
        raise CertsError(
            f"{directory} holds no CA ({CA_CERT} and {CA_KEY}): run 'dockguard certs init {directory}' first"
        )
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertsError(f"{key_path} is not the key of {cert_path}")
    return key, cert, load_issued(directory)


def load_issued(directory: Path) -> dict[str, Any]:
    path = directory / ISSUED
    if not path.exists():
        if not (directory / CA_CERT).exists():
            raise CertsError(f"{directory} holds no CA: run 'dockguard certs init {directory}' first")
        return {"crl_number": 0, "certificates": []}
    issued = json.loads(path.read_text())
    if not isinstance(issued, dict) or not isinstance(issued.get("certificates"), list):
        raise CertsError(f"{path} is not an issuance record")
    return issued


def save_issued(directory: Path, issued: dict[str, Any]) -> None:
    write_public(directory / ISSUED, (json.dumps(issued, indent=2) + "\n").encode())


def issued_record(cert: x509.Certificate, kind: str, name: str, path: Path) -> dict[str, Any]:
    try:
        sans = [san_text(s) for s in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value]
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


def san_text(san: x509.GeneralName) -> str:
    return f"IP:{san.value}" if isinstance(san, x509.IPAddress) else f"DNS:{san.value}"


# --- certificates --------------------------------------------------------


def leaf_builder(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: CertificatePublicKeyTypes,
    common_name: str,
    days: int,
) -> x509.CertificateBuilder:
    now = utcnow()
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
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )


def sign_leaf(
    builder: x509.CertificateBuilder, ca_key: ec.EllipticCurvePrivateKey, usage: x509.ObjectIdentifier
) -> x509.Certificate:
    return builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).sign(ca_key, hashes.SHA256())


def key_usage(digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
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


def write_crl(
    directory: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, issued: dict[str, Any]
) -> x509.CertificateRevocationList:
    """Sign a CRL listing every revoked serial in C{issued}; write crl.pem and issued.json."""
    issued["crl_number"] = int(issued.get("crl_number", 0)) + 1
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = utcnow()
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
    write_public(directory / CRL, crl.public_bytes(serialization.Encoding.PEM))
    save_issued(directory, issued)
    return crl


# --- files ---------------------------------------------------------------


def refuse_existing(paths: list[Path], force: bool) -> None:
    for path in paths:
        if path.exists() and not force:
            raise CertsError(f"{path} exists: refusing to overwrite (--force replaces it)")


def write_key(path: Path, key: ec.EllipticCurvePrivateKey, force: bool) -> None:
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


def write_public(path: Path, data: bytes) -> None:
    """Replace a file atomically, so a listener reloading it never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def utcnow() -> datetime:
    return datetime.now(UTC)
