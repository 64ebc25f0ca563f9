"""
Limits against a real ``twistd dockguard`` and the real daemon: connection
floods, slow-loris heads, TLS handshakes that never finish, oversized heads.
Each refusal is a clear status where HTTP can still be spoken, and other
clients keep being served.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path

import pytest

from conftest import tls_listen
from harness.guard import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"


def answer(sock: socket.socket, limit: int = 65536) -> bytes:
    """Everything the server sends until it closes (or 10 s pass)."""
    sock.settimeout(10)
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def ping_from(source: str, port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(PING.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        return answer(s)


@pytest.fixture
def limited_guard(guard_factory, tmp_path: Path):
    config = tmp_path / "limits.toml"
    config.write_text(
        "[limits]\nmax_connections_per_peer = 10\nmax_headers = 20\nmax_head_bytes = 8192\n[timeouts]\nheader = 1.5\n"
    )
    port = free_port()
    guard_factory(
        [f"tcp://127.0.0.1:{port}?identity=local"],
        env={"CONTAINERS": "1"},
        extra_args=["--config", str(config)],
        wait_for=("127.0.0.1", port),
    )
    return port


def test_a_connection_flood_from_one_peer_is_turned_away_while_others_are_served(limited_guard) -> None:
    port = limited_guard
    flood = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(25)]
    try:
        turned_away = []
        for s in flood[10:]:
            data = answer(s)
            head, _, body = data.partition(b"\r\n\r\n")
            turned_away.append((head.split(b"\r\n")[0], json.loads(body)["message"]))
        assert len(turned_away) == 15
        assert all(status.startswith(b"HTTP/1.1 503 ") for status, _ in turned_away)
        assert "limits.max_connections_per_peer" in turned_away[0][1]
        # Another address is still served while the flood holds its ten.
        assert ping_from("127.0.0.2", port).startswith(b"HTTP/1.1 200 ")
        # The ten admitted connections work.
        flood[0].sendall(PING)
        assert flood[0].recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        for s in flood:
            s.close()
    # Once the flood is gone, its address is served again.
    deadline = time.monotonic() + 10
    while not ping_from("127.0.0.1", port).startswith(b"HTTP/1.1 200 "):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_slow_loris_head_is_cut_off_with_408(limited_guard) -> None:
    with socket.create_connection(("127.0.0.1", limited_guard), timeout=10) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\n")
        got = b""
        s.settimeout(0.3)
        for _ in range(40):  # one header line every 0.3 s, never the end
            try:
                s.sendall(b"X-Slow: 1\r\n")
                got += s.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if got:
                break
        got += answer(s)
    assert got.startswith(b"HTTP/1.1 408 ")
    assert "did not arrive within 1.5 s" in json.loads(got.partition(b"\r\n\r\n")[2])["message"]


@pytest.mark.parametrize(
    "head, status, words",
    [
        (b"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431, "limits.max_head_bytes"),
        (b"GET /_ping HTTP/1.1\r\nHost: d\r\n" + b"X-Many: 1\r\n" * 30 + b"\r\n", 431, "limits.max_headers"),
    ],
)
def test_oversized_heads_are_refused_and_the_connection_closed(limited_guard, head, status, words) -> None:
    with socket.create_connection(("127.0.0.1", limited_guard), timeout=10) as s:
        try:
            s.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = answer(s)
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert words in json.loads(data.partition(b"\r\n\r\n")[2])["message"]


def test_a_tls_handshake_that_never_finishes_is_dropped(guard_factory, pki, tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text("[timeouts]\nheader = 1\n")
    port = free_port()
    guard_factory([tls_listen(pki, port)], extra_args=["--config", str(config)], wait_for=("127.0.0.1", port))
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert answer(s) == b""  # closed, nothing said
    assert time.monotonic() - started < 9  # by dockguard's timer, not the socket timeout
    # A real client is still served.
    context = ssl.create_default_context(cafile=str(pki.ca_path))
    client = pki.client("ops")
    context.load_cert_chain(client / "cert.pem", client / "key.pem")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(PING)
            assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
