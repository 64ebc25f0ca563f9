"""
Faults, end to end: the daemon restarting under load, clients vanishing
mid-upload, mid-download and mid-hijack, and shutdown with open streams.
A real ``twistd dockguard`` process; real dockerds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from conftest import BUSYBOX_IMAGE, FULL_ACCESS_ENV, clean_cli_env
from harness.dockerd import PrivateDaemon, api_request
from harness.guard import free_port, start_guard

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP response with a Content-Length body (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(b":")[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    return status, body


class Soak:
    """Steady keep-alive requests from a thread, each outcome counted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.outcomes: Counter[str] = Counter()
        self.unclean: list[str] = []
        self.last_ok = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Soak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        sock: socket.socket | None = None
        targets = [b"/_ping", b"/v1.41/containers/json"]
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
                sock.sendall(b"GET %s HTTP/1.1\r\nHost: docker\r\n\r\n" % targets[n % 2])
                status, body = read_response(sock)
                if status == 200:
                    self.outcomes["ok"] += 1
                    self.last_ok = time.monotonic()
                elif status == 502 and "Docker daemon" in json.loads(body)["message"]:
                    self.outcomes["502"] += 1
                else:
                    self.unclean.append(f"{status} {body[:200]!r}")
            except (ConnectionError, OSError) as e:
                # The connection was closed by dockguard: a clean signal too,
                # as long as it is not a hang (socket timeout is 15 s).
                if isinstance(e, socket.timeout):
                    self.unclean.append("hung for 15 s")
                self.outcomes["closed"] += 1
                if sock is not None:
                    sock.close()
                sock = None
                time.sleep(0.02)
        if sock is not None:
            sock.close()


def open_events(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200 ")
    return sock


def ended(sock: socket.socket) -> bool:
    """The stream ends (EOF or reset) within its timeout."""
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_daemon_restart_mid_soak_gives_clean_errors_and_service_resumes(tmp_path: Path) -> None:
    daemon = PrivateDaemon(keep_log_to=tmp_path / "restarted-dockerd.log").start()
    guard = None
    try:
        port = free_port()
        guard = start_guard(
            tmp_path,
            daemon.socket_path,
            [f"tcp://127.0.0.1:{port}?identity=local"],
            env=FULL_ACCESS_ENV,
            wait_for=("127.0.0.1", port),
        )
        streams = [open_events(port) for _ in range(5)]
        with Soak(port) as soak:
            time.sleep(1)
            assert soak.outcomes["ok"] > 0
            daemon.restart(down=2.0)
            restarted = time.monotonic()
            deadline = restarted + 20
            while soak.last_ok < restarted:
                assert time.monotonic() < deadline, f"service did not resume: {soak.outcomes}"
                time.sleep(0.1)
            time.sleep(0.5)
        # Streams open during the restart ended instead of hanging.
        assert all(ended(s) for s in streams)
        for s in streams:
            s.close()
        assert soak.unclean == []
        assert soak.outcomes["502"] + soak.outcomes["closed"] > 0, "the gap was never seen"
        # A new stream works after the restart and gets an event.
        stream = open_events(port)
        status, _ = api_request(
            daemon.socket_path,
            "POST",
            "/v1.41/volumes/create",
            body=b"{}",
            headers={"Content-Type": "application/json"},
        )
        assert status == 201
        stream.settimeout(15)
        assert b'"Type":"volume"' in stream.recv(65536)
        stream.close()
        assert guard.process.poll() is None
        assert "Traceback" not in guard.log() and "Unhandled" not in guard.log()
    finally:
        if guard is not None:
            guard.stop()
        daemon.stop()


def guard_fds(pid: int) -> tuple[int, int]:
    """(open file descriptors, TCP connections) of the dockguard process."""
    proc = psutil.Process(pid)
    tcp = [c for c in proc.net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN]
    return proc.num_fds(), len(tcp)


def settle(pid: int, fds: int, timeout: float = 15) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        now = guard_fds(pid)
        if (now[0] <= fds and now[1] == 0) or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


def vanish(sock: socket.socket) -> None:
    """Leave without a goodbye: RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_clients_vanishing_mid_upload_download_and_hijack_leak_nothing(guard_factory, dockerd) -> None:
    port = free_port()
    guard = guard_factory([f"tcp://127.0.0.1:{port}?identity=local"], env=FULL_ACCESS_ENV, wait_for=("127.0.0.1", port))

    def api(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        status, answer = api_request(
            dockerd.socket_path, method, path, body=body or None, headers={"Content-Type": "application/json"}
        )
        return status, answer

    status, made = api(
        "POST",
        "/v1.41/containers/create",
        json.dumps(
            {
                "Image": BUSYBOX_IMAGE,
                "Cmd": ["sh", "-c", "while true; do echo line; done"],
                "OpenStdin": True,
                "HostConfig": {"NetworkMode": "none"},
            }
        ).encode(),
    )
    assert status == 201, made
    cid = json.loads(made)["Id"]
    assert api("POST", f"/v1.41/containers/{cid}/start")[0] == 204
    try:
        with socket.create_connection(("127.0.0.1", port)) as warm:
            warm.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
            read_response(warm)
        baseline, _ = settle(guard.pid, 10**6)

        big = tarfile.TarInfo("layer.tar")
        big.size = 100 * 1024 * 1024
        for _ in range(10):
            # Mid-upload: a load whose tar promises 100 MB and stops after 1 MB.
            up = socket.create_connection(("127.0.0.1", port))
            up.sendall(
                b"POST /v1.41/images/load HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            payload = big.tobuf() + b"\0" * (1024 * 1024)
            up.sendall(b"%x\r\n%s\r\n" % (len(payload), payload))
            time.sleep(0.05)
            vanish(up)
            # Mid-download: an endless log stream read a little, then dropped.
            down = socket.create_connection(("127.0.0.1", port))
            down.sendall(b"GET /v1.41/containers/%s/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n" % cid.encode())
            assert down.recv(4096).startswith(b"HTTP/1.1 200 ")
            vanish(down)
            # Mid-hijack: attach to stdin/stdout, then gone.
            hijack = socket.create_connection(("127.0.0.1", port))
            hijack.sendall(
                b"POST /v1.41/containers/%s/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
                b"Host: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" % cid.encode()
            )
            assert hijack.recv(4096).startswith(b"HTTP/1.1 101 ")
            vanish(hijack)
        fds, tcp = settle(guard.pid, baseline + 1)
        # The pool may keep one more idle daemon connection; nothing else stays.
        assert tcp == 0 and fds <= baseline + 1, (baseline, fds, tcp)
        assert guard.process.poll() is None
    finally:
        api("DELETE", f"/v1.41/containers/{cid}?force=1")


def test_sigterm_with_open_streams_and_sessions_ends_quickly_and_cleanly(guard_factory, tmp_path) -> None:
    port = free_port()
    guard = guard_factory([f"tcp://127.0.0.1:{port}?identity=local"], env=FULL_ACCESS_ENV, wait_for=("127.0.0.1", port))
    env = clean_cli_env(tmp_path, {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    streams = [open_events(port) for _ in range(20)]
    session = subprocess.Popen(
        ["docker", "run", "-i", "--rm", "--network", "none", BUSYBOX_IMAGE, "cat"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    session.stdin.write(b"hello\n")
    session.stdin.flush()
    assert session.stdout.readline() == b"hello\n"  # the hijacked session is live
    started = time.monotonic()
    guard.process.send_signal(signal.SIGTERM)
    guard.process.wait(30)
    took = time.monotonic() - started
    # twistd re-raises the signal once shut down, as a signalled process should.
    assert guard.process.returncode in (0, -signal.SIGTERM)
    assert took < 10, f"shutdown took {took:.1f} s"
    for s in streams:
        s.settimeout(5)
        assert ended(s)
        s.close()
    session.kill()
    session.wait(10)
    log = guard.log()
    closing = re.search(r"closing (\d+) open connection", log)
    assert closing and int(closing.group(1)) >= 21  # the streams, the session (and its wait)
    assert "Traceback" not in log


SOAK_SECONDS = float(os.environ.get("DOCKGUARD_SOAK", "0"))


@pytest.mark.skipif(not SOAK_SECONDS, reason="opt-in: DOCKGUARD_SOAK=SECONDS scripts/test tests/test_e2e_faults.py")
@pytest.mark.timeout(0)
def test_long_soak_with_daemon_restarts_keeps_memory_and_fds_flat(tmp_path: Path) -> None:
    """
    Steady requests, event streams reopened all along, and a daemon restart
    every 30 s, for DOCKGUARD_SOAK seconds: no unclean answer, and the
    process ends with the file descriptors and (within 16 MB) the memory it
    had after the first round.
    """
    daemon = PrivateDaemon(keep_log_to=tmp_path / "soak-dockerd.log").start()
    guard = None
    try:
        port = free_port()
        guard = start_guard(
            tmp_path,
            daemon.socket_path,
            [f"tcp://127.0.0.1:{port}?identity=local"],
            env=FULL_ACCESS_ENV,
            wait_for=("127.0.0.1", port),
        )
        proc = psutil.Process(guard.pid)
        end = time.monotonic() + SOAK_SECONDS
        first: tuple[int, int] | None = None
        with Soak(port) as soak:
            while time.monotonic() < end:
                streams = [open_events(port) for _ in range(20)]
                time.sleep(25)
                daemon.restart(down=1.0)
                assert all(ended(s) for s in streams)
                for s in streams:
                    s.close()
                time.sleep(5)
                if first is None:
                    first = (proc.num_fds(), proc.memory_info().rss)
        assert soak.unclean == []
        assert first is not None
        fds, rss = settle(guard.pid, first[0])[0], proc.memory_info().rss
        assert fds <= first[0] + 1
        assert rss <= first[1] + 16 * 1024 * 1024, (first[1], rss)
    finally:
        if guard is not None:
            guard.stop()
        daemon.stop()
