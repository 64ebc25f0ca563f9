"""
Denial of service against a real ``twistd dockguard`` in front of the
private real dockerd: what one caller does must not cost the others.

The in-memory twins (deterministic) are in ``tests/test_relay.py`` and
``tests/test_attacks.py``; these check the same properties over real
sockets, with the real daemon's own framing.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

from harness.guard import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def writer(guard_factory):
    port = free_port()
    guard = guard_factory(
        [f"tcp://127.0.0.1:{port}?identity=tester"],
        env={"CONTAINERS": "1", "POST": "1"},
        wait_for=("127.0.0.1", port),
    )
    return guard, port


def test_a_connection_whose_response_had_no_length_is_never_reused(writer) -> None:
    """
    One caller loops on an attach to a missing container (the daemon answers
    404 with no length, then closes); another's uploads (never replayed) must
    not land on such a connection: none may fail with 502.
    """
    guard, port = writer
    status, body = request(port, "POST", "/v1.41/containers/dg-missing-x/attach?stream=1")
    assert status == 404, body
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            request(port, "POST", "/v1.41/containers/dg-missing-x/attach?stream=1")

    looper = threading.Thread(target=loop)
    looper.start()
    statuses: dict[int, int] = {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(400):
            conn.request(
                "POST",
                "/v1.41/containers/create",
                body=b'{"Image":"dg-no-such-image:none"}',
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
    finally:
        stop.set()
        looper.join()
    assert statuses == {404: 400}, statuses
    assert "Traceback" not in guard.log()


def _answer(sock: socket.socket, timeout: float = 10) -> tuple[bytes, bool]:
    """What the server sends, and whether it closed within ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


@pytest.fixture
def limited(guard_factory, tmp_path):
    port = free_port()
    unix = str(tmp_path / "dg.sock")
    config = tmp_path / "dos.toml"
    config.write_text("[limits]\nmax_connections = 40\nmax_connections_per_peer = 10\n[timeouts]\ndrain = 1\n")
    guard = guard_factory(
        [f"tcp://127.0.0.1:{port}?identity=tester", f"unix://{unix}?identity=local"],
        env={"CONTAINERS": "1"},
        extra_args=["--config", str(config)],
        wait_for=unix,
    )
    return guard, port, unix


def test_a_refused_upload_that_never_comes_is_answered_and_closed(limited) -> None:
    guard, port, _ = limited
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 10000000000\r\n\r\n")
        started = time.monotonic()
        data, closed = _answer(s)
    assert data.startswith(b"HTTP/1.1 403 ") and b"\r\nConnection: close\r\n" in data
    assert closed and time.monotonic() - started < 5, "closed by timeouts.drain (1 s)"
    assert "Traceback" not in guard.log()


def test_a_plain_tcp_flood_from_several_addresses_does_not_lock_out_the_unix_socket(limited) -> None:
    guard, port, unix = limited
    flood: list[socket.socket] = []
    try:
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
            for _ in range(10):
                s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
                s.sendall(b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 10000000000\r\n\r\n")
                flood.append(s)
        time.sleep(0.3)
        # Plain TCP holds at most half of max_connections; the Unix socket is served.
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(unix)
            s.sendall(PING.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            data, _ = _answer(s)
        assert data.startswith(b"HTTP/1.1 200 "), data[:200]
        answers = [_answer(s, 5) for s in flood]
        assert all(closed for _, closed in answers), "every flooding connection is closed, none held"
        statuses = sorted({data.split(b" ", 2)[1] for data, _ in answers if data})
        assert statuses == [b"403", b"503"]
    finally:
        for s in flood:
            s.close()
    # Once they are closed, plain TCP is served again.
    status, _ = request(port, "GET", "/_ping")
    assert status == 200
