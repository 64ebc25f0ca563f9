"""
End to end: a reload closes the open connections of callers it no longer
admits.  A certificate revoked with `dockguard certs revoke` loses its
keep-alive connection and its hijacked exec session (both legs: the exec's
process sees its stdin end); an identity taken out of [identities] loses its
connection, on a TLS listener and on a fixed-identity one; everyone else's
connections and sessions go on.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUSYBOX_IMAGE
from harness.dockerd import api_request
from harness.guard import free_port
from harness.rawhttp import certs, wait_for_log

pytestmark = pytest.mark.e2e


def tls_context(pki: Path, name: str) -> ssl.SSLContext:
    client = pki / "clients" / name
    context = ssl.create_default_context(cafile=str(client / "ca.pem"))
    context.load_cert_chain(str(client / "cert.pem"), str(client / "key.pem"))
    return context


def keep_alive(connection: http.client.HTTPConnection) -> socket.socket:
    """One GET /info on C{connection}; the socket it was answered on, kept open."""
    connection.request("GET", "/info")
    response = connection.getresponse()
    assert response.status == 200, response.read()
    response.read()
    assert connection.sock is not None
    return connection.sock


def closed_by_peer(s: socket.socket, timeout: float = 10) -> bool:
    """Whether the other end closes C{s} within C{timeout} seconds, unasked."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:  # a reset, a TLS stream cut without close_notify
        return True


def exec_session(sock: socket.socket, daemon: str, container: str) -> tuple[socket.socket, str]:
    """A hijacked `cat` exec on C{sock} (stdin and output), created and started
    through dockguard by the caller (only its creator may start it); its exec id."""
    create = json.dumps({"Cmd": ["cat"], "AttachStdin": True, "AttachStdout": True, "Tty": False}).encode()
    sock.sendall(
        b"POST /containers/" + container.encode() + b"/exec HTTP/1.1\r\nHost: docker\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(create) + create
    )
    sock.settimeout(10)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer
    exec_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["Id"]
    start = b'{"Detach":false,"Tty":false}'
    sock.sendall(
        b"POST /exec/" + exec_id.encode() + b"/start HTTP/1.1\r\nHost: docker\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(start) + start
    )
    sock.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    echoes(sock, b"hello")
    return sock, exec_id


def echoes(sock: socket.socket, word: bytes) -> None:
    sock.sendall(word + b"\n")
    seen = b""
    deadline = time.monotonic() + 10
    while word not in seen and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        assert chunk, seen
        seen += chunk
    assert word in seen, seen


def exec_running(daemon: str, exec_id: str) -> bool:
    status, body = api_request(daemon, "GET", f"/exec/{exec_id}/json")
    assert status == 200, body
    return json.loads(body)["Running"]


def test_reload_closes_the_connections_of_callers_no_longer_admitted(tmp_path, guard_factory, docker_cli) -> None:
    pki = tmp_path / "pki"
    certs("init", str(pki))
    certs("server", str(pki), "--name", "127.0.0.1")
    for name in ("alice", "bob", "carol"):
        certs("client", str(pki), name)
    port, plain_port = free_port(), free_port()
    listeners = f"""
[[listeners]]
url = "tls://127.0.0.1:{port}?cert={pki}/server-cert.pem&key={pki}/server-key.pem&client_ca={pki}/ca.pem&crl={pki}/crl.pem"

[[listeners]]
url = "tcp://127.0.0.1:{plain_port}?identity=ops"
"""
    config = tmp_path / "dockguard.toml"
    config.write_text(
        listeners
        + """
[identities]
alice = ["admin"]
bob = ["admin"]
carol = ["readonly"]
ops = ["readonly"]
"""
    )
    guard = guard_factory([], extra_args=["--config", str(config)], wait_for=("127.0.0.1", port))
    daemon = guard_factory.daemon_socket
    container = "dg-revoke-" + os.urandom(4).hex()
    assert (
        docker_cli(
            ["run", "-d", "--name", container, "--network", "none", BUSYBOX_IMAGE, "sleep", "300"],
            env={"DOCKER_HOST": f"unix://{daemon}"},
        ).returncode
        == 0
    )

    def https(name: str) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=tls_context(pki, name))

    def tls_socket(name: str) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        return tls_context(pki, name).wrap_socket(raw, server_hostname="127.0.0.1")

    try:
        alice, bob, carol = https("alice"), https("bob"), https("carol")
        ops = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=10)
        sockets = {name: keep_alive(c) for name, c in (("alice", alice), ("bob", bob), ("carol", carol), ("ops", ops))}
        alice_shell, alice_exec = exec_session(tls_socket("alice"), daemon, container)
        bob_shell, bob_exec = exec_session(tls_socket("bob"), daemon, container)

        # alice's certificate is revoked; carol and ops leave [identities]
        certs("revoke", str(pki), "alice")
        config.write_text(listeners + '[identities]\nalice = ["admin"]\nbob = ["admin"]\n')
        os.kill(guard.pid, signal.SIGHUP)
        wait_for_log(guard, "reloaded")

        # closed by dockguard, without waiting for a next request...
        for name in ("alice", "carol", "ops"):
            assert closed_by_peer(sockets[name]), f"{name}'s connection is still open"
        assert closed_by_peer(alice_shell), "alice's exec session is still open"
        # ...and the next request on the same connection gets no answer
        for connection in (alice, carol, ops):
            with pytest.raises((http.client.HTTPException, OSError)):
                connection.request("GET", "/info")
                connection.getresponse().read()
        # the daemon leg went too: the exec's stdin ended, so cat has exited
        deadline = time.monotonic() + 10
        while exec_running(daemon, alice_exec):
            assert time.monotonic() < deadline, "alice's exec still runs"
            time.sleep(0.1)

        # bob, still admitted, keeps his keep-alive connection and his session
        assert keep_alive(bob) is sockets["bob"]
        echoes(bob_shell, b"still-here")
        assert exec_running(daemon, bob_exec)

        issued = json.loads((pki / "issued.json").read_text())["certificates"]
        (serial,) = [c["serial"] for c in issued if c.get("revoked_at")]
        closed = [line for line in guard.log().splitlines() if "closed the connection of" in line]
        # one line per closed connection: alice twice (requests, session), carol, ops
        assert len(closed) == 4, "\n".join(closed)
        assert (
            sum(
                "closed the connection of alice from 127.0.0.1:" in line
                and f"its certificate (serial {serial}) is now refused: certificate revoked" in line
                for line in closed
            )
            == 2
        )
        assert any(
            "closed the connection of carol from 127.0.0.1:" in line and "unknown identity 'carol'" in line
            for line in closed
        )
        assert any(
            "closed the connection of ops from 127.0.0.1:" in line and "unknown identity 'ops'" in line
            for line in closed
        )
        assert not any("bob" in line for line in closed)
        bob_shell.close()
    finally:
        subprocess.run(["docker", "-H", f"unix://{daemon}", "rm", "-f", container], capture_output=True)
