"""
Raw HTTP/1.1 on a socket, for the end-to-end tests that send hostile bytes to
a real ``twistd dockguard`` and read exactly what came back: ``Conn`` (a
connection that sends raw bytes and parses the answers strictly),
``Answer``, ``Guarded`` (a started guard and its port), ``start_guarded``,
``send`` (one request on a fresh connection), ``inspect`` (a container on
the daemon's own socket), and ``certs`` / ``wait_for_log`` for the tests
that reload a running guard.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from harness.dockerd import api_request
from harness.guard import free_port, start_guard
from harness.http import Message, parse_responses

PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"

# -- a raw HTTP/1.1 client that reads exactly what came back -------------------------------------


#: What came back: one response, read strictly (L{harness.http}).
Answer = Message


def parse_answers(data: bytes, methods: list[bytes]) -> list[Answer]:
    """The responses in C{data} to requests made with C{methods}, in order."""
    return parse_responses(data, methods)


class Conn:
    """One raw TCP connection; remembers every request method sent, so answers line up."""

    def __init__(self, address: tuple[str, int] | str) -> None:
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(address)
        else:
            self.sock = socket.create_connection(address, timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.data = b""
        self.methods: list[bytes] = []
        self.closed = False

    def send(self, data: bytes, *methods: bytes) -> None:
        self.methods.extend(methods)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def answers(self, timeout: float = 10) -> list[Answer]:
        """Read until every request sent so far is answered, or the connection ends."""
        deadline = time.monotonic() + timeout
        while True:
            answers = parse_answers(self.data, self.methods)
            if self.closed or (len(answers) == len(self.methods) and all(a.complete for a in answers)):
                return answers
            left = deadline - time.monotonic()
            if left <= 0:
                return answers
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return answers
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.data += chunk

    def ends(self, timeout: float = 3) -> bool:
        """Whether the peer closes the connection within ``timeout`` (bytes read meanwhile are kept)."""
        deadline = time.monotonic() + timeout
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.data += chunk
        return self.closed

    def in_step(self) -> None:
        """Closed, or a further /_ping is answered 200 OK as the very next response."""
        before = len(self.answers(timeout=3))
        if self.closed:
            return
        self.send(PING, b"GET")
        answers = self.answers()
        if self.closed and len(answers) == before:
            return  # closed by dockguard after its last answer: in step
        assert len(answers) == before + 1, f"out of step: {answers}"
        assert (answers[-1].status, answers[-1].body) == (200, b"OK"), f"out of step: {answers}"
        # and nothing more is pending (no extra response from a smuggled request)
        self.sock.settimeout(0.3)
        try:
            extra = self.sock.recv(65536)
        except TimeoutError:
            extra = b""
        assert extra == b"", f"unexpected bytes after the last answer: {extra[:200]!r}"

    def close(self) -> None:
        self.sock.close()


class Guarded:
    def __init__(self, guard, port: int) -> None:
        self.guard, self.port = guard, port

    def connect(self) -> Conn:
        return Conn(("127.0.0.1", self.port))

    def assert_clean_log(self) -> None:
        log = self.guard.log()
        assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]


def start_guarded(tmp_path_factory, dockerd, name: str, env: dict[str, str]) -> Guarded:
    port = free_port()
    guard = start_guard(
        tmp_path_factory.mktemp(name),
        dockerd.socket_path,
        [f"tcp://127.0.0.1:{port}?identity=tester"],
        env=env,
        wait_for=("127.0.0.1", port),
    )
    return Guarded(guard, port)


def inspect(dockerd, name: str) -> dict:
    status, out = api_request(dockerd.socket_path, "GET", f"/containers/{name}/json")
    assert status == 200, out
    return json.loads(out)


def send(
    g: Guarded,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> Answer:
    head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if chunked:
        data = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n"
        data += (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        data = head.encode() + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    conn = g.connect()
    try:
        conn.send(data, method.encode())
        answers = conn.answers()
        assert answers, "no answer"
        if not conn.closed:
            conn.in_step()
        return answers[0]
    finally:
        conn.close()


def certs(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "dockguard.cli", "certs", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def wait_for_log(guard, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in guard.log():
        assert time.monotonic() < deadline, f"{text!r} not in log:\n{guard.log()[-2000:]}"
        time.sleep(0.05)
