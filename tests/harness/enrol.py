"""What the enrolment tests share: a fixed clock, CSRs of any shape, answers parsed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def csr_for(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    cn: str = "mallory",
    extensions: Sequence[x509.ExtensionType] = (),
) -> str:
    """A PEM CSR for C{key} (a new P-256 key by default) asking for C{cn} and C{extensions}."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    signed = builder.sign(key or ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def parse(raw: bytes) -> Answer:
    """One HTTP/1.1 answer with a Content-Length (as twisted.web writes a rendered page)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split(b" ")[1]), headers, body)
