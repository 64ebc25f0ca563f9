"""
The admin listener: plain HTTP with two pages, never the Docker API.

  - C{GET /health}: 200 C{{"status": "ok"}} when the daemon answers
    C{/_ping} through a fresh connection, else 503 with the reason.
  - C{GET /metrics}: L{dockguard.metrics.PrometheusMetrics} in Prometheus'
    text format.

Anything else is 404, so a Docker client pointed here by mistake gets a
plain refusal, not an API.
"""

from __future__ import annotations

import json
from typing import cast

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web import pages
from twisted.web.http import Request as HTTPRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from dockguard.interfaces import IAbortableTransport, IReactor
from dockguard.metrics import PrometheusMetrics

#: Seconds the daemon has to answer a health probe.
PROBE_TIMEOUT = 5.0

_PING = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"


def status_is_200(status_line: bytes) -> bool:
    """
    Whether C{status_line}, the first line of an HTTP/1.x answer, says 200:
    the daemon's answer to C{/_ping} here, this listener's C{/health} in
    C{dockguard healthcheck}.
    """
    return status_line.startswith(b"HTTP/1.") and status_line[8:13] == b" 200 "


class _Ping(Protocol):
    """Sends C{GET /_ping} and reads the answer until the daemon closes."""

    def __init__(self, done: Deferred[bytes]) -> None:
        self.done = done
        self.received = bytearray()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(_PING)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if len(self.received) > 4096:
            cast(IAbortableTransport, self.transport).abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done.called:
            self.done.callback(bytes(self.received))


async def probe_daemon(reactor: IReactor, socket_path: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """
    Ask the daemon for C{/_ping} over a fresh connection.

    @return: L{None} when it answered 200 OK, else why not.
    """
    done: Deferred[bytes] = Deferred()
    endpoint = UNIXClientEndpoint(reactor, socket_path, timeout=timeout)
    factory = Factory.forProtocol(lambda: _Ping(done))
    factory.noisy = False  # no "Starting factory" / "Stopping factory" per probe
    try:
        proto = await endpoint.connect(factory)
    except Exception as e:
        return f"cannot reach the Docker daemon at {socket_path}: {e}"
    timer = reactor.callLater(timeout, proto.transport.abortConnection)
    answer = await done
    if timer.active():
        timer.cancel()
    status_line = answer.split(b"\r\n", 1)[0]
    if status_is_200(status_line):
        return None
    if not answer:
        return f"the Docker daemon at {socket_path} closed the connection without answering"
    return f"the Docker daemon at {socket_path} answered {status_line.decode('ascii', 'replace')!r}"


_NOT_FOUND = pages.notFound("No Such Resource", "dockguard's admin listener serves /health and /metrics only")


class _Page(Resource):
    """One page at one path: anything below it is 404, as any other path."""

    isLeaf = True

    def render(self, request: Request) -> object:
        if request.postpath and request.postpath != [b""]:
            return _NOT_FOUND.render(request)
        return super().render(request)  # type: ignore[no-untyped-call]  # unannotated in Twisted


class Health(_Page):
    def __init__(self, reactor: IReactor, socket_path: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.reactor = reactor
        self.socket_path = socket_path

    def render_GET(self, request: Request) -> object:
        gone: list[bool] = []

        def answer(problem: str | None) -> None:
            if gone:
                return
            body = {"status": "ok"} if problem is None else {"status": "unhealthy", "message": problem}
            request.setResponseCode(200 if problem is None else 503)
            request.setHeader(b"content-type", b"application/json")
            request.write(json.dumps(body).encode() + b"\n")
            request.finish()

        request.notifyFinish().addErrback(lambda _: gone.append(True))
        ensureDeferred(probe_daemon(self.reactor, self.socket_path)).addCallback(answer)
        return NOT_DONE_YET


class MetricsPage(_Page):
    def __init__(self, metrics: PrometheusMetrics) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        # Imported here: `dockguard healthcheck` imports this module too, and
        # needs no prometheus_client.
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return self.metrics.expose()


class _Root(Resource):
    def getChild(self, path: bytes, request: Request) -> IResource:
        return _NOT_FOUND


class _QuietSite(Site):
    def log(self, request: HTTPRequest) -> None:
        # Health probes every few seconds would drown the decision lines.
        pass


def admin_site(reactor: IReactor, socket_path: str, metrics: PrometheusMetrics) -> Site:
    root = _Root()  # type: ignore[no-untyped-call]  # Resource.__init__ is unannotated in Twisted
    root.putChild(b"health", Health(reactor, socket_path))
    root.putChild(b"metrics", MetricsPage(metrics))
    return _QuietSite(root)  # type: ignore[no-untyped-call]  # Site.__init__ is unannotated in Twisted
