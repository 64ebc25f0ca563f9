"""Pin the e2e harness itself: the private dockerd, the test images, the PKI.

These talk to the private daemon directly (no dockguard in between).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import stat
import threading
import time
from pathlib import Path

import psutil
import pytest
import pytest_twisted
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.dockerd import (
    BUSYBOX_APPLETS,
    DockerdNotInstalled,
    PrivateDaemon,
    api_request,
    make_big_image,
    make_busybox_image,
)
from harness.pki import TestPKI, cert_common_names, load_cert

pytestmark = pytest.mark.e2e


# ---------------------------------------------------------------------------
# the private daemon
# ---------------------------------------------------------------------------


def test_daemon_is_private(dockerd: PrivateDaemon) -> None:
    assert len(dockerd.socket_path) < 100
    assert dockerd.url == f"unix://{dockerd.socket_path}"
    assert dockerd.is_running()
    status, body = api_request(dockerd.socket_path, "GET", "/info")
    assert status == 200
    info = json.loads(body)
    assert info["DockerRootDir"] == str(dockerd.dir / "data")
    assert info["Driver"] == "vfs"
    assert dockerd.log_path.exists()


def test_cli_version(dockerd: PrivateDaemon, docker_cli, docker_binary: str) -> None:
    res = docker_cli(["version", "--format", "{{json .}}"], env=dockerd.env, binary=docker_binary)
    assert res.returncode == 0, res.stderr
    version = json.loads(res.stdout)
    assert version["Client"]["Version"]
    assert version["Server"]["Version"]


def test_cli_run_echo(dockerd: PrivateDaemon, docker_cli, docker_binary: str) -> None:
    res = docker_cli(
        ["run", "--rm", "--network", "none", "busybox:local", "echo", "hi"],
        env=dockerd.env,
        binary=docker_binary,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"hi\n"


@pytest_twisted.inlineCallbacks
def test_cli_deferred(dockerd: PrivateDaemon, docker_cli):
    res = yield docker_cli.deferred(
        ["run", "--rm", "--network", "none", "busybox:local", "echo", "deferred"], env=dockerd.env
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"deferred\n"


def test_cli_env_is_clean(dockerd: PrivateDaemon, docker_cli, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    res = docker_cli(["info", "--format", "{{.DockerRootDir}}"], env=dockerd.env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().strip() == str(dockerd.dir / "data")


def test_busybox_image(dockerd: PrivateDaemon, docker_cli) -> None:
    script = (
        "for a in " + " ".join(a for a in BUSYBOX_APPLETS if a != "[") + "; do "
        "test -x /bin/$a || echo missing $a; done; "
        "grep -q '^nobody:' /etc/passwd || echo no nobody; "
        "grep -q '^nobody:' /etc/group || echo no nobody group; "
        "test -d /tmp && touch /tmp/x || echo no tmp; "
        "seq 3 | wc -l; echo abc | tr a-c x-z; echo -n hi | sha256sum | head -c 8; echo"
    )
    res = docker_cli(["run", "--rm", "--network", "none", "busybox:local", "sh", "-c", script], env=dockerd.env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().split() == ["3", "xyz", "8f434346"]
    res = docker_cli(["run", "--rm", "--network", "none", "--user", "nobody", "busybox:local", "id"], env=dockerd.env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(b"uid=65534(nobody) gid=65534(nobody)")
    # stdin works (docker run -i)
    res = docker_cli(
        ["run", "--rm", "-i", "--network", "none", "busybox:local", "wc", "-c"], env=dockerd.env, input=b"x" * 1000
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == b"1000"


def test_busybox_import_is_repeatable(dockerd: PrivateDaemon) -> None:
    image_id = make_busybox_image(dockerd.socket_path, "busybox:again")
    try:
        assert image_id.startswith("sha256:")
    finally:
        api_request(dockerd.socket_path, "DELETE", "/images/busybox:again")


def test_big_image(dockerd: PrivateDaemon, docker_cli) -> None:
    size_mb = 20
    t0 = time.monotonic()
    big = make_big_image(dockerd.socket_path, "dg-big:test", size_mb)
    elapsed = time.monotonic() - t0
    try:
        assert elapsed < 60
        status, body = api_request(dockerd.socket_path, "GET", "/images/busybox:local/json")
        base_size = json.loads(body)["Size"]
        status, body = api_request(dockerd.socket_path, "GET", "/images/dg-big:test/json")
        assert status == 200
        info = json.loads(body)
        assert info["Id"] == big.id
        assert big.size == size_mb * 1024 * 1024
        assert big.image_size == info["Size"]
        assert base_size + big.size <= info["Size"] < base_size + big.size + 64 * 1024
        assert len(info["RootFS"]["Layers"]) == 2  # busybox + the big layer
        # the content is what make_big_image says, and incompressible
        res = docker_cli(
            [
                "run",
                "--rm",
                "--network",
                "none",
                "dg-big:test",
                "sh",
                "-c",
                f"md5sum {big.path}; head -c 1048576 {big.path} | gzip -c | wc -c",
            ],
            env=dockerd.env,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        md5_line, gz_size = res.stdout.decode().splitlines()
        assert md5_line.split()[0] == big.md5
        assert int(gz_size) > 1_040_000
    finally:
        api_request(dockerd.socket_path, "DELETE", "/images/dg-big:test?force=1")


def _leftovers(name: str) -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if name in " ".join(p.info["cmdline"] or []):
            found.append(f"{p.pid}: {p.info['cmdline']}")
    with open("/proc/self/mountinfo") as f:
        found += [line for line in f if name in line]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{name}")]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(name)]
    return found


def test_start_stop_twice_leaves_nothing(docker_cli) -> None:
    """A second daemon next to the session one; started and stopped twice,
    once with a container still running; nothing may be left behind."""
    daemon = PrivateDaemon()
    for round_ in range(2):
        daemon.start()
        directory, name = daemon.dir, daemon.name
        assert directory is not None and name is not None
        make_busybox_image(daemon.socket_path)
        if round_ == 0:
            res = docker_cli(["run", "-d", "--network", "none", "busybox:local", "sleep", "600"], env=daemon.env)
            assert res.returncode == 0, res.stderr
            assert _leftovers(name)
        t0 = time.monotonic()
        daemon.stop()
        assert time.monotonic() - t0 < 20
        daemon.stop()  # idempotent
        assert not directory.exists()
        assert _leftovers(name) == []


def test_missing_dockerd_is_a_clear_error() -> None:
    with pytest.raises(DockerdNotInstalled, match="README"):
        PrivateDaemon(dockerd="no-such-dockerd").start()


def test_start_failure_reports_log() -> None:
    daemon = PrivateDaemon(extra_args=["--storage-driver=no-such-driver"], start_timeout=30)
    with pytest.raises(Exception) as info:
        daemon.start()
    assert "dockerd exited" in str(info.value)
    assert "graphdriver" in str(info.value)  # the log tail is in the message
    assert daemon.dir is None  # cleaned up


# ---------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------


def _eku(cert: x509.Certificate) -> list:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _is_0600(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def _same_key(cert: x509.Certificate, key_path: Path) -> bool:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def test_pki_server(pki: TestPKI) -> None:
    ca = load_cert(pki.ca_path)
    server = load_cert(pki.server_cert_path)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server.verify_directly_issued_by(ca)
    assert cert_common_names(server) == ["dockguard"]
    assert _eku(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _is_0600(pki.server_key_path)
    assert _same_key(server, pki.server_key_path)

    from cryptography.x509.verification import PolicyBuilder, Store

    store = Store([ca])
    for san in (
        x509.DNSName("localhost"),
        x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
        x509.IPAddress(__import__("ipaddress").ip_address("::1")),
    ):
        verifier = PolicyBuilder().store(store).build_server_verifier(san)
        chain = verifier.verify(server, [])
        assert chain[-1] == ca


def test_pki_clients(pki: TestPKI) -> None:
    ca = load_cert(pki.ca_path)
    now = datetime.datetime.now(datetime.UTC)

    def check_dir(d: Path) -> x509.Certificate:
        assert (d / "ca.pem").read_bytes() == pki.ca_path.read_bytes()
        assert _is_0600(d / "key.pem")
        cert = load_cert(d / "cert.pem")
        assert _same_key(cert, d / "key.pem")
        return cert

    good = check_dir(pki.client("alice"))
    good.verify_directly_issued_by(ca)
    assert cert_common_names(good) == ["alice"]
    assert _eku(good) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not good.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert good.not_valid_before_utc < now < good.not_valid_after_utc
    assert pki.client("alice") == pki.client("alice")
    assert pki.client("bob") != pki.client("alice")

    other = check_dir(pki.client_from_other_ca("alice"))
    with pytest.raises((ValueError, InvalidSignature)):
        other.verify_directly_issued_by(ca)
    assert cert_common_names(other) == ["alice"]
    assert _eku(other) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    no_client_auth = check_dir(pki.client_without_client_auth("alice"))
    no_client_auth.verify_directly_issued_by(ca)
    assert _eku(no_client_auth) == [ExtendedKeyUsageOID.SERVER_AUTH]

    two = check_dir(pki.client_with_two_cns("alice", "root"))
    two.verify_directly_issued_by(ca)
    assert cert_common_names(two) == ["alice", "root"]

    no_cn = check_dir(pki.client_without_cn())
    no_cn.verify_directly_issued_by(ca)
    assert cert_common_names(no_cn) == []
    assert no_cn.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)

    ca_flag = check_dir(pki.client_ca_flag("alice"))
    ca_flag.verify_directly_issued_by(ca)
    assert ca_flag.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert_common_names(ca_flag) == ["alice"]

    expired = check_dir(pki.expired_client("alice"))
    expired.verify_directly_issued_by(ca)
    assert expired.not_valid_after_utc < now
    assert cert_common_names(expired) == ["alice"]


def _tls_handshake(pki: TestPKI, client_dir: Path) -> tuple[bool, str]:
    """Handshake (OpenSSL via ssl) between the test server cert, requiring a
    client cert, and ``client_dir``; return (ok, server-side error)."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.server_cert_path, pki.server_key_path)
    sctx.load_verify_locations(pki.ca_path)
    sctx.verify_mode = ssl.CERT_REQUIRED
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_verify_locations(client_dir / "ca.pem")
    cctx.load_cert_chain(client_dir / "cert.pem", client_dir / "key.pem")
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    result: dict[str, object] = {}

    def serve() -> None:
        try:
            with sctx.wrap_socket(a, server_side=True) as s:
                result["peer"] = s.getpeercert()
                s.sendall(b"k")
        except (ssl.SSLError, OSError) as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with cctx.wrap_socket(b, server_hostname="localhost") as c:
            got = c.recv(1)
    except (ssl.SSLError, OSError):
        got = b""
    t.join(10)
    return got == b"k" and "peer" in result, str(result.get("error", ""))


def test_pki_tls_handshakes(pki: TestPKI) -> None:
    ok, err = _tls_handshake(pki, pki.client("alice"))
    assert ok, err
    for bad in (
        pki.client_from_other_ca("alice"),
        pki.client_without_client_auth("alice"),
        pki.expired_client("alice"),
    ):
        ok, err = _tls_handshake(pki, bad)
        assert not ok, bad
        assert err


def test_pki_with_docker_clis(pki: TestPKI, docker_cli, docker_binary: str) -> None:
    """The cert directories work as DOCKER_CERT_PATH for both CLIs (against a
    dockerd serving TLS with the server cert)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = PrivateDaemon(
        extra_args=[
            "--host",
            f"tcp://127.0.0.1:{port}",
            "--tlsverify",
            "--tlscacert",
            str(pki.ca_path),
            "--tlscert",
            str(pki.server_cert_path),
            "--tlskey",
            str(pki.server_key_path),
        ]
    )
    daemon.start()
    try:

        def run(cert_dir: Path, host: str = "localhost"):
            return docker_cli(
                ["version", "--format", "{{.Server.Version}}"],
                binary=docker_binary,
                env={
                    "DOCKER_HOST": f"tcp://{host}:{port}",
                    "DOCKER_TLS_VERIFY": "1",
                    "DOCKER_CERT_PATH": str(cert_dir),
                },
            )

        res = run(pki.client("alice"))
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip()
        res = run(pki.client("alice"), host="127.0.0.1")
        assert res.returncode == 0, res.stderr
        assert run(pki.expired_client("alice")).returncode != 0
        assert run(pki.client_from_other_ca("alice")).returncode != 0
    finally:
        daemon.stop()


def test_pki_fresh_directory(tmp_path: Path) -> None:
    p = TestPKI(tmp_path / "x")
    assert p.ca_path.exists() and p.server_cert_path.exists()
    assert _is_0600(p.ca_key_path) and _is_0600(p.server_key_path)
    assert os.path.isdir(p.client("a/b c"))
