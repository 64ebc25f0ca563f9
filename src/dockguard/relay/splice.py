"""
Flow control between the two legs, and the splice a hijack turns them into.

A L{Throttle} pauses one transport's reading while any reason to do so
holds; registered as the producer of the I{other} transport, it lets a slow
reader on one side pause the other side (as
C{twisted.protocols.portforward} wires its two protocols).  After the
daemon hijacks a connection (C{101 UPGRADED}, or the raw-stream 200 of
attach and exec start), a L{Splice} passes bytes both ways untouched,
half-close included: C{docker exec -i} ends stdin and reads output after.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from dockguard.interfaces import StreamTransport
from dockguard.relay.daemon import DaemonConnection

__all__ = ["Splice", "Throttle", "Wiring", "hijack_head"]


@implementer(IPushProducer)
class Throttle:
    """Pauses C{transport}'s reading while any reason to do so holds."""

    def __init__(self, transport: StreamTransport) -> None:
        self._transport = transport
        self._reasons: set[str] = set()

    def pause(self, reason: str) -> None:
        if not self._reasons:
            self._transport.pauseProducing()
        self._reasons.add(reason)

    def resume(self, reason: str) -> None:
        if reason in self._reasons:
            self._reasons.discard(reason)
            if not self._reasons:
                self._transport.resumeProducing()

    def pauseProducing(self) -> None:
        self.pause("backpressure")

    def resumeProducing(self) -> None:
        self.resume("backpressure")

    def stopProducing(self) -> None:
        pass


@attrs.define
class Wiring:
    """
    Flow control both ways between a client connection and the daemon
    connection relaying its request: a slow daemon pauses the client's
    upload, a slow client pauses the daemon's output.
    """

    client: StreamTransport
    clientThrottle: Throttle
    daemon: DaemonConnection
    daemonThrottle: Throttle

    @classmethod
    def wire(cls, client: StreamTransport, clientThrottle: Throttle, daemon: DaemonConnection) -> Wiring:
        daemonThrottle = Throttle(daemon.link)
        daemon.link.registerProducer(clientThrottle, True)
        client.registerProducer(daemonThrottle, True)
        return cls(client, clientThrottle, daemon, daemonThrottle)

    def unwire(self, clientOpen: bool) -> None:
        """Undo the wiring (C{clientOpen}: the client connection is still open)."""
        if self.daemon.alive:
            self.daemon.link.unregisterProducer()
            # A slow client may have paused the daemon connection: it must
            # not go back to the pool paused.
            self.daemonThrottle.resume("backpressure")
        if clientOpen:
            self.client.unregisterProducer()
        self.clientThrottle.resume("backpressure")


def hijack_head(status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The daemon's response head as it sent it: the client reads it so."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in headers]
    lines.append(b"\r\n")
    return b"".join(lines)


class Splice:
    """
    A client connection and a daemon connection joined by a hijack: the
    daemon connection's L{RawOwner<dockguard.relay.daemon.RawOwner>}.
    C{daemonEnded} is called when the daemon closes its side.
    """

    def __init__(self, wiring: Wiring, daemonEnded: Callable[[], None]) -> None:
        self.client = wiring.client
        self.daemon = wiring.daemon
        self.wiring = wiring
        self._daemonEnded = daemonEnded

    def fromClient(self, data: bytes) -> None:
        self.daemon.write(data)

    def clientDone(self) -> None:
        """stdin ended: pass the half-close on; output keeps flowing."""
        self.daemon.link.loseWriteConnection()

    def daemonRaw(self, data: bytes) -> None:
        self.client.write(data)

    def daemonLost(self, reason: Failure | None) -> None:
        self._daemonEnded()

    def close(self) -> None:
        """The client connection is gone: so is the daemon's."""
        self.wiring.unwire(clientOpen=False)
        self.daemon.close()
