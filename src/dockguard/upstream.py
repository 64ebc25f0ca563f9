"""
The daemon side of the relay: HTTP/1.1 connections to the Docker daemon's
Unix socket, kept alive and pooled between requests.

An L{UpstreamProtocol} parses the daemon's responses with h11 and hands each
event to its current owner (one client exchange at a time); the body of a
chunked response is read by L{dockguard.chunked.ChunkedDecoder}, a whole read
at a time, and that connection is not pooled afterwards.  When the daemon
hijacks the connection (C{101 UPGRADED}, or the raw-stream 200 of attach and
exec), the owner switches it to raw mode and bytes flow untouched.
"""

from __future__ import annotations

from typing import Protocol as TypingProtocol

import h11
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.interfaces import IHalfCloseableProtocol, IReactorUNIX
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from dockguard.chunked import ChunkedDecoder, ChunkError

# Response heads from the daemon are small; this bounds a broken one.
_MAX_RESPONSE_HEAD = 256 * 1024


class UpstreamOwner(TypingProtocol):
    """What an upstream connection reports to the exchange that holds it."""

    def upstreamEvent(self, event: h11.Event) -> None: ...

    def upstreamRaw(self, data: bytes) -> None: ...

    def upstreamEnded(self, reason: Failure | None) -> None: ...


#: Bytes read from the daemon at a time.
READ_SIZE = 256 * 1024


@implementer(IHalfCloseableProtocol)
class UpstreamProtocol(Protocol):
    """
    One connection to the daemon.

    @ivar owner: the exchange using this connection, or L{None} while idle in
        the pool.
    @ivar raw: after a hijack: bytes are passed through without parsing.
    @ivar reused: whether this connection already served a request.
    """

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE_HEAD)
        self.owner: UpstreamOwner | None = None
        self.raw = False
        self.reused = False
        self.alive = False
        #: The connection will not carry another exchange: the daemon
        #: half-closed it, or its last response had no length (read to the
        #: end of the connection).  Set before the last events are passed
        #: on, so the exchange that ends never gives it back to the pool.
        self.ending = False
        #: The method of the request sent last (a HEAD answer has no body).
        self._method = b""
        #: Reads the body of a chunked response in place of h11.
        self._chunked: ChunkedDecoder | None = None
        self._chunkedKeepAlive = False
        #: A fresh h11 state machine replaced the one that read a chunked
        #: response's head: the connection is between messages.
        self._fresh = False

    def connectionMade(self) -> None:
        self.alive = True
        # Bulk streams (save, cp, logs) come in large reads, not 64 KiB ones.
        self.transport.bufferSize = READ_SIZE

    def send(self, event: h11.Event) -> None:
        if type(event) is h11.Request:
            self._method = event.method
        data = self.h11.send_with_data_passthrough(event)
        if data:
            self.transport.writeSequence([c if type(c) is bytes else bytes(c) for c in data])

    def dataReceived(self, data: bytes) -> None:
        if self.raw:
            if self.owner is not None:
                self.owner.upstreamRaw(data)
            return
        if self.owner is None:
            # The daemon never speaks unasked: a connection that does is out
            # of step and must not be reused.
            self.transport.abortConnection()
            return
        if self._chunked is not None:
            self._readChunked(data)
            return
        self.h11.receive_data(data)
        self._deliver()

    def _readChunked(self, data: bytes) -> None:
        decoder = self._chunked
        assert decoder is not None
        if decoder.done:
            # The daemon never speaks unasked (see above).
            self.transport.abortConnection()
            return
        try:
            body = decoder.feed(data)
        except ChunkError as e:
            self.transport.abortConnection()
            self._end(Failure(e))
            return
        if body and self.owner is not None:
            self.owner.upstreamEvent(h11.Data(data=body))
        if decoder.done:
            if self._chunkedKeepAlive and not decoder.leftover:
                # The body ended where its last chunk says: the connection
                # is between messages again, which a new h11 starts from.
                self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE_HEAD)
                self._chunked = None
                self._fresh = True
            if self.owner is not None:
                self.owner.upstreamEvent(h11.EndOfMessage())

    def _takeChunkedBody(self, response: h11.Response) -> None:
        """
        After the head of a chunked response, read its body without h11
        (see L{dockguard.chunked}); the bytes h11 had buffered go first.
        """
        if (
            self.raw
            or self.owner is None
            or self._method == b"HEAD"
            or response.status_code in (204, 304)
            or self.h11.their_state is not h11.SEND_BODY
        ):
            return
        codings, connection = [], []
        for name, value in response.headers:
            if name == b"transfer-encoding":
                codings.append(value)
            elif name == b"connection":
                connection += [t.strip().lower() for t in value.split(b",")]
        if codings != [b"chunked"]:
            return
        self._chunked = ChunkedDecoder()
        self._chunkedKeepAlive = response.http_version == b"1.1" and b"close" not in connection
        pending, _closed = self.h11.trailing_data
        if pending:
            self._readChunked(bytes(pending))

    def _deliver(self) -> None:
        # The body parts parsed from one read go on as one Data event: the
        # daemon writes some streams (docker cp archives) in 2 KiB chunks,
        # and each event costs a trip through the client side's h11.
        body: list[bytes] = []
        while self.owner is not None and not self.raw:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                self._passOn(body)
                self.transport.abortConnection()
                self._end(Failure(e))
                return
            if type(event) is h11.Data:
                body.append(event.data)
                continue
            self._passOn(body)
            if event is h11.NEED_DATA or event is h11.PAUSED or self.owner is None:
                return
            if type(event) is h11.Response and not _has_length(event, self._method):
                self.ending = True
            self.owner.upstreamEvent(event)
            if type(event) is h11.Response:
                self._takeChunkedBody(event)
                if self._chunked is not None:
                    return
            if isinstance(event, h11.ConnectionClosed):
                return
        self._passOn(body)

    def _passOn(self, body: list[bytes]) -> None:
        if body and self.owner is not None:
            data = body[0] if len(body) == 1 else b"".join(body)
            body.clear()
            self.owner.upstreamEvent(h11.Data(data=data))

    def readConnectionLost(self) -> None:
        self.ending = True
        if self.raw or self._chunked is not None:
            # (A chunked body that had not ended is reported as lost by
            # connectionLost: the owner sees an unfinished response.)
            self.transport.loseConnection()
            return
        if self.owner is not None:
            self.h11.receive_data(b"")
            self._deliver()
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.alive = False
        self.pool.discard(self)
        self._end(reason)

    def _end(self, reason: Failure | None) -> None:
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.upstreamEnded(reason)

    def reusable(self) -> bool:
        return (
            self.alive
            and not self.ending
            and not self.transport.disconnecting
            and not self.raw
            and self._chunked is None
            and (self._fresh or (self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE))
        )

    def startNextCycle(self) -> None:
        """Ready a L{reusable} connection for its next request."""
        if self._fresh:
            self._fresh = False
        else:
            self.h11.start_next_cycle()


def _has_length(response: h11.Response, method: bytes) -> bool:
    """
    Whether a response's body ends where the response says (a length,
    chunked, or no body at all) rather than at the end of the connection.
    """
    if method == b"HEAD" or response.status_code in (204, 304):
        return True
    for name, _value in response.headers:
        if name in (b"content-length", b"transfer-encoding"):
            return True
    return False


class UpstreamPool:
    """
    Keep-alive connections to the daemon's Unix socket.

    @param maxIdle: how many idle connections are kept for reuse.
    """

    log = Logger()

    def __init__(self, reactor: IReactorUNIX, socketPath: str, maxIdle: int = 128) -> None:
        self.socketPath = socketPath
        self._endpoint = UNIXClientEndpoint(reactor, socketPath, timeout=10)
        self._idle: list[UpstreamProtocol] = []
        self._maxIdle = maxIdle

    def acquire(self) -> Deferred[UpstreamProtocol]:
        """
        An idle pooled connection, or a new one.
        """
        while self._idle:
            proto = self._idle.pop()
            if proto.alive and not proto.ending and not proto.transport.disconnecting:
                return succeed(proto)
        return connectProtocol(self._endpoint, UpstreamProtocol(self))

    def release(self, proto: UpstreamProtocol) -> None:
        """
        Give back a connection whose exchange has ended.  Only a connection
        whose last request and response both completed cleanly is kept.
        """
        proto.owner = None
        if proto.reusable() and len(self._idle) < self._maxIdle:
            proto.startNextCycle()
            proto.reused = True
            self._idle.append(proto)
        elif proto.alive:
            proto.transport.loseConnection()

    def discard(self, proto: UpstreamProtocol) -> None:
        if proto in self._idle:
            self._idle.remove(proto)

    def closeIdle(self) -> None:
        idle, self._idle = self._idle, []
        for proto in idle:
            proto.transport.loseConnection()

    @property
    def idleCount(self) -> int:
        return len(self._idle)
