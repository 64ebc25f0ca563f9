"""
L{dockguard.admin}: the admin listener's answers, in memory.  The site is
driven over a L{StringTransport}; its health probe's connection to the
daemon is the one C{UNIXClientEndpoint} asks a L{MemoryReactorClock} for,
answered by hand (the end-to-end run is tests/test_e2e_admin.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.web.server import Site

from dockguard.admin import PROBE_TIMEOUT, admin_site, status_is_200
from dockguard.metrics import PrometheusMetrics

SOCKET = "/run/docker.sock"
PEER = IPv4Address("TCP", "127.0.0.1", 40000)


@dataclass
class Answer:
    status: int
    reason: bytes
    headers: dict[bytes, bytes]
    body: bytes


def parse(raw: bytes) -> Answer:
    """One HTTP/1.1 answer as written by twisted.web (chunked or not)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    _, code, reason = status_line.split(b" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            body, rest = body + rest[:n], rest[n + 2 :]
    else:
        body = rest
    return Answer(int(code), reason, headers, body)


class AbortableTransport(StringTransport):
    """A daemon connection whose abort is seen by its protocol, like a real one."""

    aborted = False
    protocol: Protocol | None = None

    def abortConnection(self) -> None:
        self.aborted = True
        assert self.protocol is not None
        self.protocol.connectionLost(Failure(ConnectionDone("aborted")))


class Admin:
    """An admin site on a memory reactor, and the connections it is asked for."""

    def __init__(self) -> None:
        self.reactor = MemoryReactorClock()
        self.connections: list[object] = []
        self.metrics = PrometheusMetrics(lambda: self.connections)
        self.site: Site = admin_site(self.reactor, SOCKET, self.metrics)
        # twisted.web's HTTP channels time out on the site's reactor: keep
        # them off the global one.
        self.site.reactor = self.reactor

    def ask(self, request: bytes) -> tuple[Protocol, StringTransport]:
        channel = self.site.buildProtocol(PEER)
        assert channel is not None
        transport = StringTransport(peerAddress=PEER)
        channel.makeConnection(transport)
        channel.dataReceived(request)
        return channel, transport

    def get(self, path: bytes, method: bytes = b"GET") -> Answer:
        _, transport = self.ask(method + b" " + path + b" HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n")
        return parse(transport.value())

    def daemon(self) -> tuple[Protocol, AbortableTransport]:
        """Accept the health probe's pending connection to the daemon."""
        assert len(self.reactor.unixClients) == 1
        path, factory, timeout, _ = self.reactor.unixClients.pop()
        assert (path, timeout) == (SOCKET, PROBE_TIMEOUT)
        probe = factory.buildProtocol(None)
        transport = AbortableTransport()
        transport.protocol = probe
        probe.makeConnection(transport)
        return probe, transport

    def refuse(self) -> None:
        """Refuse the health probe's pending connection, as a missing socket does."""
        _, factory, _, _ = self.reactor.unixClients.pop()
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError("No such file or directory")))


@pytest.fixture
def admin() -> Iterator[Admin]:
    yield Admin()


def health_with_daemon_answer(admin: Admin, answer: bytes) -> Answer:
    _, client = admin.ask(b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n")
    assert client.value() == b""  # nothing until the daemon has answered
    probe, daemon = admin.daemon()
    assert daemon.value() == b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"
    probe.dataReceived(answer)
    probe.connectionLost(Failure(ConnectionDone()))
    return parse(client.value())


def test_health_is_200_ok_json_when_the_daemon_answers_ping(admin: Admin) -> None:
    answer = health_with_daemon_answer(admin, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
    assert (answer.status, answer.headers[b"content-type"]) == (200, b"application/json")
    assert json.loads(answer.body) == {"status": "ok"}


def test_health_probe_timer_is_cancelled_once_the_daemon_answered(admin: Admin) -> None:
    _, client = admin.ask(b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n")
    probe, daemon = admin.daemon()
    assert [call.getTime() for call in admin.reactor.getDelayedCalls()].count(PROBE_TIMEOUT) == 1
    probe.dataReceived(b"HTTP/1.1 200 OK\r\n\r\nOK")
    probe.connectionLost(Failure(ConnectionDone()))
    assert [call.getTime() for call in admin.reactor.getDelayedCalls()].count(PROBE_TIMEOUT) == 0
    admin.reactor.advance(PROBE_TIMEOUT)
    assert not daemon.aborted
    assert parse(client.value()).status == 200


@pytest.mark.parametrize(
    ("daemon_answer", "message"),
    [
        (
            b"HTTP/1.1 500 Internal Server Error\r\n\r\n",
            f"the Docker daemon at {SOCKET} answered 'HTTP/1.1 500 Internal Server Error'",
        ),
        (b"", f"the Docker daemon at {SOCKET} closed the connection without answering"),
        # a status line that is not HTTP, with a byte that is not ASCII
        (b"SSH-2.0-\xff\r\n", f"the Docker daemon at {SOCKET} answered 'SSH-2.0-\ufffd'"),
        # 200 must be the status code, not a prefix of it
        (b"HTTP/1.1 2000 OK\r\n\r\n", f"the Docker daemon at {SOCKET} answered 'HTTP/1.1 2000 OK'"),
    ],
    ids=["500", "closed", "not-http", "2000"],
)
def test_health_is_503_with_the_reason_when_the_daemon_answers_otherwise(
    admin: Admin, daemon_answer: bytes, message: str
) -> None:
    answer = health_with_daemon_answer(admin, daemon_answer)
    assert (answer.status, answer.headers[b"content-type"]) == (503, b"application/json")
    assert json.loads(answer.body) == {"status": "unhealthy", "message": message}


def test_health_is_503_when_the_daemon_socket_cannot_be_reached(admin: Admin) -> None:
    _, client = admin.ask(b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n")
    admin.refuse()
    answer = parse(client.value())
    assert answer.status == 503
    body = json.loads(answer.body)
    assert body["status"] == "unhealthy"
    assert body["message"].startswith(f"cannot reach the Docker daemon at {SOCKET}: ")
    assert "No such file or directory" in body["message"]


def test_a_daemon_that_never_answers_is_cut_after_the_probe_timeout(admin: Admin) -> None:
    _, client = admin.ask(b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n")
    _, daemon = admin.daemon()
    admin.reactor.advance(PROBE_TIMEOUT - 0.1)
    assert (daemon.aborted, client.value()) == (False, b"")
    admin.reactor.advance(0.1)
    assert daemon.aborted
    answer = parse(client.value())
    assert answer.status == 503
    assert json.loads(answer.body)["message"].endswith("closed the connection without answering")


def test_a_daemon_that_answers_without_end_is_cut_after_4096_bytes(admin: Admin) -> None:
    _, client = admin.ask(b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n")
    probe, daemon = admin.daemon()
    probe.dataReceived(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 4000)
    assert not daemon.aborted
    probe.dataReceived(b"x" * 100)
    assert daemon.aborted
    assert parse(client.value()).status == 200  # its status line did say 200


def test_a_health_client_that_leaves_before_the_answer_is_not_written_to(admin: Admin) -> None:
    channel, client = admin.ask(b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n")
    channel.connectionLost(Failure(ConnectionDone()))
    probe, _ = admin.daemon()
    probe.dataReceived(b"HTTP/1.1 200 OK\r\n\r\nOK")
    probe.connectionLost(Failure(ConnectionDone()))  # no "Request.finish called after..." error
    assert client.value() == b""


def test_metrics_page_is_the_prometheus_text_exposition(admin: Admin) -> None:
    admin.metrics.decided("ops", "containers", "allow", 0.002)
    answer = admin.get(b"/metrics")
    assert (answer.status, answer.headers[b"content-type"]) == (200, CONTENT_TYPE_LATEST.encode())
    assert answer.headers[b"content-type"].startswith(b"text/plain")
    families = {family.name: family for family in text_string_to_metric_families(answer.body.decode())}
    [sample] = families["dockguard_requests"].samples
    assert sample.labels == {"identity": "ops", "section": "containers", "decision": "allow"}
    assert sample.value == 1
    assert answer.body == admin.metrics.expose()


def test_metrics_answers_head_without_a_body(admin: Admin) -> None:
    _, transport = admin.ask(b"HEAD /metrics HTTP/1.1\r\nHost: admin\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b""


@pytest.mark.parametrize(
    "path", [b"/", b"/v1.41/containers/json", b"/_ping", b"/healthz", b"/Metrics", b"//health", b"/favicon.ico"]
)
def test_every_other_path_is_a_plain_404(admin: Admin, path: bytes) -> None:
    answer = admin.get(path)
    assert answer.status == 404
    assert answer.headers[b"content-type"].startswith(b"text/html")
    assert b"dockguard's admin listener serves /health and /metrics only" in answer.body
    assert admin.reactor.unixClients == []  # no probe of the daemon either


@pytest.mark.parametrize("path", [b"/health", b"/metrics"])
def test_post_is_refused_with_405(admin: Admin, path: bytes) -> None:
    answer = admin.get(path, b"POST")
    assert answer.status == 405
    assert sorted(answer.headers[b"allow"].split(b", ")) == [b"GET", b"HEAD"]
    assert admin.reactor.unixClients == []


@pytest.mark.parametrize("method", [b"PUT", b"DELETE", b"OPTIONS"])
def test_other_methods_are_refused_with_501(admin: Admin, method: bytes) -> None:
    assert admin.get(b"/health", method).status == 501
    assert admin.reactor.unixClients == []


@pytest.mark.parametrize("path", [b"/metrics/anything", b"/health/x"])
def test_paths_below_the_two_pages_are_404(admin: Admin, path: bytes) -> None:
    answer = admin.get(path)
    if admin.reactor.unixClients:  # /health/x probed the daemon: answer it
        probe, _ = admin.daemon()
        probe.connectionLost(Failure(ConnectionDone()))
    assert answer.status == 404


def test_requests_write_no_access_log_lines(admin: Admin) -> None:
    admin.site.doStart()
    try:
        with capturedLogs() as events:
            admin.get(b"/metrics")
            admin.get(b"/nope")
        assert [formatEvent(e) for e in events if "GET /" in formatEvent(e)] == []
    finally:
        admin.site.doStop()


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (b"HTTP/1.1 200 OK", True),
        (b"HTTP/1.0 200 OK", True),
        (b"HTTP/1.1 200 ", True),
        (b"HTTP/1.1 204 No Content", False),
        (b"HTTP/1.1 2000 OK", False),
        (b"HTTP/1.1 500 Internal Server Error", False),
        (b"HTTP/2 200 OK", False),
        (b"XTTP/1.1 200 OK", False),
        (b"", False),
        (b"HTTP/1.1 503 unhealthy: 200 OK", False),
    ],
)
def test_status_is_200_reads_only_the_status_code(line: bytes, ok: bool) -> None:
    assert status_is_200(line) is ok
