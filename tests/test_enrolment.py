"""
L{dockguard.enrolment}: tokens (format, entropy, hashing, expiry on an
injected clock, one use, revocation) and the certificate a CSR yields (the
CSR's name, SANs and extensions never reach it), plus C{certs token} and
C{certs tokens}.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from dockguard import certs, enrolment, tokens
from dockguard.tokens import Refused, TokenError
from harness.enrol import NOW, csr_for


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    assert certs.main(["certs", "init", str(directory)], out=io.StringIO()) == 0
    assert certs.main(["certs", "server", str(directory), "--name", "127.0.0.1"], out=io.StringIO()) == 0
    return directory


def ca_cert(directory: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())


def new_token(directory: Path, name: str = "alice", ttl: timedelta = timedelta(minutes=15), now: datetime = NOW) -> str:
    token, _ = tokens.add_token(directory, name, ttl, now)
    return token.text


# --- tokens ----------------------------------------------------------------


def test_a_token_carries_the_ca_fingerprint_an_id_and_256_random_bits(ca: Path) -> None:
    token, record = tokens.make_token(ca_cert(ca), "alice", timedelta(minutes=15), NOW)
    prefix, fingerprint, token_id, secret = token.text.split("-")
    assert prefix == "DGT1"
    assert fingerprint == ca_cert(ca).fingerprint(hashes.SHA256()).hex()
    assert len(token_id) == 12
    assert len(base64.b32decode(secret.upper() + "====")) == 32
    assert tokens.parse_token(token.text) == token
    # two tokens share nothing but the CA
    other, _ = tokens.make_token(ca_cert(ca), "alice", timedelta(minutes=15), NOW)
    assert (other.id, other.secret) != (token.id, token.secret)
    # the record keeps a hash, never the secret
    assert record.hash == tokens.hash_token(token.id, token.secret)
    assert token.secret not in json.dumps(record.to_json())
    assert record.expires_at == NOW + timedelta(minutes=15)


def test_tokens_json_is_0600_and_holds_no_secret(ca: Path) -> None:
    text = new_token(ca)
    path = ca / "tokens.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert tokens.parse_token(text).secret not in path.read_text()


@pytest.mark.parametrize(
    "text",
    ["", "DGT1-abc", "DGT2-" + "0" * 64 + "-" + "0" * 12 + "-" + "a" * 52, "DGT1-" + "0" * 64 + "-" + "0" * 12 + "-a"],
)
def test_text_that_is_not_a_token(text: str) -> None:
    with pytest.raises(TokenError):
        tokens.parse_token(text)


@pytest.mark.parametrize("name", ["", "a b", "alice\n", "-x", "ällo"])
def test_a_token_names_an_identity_of_the_one_name_rule(ca: Path, name: str) -> None:
    with pytest.raises(TokenError, match="not a name dockguard accepts"):
        tokens.add_token(ca, name, timedelta(minutes=1), NOW)


@pytest.mark.parametrize(
    ("text", "ttl"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("5", timedelta(minutes=5)),
    ],
)
def test_ttl(text: str, ttl: timedelta) -> None:
    assert tokens.parse_ttl(text) == ttl


def test_a_ttl_out_of_range_is_refused(ca: Path) -> None:
    for ttl in (timedelta(0), timedelta(days=8)):
        with pytest.raises(TokenError, match="lives between"):
            tokens.make_token(ca_cert(ca), "alice", ttl, NOW)


def test_a_token_gives_one_certificate_for_its_name_once(ca: Path) -> None:
    text = new_token(ca)
    issued = enrolment.enrol(ca, text, csr_for(), "10.0.0.2", NOW, 30)
    assert issued.name == "alice"
    with pytest.raises(Refused) as replay:
        enrolment.enrol(ca, text, csr_for(), "10.0.0.3", NOW + timedelta(seconds=1), 30)
    assert "already used" in replay.value.reason and "10.0.0.2" in replay.value.reason
    assert "already used" in replay.value.message
    (record,) = tokens.load_tokens(ca)
    assert record.state(NOW) == "used" and record.used_by == "10.0.0.2"
    assert record.serial == f"{issued.certificate.serial_number:x}"


def test_a_token_expires(ca: Path) -> None:
    text = new_token(ca, ttl=timedelta(minutes=15))
    with pytest.raises(Refused, match="expired"):
        enrolment.enrol(ca, text, csr_for(), "10.0.0.2", NOW + timedelta(minutes=15), 30)
    # still usable a moment before
    enrolment.enrol(ca, text, csr_for(), "10.0.0.2", NOW + timedelta(minutes=14, seconds=59), 30)


def test_a_revoked_token_is_refused(ca: Path) -> None:
    text = new_token(ca)
    token = tokens.parse_token(text)
    tokens.revoke_token(ca, token.id[:6], NOW)
    with pytest.raises(Refused, match="revoked"):
        enrolment.enrol(ca, text, csr_for(), "10.0.0.2", NOW, 30)
    with pytest.raises(certs.CertsError, match="already revoked"):
        tokens.revoke_token(ca, token.id, NOW)


def test_a_wrong_secret_or_id_is_an_unknown_token(ca: Path) -> None:
    token = tokens.parse_token(new_token(ca))
    wrong_secret = tokens.Token(token.ca_fingerprint, token.id, "a" * 52).text
    wrong_id = tokens.Token(token.ca_fingerprint, "0" * 12, token.secret).text
    for text in (wrong_secret, wrong_id):
        with pytest.raises(Refused) as refused:
            enrolment.enrol(ca, text, csr_for(), "10.0.0.2", NOW, 30)
        assert refused.value.message == "unknown token"
    # the real one still works: failed guesses do not spend it
    enrolment.enrol(ca, token.text, csr_for(), "10.0.0.2", NOW, 30)


def test_a_token_of_another_ca_is_refused(ca: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    certs.main(["certs", "init", str(other)], out=io.StringIO())
    token = tokens.parse_token(new_token(ca))
    foreign = tokens.Token(ca_cert(other).fingerprint(hashes.SHA256()).hex(), token.id, token.secret)
    with pytest.raises(Refused, match="another CA"):
        enrolment.enrol(ca, foreign.text, csr_for(), "10.0.0.2", NOW, 30)


def test_old_used_tokens_are_forgotten_after_a_while(ca: Path) -> None:
    enrolment.enrol(ca, new_token(ca), csr_for(), "10.0.0.2", NOW, 30)
    later = NOW + tokens.KEEP + timedelta(days=1)
    new_token(ca, now=later)
    assert [r.state(later) for r in tokens.load_tokens(ca)] == ["valid"]


# --- the certificate -------------------------------------------------------


def test_the_certificate_names_the_token_whatever_the_csr_says(ca: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    evil = csr_for(
        key,
        cn="admin",
        extensions=[
            x509.BasicConstraints(ca=True, path_length=None),
            x509.SubjectAlternativeName(
                [x509.DNSName("evil.example"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]
            ),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CODE_SIGNING]),
        ],
    )
    cert = enrolment.enrol(ca, new_token(ca), evil, "10.0.0.2", NOW, 30).certificate
    assert [a.value for a in cert.subject] == ["alice"]
    assert cert.public_key() == key.public_key()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # the same profile as certs client
    assert {type(e.value) for e in cert.extensions} == {
        x509.BasicConstraints,
        x509.KeyUsage,
        x509.SubjectKeyIdentifier,
        x509.AuthorityKeyIdentifier,
        x509.ExtendedKeyUsage,
    }
    cert.verify_directly_issued_by(ca_cert(ca))


def test_the_certificate_is_recorded_so_list_and_revoke_see_it(ca: Path) -> None:
    cert = enrolment.enrol(ca, new_token(ca), csr_for(), "10.0.0.2", NOW, 30).certificate
    out = io.StringIO()
    certs.main(["certs", "list", str(ca)], out=out)
    assert f"{cert.serial_number:x}" in out.getvalue()
    certs.main(["certs", "revoke", str(ca), "alice"], out=io.StringIO())
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_a_csr_with_a_bad_signature_is_refused(ca: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    good = x509.load_pem_x509_csr(csr_for(key).encode())
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    bad = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    text = new_token(ca)
    with pytest.raises(Refused, match="signature") as refused:
        enrolment.enrol(ca, text, bad, "10.0.0.2", NOW, 30)
    assert refused.value.status == 400
    # and the token is not spent by it
    enrolment.enrol(ca, text, csr_for(), "10.0.0.2", NOW, 30)


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(65537, 1024), ec.generate_private_key(ec.SECP256K1())],
    ids=["rsa-1024", "secp256k1"],
)
def test_weak_or_odd_keys_are_refused(ca: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(Refused) as refused:
        enrolment.load_csr(csr_for(key))
    assert refused.value.message.startswith("csr key") and refused.value.status == 400
    with pytest.raises(Refused):
        enrolment.enrol(ca, new_token(ca), csr_for(key), "10.0.0.2", NOW, 30)


def test_rsa_2048_is_taken(ca: Path) -> None:
    enrolment.load_csr(csr_for(rsa.generate_private_key(65537, 2048)))


def test_not_a_csr(ca: Path) -> None:
    with pytest.raises(Refused) as refused:
        enrolment.load_csr("hello")
    assert refused.value.message == "csr is not a PEM certificate signing request"


# --- renewal ---------------------------------------------------------------


def test_renewal_keeps_the_name_and_refuses_revoked_or_foreign_certificates(ca: Path, tmp_path: Path) -> None:
    first = enrolment.enrol(ca, new_token(ca), csr_for(), "10.0.0.2", NOW, 30).certificate
    renewed = enrolment.renew(ca, first, csr_for(cn="root"), "10.0.0.2", 30)
    assert renewed.name == "alice"
    assert renewed.certificate.subject == first.subject
    assert renewed.certificate.serial_number != first.serial_number
    certs.main(["certs", "revoke", str(ca), f"{first.serial_number:x}"], out=io.StringIO())
    with pytest.raises(Refused, match="revoked"):
        enrolment.renew(ca, first, csr_for(), "10.0.0.2", 30)
    # a server certificate, or one this CA never issued, is not renewed
    server = x509.load_pem_x509_certificate((ca / "server-cert.pem").read_bytes())
    with pytest.raises(Refused):
        enrolment.renew(ca, server, csr_for(), "10.0.0.2", 30)


# --- the commands ----------------------------------------------------------


def test_certs_token_prints_the_token_and_the_identities_hint(ca: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert certs.main(["certs", "token", str(ca), "alice", "--ttl", "5m"], out=out) == 0
    (text,) = out.getvalue().splitlines()  # the token alone: TOKEN=$(dockguard certs token ...)
    tokens.parse_token(text)
    notes = capsys.readouterr().err
    assert "grants no group" in notes and '[identities] alice = ["readonly"]' in notes
    listed = io.StringIO()
    assert certs.main(["certs", "tokens", str(ca)], out=listed) == 0
    assert "alice  valid" in listed.getvalue()
    token_id = tokens.parse_token(text).id
    assert certs.main(["certs", "tokens", str(ca), "--revoke", token_id], out=io.StringIO()) == 0
    listed = io.StringIO()
    certs.main(["certs", "tokens", str(ca)], out=listed)
    assert "alice  revoked" in listed.getvalue()


def test_certs_token_refuses_a_bad_name_in_one_line(ca: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs.main(["certs", "token", str(ca), "a b"], out=io.StringIO()) == 1
    assert "not a name dockguard accepts" in capsys.readouterr().err


def test_certs_token_needs_a_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs.main(["certs", "token", str(tmp_path), "alice"], out=io.StringIO()) == 1
    assert "holds no CA" in capsys.readouterr().err
