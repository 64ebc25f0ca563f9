"""
End to end: who gets in.  Mutual TLS refuses every client whose certificate
does not name exactly one identity fit for client authentication, before any
HTTP; plain TCP and Unix listeners name a fixed identity; every listener's
identity source is in the start-up log.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import stat
import subprocess

import pytest

from conftest import tls_client_env, tls_listen
from dockguard.tls import PLAIN_HTTP_MESSAGE
from harness.guard import free_port

pytestmark = pytest.mark.e2e

REQUEST = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"


def tls_exchange(port: int, cert_dir, ca_path) -> bytes:
    """
    Connect with mutual TLS (when ``cert_dir`` is given), send a request and
    return whatever comes back; a TLS error counts as nothing coming back.
    """
    ctx = ssl.create_default_context(cafile=str(ca_path))
    if cert_dir is not None:
        ctx.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
    received = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(REQUEST)
                while chunk := tls.recv(4096):
                    received += chunk
                    if b"\r\n\r\n" in received:
                        break
    except (ssl.SSLError, ConnectionError, OSError):
        pass
    return received


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory, dockerd, pki):
    from harness.guard import start_guard

    port = free_port()
    guard = start_guard(
        tmp_path_factory.mktemp("tlsguard"),
        dockerd.socket_path,
        [tls_listen(pki, port)],
        env={},
        wait_for=("127.0.0.1", port),
    )
    yield port, guard
    guard.stop()


def test_valid_client_certificate_gets_answers(tls_port, pki) -> None:
    port, guard = tls_port
    assert tls_exchange(port, pki.client("monitor"), pki.ca_path).startswith(b"HTTP/1.1 200")
    assert "identity from client certificate CN" in guard.log()


@pytest.mark.parametrize(
    "make, logged",
    [
        (lambda pki: None, None),
        (lambda pki: pki.client_from_other_ca("intruder"), None),
        (lambda pki: pki.expired_client("old"), None),
        (lambda pki: pki.client_without_client_auth("server-only"), None),
        (lambda pki: pki.client_with_two_cns("alice", "admin"), "2 common names"),
        (lambda pki: pki.client_without_cn(), "0 common names"),
        (lambda pki: pki.client_ca_flag("sub-ca"), "CA certificate"),
    ],
    ids=["no-cert", "other-ca", "expired", "no-clientAuth", "two-cns", "no-cn", "ca-flag"],
)
def test_bad_client_certificates_never_get_http(tls_port, pki, make, logged) -> None:
    port, guard = tls_port
    assert tls_exchange(port, make(pki), pki.ca_path) == b""
    if logged is not None:
        assert logged in guard.log()


def test_a_plain_docker_cli_on_the_tls_listener_is_told_what_to_set(tls_port, pki, docker_cli, docker_binary) -> None:
    """
    The docker CLI without TLS settings (what dockerd answers with "Client
    sent an HTTP request to an HTTPS server."): the CLI prints dockguard's
    message, which names the fix.
    """
    port, guard = tls_port
    result = docker_cli(["version"], env={"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}, binary=docker_binary)
    assert result.returncode != 0
    stderr = result.stderr.decode()
    assert f"Error response from daemon: {PLAIN_HTTP_MESSAGE}" in stderr, stderr
    assert "DOCKER_TLS_VERIFY=1" in stderr and "DOCKER_CERT_PATH" in stderr
    assert "the client sent plain HTTP to this TLS listener" in guard.log()
    # the same CLI, told to use TLS, gets in
    env = tls_client_env(pki, port, name="monitor")
    assert docker_cli(["version"], env=env, binary=docker_binary).returncode == 0


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_curl_with_http_on_the_tls_listener_gets_a_400_json(tls_port, pki, method) -> None:
    port, _ = tls_port
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-i" if method == "GET" else "-I", f"http://127.0.0.1:{port}/_ping"],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode()
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    assert "Content-Type: application/json" in lines and "Connection: close" in lines
    if method == "GET":
        assert json.loads(body) == {"message": PLAIN_HTTP_MESSAGE}
    else:
        assert body == b""
    # a real TLS client on the same listener still gets its answer
    assert tls_exchange(port, pki.client("monitor"), pki.ca_path).startswith(b"HTTP/1.1 200")


def test_plain_tcp_listener_uses_its_fixed_identity(guard_factory, docker_cli) -> None:
    port = free_port()
    guard = guard_factory(
        [f"tcp://127.0.0.1:{port}?identity=homepage"], env={"CONTAINERS": "1"}, wait_for=("127.0.0.1", port)
    )
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
    assert docker_cli(["ps"], env=env).returncode == 0
    result = docker_cli(["images"], env=env)
    assert result.returncode != 0
    assert "dockguard refused GET /images/json for homepage" in result.stderr.decode()
    assert "tcp://127.0.0.1:" in guard.log() and 'fixed identity "homepage"' in guard.log()


def test_tcp_source_allow_list(guard_factory) -> None:
    port = free_port()
    guard = guard_factory(
        [f"tcp://127.0.0.1:{port}?identity=lan&allow=10.0.0.0/8"], env={}, wait_for=("127.0.0.1", port)
    )
    # wait_for itself connected from 127.0.0.1 and was dropped; a real request too:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(REQUEST)
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert answer == b""
    assert "not in the allow-list" in guard.log()


def test_non_loopback_plain_tcp_needs_opt_in(guard_factory) -> None:
    port = free_port()
    with pytest.raises(RuntimeError) as failed:
        guard_factory([f"tcp://0.0.0.0:{port}?identity=lan"], env={}, wait_for=("127.0.0.1", port))
    assert "insecure" in str(failed.value)
    guard = guard_factory([f"tcp://0.0.0.0:{port}?identity=lan&insecure=1"], env={}, wait_for=("127.0.0.1", port))
    assert "INSECURE" in guard.log()


def test_unix_listener_with_mode(guard_factory, tmp_path, docker_cli) -> None:
    path = str(tmp_path / "dockguard.sock")
    guard = guard_factory([f"unix://{path}?identity=traefik&mode=0600"], env={"CONTAINERS": "1"}, wait_for=path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    env = {"DOCKER_HOST": f"unix://{path}"}
    assert docker_cli(["ps"], env=env).returncode == 0
    result = docker_cli(["volume", "ls"], env=env)
    assert "dockguard refused GET /volumes for traefik" in result.stderr.decode()
    assert f'unix://{path}: fixed identity "traefik"' in guard.log()


def test_daemon_down_gives_json_502_then_recovers(guard_factory, tmp_path, dockerd) -> None:
    """
    With the upstream socket missing, the CLI gets a JSON 502 it can show;
    once a daemon answers there, dockguard serves again without a restart.
    """
    link = tmp_path / "later.sock"
    port = free_port()
    from harness.guard import start_guard

    guard = start_guard(
        tmp_path, str(link), [f"tcp://127.0.0.1:{port}?identity=ops"], env={}, wait_for=("127.0.0.1", port)
    )
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/version")
        response = conn.getresponse()
        assert response.status == 502
        assert response.getheader("Content-Type") == "application/json"
        message = json.loads(response.read())["message"]
        assert str(link) in message
        os.symlink(dockerd.socket_path, link)
        conn.request("GET", "/version")
        response = conn.getresponse()
        assert response.status == 200
        assert "ApiVersion" in json.loads(response.read())
    finally:
        guard.stop()


def test_bad_configuration_fails_at_start_with_the_reason(tmp_path) -> None:
    from harness.guard import start_guard

    guard = start_guard(tmp_path, "/nonexistent.sock", ["tls://127.0.0.1:1?cert=/nope.pem"], env={"CONTAINERS": "true"})
    assert guard.process.wait(20) != 0
    assert "--listen.key" in guard.log() or "--listen.cert" in guard.log()


# -- a listener that cannot listen ------------------------------------------------


def _listening_unix_socket(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen()
    return sock


def tls_listen_in(tmp_path, port: int) -> str:
    from harness.pki import TestPKI

    return tls_listen(TestPKI(tmp_path / "pki"), port)


@pytest.mark.parametrize(
    "taken",
    [
        pytest.param(lambda tmp, port: f"tcp://127.0.0.1:{port}?identity=ops", id="tcp"),
        pytest.param(lambda tmp, port: tls_listen_in(tmp, port), id="tls"),
        pytest.param(lambda tmp, port: f"unix://{tmp / 'live.sock'}?identity=ops", id="unix-live-socket"),
    ],
)
def test_an_address_in_use_stops_start_up_with_one_line(tmp_path, taken, request) -> None:
    """
    Another process listens there: dockguard exits non-zero with one line
    naming the listener and why, no traceback, and removes its PID file.
    """
    from harness.guard import start_guard

    port = free_port()
    spec = taken(tmp_path, port)
    name = spec.split("?")[0]
    if spec.startswith("unix://"):
        holder = _listening_unix_socket(tmp_path / "live.sock")
    else:
        holder = socket.create_server(("127.0.0.1", port))
    pidfile = tmp_path / "twistd.pid"
    with holder:
        guard = start_guard(tmp_path, "/nonexistent.sock", [spec], env={}, twistd_args=[f"--pidfile={pidfile}"])
        status = guard.process.wait(20)
        log = guard.log()
        assert status != 0, log
        assert "Traceback" not in log and "CannotListenError" not in log, log
        failure = [line for line in log.splitlines() if "cannot listen" in line]
        assert len(failure) == 1, log
        assert failure[0].endswith(f"dockguard: cannot listen on {name}: address already in use"), log
        assert not pidfile.exists()
        if spec.startswith("unix://"):
            # the live process's socket is left alone
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(tmp_path / "live.sock"))


def test_a_unix_socket_path_that_cannot_be_bound_stops_start_up_with_one_line(tmp_path) -> None:
    from harness.guard import start_guard

    path = tmp_path / "missing-directory" / "dockguard.sock"
    guard = start_guard(tmp_path, "/nonexistent.sock", [f"unix://{path}?identity=ops"], env={})
    assert guard.process.wait(20) != 0
    log = guard.log()
    assert "Traceback" not in log, log
    assert f"dockguard: cannot listen on unix://{path}: no such file or directory" in log


def test_an_admin_address_in_use_is_named_too(tmp_path) -> None:
    from harness.guard import start_guard

    port, admin = free_port(), free_port()
    with socket.create_server(("127.0.0.1", admin)):
        guard = start_guard(
            tmp_path,
            "/nonexistent.sock",
            [f"tcp://127.0.0.1:{port}?identity=ops"],
            env={},
            extra_args=["--admin", f"tcp://127.0.0.1:{admin}"],
        )
        assert guard.process.wait(20) != 0
    log = guard.log()
    assert "Traceback" not in log, log
    assert f"dockguard: cannot listen on admin tcp://127.0.0.1:{admin}: address already in use" in log


def test_a_daemonizing_twistd_says_why_it_did_not_start(tmp_path) -> None:
    """Without -n, the parent twistd prints the child's reason and exits 1."""
    from harness.guard import twistd_command

    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run(
            [
                *twistd_command(),
                f"--pidfile={tmp_path / 'twistd.pid'}",
                f"--logfile={tmp_path / 'twistd.log'}",
                "dockguard",
                "--upstream",
                "/nonexistent.sock",
                "--listen",
                f"tcp://127.0.0.1:{port}?identity=ops",
            ],
            capture_output=True,
            timeout=30,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 1
    assert f"cannot listen on tcp://127.0.0.1:{port}: address already in use" in result.stderr.decode()
    assert "Traceback" not in (tmp_path / "twistd.log").read_text()
    assert not (tmp_path / "twistd.pid").exists()
