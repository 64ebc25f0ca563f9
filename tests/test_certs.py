"""
C{dockguard certs}: the commands run through L{dockguard.certs.register} on a
fresh parser, the results checked with C{cryptography} (and OpenSSL's own
chain and CRL checks, as the listener does them).
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL.crypto import X509, X509Store, X509StoreContext, X509StoreContextError, X509StoreFlags

from dockguard import certs, identities


def load_crl(path: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(path.read_bytes())


def revoked_serials(crl: x509.CertificateRevocationList) -> frozenset[int]:
    return frozenset(revoked.serial_number for revoked in crl)


def run(*argv: str | os.PathLike[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="dockguard")
    certs.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    out = io.StringIO()
    return certs.run(args, out), out.getvalue()


def ok(*argv: str | os.PathLike[str]) -> str:
    code, out = run(*argv)
    assert code == 0
    return out


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    ok("certs", "init", directory)
    return directory


def test_init_makes_a_ca(ca_dir: Path) -> None:
    ca = load(ca_dir / "ca.pem")
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dockguard CA"
    assert ca.issuer == ca.subject
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > timedelta(days=3649)
    assert mode(ca_dir / "ca-key.pem") == 0o600
    assert b"PRIVATE KEY" in (ca_dir / "ca-key.pem").read_bytes()

    crl = load_crl(ca_dir / "crl.pem")
    assert crl.is_signature_valid(ca.public_key())
    assert crl.issuer == ca.subject
    assert revoked_serials(crl) == frozenset()

    issued = json.loads((ca_dir / "issued.json").read_text())["certificates"]
    assert [(r["kind"], r["serial"]) for r in issued] == [("ca", f"{ca.serial_number:x}")]
    assert set(issued[0]) >= {"serial", "kind", "name", "sans", "not_before", "not_after", "revoked_at"}


def test_init_refuses_to_overwrite_without_force(ca_dir: Path, capsys) -> None:
    before = (ca_dir / "ca-key.pem").read_bytes()
    code, _ = run("certs", "init", ca_dir)
    assert code == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (ca_dir / "ca-key.pem").read_bytes() == before

    ok("certs", "init", ca_dir, "--force", "--name", "second CA")
    assert (ca_dir / "ca-key.pem").read_bytes() != before
    assert mode(ca_dir / "ca-key.pem") == 0o600
    assert load(ca_dir / "ca.pem").subject.rfc4514_string() == "CN=second CA"


def test_server_certificate(ca_dir: Path) -> None:
    out = ok(
        "certs", "server", ca_dir, "--name", "myhost.example", "--ip", "192.0.2.10", "--ip", "::1", "--dns", "localhost"
    )
    cert = load(ca_dir / "server-cert.pem")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(sans) == [
        x509.DNSName("myhost.example"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.10")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert mode(ca_dir / "server-key.pem") == 0o600

    # a TLS client that trusts ca.pem accepts it for the names it carries
    store = verification.Store([load(ca_dir / "ca.pem")])
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(x509.DNSName("myhost.example"))
    verifier.verify(cert, [])

    base = ca_dir.resolve()
    assert (
        f"tls://0.0.0.0:2376?cert={base}/server-cert.pem&key={base}/server-key.pem"
        f"&client_ca={base}/ca.pem&crl={base}/crl.pem"
    ) in out
    # and dockguard's own parser reads that URL back
    from dockguard.listeners import parse_listen

    url = next(line.strip() for line in out.splitlines() if line.strip().startswith("tls://"))
    listener = parse_listen(url)
    assert listener.crl == base / "crl.pem" and listener.client_ca == base / "ca.pem"


def test_server_name_may_be_an_ip(ca_dir: Path) -> None:
    ok("certs", "server", ca_dir, "--name", "127.0.0.1", "--dns", "localhost", "--ip", "127.0.0.1")
    sans = load(ca_dir / "server-cert.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(sans) == [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]


def test_server_refuses_bad_names_and_overwriting(ca_dir: Path, capsys) -> None:
    assert run("certs", "server", ca_dir, "--name", "h", "--ip", "not-an-ip")[0] == 1
    assert run("certs", "server", ca_dir, "--name", "bad host")[0] == 1
    assert not (ca_dir / "server-key.pem").exists()
    ok("certs", "server", ca_dir, "--name", "localhost")
    assert run("certs", "server", ca_dir, "--name", "localhost")[0] == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    ok("certs", "server", ca_dir, "--name", "localhost", "--force")


def test_client_certificate_is_a_docker_cert_path(ca_dir: Path) -> None:
    ok("certs", "server", ca_dir, "--name", "myhost.example", "--ip", "127.0.0.1")
    out = ok("certs", "client", ca_dir, "traefik")
    path = (ca_dir / "clients" / "traefik").resolve()
    cert = load(path / "cert.pem")
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["traefik"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert mode(path / "key.pem") == 0o600
    assert (path / "ca.pem").read_bytes() == (ca_dir / "ca.pem").read_bytes()

    lines = out.splitlines()
    assert "export DOCKER_HOST=tcp://myhost.example:2376" in lines
    assert "export DOCKER_TLS_VERIFY=1" in lines
    assert f"export DOCKER_CERT_PATH={path}" in lines
    assert (
        f'docker context create traefik --docker "host=tcp://myhost.example:2376,'
        f'ca={path}/ca.pem,cert={path}/cert.pem,key={path}/key.pem"'
    ) in lines
    assert "PRIVATE KEY" not in out

    ca = load(ca_dir / "ca.pem")
    cert.verify_directly_issued_by(ca)
    if not hasattr(verification, "ExtensionPolicy"):  # cryptography < 45
        return
    # The web PKI policy wants a SAN on client certificates too; a docker
    # client certificate has none (the identity is the CN), so allow that.
    ee_policy = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
    )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([ca]))
        .extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    verified = verifier.verify(cert, [])
    assert verified.chain == [cert, ca]


def test_client_identity_is_accepted_by_dockguard(ca_dir: Path) -> None:
    ok("certs", "client", ca_dir, "ci-bot@example.org")
    cert = load(ca_dir / "clients" / "ci-bot@example.org" / "cert.pem")
    assert identities.identity_from_certificate(cert) == "ci-bot@example.org"


def test_a_trailing_newline_is_not_a_name() -> None:
    from dockguard.names import is_plain_name

    assert is_plain_name("alice") and not is_plain_name("alice\n")


@pytest.mark.parametrize("name", ["bad name", "-dash", "a" * 129, "x/y", "émile", "alice\n"])
def test_invalid_client_name_refused(ca_dir: Path, name: str, capsys) -> None:
    code, _ = run("certs", "client", ca_dir, "--", name)
    assert code == 1
    assert "not a name dockguard accepts" in capsys.readouterr().err
    assert not (ca_dir / "clients").exists()


def test_client_without_server_has_placeholder_host_and_out(ca_dir: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "elsewhere"
    out = ok("certs", "client", ca_dir, "portainer", "--out", target)
    assert "export DOCKER_HOST=tcp://<host>:2376" in out.splitlines()
    assert f"export DOCKER_CERT_PATH={target.resolve()}" in out.splitlines()
    assert mode(target / "key.pem") == 0o600
    assert run("certs", "client", ca_dir, "portainer", "--out", target)[0] == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    ok("certs", "client", ca_dir, "portainer", "--out", target, "--force")


def test_client_needs_a_ca(tmp_path: Path, capsys) -> None:
    assert run("certs", "client", tmp_path, "alice")[0] == 1
    assert "certs init" in capsys.readouterr().err


def _openssl_verify(ca_dir: Path, cert: x509.Certificate) -> None:
    """What the listener does: chain to ca.pem and check crl.pem."""
    store = X509Store()
    store.add_cert(X509.from_cryptography(load(ca_dir / "ca.pem")))
    store.add_crl(load_crl(ca_dir / "crl.pem"))
    store.set_flags(X509StoreFlags.CRL_CHECK)
    X509StoreContext(store, X509.from_cryptography(cert)).verify_certificate()


def test_revoke_by_name(ca_dir: Path) -> None:
    ok("certs", "client", ca_dir, "alice")
    ok("certs", "client", ca_dir, "alice", "--out", ca_dir / "alice-2")
    ok("certs", "client", ca_dir, "bob")
    alice1 = load(ca_dir / "clients" / "alice" / "cert.pem")
    alice2 = load(ca_dir / "alice-2" / "cert.pem")
    bob = load(ca_dir / "clients" / "bob" / "cert.pem")
    for cert in (alice1, alice2, bob):
        _openssl_verify(ca_dir, cert)  # the empty CRL from init is fine for OpenSSL

    ok("certs", "revoke", ca_dir, "alice")
    crl = load_crl(ca_dir / "crl.pem")
    assert crl.is_signature_valid(load(ca_dir / "ca.pem").public_key())
    assert revoked_serials(crl) == {alice1.serial_number, alice2.serial_number}
    for cert in (alice1, alice2):
        with pytest.raises(X509StoreContextError, match="revoked"):
            _openssl_verify(ca_dir, cert)
    _openssl_verify(ca_dir, bob)

    table = ok("certs", "list", ca_dir)
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert " yes " in rows[f"{alice1.serial_number:x}"] + " "
    assert rows[f"{bob.serial_number:x}"].rstrip().endswith("no")


def test_revoke_by_serial_keeps_earlier_revocations(ca_dir: Path) -> None:
    ok("certs", "server", ca_dir, "--name", "localhost")
    ok("certs", "client", ca_dir, "alice")
    ok("certs", "client", ca_dir, "bob")
    server = load(ca_dir / "server-cert.pem")
    alice = load(ca_dir / "clients" / "alice" / "cert.pem")
    ok("certs", "revoke", ca_dir, "bob")
    ok("certs", "revoke", ca_dir, f"{alice.serial_number:X}")
    ok("certs", "revoke", ca_dir, f"0x{server.serial_number:x}")
    bob = load(ca_dir / "clients" / "bob" / "cert.pem")
    revoked = revoked_serials(load_crl(ca_dir / "crl.pem"))
    assert revoked == {alice.serial_number, bob.serial_number, server.serial_number}
    issued = json.loads((ca_dir / "issued.json").read_text())["certificates"]
    assert {r["kind"] for r in issued if r["revoked_at"]} == {"client", "server"}


def test_revoke_unknown_or_ca(ca_dir: Path, capsys) -> None:
    assert run("certs", "revoke", ca_dir, "nobody")[0] == 1
    assert "nobody" in capsys.readouterr().err
    assert run("certs", "revoke", ca_dir, "abcdef")[0] == 1
    ca = load(ca_dir / "ca.pem")
    assert run("certs", "revoke", ca_dir, f"{ca.serial_number:x}")[0] == 1
    assert revoked_serials(load_crl(ca_dir / "crl.pem")) == frozenset()


def test_list_table(ca_dir: Path) -> None:
    ok("certs", "server", ca_dir, "--name", "localhost", "--days", "10")
    ok("certs", "client", ca_dir, "alice")
    ok("certs", "revoke", ca_dir, "alice")
    lines = ok("certs", "list", ca_dir).splitlines()
    assert lines[0].split() == ["SERIAL", "KIND", "NAME", "EXPIRES", "DAYS", "LEFT", "REVOKED"]
    body = [line.split() for line in lines[1:]]
    assert [(row[1], row[2]) for row in body] == [("ca", "dockguard"), ("server", "localhost"), ("client", "alice")]
    server_row = body[1]
    assert server_row[4] in ("9", "10") and server_row[5] == "no"
    assert body[2][5] == "yes"


def test_leaf_never_outlives_the_ca(tmp_path: Path) -> None:
    ok("certs", "init", tmp_path, "--days", "30")
    ok("certs", "client", tmp_path, "alice", "--days", "825")
    ca = load(tmp_path / "ca.pem")
    assert load(tmp_path / "clients" / "alice" / "cert.pem").not_valid_after_utc <= ca.not_valid_after_utc


def test_days_must_be_positive(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        run("certs", "init", tmp_path, "--days", "0")
    assert not (tmp_path / "ca-key.pem").exists()
