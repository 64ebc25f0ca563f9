"""
Enrolment with a one-time token: what C{dockguard certs token} makes, what
the enrolment listener (L{dockguard.enrolserver}) checks and what it signs.
Pure: files in the CA directory and the clock passed in, no Twisted.

A token is one line of text::

    DGT1-<sha256 of the CA certificate, hex>-<id, 12 hex>-<secret, 52 base32>

The fingerprint pins the server's CA for the remote host (C{dockguard
enroll} checks it before it sends anything), the id names the token in
C{tokens.json} and in logs, and the secret (256 bits from L{secrets}) proves
it.  Only a hash of id and secret is stored, in C{tokens.json} (mode 0600)
beside the CA, with the identity the token is for, its expiry and, once
used, when and by whom.  A token is used at most once: it is marked used,
and the file written, before the certificate is answered.

A certificate is built here from the token's name alone, with the profile of
C{dockguard certs client} (CN=NAME, no CA, clientAuth, no SANs): of the
certificate signing request only the public key and its signature count.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from dockguard import certs
from dockguard.identities import IdentityRefused, identity_from_certificate
from dockguard.names import NAME_RULE, is_plain_name

TOKENS = "tokens.json"
LOCK = ".lock"
PREFIX = "DGT1"
#: Bytes of the secret (256 bits) and of the id (48 bits, not secret).
SECRET_BYTES, ID_BYTES = 32, 6
DEFAULT_TTL = timedelta(minutes=15)
MAX_TTL = timedelta(days=7)
#: Used, expired and revoked tokens stay listed this long, then go.
KEEP = timedelta(days=30)
#: RSA keys of fewer bits are refused; EC keys on these curves are taken.
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192
_CURVES = (ec.SECP256R1, ec.SECP384R1)

_TOKEN = re.compile(rf"{PREFIX}-(?P<ca>[0-9a-f]{{64}})-(?P<id>[0-9a-f]{{12}})-(?P<secret>[a-z2-7]{{52}})")


class TokenError(certs.CertsError):
    """Text that is not a token; C{str()} says why, for the user."""


class Busy(Exception):
    """Another command holds the CA directory's lock just now: try again."""


class Refused(Exception):
    """
    An enrolment or renewal refused.

    @ivar reason: for the log (which token, why; never the secret).
    @ivar message: for the client: as specific as it may be without telling
        a guesser whether an id exists.
    @ivar status: the HTTP status to answer.
    """

    def __init__(self, reason: str, message: str, status: int = 403) -> None:
        super().__init__(reason, message, status)
        self.reason, self.message, self.status = reason, message, status

    def __str__(self) -> str:
        return self.reason


@attrs.frozen
class Token:
    """The parts of a token's text (L{parse_token})."""

    ca_fingerprint: str
    id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{PREFIX}-{self.ca_fingerprint}-{self.id}-{self.secret}"


@attrs.frozen
class TokenRecord:
    """A token as C{tokens.json} keeps it: hashed, with its state."""

    id: str
    name: str
    hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str | None = None
    serial: str | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> str:
        """C{valid}, C{used}, C{revoked} or C{expired}."""
        if self.used_at is not None:
            return "used"
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "valid"

    def to_json(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in attrs.asdict(self).items()
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenRecord:
        def when(key: str) -> datetime | None:
            value = data.get(key)
            return datetime.fromisoformat(value) if value else None

        created, expires = when("created_at"), when("expires_at")
        if created is None or expires is None:
            raise ValueError(f"token {data.get('id')!r} has no created_at or expires_at")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            hash=str(data["hash"]),
            created_at=created,
            expires_at=expires,
            used_at=when("used_at"),
            used_by=data.get("used_by"),
            serial=data.get("serial"),
            revoked_at=when("revoked_at"),
        )


def fingerprint(ca_cert: x509.Certificate) -> str:
    """The SHA-256 of a certificate's DER, in hex: what a token pins."""
    return ca_cert.fingerprint(hashes.SHA256()).hex()


def hash_token(token_id: str, secret: str) -> str:
    """What C{tokens.json} stores of a token: a hash of its id and secret."""
    return hashlib.sha256(f"dockguard enrolment token\0{token_id}\0{secret}".encode()).hexdigest()


def parse_token(text: str) -> Token:
    """
    A token from its text (spaces around it ignored).

    @raise TokenError: it is not one.
    """
    match = _TOKEN.fullmatch(text.strip())
    if match is None:
        raise TokenError(f"not a dockguard enrolment token (expected {PREFIX}-<CA sha256>-<id>-<secret>)")
    return Token(match["ca"], match["id"], match["secret"])


def make_token(
    ca_cert: x509.Certificate,
    name: str,
    ttl: timedelta,
    now: datetime,
    randbytes: Callable[[int], bytes] = secrets.token_bytes,
) -> tuple[Token, TokenRecord]:
    """
    A new token for identity C{name} and its record (not stored yet).

    @raise TokenError: C{name} is not an identity name, or C{ttl} is out of range.
    """
    if not is_plain_name(name):
        raise TokenError(f"{name!r} is not a name dockguard accepts as an identity ({NAME_RULE})")
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise TokenError(f"a token lives between 1 second and {MAX_TTL.days} days, not {ttl}")
    token_id = randbytes(ID_BYTES).hex()
    secret = base64.b32encode(randbytes(SECRET_BYTES)).decode("ascii").rstrip("=").lower()
    token = Token(fingerprint(ca_cert), token_id, secret)
    record = TokenRecord(token_id, name, hash_token(token_id, secret), now, now + ttl)
    return token, record


def parse_ttl(text: str) -> timedelta:
    """C{90s}, C{15m}, C{2h}, C{1d} (a bare number is minutes)."""
    match = re.fullmatch(r"(\d{1,7})([smhd]?)", text.strip())
    if match is None:
        raise TokenError(f"{text!r} is not a duration like 15m, 2h or 1d")
    unit = {"s": "seconds", "m": "minutes", "": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


# --- checks --------------------------------------------------------------


def check_token(records: list[TokenRecord], token: Token, ca_fp: str, now: datetime) -> TokenRecord:
    """
    The record a presented token proves, if it may be used now.

    @raise Refused: another CA's token, an unknown id, a wrong secret, or a
        token used, revoked or expired.
    """
    if not hmac.compare_digest(token.ca_fingerprint, ca_fp):
        raise Refused(
            f"token {token.id} names another CA (sha256 {token.ca_fingerprint[:16]}…)",
            "this token was made for another CA",
        )
    unknown = Refused(f"unknown token {token.id} (no such id, or a wrong secret)", "unknown token")
    found = [r for r in records if r.id == token.id]
    if not found:
        raise unknown
    record = found[0]
    if not hmac.compare_digest(record.hash, hash_token(token.id, token.secret)):
        raise unknown
    state = record.state(now)
    if state == "used":
        raise Refused(
            f"token {record.id} for {record.name} was already used at {record.used_at:%Y-%m-%d %H:%M:%S}Z "
            f"by {record.used_by}: a replay",
            "this token was already used: ask for a new one (dockguard certs token)",
        )
    if state == "revoked":
        raise Refused(f"token {record.id} for {record.name} was revoked", "this token was revoked")
    if state == "expired":
        raise Refused(
            f"token {record.id} for {record.name} expired at {record.expires_at:%Y-%m-%d %H:%M:%S}Z",
            "this token has expired: ask for a new one (dockguard certs token)",
        )
    return record


def load_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    """
    A certificate signing request whose signature holds and whose key is
    one dockguard signs for (EC P-256 or P-384, RSA of 2048 bits or more).
    Nothing else of it is used.

    @raise Refused: (status 400) it is not one.
    """
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        csr = x509.load_pem_x509_csr(data)
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as e:
        raise Refused(f"unreadable CSR: {e}", "csr is not a PEM certificate signing request", 400)
    except Exception as e:  # cryptography raises its own for unsupported keys
        raise Refused(f"unusable CSR: {e}", "csr has a key of a kind dockguard does not sign", 400)
    if not valid:
        raise Refused("the CSR's signature does not hold", "the csr's signature does not hold", 400)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise Refused(f"CSR key on curve {key.curve.name}", "csr key: use EC P-256 or P-384", 400)
    elif isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise Refused(
                f"CSR with a {key.key_size}-bit RSA key",
                f"csr key: RSA keys need {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (or use EC P-256)",
                400,
            )
    else:
        raise Refused(f"CSR key of type {type(key).__name__}", "csr key: use EC P-256 or RSA (2048 bits or more)", 400)
    return csr


def certificate_for(
    csr: x509.CertificateSigningRequest,
    name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    days: int,
) -> x509.Certificate:
    """
    The client certificate for identity C{name} and the CSR's public key,
    exactly as C{dockguard certs client} makes it: the CSR's subject,
    SANs and extensions are not looked at.
    """
    key = csr.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)  # load_csr checked it
    builder = certs._leaf_builder(ca_key, ca_cert, key, name, days)
    return certs._sign_leaf(builder, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH)


# --- the CA directory ----------------------------------------------------


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


def load_tokens(directory: Path) -> list[TokenRecord]:
    path = directory / TOKENS
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        raise certs.CertsError(f"{path} is not a token record")
    return [TokenRecord.from_json(item) for item in data["tokens"]]


def save_tokens(directory: Path, records: list[TokenRecord], now: datetime) -> None:
    """
    Write C{tokens.json} (0600) atomically and to the disk, so a token
    marked used stays used after a crash; records done with for longer than
    L{KEEP} are dropped.
    """
    kept = [r for r in records if r.state(now) == "valid" or now - _ended(r) < KEEP]
    data = (json.dumps({"tokens": [r.to_json() for r in kept]}, indent=2) + "\n").encode()
    tmp = directory / f".{TOKENS}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / TOKENS)


def _ended(record: TokenRecord) -> datetime:
    return record.used_at or record.revoked_at or record.expires_at


def add_token(directory: Path, name: str, ttl: timedelta, now: datetime) -> tuple[Token, TokenRecord]:
    """Make a token for C{name} and record it in C{directory}."""
    _, ca_cert, _ = certs._load_ca(directory)
    token, record = make_token(ca_cert, name, ttl, now)
    with ca_lock(directory):
        save_tokens(directory, [*load_tokens(directory), record], now)
    return token, record


def revoke_token(directory: Path, token_id: str, now: datetime) -> TokenRecord:
    """Revoke an unused token by its id (or a unique prefix of it)."""
    with ca_lock(directory):
        records = load_tokens(directory)
        found = [r for r in records if r.id.startswith(token_id.lower())] if token_id else []
        if len(found) != 1:
            raise certs.CertsError(f"{'no' if not found else 'more than one'} token with id {token_id!r} in {TOKENS}")
        record = found[0]
        if record.state(now) != "valid":
            raise certs.CertsError(f"token {record.id} is already {record.state(now)}")
        revoked = attrs.evolve(record, revoked_at=now)
        save_tokens(directory, [revoked if r is record else r for r in records], now)
        return revoked


@attrs.frozen
class Issued:
    """What an enrolment or renewal answers."""

    name: str
    certificate: x509.Certificate
    ca: x509.Certificate
    token_id: str | None = None


def enrol(
    directory: Path, text: str, csr_pem: str, peer: str, now: datetime, days: int, expected: str | None = None
) -> Issued:
    """
    Redeem token C{text} for a certificate for its identity and the key of
    C{csr_pem}: check both, mark the token used and write C{tokens.json},
    then sign and record the certificate in C{issued.json}.  With
    C{expected}, a token for another identity is refused (and not spent).

    @raise Refused: the token or the CSR is refused (nothing is written).
    @raise Busy: the CA directory is locked just now.
    """
    try:
        token = parse_token(text)
    except TokenError as e:
        raise Refused(f"not a token: {e}", str(e), 400)
    ca_key, ca_cert, _ = certs._load_ca(directory)
    with ca_lock(directory, wait=False):
        records = load_tokens(directory)
        record = check_token(records, token, fingerprint(ca_cert), now)
        if expected is not None and expected != record.name:
            raise Refused(
                f"token {record.id} is for {record.name}, not {expected!r} as the client expected",
                f"this token is not for {expected!r}",
            )
        csr = load_csr(csr_pem)
        used = attrs.evolve(record, used_at=now, used_by=peer)
        save_tokens(directory, [used if r is record else r for r in records], now)
        cert = certificate_for(csr, record.name, ca_key, ca_cert, days)
        _record_issued(directory, cert, record.name, f"enrolled from {peer} with token {record.id}")
        used = attrs.evolve(used, serial=f"{cert.serial_number:x}")
        save_tokens(directory, [used if r.id == record.id else r for r in records], now)
    return Issued(record.name, cert, ca_cert, record.id)


def renew(directory: Path, current: x509.Certificate, csr_pem: str, peer: str, days: int) -> Issued:
    """
    A new certificate for the identity of C{current}, a client certificate
    the listener's TLS handshake verified, and the key of C{csr_pem}.
    C{issued.json} must know C{current} as a client certificate not revoked
    (checked here too, so a revocation counts before the listener's CRL is
    reloaded).

    @raise Refused: C{current} or the CSR is refused.
    @raise Busy: the CA directory is locked just now.
    """
    try:
        name = identity_from_certificate(current)
    except IdentityRefused as e:
        raise Refused(f"renewal refused: {e}", str(e))
    serial = current.serial_number
    ca_key, ca_cert, _ = certs._load_ca(directory)
    with ca_lock(directory, wait=False):
        issued = certs._load_issued(directory)
        known = [r for r in issued["certificates"] if r["kind"] == "client" and int(r["serial"], 16) == serial]
        if not known or known[0]["name"] != name:
            raise Refused(
                f"renewal refused: {name} presented serial {serial:x}, which this CA did not issue to it",
                "this certificate cannot be renewed here",
            )
        if known[0].get("revoked_at"):
            raise Refused(
                f"renewal refused: {name}'s certificate serial {serial:x} is revoked",
                "this certificate is revoked",
            )
        csr = load_csr(csr_pem)
        cert = certificate_for(csr, name, ca_key, ca_cert, days)
        _record_issued(directory, cert, name, f"renewed from {peer}, replacing serial {serial:x}")
    return Issued(name, cert, ca_cert)


def _record_issued(directory: Path, cert: x509.Certificate, name: str, how: str) -> None:
    """Add C{cert} to C{issued.json} as a client certificate (C{certs list}, C{certs revoke})."""
    issued = certs._load_issued(directory)
    record = certs._record(cert, "client", name, directory)
    record["path"] = None
    record["how"] = how
    issued["certificates"].append(record)
    certs._save_issued(directory, issued)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
