"""
L{dockguard.enrolclient} without a server: its arguments, what it refuses
before it connects, and the TLS it speaks once the CA is pinned (a real
handshake over memory BIOs: the host name is checked).  The whole exchange
with a server is tests/test_e2e_enrol.py's.
"""

from __future__ import annotations

import io
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from dockguard import certs, cli, enrolclient
from dockguard.enrolclient import EnrolError, parse_url

TOKEN = "DGT1-" + "0" * 64 + "-" + "1" * 12 + "-" + "a" * 52


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    certs.main(["certs", "init", str(directory)], out=io.StringIO())
    certs.main(["certs", "server", str(directory), "--name", "docker-host.example"], out=io.StringIO())
    return directory


def enroll(*args: str) -> int:
    return cli.main(["enroll", *args], out=io.StringIO())


@pytest.mark.parametrize(
    "url", ["http://h:2378", "https://h", "https://h:2378/x", "h:2378", "https://:2378", "https://h:99999"]
)
def test_the_url_is_https_host_port(url: str) -> None:
    with pytest.raises(EnrolError, match="is not https://HOST:PORT"):
        parse_url(url)


def test_ipv6_url() -> None:
    assert parse_url("https://[::1]:2378") == ("::1", 2378)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["https://h:2378"], "give the token"),
        (["https://h:2378", "nope"], "not a dockguard enrolment token"),
        (["https://h:2378", TOKEN, "--renew"], "--renew uses DIR's certificate, not a token"),
        (["ftp://h"], "is not https://HOST:PORT"),
    ],
)
def test_mistakes_are_one_line_before_anything_is_sent(
    args: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert enroll(*args, "--dir", str(tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert err.startswith("dockguard enroll: ") and words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_existing_files_are_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cert.pem").write_text("mine")
    (tmp_path / "key.pem").write_text("mine")
    assert enroll("https://h:2378", TOKEN, "--dir", str(tmp_path)) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    out = io.StringIO()
    assert cli.main(["enroll", "https://h:2378", TOKEN, "--dir", str(tmp_path), "--skip-existing"], out=out) == 0
    assert "nothing to do" in out.getvalue()
    assert (tmp_path / "key.pem").read_text() == "mine"


def test_nothing_listening_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.guard import free_port

    assert enroll(f"https://127.0.0.1:{free_port()}", TOKEN, "--dir", str(tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert "cannot talk to https://127.0.0.1:" in err and "Traceback" not in err


def handshake(client: ssl.SSLContext, server: ssl.SSLContext, name: str) -> None:
    """A TLS handshake between two contexts over memory BIOs; raises what the client raises."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=name)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = [False, False]
    for _ in range(10):
        for i, (side, out, into) in enumerate(((c, c_out, s_in), (s, s_out, c_in))):
            if not done[i]:
                try:
                    side.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
            into.write(out.read())
        if all(done):
            return
    raise AssertionError("no handshake")


def test_once_pinned_the_server_and_its_name_are_checked(pki: Path, tmp_path: Path) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(pki / "server-cert.pem"), str(pki / "server-key.pem"))
    pinned = enrolclient.verifying_context((pki / "ca.pem").read_bytes())
    handshake(pinned, server, "docker-host.example")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(enrolclient.verifying_context((pki / "ca.pem").read_bytes()), server, "elsewhere.example")
    other = tmp_path / "other"
    certs.main(["certs", "init", str(other)], out=io.StringIO())
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(enrolclient.verifying_context((other / "ca.pem").read_bytes()), server, "docker-host.example")


def test_the_csr_carries_only_a_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.load_pem_x509_csr(enrolclient.make_csr(key).encode())
    assert csr.is_signature_valid and csr.public_key() == key.public_key()
    assert len(csr.extensions) == 0
