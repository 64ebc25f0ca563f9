"""
The daemon's side of the relay: HTTP/1.1 connections to the Docker daemon,
kept alive and pooled between requests.

A L{DaemonConnection} carries one exchange at a time for its I{owner} (the
client connection whose request it relays).  It reads the daemon's response
head, then its body by the framing the head gives (a length, chunks, or the
rest of the connection), and reports each part to the owner.  When the
daemon hijacks the connection (C{101 UPGRADED}, or the raw-stream 200 of
attach and exec), the owner hands it to a L{RawOwner} (L{goRaw}, the
splice), and bytes flow untouched.
"""

from __future__ import annotations

import re
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol, IReactorUNIX, IStreamClientEndpoint
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from dockguard.chunked import ChunkedDecoder, ChunkError
from dockguard.interfaces import StreamTransport, stream

__all__ = ["BrokenResponse", "DaemonConnection", "DaemonOwner", "DaemonPool", "RawOwner", "ResponseHead"]

#: Response heads from the daemon are small; this bounds a broken one.
MAX_RESPONSE_HEAD = 256 * 1024

#: Bytes read from the daemon at a time: 64 KiB, and 256 KiB once a read
#: fills that (bulk streams: save, cp, logs), until the response ends.  A
#: buffer above malloc's mmap threshold (128 KiB) costs a map and an unmap
#: per read, about 15 µs: too much for every small answer.
READ_SIZE, BULK_READ_SIZE = 64 * 1024, 256 * 1024

#: L{ResponseHead.length} for a body that is chunked, or that runs to the
#: end of the connection.
CHUNKED, TO_EOF = -1, -2


class BrokenResponse(Exception):
    """The daemon sent what cannot be read as an HTTP/1.1 response."""


class ResponseHead:
    """
    A response head from the daemon.

    @ivar block: its header lines as sent, CRLF between them.
    @ivar fields: the fields the relay reads (framing, connection, content
        type) by lower-case name, lower-cased (the first, if repeated).
    @ivar plain: it has no hop-by-hop field: the block goes on as it is.
    @ivar length: the body's length, 0 for none, L{CHUNKED} or L{TO_EOF}.
    """

    __slots__ = ("status", "reason", "block", "fields", "plain", "length")

    def __init__(
        self, status: int, reason: bytes, block: bytes, fields: dict[bytes, bytes], plain: bool, length: int
    ) -> None:
        self.status = status
        self.reason = reason
        self.block = block
        self.fields = fields
        self.plain = plain
        self.length = length

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """Each header field, as sent."""
        if not self.block:
            return []
        out = []
        for line in self.block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            out.append((name, value.strip(b" \t")))
        return out


#: Header lines: a token, a colon, a value without CR or LF; CRLF between.
_BLOCK = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*)*")
#: The fields the relay reads, in a lower-cased block.
_READ = re.compile(rb"^(content-length|transfer-encoding|connection|content-type):[ \t]*(.*?)[ \t]*\r?$", re.M)
#: Hop-by-hop fields (RFC 9110 section 7.6.1), in a lower-cased block.
_HOP = re.compile(
    rb"^(?:connection|keep-alive|proxy-connection|proxy-authenticate|proxy-authorization|te|trailer"
    rb"|transfer-encoding|upgrade):",
    re.M,
)


class DaemonOwner(TypingProtocol):
    """What a daemon connection reports to the exchange that holds it."""

    def responseHead(self, head: ResponseHead) -> None: ...

    def responseBody(self, data: bytes) -> None: ...

    def responseEnd(self) -> None: ...

    def daemonLost(self, reason: Failure | None) -> None: ...


class RawOwner(TypingProtocol):
    """What a hijacked daemon connection reports to the splice that holds it."""

    def daemonRaw(self, data: bytes) -> None: ...

    def daemonLost(self, reason: Failure | None) -> None: ...


#: A daemon connection's states.
IDLE, HEAD, BODY, RAW = "idle", "head", "body", "raw"


@implementer(IHalfCloseableProtocol)
class DaemonConnection(Protocol):
    """
    One connection to the daemon.

    @ivar owner: the exchange using this connection, or L{None} while idle
        in the pool.
    @ivar rawOwner: once hijacked (L{goRaw}), the splice bytes go to.
    @ivar reused: whether this connection already served a request.
    @ivar ending: the connection will not carry another exchange (the
        daemon half-closed it, or its last response ran to the end of the
        connection or said C{Connection: close}).  Set before the owner
        hears of the response, so it never gives it back to the pool.
    """

    def __init__(self, pool: DaemonPool | None = None) -> None:
        self.pool = pool
        self.owner: DaemonOwner | None = None
        self.rawOwner: RawOwner | None = None
        self.state = IDLE
        self.reused = False
        self.alive = False
        self.ending = False
        self._buffer = b""
        #: The method of the request sent last (a HEAD answer has no body).
        self._method = b""
        self._left = 0
        self._chunks: ChunkedDecoder | None = None
        self._bufferSize = READ_SIZE

    @property
    def raw(self) -> bool:
        return self.state is RAW

    def connectionMade(self) -> None:
        self.alive = True
        self.link: StreamTransport = stream(self.transport)
        self._readSize(READ_SIZE)

    def _readSize(self, size: int) -> None:
        self._bufferSize = size
        setattr(self.transport, "bufferSize", size)  # noqa: B010 - a Twisted attribute no interface declares

    # -- the owner's side ------------------------------------------------------

    def request(self, owner: DaemonOwner, method: bytes, head: bytes) -> None:
        """Send a request head for C{owner}; its response goes to C{owner}."""
        if self._bufferSize != READ_SIZE:
            self._readSize(READ_SIZE)
        self.owner = owner
        self._method = method
        self.state = HEAD
        self.link.write(head)

    def write(self, data: bytes) -> None:
        self.link.write(data)

    def goRaw(self, owner: RawOwner) -> bytes:
        """
        The daemon hijacked the connection: from now on bytes pass untouched,
        to C{owner}.  Returns what the daemon already sent after the
        response head.
        """
        self.owner = None
        self.rawOwner = owner
        self.state = RAW
        self.ending = True
        rest, self._buffer = self._buffer, b""
        if self._chunks is not None:
            rest = self._chunks.pending + rest
            self._chunks = None
        return rest

    def reusable(self) -> bool:
        """The last response ended cleanly and the connection can carry another."""
        return (
            self.alive and not self.ending and self.state is IDLE and not self._buffer and not self.link.disconnecting
        )

    # -- reading -------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if len(data) >= self._bufferSize and self._bufferSize < BULK_READ_SIZE:
            self._readSize(BULK_READ_SIZE)
        state = self.state
        if state is RAW:
            if self.rawOwner is not None:
                self.rawOwner.daemonRaw(data)
            return
        if self.owner is None or state is IDLE:
            # The daemon never speaks unasked: a connection that does is out
            # of step and must not be reused.
            self.ending = True
            self.link.abortConnection()
            return
        try:
            if state is BODY:
                self._body(data)
            else:
                self._buffer = self._buffer + data if self._buffer else data
                self._heads()
        except (BrokenResponse, ChunkError) as e:
            self.ending = True
            self.link.abortConnection()
            self._lose(Failure(e))

    def _heads(self) -> None:
        while self.state is HEAD and self.owner is not None:
            buf = self._buffer
            end = buf.find(b"\r\n\r\n", 0, MAX_RESPONSE_HEAD)
            if end < 0:
                if len(buf) > MAX_RESPONSE_HEAD:
                    raise BrokenResponse("response head too large")
                return
            head = self._parse(buf[:end])
            self._buffer = buf[end + 4 :]
            if head.status < 200:
                self.owner.responseHead(head)
                if head.status == 101:
                    return  # the owner splices, or gives up the connection
                continue
            self._left = head.length
            if head.length == 0:
                self.state = IDLE
            else:
                self.state = BODY
                if head.length == CHUNKED:
                    self._chunks = ChunkedDecoder()
            owner = self.owner
            owner.responseHead(head)
            if self.state is IDLE:
                if self._buffer:
                    self.ending = True
                if self.owner is owner:
                    owner.responseEnd()
                return
            if self.state is BODY and self._buffer:
                rest, self._buffer = self._buffer, b""
                self._body(rest)
            return

    def _parse(self, raw: bytes) -> ResponseHead:
        eol = raw.find(b"\r\n")
        line, block = (raw, b"") if eol < 0 else (raw[:eol], raw[eol + 2 :])
        version, _, rest = line.partition(b" ")
        code, _, reason = rest.partition(b" ")
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise BrokenResponse(f"bad status line {line[:60]!r}")
        status = int(code)
        fields: dict[bytes, bytes] = {}
        plain = True
        if block:
            if _BLOCK.fullmatch(block) is None:
                raise BrokenResponse("bad header lines")
            low = block.lower()
            for name, value in _READ.findall(low):
                fields.setdefault(name, value)
            plain = _HOP.search(low) is None
        if version != b"HTTP/1.1" or b"close" in fields.get(b"connection", b""):
            self.ending = True
        if self._method == b"HEAD" or status < 200 or status in (204, 304):
            length = 0
        elif b"transfer-encoding" in fields:
            if fields[b"transfer-encoding"] != b"chunked":
                raise BrokenResponse("a Transfer-Encoding other than chunked")
            length = CHUNKED
        elif b"content-length" in fields:
            cl = fields[b"content-length"]
            if not cl.isdigit():
                raise BrokenResponse("a Content-Length that is not a number")
            length = int(cl)
        else:
            length = TO_EOF
            self.ending = True
        return ResponseHead(status, reason, block, fields, plain, length)

    def _body(self, data: bytes) -> None:
        owner = self.owner
        if self._left > 0:
            if len(data) < self._left:
                self._left -= len(data)
                if owner is not None:
                    owner.responseBody(data)
                return
            data, rest = data[: self._left], data[self._left :]
            self._left = 0
            self.state = IDLE
            if rest:
                self.ending = True
            if owner is not None:
                owner.responseBody(data)
                if self.owner is owner:
                    owner.responseEnd()
            return
        if self._left == TO_EOF:
            if owner is not None:
                owner.responseBody(data)
            return
        chunks = self._chunks
        assert chunks is not None
        body = chunks.feed(data)
        if chunks.done:
            self._chunks = None
            self.state = IDLE
            if chunks.leftover:
                self.ending = True
        if owner is not None:
            if body:
                owner.responseBody(body)
            if self.state is IDLE and self.owner is owner:
                owner.responseEnd()

    # -- the end -------------------------------------------------------------

    def readConnectionLost(self) -> None:
        self.ending = True
        if self.state is BODY and self._left == TO_EOF:
            # The end of a body that runs to the end of the connection.
            self.state = IDLE
            owner = self.owner
            if owner is not None:
                owner.responseEnd()
        self.link.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.alive = False
        self.ending = True
        if self.pool is not None:
            self.pool.discard(self)
        if self.state is BODY and self._left == TO_EOF and reason.check(ConnectionDone):
            self.state = IDLE
            owner = self.owner
            if owner is not None:
                owner.responseEnd()
        self._lose(reason)

    def _lose(self, reason: Failure | None) -> None:
        owner: DaemonOwner | RawOwner | None = self.owner or self.rawOwner
        self.owner = self.rawOwner = None
        if owner is not None:
            owner.daemonLost(reason)

    def release(self) -> None:
        """The owner is done with this connection: back to the pool, or closed."""
        self.owner = None
        if self.pool is not None:
            self.pool.release(self)
        elif self.alive:
            self.link.loseConnection()

    def close(self, abort: bool = False) -> None:
        """Drop the connection: its exchange cannot go on."""
        self.owner = self.rawOwner = None
        self.ending = True
        if self.alive:
            if abort:
                self.link.abortConnection()
            else:
                self.link.loseConnection()


class DaemonPool:
    """
    Keep-alive connections to the daemon.

    @param endpoint: where the daemon listens.
    @param address: what to call it in messages (the socket's path).
    @param maxIdle: how many idle connections are kept for reuse.
    """

    def __init__(self, endpoint: IStreamClientEndpoint, address: str, maxIdle: int = 128) -> None:
        self.address = address
        self._endpoint = endpoint
        #: Idle connections in the order given back (L{take} hands out the
        #: newest); a dict, so that one given back twice is held, and handed
        #: out, once.
        self._idle: dict[DaemonConnection, None] = {}
        self._maxIdle = maxIdle

    @classmethod
    def unix(cls, reactor: IReactorUNIX, path: str) -> DaemonPool:
        return cls(UNIXClientEndpoint(reactor, path, timeout=10), path)

    def take(self) -> DaemonConnection | None:
        """An idle pooled connection, if there is one."""
        idle = self._idle
        while idle:
            conn, _ = idle.popitem()
            if conn.alive and not conn.ending and not conn.link.disconnecting:
                return conn
        return None

    def connect(self) -> Deferred[DaemonConnection]:
        """A new connection."""
        connected: Deferred[DaemonConnection] = connectProtocol(self._endpoint, DaemonConnection(self))
        return connected

    def release(self, conn: DaemonConnection) -> None:
        """
        Take back a connection whose exchange has ended.  Only a connection
        whose last response completed cleanly is kept.
        """
        conn.owner = None
        idle = self._idle
        if conn.reusable() and (conn in idle or len(idle) < self._maxIdle):
            conn.reused = True
            idle[conn] = None
        elif conn.alive:
            conn.link.loseConnection()

    def discard(self, conn: DaemonConnection) -> None:
        """Forget C{conn}, whose connection is gone."""
        self._idle.pop(conn, None)

    def closeIdle(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for conn in idle:
            conn.link.loseConnection()

    @property
    def idleCount(self) -> int:
        return len(self._idle)
