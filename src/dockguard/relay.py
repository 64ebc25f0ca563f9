"""
The client side of the relay: one L{ClientProtocol} per accepted connection.

Each request is parsed with h11 (strict framing: a request that could be read
two ways is refused), canonicalised, judged by the policy, and only then
relayed to the daemon over a pooled connection.  Bodies stream both ways with
flow control; nothing is spooled.  When the daemon hijacks the connection
(C{101 UPGRADED}, or the raw-stream 200 of attach and exec start), the two
connections are spliced and bytes flow untouched, half-close included.

Every request on a keep-alive connection is judged on its own.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
from datetime import datetime, timezone
from typing import Callable

import attrs
import h11
from cryptography import x509
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from dockguard.guards import CLOSED, judge
from dockguard.hostpaths import resolve as resolve_host_path
from dockguard.logs import escape
from dockguard.meaning import body_kind, check_request
from dockguard.metrics import Metrics, NoMetrics
from dockguard.paths import PathRefused, canonicalise
from dockguard.policy import Decision, Policy
from dockguard.routes import lookup
from dockguard.tls import IdentityRefused, identity_from_certificate
from dockguard.upstream import UpstreamPool, UpstreamProtocol

# RFC 9110 section 7.6.1: connection-specific header fields, never forwarded.
# Framing headers are rebuilt by h11 from the message itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

HIJACK_CONTENT_TYPES = frozenset(
    {
        b"application/vnd.docker.raw-stream",
        b"application/vnd.docker.multiplexed-stream",
    }
)

_log = Logger(namespace="dockguard")


@attrs.frozen
class Timeouts:
    """
    @ivar header: seconds a client has to finish a request head once it
        started one (slow-loris guard; also bounds the TLS handshake).
    @ivar idle: seconds an idle keep-alive connection is kept open.
    """

    header: float = 30.0
    idle: float = 120.0
    #: seconds a refused request's body is read and dropped before the
    #: connection is closed anyway.
    drain: float = 5.0


@attrs.frozen
class Listener:
    """
    What the relay needs to know about the listener a connection came in on.

    @ivar name: for logs, e.g. C{"tls://0.0.0.0:2376"}.
    @ivar identity: the fixed identity of every caller, or L{None} when the
        identity comes from the client certificate.
    @ivar admit: decides from the peer address whether a connection is
        accepted at all (source network allow-list).
    """

    name: str
    identity: str | None
    admit: Callable[[object], bool] = lambda peer: True
    learn: bool = False

    @property
    def tls(self) -> bool:
        return self.identity is None


@attrs.frozen
class Limits:
    """
    Bounds on what one caller can make dockguard hold.

    @ivar head_bytes: largest request head (line and headers), 431 above.
    @ivar headers: most header fields in one request, 431 above.
    @ivar inspected_body: largest body the escalation guards read before
        judging it, 413 above.
    @ivar connections: client connections open at once, all listeners.
    @ivar connections_per_peer: client connections open at once from one
        network address (an IPv6 /64 counts as one address; Unix socket
        callers are not counted per peer).
    @ivar plain_connections: plain-TCP connections open at once, all
        listeners (default: half of C{connections}).
    @ivar tls_handshakes: TLS connections open at once whose handshake has
        not completed (default: an eighth of C{connections}).  What the two
        leave of C{connections} is only for Unix socket callers and TLS
        callers with a valid certificate: network floods cannot take it.
    @ivar drain_bytes: most body bytes of a refused request read and
        dropped to keep the connection; above, it closes after the answer.
    """

    head_bytes: int = 256 * 1024
    headers: int = 100
    inspected_body: int = 1024 * 1024
    connections: int = 2048
    connections_per_peer: int = 128
    plain_connections: int | None = None
    tls_handshakes: int | None = None
    drain_bytes: int = 64 * 1024

    @property
    def plainBudget(self) -> int:
        return self.plain_connections if self.plain_connections is not None else max(1, self.connections // 2)

    @property
    def handshakeBudget(self) -> int:
        return self.tls_handshakes if self.tls_handshakes is not None else max(1, self.connections // 8)


@attrs.define
class Relay:
    """
    Everything shared by all client connections: the policy, the upstream
    pool, the clock and limits.  The policy may be replaced at run time;
    each new request is judged by the policy current at that moment.
    """

    reactor: IReactorTime
    pool: UpstreamPool
    policy: Policy
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    #: Serials of client certificates whose near expiry was already logged.
    expiryWarned: set[int] = attrs.Factory(set)
    metrics: Metrics = attrs.Factory(NoMetrics)
    #: The client connections open now, and how many per peer address.
    connections: set["ClientProtocol"] = attrs.Factory(set)
    perPeer: dict[str, int] = attrs.Factory(dict)
    #: Connections open now per budget: C{plain} (plain TCP) and
    #: C{handshake} (TLS, handshake not completed).
    perBudget: dict[str, int] = attrs.Factory(dict)
    #: Connections turned away since the last warning about it, and when
    #: that warning was (a flood must not flood the log too).
    turnedAway: int = 0
    lastTurnedAwayWarning: float = float("-inf")

    def turnAway(self, kind: str, reason: str, peer: str, listener: str) -> None:
        """
        Count (and now and then log) a connection refused before any
        request; C{kind} is C{allow-list} or the limit's name.
        """
        self.metrics.connectionRefused(kind)
        self.turnedAway += 1
        now = self.reactor.seconds()
        if now - self.lastTurnedAwayWarning >= 10:
            _log.warn(
                "refused {count} connection(s) in the last {seconds:.0f} s, the latest from {peer} "
                "on {listener}: {reason}",
                count=self.turnedAway,
                seconds=min(now - self.lastTurnedAwayWarning, 10),
                peer=peer,
                listener=listener,
                reason=reason,
            )
            self.turnedAway = 0
            self.lastTurnedAwayWarning = now


def _json_error(status: int, message: str, close: bool = False) -> tuple[h11.Response, bytes]:
    body = json.dumps({"message": message}).encode() + b"\n"
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", b"%d" % len(body)),
    ]
    if close:
        headers.append((b"Connection", b"close"))
    return h11.Response(status_code=status, headers=headers), body


#: Header fields the Connection header may not name: the framing of the
#: message and the Host it is for.  Requests that do are refused (400).
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"host"})


def _connection_options(headers: h11._headers.Headers) -> set[bytes]:
    """The header names the Connection header lists, lower-cased."""
    named: set[bytes] = set()
    for raw, value in headers.raw_items():
        if raw.lower() == b"connection":
            named.update(t.strip().lower() for t in value.split(b","))
    return named


def _end_to_end(headers: h11._headers.Headers) -> list[tuple[bytes, bytes]]:
    """
    The headers a proxy forwards: all but hop-by-hop ones and those the
    Connection header names.
    """
    items = headers.raw_items()
    named = _connection_options(headers)
    return [
        (raw, value)
        for raw, value in items
        if (low := raw.lower()) not in HOP_BY_HOP and low not in named
    ]


def _fields(headers: h11._headers.Headers) -> dict[bytes, bytes]:
    """Each header field by its lower-case name (the first, if repeated)."""
    return {raw.lower(): value for raw, value in reversed(headers.raw_items())}


def _header(headers: h11._headers.Headers, name: bytes) -> bytes | None:
    return _fields(headers).get(name)


# Events rebuilt from what h11 itself parsed (and validated) need not be
# validated again; h11 takes a private flag for that, used only if present.
_PARSED = (
    {"_parsed": True} if "_parsed" in inspect.signature(h11.Response.__init__).parameters else {}
)


@implementer(IPushProducer)
class _Throttle:
    """
    Pauses a transport's reading while any reason to do so holds.  As an
    L{IPushProducer} it is registered with the opposite transport, so a slow
    reader on one side pauses the other side.
    """

    def __init__(self, transport: ITransport) -> None:
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
class _Inspection:
    """A request whose body the escalation guards read whole before judging."""

    request: h11.Request
    method: str
    path: str
    kind: str
    decision: Decision
    #: What the decision log says when the body passes.
    word: str
    #: The body so far, in one buffer: a body sent in one-byte chunks must
    #: not cost an object per chunk.
    body: bytearray = attrs.Factory(bytearray)


@attrs.define
class _Exchange:
    """One request relayed to the daemon, and its response."""

    request: h11.Request
    upstream: UpstreamProtocol | None = None
    hijackRoute: bool = False
    wantsUpgrade: bool = False
    hasBody: bool = False
    requestDone: bool = False
    responseStarted: bool = False
    #: A body read whole and judged before anything went upstream.
    body: bytes | None = None
    retried: bool = False


@implementer(IHalfCloseableProtocol, IHandshakeListener)
class ClientProtocol(Protocol):
    """
    One client connection: HTTP/1.1 requests judged one by one, or, after a
    hijack, a raw splice to the daemon.
    """

    def __init__(self, relay: Relay, listener: Listener) -> None:
        self.relay = relay
        self.listener = listener
        self.identity: str | None = listener.identity
        #: The verified client certificate that named C{identity} (TLS
        #: listeners, once the handshake is done): a reload judges the open
        #: connection again by it.
        self.certificate: x509.Certificate | None = None
        self.peer = "?"
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=relay.limits.head_bytes)
        self._peerKey: str | None = None
        #: The connection budget this connection counts in (see Limits).
        self._budget: str | None = None
        #: After a refusal whose body is not worth reading: the answer went
        #: out with Connection: close; this many more bytes are dropped.
        self._lingering: int | None = None
        self._throttle: _Throttle | None = None
        self._upThrottle: _Throttle | None = None
        self._exchange: _Exchange | None = None
        self._waitingUpstream = False
        self._draining = False
        self._closeAfterResponse = False
        self._inspection: _Inspection | None = None
        self._spliced: UpstreamProtocol | None = None
        self._timer: IDelayedCall | None = None
        #: The rest of the buffered events waits for this call (see _process).
        self._nextTurn: IDelayedCall | None = None
        self._headStarted = False
        self._gone = False
        #: The method of the request being answered (a HEAD gets no body).
        self._requestMethod: bytes | None = None
        #: The decision line of the request being relayed: logged once its
        #: answer starts (or fails), with the status and the latency.
        self._pending: dict[str, object] | None = None
        self._requestStarted = 0.0
        self._section = "-"

    @property
    def streaming(self) -> bool:
        """A response is being relayed now."""
        return self._exchange is not None and self._exchange.responseStarted

    @property
    def hijacked(self) -> bool:
        return self._spliced is not None

    # -- connection life ---------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer = _format_peer(peer)
        self._throttle = _Throttle(self.transport)
        if not self.listener.admit(peer):
            self.relay.turnAway("allow-list", "source not in the allow-list", self.peer, self.listener.name)
            self.transport.abortConnection()
            return
        relay, limits = self.relay, self.relay.limits
        key = _peer_key(peer)
        budget = None if key is None else "handshake" if self.listener.tls else "plain"
        if len(relay.connections) >= limits.connections:
            self._turnAway("max_connections", f"{limits.connections} connections are open (limits.max_connections)")
            return
        if budget == "plain" and relay.perBudget.get(budget, 0) >= limits.plainBudget:
            self._turnAway(
                "max_plain_connections",
                f"{limits.plainBudget} plain-TCP connections are open (limits.max_plain_connections)",
            )
            return
        if budget == "handshake" and relay.perBudget.get(budget, 0) >= limits.handshakeBudget:
            self._turnAway(
                "max_tls_handshakes",
                f"{limits.handshakeBudget} TLS handshakes are under way (limits.max_tls_handshakes)",
            )
            return
        if key is not None and relay.perPeer.get(key, 0) >= limits.connections_per_peer:
            self._turnAway(
                "max_connections_per_peer",
                f"{limits.connections_per_peer} connections from {key} are open "
                "(limits.max_connections_per_peer)"
            )
            return
        relay.connections.add(self)
        self._takeBudget(budget)
        if key is not None:
            self._peerKey = key
            relay.perPeer[key] = relay.perPeer.get(key, 0) + 1
            # A response the daemon sends in pieces must not wait for the
            # client's delayed ACK (Nagle): 40 ms a request otherwise.
            # Under TLS this reaches the TCP transport through the wrapper.
            self.transport.setTcpNoDelay(True)
        self._startTimer(relay.timeouts.header)

    def _turnAway(self, kind: str, reason: str) -> None:
        """
        Too many connections: a plain listener answers 503 and closes; a TLS
        one drops the connection before spending a handshake on it.
        """
        self.relay.turnAway(kind, reason, self.peer, self.listener.name)
        self._gone = True
        if self.listener.tls:
            self.transport.abortConnection()
            return
        response, body = _json_error(503, f"dockguard: too many connections: {reason}; try again later", True)
        self._write(self._h11.send_with_data_passthrough(response))
        self._write(self._h11.send_with_data_passthrough(h11.Data(data=body)))
        self.transport.loseConnection()

    def _takeBudget(self, budget: str | None) -> None:
        """Count this connection in C{budget} (and no longer in the one before)."""
        counts = self.relay.perBudget
        if self._budget is not None:
            left = counts.pop(self._budget, 1) - 1
            if left:
                counts[self._budget] = left
        self._budget = budget
        if budget is not None:
            counts[budget] = counts.get(budget, 0) + 1

    def handshakeCompleted(self) -> None:
        cert = self.transport.getPeerCertificate()
        try:
            if cert is None:
                raise IdentityRefused("no client certificate was presented")
            leaf = cert.to_cryptography()
            self.identity = identity_from_certificate(leaf)
            self.certificate = leaf
            self._warnIfExpiring(leaf)
            self._startTimer(self.relay.timeouts.idle)
            self._takeBudget(None)  # a valid certificate: out of the handshake budget
        except IdentityRefused as e:
            _log.warn(
                "refused TLS client {peer} on {listener}: {reason}",
                peer=self.peer,
                listener=self.listener.name,
                reason=str(e),
            )
            self.identity = None
            self.transport.abortConnection()

    def _warnIfExpiring(self, leaf) -> None:
        left = leaf.not_valid_after_utc - datetime.now(timezone.utc)
        if left.days < 30 and leaf.serial_number not in self.relay.expiryWarned:
            self.relay.expiryWarned.add(leaf.serial_number)
            _log.warn(
                "the client certificate of {identity} (serial {serial}) expires in {days} days",
                identity=self.identity,
                serial=f"{leaf.serial_number:x}",
                days=left.days,
            )

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._gone = True
        self._cancelTimer()
        if self._nextTurn is not None and self._nextTurn.active():
            self._nextTurn.cancel()
        self._nextTurn = None
        self.relay.connections.discard(self)
        self._takeBudget(None)
        if self._peerKey is not None:
            left = self.relay.perPeer.pop(self._peerKey) - 1
            if left:
                self.relay.perPeer[self._peerKey] = left
            self._peerKey = None
        self._answered(None)
        if self._spliced is not None:
            up, self._spliced = self._spliced, None
            up.owner = None
            self._unregisterProducers(up)
            up.transport.loseConnection()
        ex, self._exchange = self._exchange, None
        if ex is not None and ex.upstream is not None:
            # The client left mid-exchange: the daemon connection cannot be
            # reused (its response is unfinished), so it goes too.
            ex.upstream.owner = None
            ex.upstream.transport.abortConnection()

    def cutOff(self, reason: str) -> None:
        """
        Close this connection now, whatever it is doing: the caller is no
        longer admitted (a reload revoked its certificate or took its
        identity's groups).  No further byte is read from it; a response
        being relayed stops, and a hijacked session's daemon leg is closed
        with it (L{connectionLost}).
        """
        _log.warn(
            "closed the connection of {identity} from {peer} on {listener}: {reason}",
            identity=self.identity or "(no identity yet)",
            peer=self.peer,
            listener=self.listener.name,
            reason=reason,
        )
        self.transport.abortConnection()

    def readConnectionLost(self) -> None:
        if self._spliced is not None:
            # stdin ended: pass the half-close on; output keeps flowing.
            self._spliced.transport.loseWriteConnection()
            return
        if self._lingering is not None:
            self.transport.loseConnection()
            return
        self._h11.receive_data(b"")
        self._process()

    def writeConnectionLost(self) -> None:
        pass

    # -- timers --------------------------------------------------------------

    def _startTimer(self, seconds: float) -> None:
        self._cancelTimer()
        self._timer = self.relay.reactor.callLater(seconds, self._timedOut)

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timedOut(self) -> None:
        self._timer = None
        if self._headStarted and self._h11.our_state is h11.IDLE:
            self._sendError(
                408,
                "dockguard: the request head did not arrive within "
                f"{self.relay.timeouts.header:g} s",
                close=True,
            )
        self.transport.loseConnection()

    # -- reading requests ----------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._spliced is not None:
            self._spliced.transport.write(data)
            return
        if self._lingering is not None:
            self._lingering -= len(data)
            if self._lingering < 0:
                self.transport.loseConnection()
            return
        if self.identity is None:
            # TLS identity was refused, or the handshake is still going: no
            # byte is read as HTTP without an identity.
            return
        if not self._headStarted and self._h11.their_state is h11.IDLE:
            self._headStarted = True
            self._startTimer(self.relay.timeouts.header)
        self._h11.receive_data(data)
        self._process()

    def _process(self) -> None:
        """
        Handle the events waiting in h11's buffer, at most
        L{EVENTS_PER_TURN} of them: then reading pauses and the rest waits
        for the next reactor turn, so a body in one-byte chunks cannot keep
        the process from everyone else.  Body parts read in one go are
        relayed as one.
        """
        if self._nextTurn is not None:
            return  # the rest comes in the turn already scheduled
        body: list[bytes] = []
        try:
            self._processEvents(body)
        finally:
            self._relayBody(body)

    def _continue(self) -> None:
        assert self._throttle is not None
        self._nextTurn = None
        self._throttle.resume("turn")
        self._process()

    def _relayBody(self, body: list[bytes]) -> None:
        ex = self._exchange
        if body and ex is not None and ex.upstream is not None and not self._draining:
            data = body[0] if len(body) == 1 else b"".join(body)
            body.clear()
            self._sendUpstream(ex.upstream, h11.Data(data=data))
        body.clear()

    def _processEvents(self, body: list[bytes]) -> None:
        assert self._throttle is not None
        budget = EVENTS_PER_TURN
        while (
            not self._gone
            and self._spliced is None
            and not self._waitingUpstream
            and self._lingering is None
        ):
            if self._h11.their_state is h11.MUST_CLOSE:
                # RFC 9112 section 9.6: nothing after a request that closes
                # the connection is read; it closes once that is answered.
                return
            if budget == 0:
                self._throttle.pause("turn")
                self._nextTurn = self.relay.reactor.callLater(0, self._continue)
                return
            budget -= 1
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as e:
                self._relayBody(body)
                self._badRequest(e)
                return
            if type(event) is h11.Data and self._inspection is None and not self._draining:
                ex = self._exchange
                if ex is not None and ex.upstream is not None:
                    body.append(event.data)
                    continue
            self._relayBody(body)
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                # A pipelined request waits until this one is answered.  Keep
                # reading (so a client that leaves mid-stream is noticed) but
                # stop once a full request head's worth is waiting.
                if len(self._h11.trailing_data[0]) > self.relay.limits.head_bytes:
                    self._throttle.pause("pipeline")
                return
            if isinstance(event, h11.Request):
                self._onRequest(event)
            elif isinstance(event, h11.Data):
                self._onBody(event)
            elif isinstance(event, h11.EndOfMessage):
                self._onRequestEnd()
            elif isinstance(event, h11.ConnectionClosed):
                # A FIN outside a hijack: a client that closed and one that
                # only stopped sending look the same until a write fails,
                # which on a quiet `events` stream is never.  Treat it as
                # gone, so no daemon connection is left behind.
                self.transport.loseConnection()
                return

    def _badRequest(self, error: h11.RemoteProtocolError) -> None:
        _log.info(
            "malformed request from {peer} ({identity}): {error}",
            peer=self.peer,
            identity=self.identity,
            error=escape(str(error)),
        )
        if self._exchange is not None and self._exchange.upstream is not None:
            up = self._exchange.upstream
            up.owner = None
            up.transport.abortConnection()
            self._exchange = None
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = error.error_status_hint if 400 <= error.error_status_hint < 500 else 400
            if status == 431:
                message = "dockguard: request refused: " + _HEAD_TOO_LARGE.format(self.relay.limits.head_bytes)
            else:
                message = f"dockguard: malformed HTTP request: {error}"
            self._sendError(status, message, close=True)
        self.transport.loseConnection()

    def _onRequest(self, request: h11.Request) -> None:
        self._requestMethod = request.method
        self._cancelTimer()
        self._headStarted = False
        self._draining = False
        self._requestStarted = self.relay.reactor.seconds()
        self._section = "-"
        method = request.method.decode("ascii", "replace")
        target = request.target
        identity = self.identity
        assert identity is not None
        limits = self.relay.limits
        # h11 bounds a head only while it is incomplete; a whole one that
        # arrived in a single read is measured here, so the outcome never
        # depends on how the bytes were split.
        size = _head_size(request)
        if size > limits.head_bytes or len(request.headers) > limits.headers:
            if size > limits.head_bytes:
                rule, reason = "limits.max_head_bytes", _HEAD_TOO_LARGE.format(limits.head_bytes)
            else:
                rule = "limits.max_headers"
                reason = f"{len(request.headers)} header fields; at most {limits.headers} are read (limits.max_headers)"
            self._log_decision(method, target, "refuse", rule, reason, status=431)
            self._draining = True
            self._sendError(431, f"dockguard: request refused: {reason}", close=True)
            self.transport.loseConnection()
            return
        fields = _fields(request.headers)
        if b"transfer-encoding" in fields and b"content-length" in fields:
            # h11 reads such a body as chunked; another reader might take the
            # length. Two readings: refuse (RFC 9112 section 6.3).
            reason = "both Content-Length and Transfer-Encoding (the body can be read two ways)"
            self._log_decision(method, target, "refuse", "framing", reason, status=400)
            self._draining = True
            self._sendError(400, f"dockguard: malformed HTTP request: {reason}", close=True)
            self.transport.loseConnection()
            return
        named = _connection_options(request.headers) & _FRAMING
        if named:
            # A hop-by-hop name for a header the message's framing or routing
            # rests on: dropping it (RFC 9110 section 7.6.1) would relay a
            # different message from the one judged.
            reason = (
                f"the Connection header names {b', '.join(sorted(named)).decode()}, "
                "which a proxy cannot drop"
            )
            self._log_decision(method, target, "refuse", "framing", reason, status=400)
            self._draining = True
            self._sendError(400, f"dockguard: malformed HTTP request: {reason}", close=True)
            self.transport.loseConnection()
            return
        try:
            path = canonicalise(target)
        except PathRefused as e:
            self._log_decision(method, target, "refuse", "path", e.reason, status=400)
            self._refuse(
                request,
                400,
                f"dockguard refused {method} {target.decode('ascii', 'replace')} "
                f"for {identity}: {e.reason}",
            )
            return
        match = lookup(method, path)
        self._section = match.section_name
        decision = self.relay.policy.decide(identity, method, path, match)
        if self.listener.learn and not decision.allowed:
            decision = attrs.evolve(
                decision,
                allowed=True,
                learned=True,
                rule=f"learn (listener {self.listener.name}): would deny: {decision.rule}",
            )
        word = "would-deny" if decision.learned else "allow" if decision.allowed else "deny"
        hasBody = b"transfer-encoding" in fields or fields.get(b"content-length", b"0") != b"0"
        if decision.allowed:
            # Whatever allowed the route: the request must keep its meaning
            # (dockguard.meaning), and some bodies are judged before relaying.
            types = [value for name, value in request.headers.raw_items() if name.lower() == b"content-type"]
            verdict = check_request(method, path, types, hasBody, decision.guard, match)
            if not verdict.allowed:
                rule = f"guard {verdict.guard}" if verdict.guard else "meaning"
                self._log_decision(method, target, "deny", rule, verdict.reason, canonical=path.path, status=403)
                self._refuse(
                    request,
                    403,
                    f"dockguard refused {method} {path.path} for {identity}: {verdict.reason} "
                    f"(rule: {rule}; {decision.rule})",
                )
                return
            kind = body_kind(match, decision.guard)
            if kind is not None:
                # Logged once the body is judged.
                self._startInspection(request, method, path.path, kind, decision, word)
                return
        self._log_decision(
            method,
            target,
            word,
            decision.rule,
            decision.reason,
            canonical=path.path,
            status=None if decision.allowed else 403,
        )
        if not decision.allowed:
            self._refuse(
                request,
                403,
                f"dockguard refused {method} {path.path} for {identity}: "
                f"{decision.reason} (rule: {decision.rule})",
            )
            return
        self._exchange = _Exchange(
            request=request,
            hijackRoute=match.hijack,
            wantsUpgrade=b"upgrade" in fields,
            hasBody=hasBody,
        )
        self._connectUpstream()

    def _log_decision(
        self,
        method: str,
        target: bytes,
        decision: str,
        rule: str,
        reason: str,
        canonical: str | None = None,
        status: int | None = None,
    ) -> None:
        """
        Record one decision.  A refusal is logged at once with its status; a
        request that is relayed is logged when its answer starts or fails
        (L{_answered}), so its line carries the daemon's status and the
        latency.  Every value from the request is escaped.
        """
        fields = {
            "canonical": escape(canonical) if canonical is not None else None,
            "decision": decision,
            "identity": self.identity,
            "method": escape(method),
            "path": escape(target.decode("ascii", "replace")),
            "peer": self.peer,
            "listener": self.listener.name,
            "section": self._section,
            "rule": escape(rule),
            "reason": escape(reason),
        }
        if status is None:
            self._pending = fields
        else:
            self._emit(fields, status)

    def _answered(self, status: int | None) -> None:
        """The relayed request's answer started (C{None}: it never will)."""
        fields, self._pending = self._pending, None
        if fields is not None:
            self._emit(fields, status)

    def _emit(self, fields: dict[str, object], status: int | None) -> None:
        seconds = max(0.0, self.relay.reactor.seconds() - self._requestStarted)
        _log.info(
            "{decision} {identity} {method} {path} from {peer}: {rule} -> {answer} in {latency_ms} ms",
            status=status,
            answer=status if status is not None else "no answer",
            latency_ms=round(seconds * 1000, 3),
            **fields,
        )
        self.relay.metrics.decided(
            str(fields["identity"]), str(fields["section"]), str(fields["decision"]), seconds
        )

    def _refuse(self, request: h11.Request, status: int, message: str) -> None:
        """
        Answer a request that is not relayed.  A small body (a known length
        of at most C{limits.max_drain_bytes}) is read and dropped within
        C{timeouts.drain} so the connection stays in step; any other body is
        not worth reading: the answer says C{Connection: close}, and the
        connection closes once it is out (see L{_linger}).  A client that
        waits for C{100 Continue} sends no body: the connection just closes.
        """
        expects = _header(request.headers, b"expect")
        if expects is not None and expects.lower() == b"100-continue":
            self._draining = True
            self._sendError(status, message, close=True)
            self.transport.loseConnection()
            return
        worth = self._h11.their_state is h11.DONE or self._smallBody(request)
        self._sendError(status, message, close=not worth)
        if worth:
            self._drain()
        else:
            self._linger()

    def _smallBody(self, request: h11.Request) -> bool:
        """Whether the body of C{request} is known to be small enough to drain."""
        fields = _fields(request.headers)
        if b"transfer-encoding" in fields:
            return False
        length = fields.get(b"content-length", b"0")
        return length.isdigit() and int(length) <= self.relay.limits.drain_bytes

    def _drain(self) -> None:
        """
        The answer is out: read and drop the rest of the request (at most
        C{limits.max_drain_bytes}), on the C{timeouts.drain} clock.
        """
        assert self._throttle is not None
        self._draining = True
        self._maybeNextCycle()
        if self._draining and not self._gone:
            self._startTimer(self.relay.timeouts.drain)

    def _linger(self) -> None:
        """
        The answer is out and the rest of the request is not worth reading:
        drop what the client is still sending (at most
        C{limits.max_drain_bytes}, for at most C{timeouts.drain}, without
        parsing it) so the answer is not lost to a reset, then close.
        """
        assert self._throttle is not None
        self._draining = False
        self._lingering = self.relay.limits.drain_bytes
        self._headStarted = False
        self._throttle.resume("pipeline")
        self._startTimer(self.relay.timeouts.drain)

    def _sendError(self, status: int, message: str, close: bool = False) -> None:
        self._answered(status)
        response, body = _json_error(status, message, close)
        try:
            self._write(self._h11.send_with_data_passthrough(response))
            if self._requestMethod != b"HEAD":
                self._write(self._h11.send_with_data_passthrough(h11.Data(data=body)))
            self._write(self._h11.send_with_data_passthrough(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            # No response can be sent in this state (e.g. mid-response).
            self.transport.loseConnection()

    # -- escalation guards: bodies judged before anything moves ---------------

    def _startInspection(
        self, request: h11.Request, method: str, path: str, kind: str, decision: Decision, word: str
    ) -> None:
        length = _header(request.headers, b"content-length")
        if length is not None and int(length) > self.relay.limits.inspected_body:
            self._refuse(request, 413, self._tooLarge(method, path, kind, request.target))
            return
        self._inspection = _Inspection(
            request=request, method=method, path=path, kind=kind, decision=decision, word=word
        )

    def _tooLarge(self, method: str, path: str, kind: str, target: bytes) -> str:
        assert self.identity is not None
        self._log_decision(
            method, target, "refuse", "limits.max_inspected_body",
            f"the body of a {kind} is larger than {self.relay.limits.inspected_body} bytes",
            canonical=path, status=413,
        )
        return (
            f"dockguard refused {method} {path} for {self.identity}: the body of a {kind} "
            f"is inspected and may be at most {self.relay.limits.inspected_body} bytes "
            "(limits.max_inspected_body)"
        )

    def _inspectBody(self, data: h11.Data) -> None:
        ins = self._inspection
        assert ins is not None
        if len(ins.body) + len(data.data) > self.relay.limits.inspected_body:
            self._inspection = None
            self._refuse(ins.request, 413, self._tooLarge(ins.method, ins.path, ins.kind, ins.request.target))
            return
        ins.body += data.data

    def _inspectionDone(self) -> None:
        ins = self._inspection
        assert ins is not None
        self._inspection = None
        body = bytes(ins.body)
        ins.body.clear()
        verdict = judge(ins.kind, body, ins.decision.guard or CLOSED, host_paths=resolve_host_path)
        identity = self.identity
        assert identity is not None
        if not verdict.allowed:
            rule = f"guard {verdict.guard}" if verdict.guard else "guard: ambiguous body"
            self._log_decision(
                ins.method, ins.request.target, "deny", rule, verdict.reason,
                canonical=ins.path, status=403,
            )
            self._sendError(
                403,
                f"dockguard refused {ins.method} {ins.path} for {identity}: {verdict.reason} "
                f"(rule: {rule}; {ins.decision.rule})",
            )
            self._maybeNextCycle()
            return
        self._log_decision(
            ins.method, ins.request.target, ins.word, ins.decision.rule, ins.decision.reason,
            canonical=ins.path,
        )
        # Relay exactly the bytes judged, framed by their length.
        headers = [
            (name, value)
            for name, value in ins.request.headers.raw_items()
            if name.lower() not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"Content-Length", b"%d" % len(body)))
        request = h11.Request(
            method=ins.request.method,
            target=ins.request.target,
            headers=headers,
            http_version=ins.request.http_version,
        )
        self._exchange = _Exchange(request=request, hasBody=bool(body), body=body, requestDone=True)
        self._connectUpstream()

    def _onBody(self, data: h11.Data) -> None:
        if self._inspection is not None:
            self._inspectBody(data)
            return
        if self._draining or self._exchange is None:
            return
        up = self._exchange.upstream
        if up is not None:
            self._sendUpstream(up, data)

    def _onRequestEnd(self) -> None:
        if self._inspection is not None:
            self._inspectionDone()
            return
        if self._draining or self._exchange is None:
            self._draining = False
            self._maybeNextCycle()
            return
        self._exchange.requestDone = True
        up = self._exchange.upstream
        if up is not None:
            self._sendUpstream(up, h11.EndOfMessage())

    def _sendUpstream(self, up: UpstreamProtocol, event: h11.Event) -> bool:
        """
        Send one event of the request on the daemon leg.  Whatever h11 will
        not send there ends the exchange with an answer, never a traceback.
        """
        try:
            up.send(event)
        except h11.LocalProtocolError as e:
            self._cannotRelay(up, e)
            return False
        return True

    def _cannotRelay(self, up: UpstreamProtocol, error: h11.LocalProtocolError) -> None:
        up.owner = None
        if self._exchange is not None and self._exchange.upstream is up:
            self._unregisterProducers(up)
            self._exchange.upstream = None
        up.transport.abortConnection()
        self._exchange = None
        _log.info(
            "request from {peer} ({identity}) cannot be relayed: {error}",
            peer=self.peer,
            identity=self.identity,
            error=escape(str(error)),
        )
        self._sendError(400, f"dockguard: request cannot be relayed: {error}", close=True)
        self.transport.loseConnection()

    # -- the daemon side -----------------------------------------------------

    def _connectUpstream(self) -> None:
        assert self._throttle is not None
        self._waitingUpstream = True
        self._throttle.pause("upstream")
        d = self.relay.pool.acquire()
        d.addCallbacks(self._upstreamReady, self._upstreamFailed)

    def _upstreamReady(self, up: UpstreamProtocol) -> None:
        assert self._throttle is not None
        ex = self._exchange
        if self._gone or ex is None:
            self.relay.pool.release(up)
            return
        self._waitingUpstream = False
        ex.upstream = up
        up.owner = self
        req = ex.request
        fields = _fields(req.headers)
        headers = _end_to_end(req.headers)
        if ex.wantsUpgrade:
            headers.append((b"Connection", b"Upgrade"))
            headers.append((b"Upgrade", fields.get(b"upgrade") or b"tcp"))
        if b"host" not in fields:
            headers.append((b"Host", b"docker"))
        te = fields.get(b"transfer-encoding")
        if te is not None:
            headers.append((b"Transfer-Encoding", te))
        try:
            up.send(h11.Request(method=req.method, target=req.target, headers=headers, **_PARSED))
            if ex.body is not None:
                # A judged body, sent whole (also on a retry).
                if ex.body:
                    up.send(h11.Data(data=ex.body))
                up.send(h11.EndOfMessage())
            elif ex.requestDone:
                # A retry: the (bodiless) request had already ended.
                up.send(h11.EndOfMessage())
        except h11.LocalProtocolError as e:
            self._cannotRelay(up, e)
            return
        # Flow control both ways: a slow daemon pauses the client's upload,
        # a slow client pauses the daemon's output.
        self._upThrottle = _Throttle(up.transport)
        up.transport.registerProducer(self._throttle, True)
        self.transport.registerProducer(self._upThrottle, True)
        self._throttle.resume("upstream")
        self._process()

    def _upstreamFailed(self, failure: Failure) -> None:
        assert self._throttle is not None
        self._waitingUpstream = False
        self._throttle.resume("upstream")
        if self._gone or self._exchange is None:
            return
        request, self._exchange = self._exchange.request, None
        self.relay.metrics.upstreamError("connect")
        _log.error(
            "cannot reach the Docker daemon at {socket}: {error}",
            socket=self.relay.pool.socketPath,
            error=failure.getErrorMessage(),
        )
        self._refuse(
            request,
            502,
            "dockguard: cannot reach the Docker daemon at "
            f"{self.relay.pool.socketPath}: {failure.getErrorMessage()}",
        )
        self._process()

    def _detachUpstream(self, reuse: bool) -> None:
        ex = self._exchange
        if ex is None or ex.upstream is None:
            return
        up, ex.upstream = ex.upstream, None
        self._unregisterProducers(up)
        if reuse:
            self.relay.pool.release(up)
        else:
            up.owner = None
            if up.alive:
                up.transport.loseConnection()

    def _unregisterProducers(self, up: UpstreamProtocol) -> None:
        """Undo the flow-control wiring between this client and C{up}."""
        if up.alive:
            up.transport.unregisterProducer()
        if not self._gone:
            self.transport.unregisterProducer()
        if self._upThrottle is not None and up.alive:
            # A slow client may have paused the daemon connection: it must
            # not go back to the pool paused.
            self._upThrottle.resume("backpressure")
        self._upThrottle = None
        assert self._throttle is not None
        self._throttle.resume("backpressure")

    def upstreamEvent(self, event: h11.Event) -> None:
        ex = self._exchange
        assert ex is not None
        if isinstance(event, h11.InformationalResponse):
            if event.status_code == 101 and ex.wantsUpgrade:
                self._splice(event)
            elif event.status_code != 101:
                ex.responseStarted = True
                self._write(
                    self._h11.send_with_data_passthrough(
                        h11.InformationalResponse(
                            status_code=event.status_code,
                            headers=_end_to_end(event.headers),
                            reason=event.reason,
                            **_PARSED,
                        )
                    )
                )
            return
        if isinstance(event, h11.Response):
            ex.responseStarted = True
            self._answered(event.status_code)
            if ex.hijackRoute and self._isRawStream(event):
                self._splice(event)
                return
            self._write(
                self._h11.send_with_data_passthrough(
                    h11.Response(
                        status_code=event.status_code,
                        headers=_end_to_end(event.headers),
                        reason=event.reason,
                        **_PARSED,
                    )
                )
            )
        elif isinstance(event, h11.Data):
            self._write(self._h11.send_with_data_passthrough(event))
        elif isinstance(event, h11.EndOfMessage):
            self._write(self._h11.send_with_data_passthrough(h11.EndOfMessage()))
            up = ex.upstream
            self._detachUpstream(reuse=ex.requestDone and up is not None and up.reusable())
            self._exchange = None
            if ex.requestDone:
                self._maybeNextCycle()
            elif self._smallBody(ex.request):
                # The daemon answered before the upload ended: the rest of
                # a small upload is read and dropped.
                self._drain()
            else:
                # ... and a large one closes the connection instead.
                self._linger()
        elif isinstance(event, h11.ConnectionClosed):
            pass

    @staticmethod
    def _isRawStream(response: h11.Response) -> bool:
        fields = _fields(response.headers)
        ctype = fields.get(b"content-type")
        return (
            response.status_code == 200
            and ctype is not None
            and ctype.split(b";")[0].strip().lower() in HIJACK_CONTENT_TYPES
            and b"content-length" not in fields
            and b"transfer-encoding" not in fields
        )

    def upstreamRaw(self, data: bytes) -> None:
        self.transport.write(data)

    def upstreamEnded(self, reason: Failure | None) -> None:
        if self._spliced is not None:
            # The daemon closed a hijacked stream: all output is written, end
            # the client connection too (a transport with a producer still
            # registered would wait for it before closing).
            up, self._spliced = self._spliced, None
            self._unregisterProducers(up)
            self.transport.loseConnection()
            return
        ex = self._exchange
        if ex is None:
            return
        up = ex.upstream
        self._detachUpstream(reuse=False)
        if not ex.responseStarted:
            replayable = not ex.hasBody or ex.body is not None
            if up is not None and up.reused and replayable and not ex.retried:
                # A pooled connection the daemon had closed meanwhile: the
                # request never reached it, so it is sent again once.
                ex.retried = True
                self._connectUpstream()
                return
            self._exchange = None
            self.relay.metrics.upstreamError("closed")
            message = reason.getErrorMessage() if reason is not None else "connection closed"
            _log.error(
                "the Docker daemon closed the connection before answering: {error}",
                error=message,
            )
            self._draining = not ex.requestDone
            self._sendError(
                502,
                f"dockguard: the Docker daemon closed the connection before answering ({message})",
                close=not ex.requestDone,
            )
            if not ex.requestDone:
                self.transport.loseConnection()
            else:
                self._maybeNextCycle()
            return
        # Mid-response: the only honest signal left is to close, so the
        # client sees a truncated message rather than a complete-looking one.
        self._exchange = None
        self.transport.loseConnection()

    # -- hijack --------------------------------------------------------------

    def _splice(self, event: h11.InformationalResponse | h11.Response) -> None:
        """
        The daemon hijacked the connection: send its response head as it
        sent it, then pass bytes both ways untouched.
        """
        ex = self._exchange
        assert ex is not None and ex.upstream is not None
        up = ex.upstream
        self._exchange = None
        self._answered(event.status_code)
        self._cancelTimer()
        head = [b"HTTP/1.1 %d %s\r\n" % (event.status_code, event.reason)]
        for name, value in event.headers.raw_items():
            head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"\r\n")
        self.transport.writeSequence(head)
        fromDaemon, daemonClosed = up.h11.trailing_data
        fromClient, clientClosed = self._h11.trailing_data
        up.raw = True
        self._spliced = up
        assert self._throttle is not None
        self._throttle.resume("pipeline")
        _log.info(
            "hijacked {identity} {method} {path}: relaying raw streams",
            identity=self.identity,
            method=escape(ex.request.method.decode("ascii", "replace")),
            path=escape(ex.request.target.decode("ascii", "replace")),
        )
        if fromDaemon:
            self.transport.write(fromDaemon)
        if fromClient:
            up.transport.write(fromClient)
        if clientClosed:
            up.transport.loseWriteConnection()
        if daemonClosed:
            self.upstreamEnded(None)

    # -- writing -------------------------------------------------------------

    def _write(self, chunks: list[bytes]) -> None:
        if chunks:
            self.transport.writeSequence(_as_bytes(chunks))

    def _maybeNextCycle(self) -> None:
        """
        After a response: close if the connection must close, or start the
        next request cycle once the current request is fully read.
        """
        assert self._throttle is not None
        if self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is h11.MUST_CLOSE:
            self.transport.loseConnection()
            return
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._draining = False
            self._h11.start_next_cycle()
            self._throttle.resume("pipeline")
            self._requestMethod = None
            pending, closed = self._h11.trailing_data
            if pending:
                # The next request has begun: its head is on the header clock.
                self._headStarted = True
                self._startTimer(self.relay.timeouts.header)
            else:
                self._startTimer(self.relay.timeouts.idle)
            if pending or closed:
                # A pipelined request is waiting in the buffer already.
                self.relay.reactor.callLater(0, self._process)


#: h11 events handled per connection per reactor turn (see _process).
EVENTS_PER_TURN = 64

_HEAD_TOO_LARGE = "the request head is larger than {} bytes (limits.max_head_bytes)"


def _head_size(request: h11.Request) -> int:
    """The size of a request head as sent, give or take optional whitespace."""
    size = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n\r\n")
    for name, value in request.headers.raw_items():
        size += len(name) + len(value) + 4
    return size


def _as_bytes(chunks: list[bytes]) -> list[bytes]:
    # h11 hands body data out as bytearray; transports take bytes only.
    return [c if type(c) is bytes else bytes(c) for c in chunks]


def _peer_key(peer: object) -> str | None:
    """
    What connections are counted per peer by: the IP address, or for IPv6
    its /64 (one host gets a whole /64); None for Unix socket callers.
    """
    host = getattr(peer, "host", None)
    if not isinstance(host, str):
        return None
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


def _format_peer(peer: object) -> str:
    host = getattr(peer, "host", None)
    port = getattr(peer, "port", None)
    if host is not None:
        return f"{host}:{port}"
    name = getattr(peer, "name", None)
    return f"unix:{name.decode() if isinstance(name, bytes) else name or ''}"


class ClientFactory(Factory):
    """Builds a L{ClientProtocol} per connection for one listener."""

    def __init__(self, relay: Relay, listener: Listener) -> None:
        self.relay = relay
        self.listener = listener

    def buildProtocol(self, addr: object) -> ClientProtocol:
        return ClientProtocol(self.relay, self.listener)
