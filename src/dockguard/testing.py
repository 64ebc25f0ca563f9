"""
Test seams: the Docker daemon in memory, in the spirit of C{treq.testing}.

L{MemoryDaemonEndpoint} is an L{IStreamClientEndpoint} that connects each
protocol to a L{MemoryTransport} at once, with no socket and no reactor.
Give it to the real pool and a test drives the code that runs in
production::

    endpoint = MemoryDaemonEndpoint()
    pool = DaemonPool(endpoint, endpoint.path)
    ...                                 # the relay connects through the pool
    endpoint.sent()                     # the bytes the daemon received
    endpoint.respond(b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n")
    endpoint.hang_up()                  # the daemon closes the connection

The transports never deliver connection loss themselves: a real reactor
tells a protocol its connection is gone later, not inside
C{loseConnection()}, so a test that wants it says so (L{hang_up}, or
C{protocol.connectionLost(...)}).
"""

from __future__ import annotations

from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectError, ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["MemoryDaemonEndpoint", "MemoryTransport", "hang_up"]

#: Where the memory daemon says it listens, unless told otherwise.
DEFAULT_PATH = "/run/memory/docker.sock"


class MemoryTransport(StringTransport):
    """
    A L{StringTransport} with what the relay uses of a real transport: a
    write half-close (recorded in L{writeClosed}), C{setTcpNoDelay}, and
    pause/resume accepted after C{loseConnection()}, as a real transport
    accepts them.

    C{value()} is every byte written; C{disconnecting} is true once
    C{loseConnection()} or C{abortConnection()} was called, C{disconnected}
    once C{abortConnection()} was.

    @ivar writeClosed: C{loseWriteConnection()} was called.
    @ivar noDelay: the last C{setTcpNoDelay()} setting.
    """

    def __init__(self, peerAddress: IAddress | None = None, hostAddress: IAddress | None = None) -> None:
        super().__init__(hostAddress=hostAddress, peerAddress=peerAddress, lenient=True)  # type: ignore[no-untyped-call]
        self.writeClosed = False
        self.noDelay = False

    def loseWriteConnection(self) -> None:
        self.writeClosed = True

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.noDelay = enabled


def hang_up(protocol: IProtocol) -> None:
    """
    The peer closes its end of C{protocol}'s connection: the end of what it
    sends first (if the protocol hears half-closes), then the connection is
    gone.
    """
    if IHalfCloseableProtocol.providedBy(protocol):
        IHalfCloseableProtocol(protocol).readConnectionLost()
    protocol.connectionLost(Failure(ConnectionDone()))


@implementer(IStreamClientEndpoint)
class MemoryDaemonEndpoint:
    """
    A daemon in memory: each C{connect()} builds the factory's protocol and
    connects it to a new L{MemoryTransport} at once.

    @param path: the address the connections' peer has (a Unix socket path).
    @ivar connections: every protocol connected, in order (attempts that
        failed are not in it).
    """

    def __init__(self, path: str = DEFAULT_PATH) -> None:
        self.path = path
        self.connections: list[IProtocol] = []
        self._transports: list[MemoryTransport] = []
        self._failures: list[BaseException] = []

    # -- IStreamClientEndpoint ------------------------------------------------

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """Connect a protocol of C{protocolFactory}'s now, or fail if told to."""
        if self._failures:
            return fail(self._failures.pop(0))
        address = UNIXAddress(self.path)
        protocol = protocolFactory.buildProtocol(address)
        if protocol is None:
            return fail(ConnectError("the factory built no protocol"))
        transport = MemoryTransport(peerAddress=address)
        self.connections.append(protocol)
        self._transports.append(transport)
        protocol.makeConnection(transport)
        return succeed(protocol)

    # -- scripting the daemon -------------------------------------------------

    def fail_next(self, exception: BaseException, count: int = 1) -> None:
        """The next C{count} connects fail with C{exception} (after any already queued)."""
        self._failures.extend([exception] * count)

    @property
    def last(self) -> IProtocol:
        """The protocol connected last."""
        if not self.connections:
            raise LookupError("nothing has connected to the memory daemon")
        return self.connections[-1]

    def transport(self, protocol: IProtocol | None = None) -> MemoryTransport:
        """The transport of C{protocol} (by default the one connected last)."""
        protocol = self.last if protocol is None else protocol
        for known, transport in zip(self.connections, self._transports):
            if known is protocol:
                return transport
        raise LookupError(f"{protocol!r} did not connect through this endpoint")

    def sent(self, protocol: IProtocol | None = None) -> bytes:
        """Every byte the daemon received on C{protocol}'s connection (by default the last)."""
        return bytes(self.transport(protocol).value())  # type: ignore[no-untyped-call]

    def respond(self, data: bytes, protocol: IProtocol | None = None) -> None:
        """The daemon sends C{data} on C{protocol}'s connection (by default the last)."""
        protocol = self.last if protocol is None else protocol
        self.transport(protocol)  # it must be one of ours
        protocol.dataReceived(data)

    def hang_up(self, protocol: IProtocol | None = None) -> None:
        """The daemon closes C{protocol}'s connection (by default the last); see L{hang_up}."""
        protocol = self.last if protocol is None else protocol
        self.transport(protocol)
        hang_up(protocol)
