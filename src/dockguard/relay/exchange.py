"""
One allowed request relayed to the daemon, and its answer: the L{Exchange}.

The client connection (L{dockguard.relay.client.ClientProtocol}) judges a
request and hands what it allows to an exchange.  The exchange takes a
daemon connection from the pool (or makes one), sends the head and the body,
and relays the answer: as the daemon framed it; framed again, chunked, when
its length is unknown; or read whole and narrowed by a
L{View<dockguard.relay.scoping.View>} (a scope or a redaction).  It is the
daemon connection's L{DaemonOwner<dockguard.relay.daemon.DaemonOwner>}.

What comes after an exchange (the next request, a drain, a close, the splice
of a hijack) is the client connection's to decide: the exchange tells it how
the exchange ended through the C{exchange*} methods of
L{ClientProtocol<dockguard.relay.client.ClientProtocol>}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from twisted.logger import Logger
from twisted.python.failure import Failure

from dockguard.relay.daemon import CHUNKED, TO_EOF, DaemonConnection, ResponseHead
from dockguard.relay.framing import Head, end_to_end
from dockguard.relay.scoping import MAX_VIEWED, ExecCapture, Unreadable, View
from dockguard.relay.splice import Wiring
from dockguard.relay.states import CLOSED, CONNECTING

if TYPE_CHECKING:
    # Only for the type of the back-reference: the client module imports
    # this one.
    from dockguard.relay.client import ClientProtocol

__all__ = ["Exchange"]

_log = Logger(namespace="dockguard")

#: The content types of a hijacked attach or exec start answered with 200.
HIJACK_CONTENT_TYPES = frozenset(
    {
        b"application/vnd.docker.raw-stream",
        b"application/vnd.docker.multiplexed-stream",
    }
)


@attrs.define(eq=False)
class Exchange:
    """One request relayed to the daemon, and its answer."""

    client: ClientProtocol
    #: The request as the client sent it.
    request: Head
    #: The request head as sent to the daemon.
    head: bytes
    #: The route may be hijacked (attach, exec start).
    hijack: bool
    #: The client asked to upgrade the connection (C{Upgrade: tcp}).
    wantsUpgrade: bool
    #: The client's body is chunked: it goes on chunked, framed again.
    chunkedUp: bool
    #: All of the request (its body included) has been read.
    requestDone: bool
    #: A body read whole and judged before anything went to the daemon.
    body: bytes | None = None
    #: How the caller sees the answer (a scope or a redaction narrows it).
    view: View | None = None
    #: Records the owner of the exec instance the request creates.
    capture: ExecCapture | None = None
    daemon: DaemonConnection | None = None
    wiring: Wiring | None = None
    #: The answer, read whole for the view (C{view.whole}), and its head.
    held: bytearray | None = None
    heldHead: ResponseHead | None = None
    status: int = 0
    responseStarted: bool = False
    #: The answer goes to the client chunked, framed again.
    chunkedDown: bool = False
    #: The connection closes once the answer is out.
    close: bool = False
    retried: bool = False

    # -- the request ---------------------------------------------------------

    def connect(self) -> None:
        """Send the request on an idle pooled daemon connection, or on a new one."""
        client = self.client
        daemon = client.relay.pool.take()
        if daemon is not None:
            self._connected(daemon)
            return
        client.throttle.pause("upstream")
        client.relay.pool.connect().addCallbacks(self._connectedLater, self._connectFailed)

    def _waited(self) -> bool:
        """The connection asked for arrived (or failed): is it still wanted?"""
        client = self.client
        client.throttle.resume("upstream")
        return client.state is CONNECTING and client.exchange is self

    def _connectedLater(self, daemon: DaemonConnection) -> None:
        if not self._waited():
            self.client.relay.pool.release(daemon)
            return
        self._connected(daemon)
        self.client.readOn()

    def _connected(self, daemon: DaemonConnection) -> None:
        client = self.client
        self.daemon = daemon
        daemon.request(self, self.request.method, self.head)
        if self.body:
            daemon.write(self.body)
        self.wiring = Wiring.wire(client.link, client.throttle, daemon)
        client.exchangeConnected()

    def _connectFailed(self, failure: Failure) -> None:
        if not self._waited():
            return
        relay = self.client.relay
        relay.metrics.upstreamError("connect")
        address, error = relay.pool.address, failure.getErrorMessage()
        _log.error("cannot reach the Docker daemon at {socket}: {error}", socket=address, error=error)
        self.client.exchangeRefused(502, f"dockguard: cannot reach the Docker daemon at {address}: {error}")

    def send(self, data: bytes) -> None:
        """Relay a part of the client's body."""
        daemon = self.daemon
        assert daemon is not None
        if self.chunkedUp:
            daemon.link.writeSequence((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            daemon.write(data)

    def sent(self) -> None:
        """The client's body has ended."""
        self.requestDone = True
        if self.chunkedUp and self.daemon is not None:
            self.daemon.write(b"0\r\n\r\n")

    def abandon(self) -> None:
        """
        The exchange cannot go on (the client left, or broke the framing):
        its daemon connection, whose answer is unfinished, goes too.
        """
        daemon = self._unwire()
        if daemon is not None:
            daemon.close(abort=True)

    def _unwire(self) -> DaemonConnection | None:
        """Let go of the daemon connection; return it."""
        daemon, wiring = self.daemon, self.wiring
        self.daemon = self.wiring = None
        if wiring is not None:
            wiring.unwire(clientOpen=self.client.state is not CLOSED)
        return daemon

    # -- the answer (DaemonOwner) ------------------------------------------------

    def responseHead(self, response: ResponseHead) -> None:
        client = self.client
        status = response.status
        if status < 200:
            if status == 101:
                if self.wantsUpgrade:
                    client.exchangeHijacked(response)
                else:
                    assert self.daemon is not None
                    self.daemon.close(abort=True)
                    self.daemonLost(Failure(ConnectionError("the daemon switched protocols unasked")))
            elif self.request.version == b"1.1":
                self.responseStarted = True
                client.link.write(self._answerHead(response, informational=True))
            return
        self.responseStarted = True
        self.status = status
        if self.hijack and _is_raw_stream(response):
            client.exchangeHijacked(response)
            return
        view = self.view
        if view is not None:
            if status != 200 or self.request.method == b"HEAD":
                self.view = None  # errors are the daemon's own words
            elif view.whole:
                # Logged once the narrowed answer is out (or the 502 instead).
                self.held, self.heldHead = bytearray(), response
                return
        client.decisions.answered(status)
        client.link.write(self._answerHead(response))

    def responseBody(self, data: bytes) -> None:
        if not data or self.client.exchange is not self:
            return
        if self.capture is not None:
            self.capture.part(data)
        view = self.view
        if view is not None:
            held = self.held
            if held is not None:
                if len(held) + len(data) > MAX_VIEWED:
                    self._viewFailed(f"the answer is larger than {MAX_VIEWED} bytes")
                    return
                held += data
                return
            try:
                data = view.part(data)
            except Unreadable as e:
                self._viewFailed(str(e))
                return
            if not data:
                return
        link = self.client.link
        if self.chunkedDown:
            link.writeSequence((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            link.write(data)

    def responseEnd(self) -> None:
        client = self.client
        if self.capture is not None:
            self.capture.end(self.status)
        if self.held is not None:
            assert self.view is not None and self.heldHead is not None
            try:
                body = self.view.end(bytes(self.held))
            except Unreadable as e:
                self._viewFailed(str(e))
                return
            self.held = None
            client.decisions.answered(self.status)
            client.link.write(self._heldHead(self.heldHead, len(body)) + body)
        if self.chunkedDown:
            client.link.write(b"0\r\n\r\n")
        daemon = self._unwire()
        if daemon is not None:
            if self.requestDone and daemon.reusable():
                daemon.release()
            else:
                daemon.close()
        client.exchangeEnded(self)

    def daemonLost(self, reason: Failure | None) -> None:
        client = self.client
        if client.exchange is not self:
            return
        daemon = self._unwire()
        if self.responseStarted:
            # Mid-response: the only honest signal left is to close, so the
            # client sees a truncated message rather than a complete-looking one.
            client.exchangeBroken()
            return
        replayable = not self.request.has_body or self.body is not None
        if daemon is not None and daemon.reused and replayable and not self.retried:
            # A pooled connection the daemon had closed meanwhile: the
            # request never reached it, so it is sent again once.
            self.retried = True
            client.exchangeAgain()
            return
        client.relay.metrics.upstreamError("closed")
        message = reason.getErrorMessage() if reason is not None else "connection closed"
        _log.error("the Docker daemon closed the connection before answering: {error}", error=message)
        client.exchangeLost(f"dockguard: the Docker daemon closed the connection before answering ({message})")

    def _viewFailed(self, reason: str) -> None:
        """The daemon's answer cannot be narrowed: the caller gets none of it."""
        client = self.client
        _log.error(
            "cannot narrow the daemon's answer for {identity}: {reason}", identity=client.identity, reason=reason
        )
        self.abandon()
        error = None
        if self.held is not None:
            error = f"dockguard: cannot narrow the daemon's answer to your scope: {reason}"
        client.exchangeBroken(error)

    # -- response heads ----------------------------------------------------------

    def _closing(self) -> bool:
        """Whether the connection closes after this answer (said in its head)."""
        client = self.client
        if not self.request.keep_alive or client.eof:
            self.close = True
        return self.close

    def _answerHead(self, response: ResponseHead, informational: bool = False) -> bytes:
        """The daemon's response head as the client gets it."""
        length = response.length
        reframe = not informational and (length == CHUNKED or length == TO_EOF or self.view is not None)
        lines = [b"HTTP/1.1 %d %s\r\n" % (response.status, response.reason)]
        if response.plain and not reframe:
            if response.block:
                lines += (response.block, b"\r\n")
        else:
            for name, value in end_to_end(response.headers):
                if not (reframe and name.lower() == b"content-length"):
                    lines += (name, b": ", value, b"\r\n")
        if not informational:
            closing = self._closing()
            if reframe:
                if self.request.version == b"1.1":
                    self.chunkedDown = True
                    lines.append(b"Transfer-Encoding: chunked\r\n")
                else:
                    self.close = closing = True  # read to the end of the connection
            if closing:
                lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def _heldHead(self, response: ResponseHead, length: int) -> bytes:
        """The head of an answer read whole and narrowed: framed by its new length."""
        lines = [b"HTTP/1.1 %d %s\r\n" % (response.status, response.reason)]
        for name, value in end_to_end(response.headers):
            if name.lower() != b"content-length":
                lines += (name, b": ", value, b"\r\n")
        lines.append(b"Content-Length: %d\r\n" % length)
        if self._closing():
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)


def _is_raw_stream(response: ResponseHead) -> bool:
    """The 200 of an attach or exec start that the daemon hijacks without an upgrade."""
    ctype = response.fields.get(b"content-type")
    return (
        response.status == 200
        and ctype is not None
        and ctype.split(b";")[0].strip().lower() in HIJACK_CONTENT_TYPES
        and response.length == TO_EOF
    )
