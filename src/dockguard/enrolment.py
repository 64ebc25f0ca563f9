"""
Enrolment with a one-time token (L{dockguard.tokens}): what the enrolment
listener (L{dockguard.enrolserver}) checks and what it signs.  Pure: files
in the CA directory and the clock passed in, no Twisted.

A token is used at most once: it is marked used, and C{tokens.json}
written, before the certificate is answered.  A certificate is built here
from the token's name alone, with the profile of C{dockguard certs client}
(CN=NAME, no CA, clientAuth, no SANs): of the certificate signing request
only the public key and its signature count.  A renewal takes the current
client certificate instead of a token.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from dockguard import ca
from dockguard.ca import ca_lock
from dockguard.identities import IdentityRefused, identity_from_certificate
from dockguard.tokens import (
    Refused,
    TokenError,
    check_token,
    fingerprint,
    load_tokens,
    parse_token,
    save_tokens,
)

#: RSA keys of fewer bits are refused; EC keys on these curves are taken.
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192
_CURVES = (ec.SECP256R1, ec.SECP384R1)


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
    builder = ca.leaf_builder(ca_key, ca_cert, key, name, days)
    return ca.sign_leaf(builder, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH)


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
    ca_key, ca_cert, _ = ca.load_ca(directory)
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
    ca_key, ca_cert, _ = ca.load_ca(directory)
    with ca_lock(directory, wait=False):
        issued = ca.load_issued(directory)
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
    issued = ca.load_issued(directory)
    record = ca.issued_record(cert, "client", name, directory)
    record["path"] = None
    record["how"] = how
    issued["certificates"].append(record)
    ca.save_issued(directory, issued)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
