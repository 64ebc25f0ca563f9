"""
One-time enrolment tokens, and their store in the CA directory: what
C{dockguard certs token} makes and L{dockguard.enrolment} redeems.  Pure:
files in the CA directory and the clock passed in, no Twisted.

A token is one line of text::

    DGT1-<sha256 of the CA certificate, hex>-<id, 12 hex>-<secret, 52 base32>

The fingerprint pins the server's CA for the remote host (C{dockguard
enroll} checks it before it sends anything), the id names the token in
C{tokens.json} and in logs, and the secret (256 bits from L{secrets}) proves
it.  Only a hash of id and secret is stored, in C{tokens.json} (mode 0600)
beside the CA, with the identity the token is for, its expiry and, once
used, when and by whom.  The commands and the listener that rewrite the
CA directory's files hold its lock (L{ca_lock}).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from dockguard import ca
from dockguard.ca import ca_lock
from dockguard.names import NAME_RULE, is_plain_name

TOKENS = "tokens.json"
PREFIX = "DGT1"
#: Bytes of the secret (256 bits) and of the id (48 bits, not secret).
SECRET_BYTES, ID_BYTES = 32, 6
DEFAULT_TTL = timedelta(minutes=15)
MAX_TTL = timedelta(days=7)
#: Used, expired and revoked tokens stay listed this long, then go.
KEEP = timedelta(days=30)
_TOKEN = re.compile(rf"{PREFIX}-(?P<ca>[0-9a-f]{{64}})-(?P<id>[0-9a-f]{{12}})-(?P<secret>[a-z2-7]{{52}})")


class TokenError(ca.CertsError):
    """Text that is not a token; C{str()} says why, for the user."""


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


# --- the CA directory ----------------------------------------------------


def load_tokens(directory: Path) -> list[TokenRecord]:
    path = directory / TOKENS
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        raise ca.CertsError(f"{path} is not a token record")
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
    _, ca_cert, _ = ca.load_ca(directory)
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
            raise ca.CertsError(f"{'no' if not found else 'more than one'} token with id {token_id!r} in {TOKENS}")
        record = found[0]
        if record.state(now) != "valid":
            raise ca.CertsError(f"token {record.id} is already {record.state(now)}")
        revoked = attrs.evolve(record, revoked_at=now)
        save_tokens(directory, [revoked if r is record else r for r in records], now)
        return revoked
