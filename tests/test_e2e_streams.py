"""
End to end: streams and flow control against the real daemon.  Bodies are
never buffered whole: a slow reader pauses the daemon, an upload streams as
it arrives, and a client that leaves takes its daemon connection with it.
"""

from __future__ import annotations

import socket
import time

import psutil
import pytest

from conftest import FULL_ACCESS_ENV
from harness.dockerd import make_big_image
from harness.guard import free_port, peak_rss_during

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


@pytest.fixture(scope="module")
def big(dockerd):
    return make_big_image(dockerd.socket_path, "dg-stream:300", 300)


@pytest.fixture
def plain_guard(guard_factory):
    port = free_port()
    guard = guard_factory([f"tcp://127.0.0.1:{port}?identity=ops"], env=FULL_ACCESS_ENV, wait_for=("127.0.0.1", port))
    return guard


def daemon_connections(pid: int) -> int:
    return len(psutil.Process(pid).net_connections(kind="unix"))


def wait_until(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_client_leaving_a_stream_closes_its_daemon_connection(plain_guard) -> None:
    pid = plain_guard.pid
    before = daemon_connections(pid)
    clients = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", plain_guard.port))
        s.sendall(b"GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
        assert read_head(s).startswith(b"HTTP/1.1 200")
        clients.append(s)
    assert wait_until(lambda: daemon_connections(pid) >= before + 5)
    for s in clients:
        s.close()
    assert wait_until(lambda: daemon_connections(pid) <= before), (
        f"{daemon_connections(pid)} daemon connections left, {before} before"
    )


def test_slow_reader_pauses_the_daemon_instead_of_buffering(plain_guard, big) -> None:
    """
    A client that stops reading a 300 MB download: dockguard's memory stays
    flat (the daemon is paused), and the whole body still arrives after.
    """
    proc = psutil.Process(plain_guard.pid)
    idle_rss = proc.memory_info().rss
    s = socket.create_connection(("127.0.0.1", plain_guard.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(f"GET /images/{big.tag}/get HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
    time.sleep(3)  # the daemon would have sent it all by now if nothing pushed back
    stalled_rss = proc.memory_info().rss
    assert stalled_rss - idle_rss < 32 * MB, f"grew by {(stalled_rss - idle_rss) / MB:.0f} MB while stalled"
    total = 0
    s.settimeout(60)
    while True:
        chunk = s.recv(1 << 20)
        if not chunk or chunk.endswith(b"0\r\n\r\n"):
            total += len(chunk)
            break
        total += len(chunk)
    s.close()
    assert total > 300 * MB


def test_upload_streams_without_buffering(plain_guard, big, dockerd, tmp_path) -> None:
    """
    ``docker load`` of a 300 MB archive through dockguard: the peak RSS stays
    far below the archive's size, and the image arrives intact.
    """
    import docker

    direct = docker.APIClient(base_url=dockerd.url)
    archive = tmp_path / "big.tar"
    with open(archive, "wb") as out:
        for chunk in direct.get_image(big.tag):
            out.write(chunk)
    direct.remove_image(big.tag)
    through = docker.APIClient(base_url=f"tcp://127.0.0.1:{plain_guard.port}")

    def load() -> None:
        with open(archive, "rb") as data:
            through.load_image(data)

    idle_rss, peak, _ = peak_rss_during(plain_guard.pid, load)
    assert direct.inspect_image(big.tag)["Id"] == big.id
    growth = (peak - idle_rss) / MB
    assert growth < 64, f"peak RSS grew by {growth:.0f} MB for a {archive.stat().st_size / MB:.0f} MB upload"
