"""
The client's side of the relay: one L{ClientProtocol} per accepted
connection, and the L{Relay} they share.

A connection reads HTTP/1.1 requests one at a time, judges each
(L{dockguard.relay.verdict}, and for a scoped or inspected request a look-up
or the body read whole), refuses it or hands it to an
L{Exchange<dockguard.relay.exchange.Exchange>} that relays it to the daemon,
and after a hijack becomes a L{Splice<dockguard.relay.splice.Splice>}.  Its
states and every move between them are in L{dockguard.relay.states}.

Nothing of a refused request ever reaches the daemon: an exchange is only
made once the request is allowed (CONNECTING).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import attrs
from cryptography import x509
from OpenSSL.crypto import X509
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IReactorTime,
    ISSLTransport,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from dockguard.identities import IdentityRefused, identity_from_certificate
from dockguard.interfaces import StreamTransport, stream
from dockguard.logs import escape
from dockguard.metrics import Metrics, NoMetrics
from dockguard.owners import ExecOwners
from dockguard.policy import Policy
from dockguard.relay.admission import HANDSHAKE, PLAIN, Admission, format_peer, peer_key
from dockguard.relay.daemon import DaemonPool, ResponseHead
from dockguard.relay.decisions import DecisionLine
from dockguard.relay.exchange import Exchange
from dockguard.relay.framing import (
    BODY,
    DONE,
    FramingError,
    Head,
    RequestReader,
    json_error,
    request_head,
)
from dockguard.relay.judging import Go, Judge, Outcome, Stop
from dockguard.relay.lookup import Resolver
from dockguard.relay.refusals import Fate, fate_of_body
from dockguard.relay.scoping import (
    ExecCapture,
    answer_view,
)
from dockguard.relay.settings import Limits, Listener, Timeouts
from dockguard.relay.splice import Splice, Throttle, hijack_head
from dockguard.relay.states import (
    CLOSED,
    CONNECTING,
    DRAINING,
    FORWARDING,
    HEAD,
    IDLE,
    INSPECTING,
    LINGERING,
    READS_BODY,
    RESOLVING,
    SPLICED,
    TRANSITIONS,
    State,
)
from dockguard.relay.verdict import Forward, Inspect, Verdicts

__all__ = ["ClientFactory", "ClientProtocol", "EVENTS_PER_TURN", "Relay", "State"]

_log = Logger(namespace="dockguard")

#: Chunks of a chunked body read per connection per reactor turn: a body
#: sent in one-byte chunks cannot keep the process from everyone else.
EVENTS_PER_TURN = 64


@attrs.define
class Relay:
    """
    Everything shared by all client connections: the policy, the daemon
    pool, the clock and limits.  The policy may be replaced at run time;
    each new request is judged by the policy current at that moment.
    """

    reactor: IReactorTime
    pool: DaemonPool
    policy: Policy
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    #: Serials of client certificates whose near expiry was already logged.
    expiryWarned: set[int] = attrs.Factory(set)
    metrics: Metrics = attrs.Factory(NoMetrics)
    admission: Admission = attrs.field(init=False)
    #: What became of recent request heads, for the policy in force.
    verdicts: Verdicts = attrs.Factory(Verdicts)
    #: Who created each exec instance through dockguard.
    execOwners: ExecOwners = attrs.Factory(ExecOwners)
    #: Names to resources, asked of the daemon (scoped requests).
    resolver: Resolver = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.admission = Admission(self.reactor.seconds, lambda: self.metrics)
        self.resolver = Resolver(self.pool, self.reactor)

    @property
    def connections(self) -> set[Any]:
        """The client connections open now."""
        return self.admission.connections

    @property
    def perPeer(self) -> dict[str, int]:
        return self.admission.perPeer

    @property
    def perBudget(self) -> dict[str, int]:
        return self.admission.perBudget


@attrs.define
class _Inspection:
    """A request whose body the escalation guards read whole before judging."""

    verdict: Inspect
    #: The body so far, in one buffer: a body sent in one-byte chunks must
    #: not cost an object per chunk.
    body: bytearray = attrs.Factory(bytearray)


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
        self.state = IDLE
        limits = relay.limits
        self.reader = RequestReader(limits.head_bytes, limits.headers, EVENTS_PER_TURN)
        self._peerKey: str | None = None
        #: The connection budget this connection counts in (see Admission).
        self._budget: str | None = None
        self._admitted = False
        #: Pauses this connection's reading (set once connected).
        self.throttle: Throttle
        #: The request being answered, and what became of it.
        self.head: Head | None = None
        self.exchange: Exchange | None = None
        self._inspection: _Inspection | None = None
        self._splice: Splice | None = None
        #: The client ended its side (a FIN outside a hijack).
        self.eof = False
        #: The answer said Connection: close.
        self._closeAfter = False
        #: After a refusal not worth reading: this many more bytes are dropped.
        self._lingering = 0
        #: One clock per connection: the deadline moves, the timer catches up.
        self._deadline: float | None = None
        self._timer: IDelayedCall | None = None
        #: The rest of a chunked body waits for this call (see _read).
        self._nextTurn: IDelayedCall | None = None
        #: How this caller's requests are judged (made at its first request).
        self._judge: Judge | None = None
        #: A look-up is answering within the call that asked (see _lookUp).
        self._inline = False
        #: One line per decision (the relayed request's once its answer starts).
        self.decisions = DecisionLine(relay.reactor.seconds, lambda: relay.metrics, listener.name)

    @property
    def streaming(self) -> bool:
        """A response is being relayed now."""
        return self.exchange is not None and self.exchange.responseStarted

    @property
    def hijacked(self) -> bool:
        return self._splice is not None

    def _to(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise AssertionError(f"relay state {self.state.value} cannot move to {state.value}")
        self.state = state

    # -- connection life ---------------------------------------------------

    def connectionMade(self) -> None:
        self.link: StreamTransport = stream(self.transport)
        peer = self.link.getPeer()
        self.peer = self.decisions.peer = format_peer(peer)
        self.throttle = Throttle(self.link)
        admission, limits = self.relay.admission, self.relay.limits
        if not self.listener.admit(peer):
            admission.turnAway("allow-list", "source not in the allow-list", self.peer, self.listener.name)
            self._close(abort=True)
            return
        key = peer_key(peer)
        budget = None if key is None else HANDSHAKE if self.listener.tls else PLAIN
        refused = admission.refusal(limits, key, budget)
        if refused is not None:
            self._turnAway(*refused)
            return
        admission.admit(self, key)
        self._admitted = True
        self._peerKey = key
        self._takeBudget(budget)
        if key is not None:
            # A response the daemon sends in pieces must not wait for the
            # client's delayed ACK (Nagle): 40 ms a request otherwise.
            # Under TLS this reaches the TCP transport through the wrapper.
            cast(ITCPTransport, self.transport).setTcpNoDelay(True)
        self._arm(self.relay.timeouts.header)

    def _turnAway(self, kind: str, reason: str) -> None:
        """
        Too many connections: a plain listener answers 503 and closes; a TLS
        one drops the connection before spending a handshake on it.
        """
        self.relay.admission.turnAway(kind, reason, self.peer, self.listener.name)
        if self.listener.tls:
            self._close(abort=True)
            return
        self.link.write(json_error(503, f"dockguard: too many connections: {reason}; try again later", close=True))
        self._close()

    def _takeBudget(self, budget: str | None) -> None:
        """Count this connection in C{budget} (and no longer in the one before)."""
        self.relay.admission.move(self._budget, budget)
        self._budget = budget

    def handshakeCompleted(self) -> None:
        cert = cast("X509 | None", cast(ISSLTransport, self.transport).getPeerCertificate())
        try:
            if cert is None:
                raise IdentityRefused("no client certificate was presented")
            leaf = cert.to_cryptography()
            self.identity = identity_from_certificate(leaf)
            self.certificate = leaf
            self._warnIfExpiring(leaf)
            if self.state is IDLE:
                self._arm(self.relay.timeouts.idle)
            self._takeBudget(None)  # a valid certificate: out of the handshake budget
        except IdentityRefused as e:
            _log.warn(
                "refused TLS client {peer} on {listener}: {reason}",
                peer=self.peer,
                listener=self.listener.name,
                reason=str(e),
            )
            self.identity = None
            self._close(abort=True)

    def _warnIfExpiring(self, leaf: x509.Certificate) -> None:
        left = leaf.not_valid_after_utc - datetime.now(UTC)
        if left.days < 30 and leaf.serial_number not in self.relay.expiryWarned:
            self.relay.expiryWarned.add(leaf.serial_number)
            _log.warn(
                "the client certificate of {identity} (serial {serial}) expires in {days} days",
                identity=self.identity,
                serial=f"{leaf.serial_number:x}",
                days=left.days,
            )

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.state = CLOSED
        self._deadline = None
        for call in (self._timer, self._nextTurn):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._nextTurn = None
        if self._admitted:
            self._admitted = False
            self.relay.admission.leave(self, self._peerKey)
        self._takeBudget(None)
        self.decisions.answered(None)
        splice, self._splice = self._splice, None
        if splice is not None:
            splice.close()
        ex, self.exchange = self.exchange, None
        if ex is not None:
            # The client left mid-exchange: the daemon connection cannot be
            # reused (its response is unfinished), so it goes too.
            ex.abandon()

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
        self._close(abort=True)

    def _close(self, abort: bool = False) -> None:
        """Close the client connection; nothing more is read from it."""
        if self.state is not CLOSED:
            self._to(CLOSED)
        self._deadline = None
        if abort:
            self.link.abortConnection()
        else:
            self.link.loseConnection()

    def readConnectionLost(self) -> None:
        state = self.state
        if state is SPLICED:
            assert self._splice is not None
            self._splice.clientDone()
            return
        if state is LINGERING or state is CLOSED:
            self._close()
            return
        # A FIN outside a hijack: a client that closed and one that only
        # stopped sending look the same until a write fails, which on a
        # quiet `events` stream is never.  Once what it sent is answered,
        # the connection closes, so no daemon connection is left behind.
        self.eof = True
        ex = self.exchange
        if state is FORWARDING and ex is not None and ex.requestDone and not ex.wantsUpgrade:
            self._close()
            return
        self.readOn()

    def writeConnectionLost(self) -> None:
        pass

    # -- the clock -------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        """Run L{_timedOut} in C{seconds}, unless re-armed or disarmed first."""
        clock = self.relay.reactor
        deadline = clock.seconds() + seconds
        self._deadline = deadline
        timer = self._timer
        if timer is None:
            self._timer = clock.callLater(seconds, self._tick)
        elif timer.getTime() > deadline:
            timer.reset(seconds)

    def _tick(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        now = self.relay.reactor.seconds()
        if now < deadline:
            self._timer = self.relay.reactor.callLater(deadline - now, self._tick)
            return
        self._deadline = None
        self._timedOut()

    def _timedOut(self) -> None:
        if self.state is HEAD:
            self._sendError(
                408,
                f"dockguard: the request head did not arrive within {self.relay.timeouts.header:g} s",
                close=True,
            )
        self._close()

    # -- reading requests ----------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        state = self.state
        if state is SPLICED:
            assert self._splice is not None
            self._splice.fromClient(data)
            return
        if state is LINGERING:
            self._lingering -= len(data)
            if self._lingering < 0:
                self._close()
            return
        if state is CLOSED or self.identity is None:
            # TLS identity was refused, or the handshake is still going: no
            # byte is read as HTTP without an identity.
            return
        self.reader.receive(data)
        if state is IDLE:
            self._to(HEAD)
            self._arm(self.relay.timeouts.header)
        self.readOn()

    def readOn(self) -> None:
        """Read as far as the state allows: heads, bodies, the next request."""
        if self._nextTurn is not None:
            return  # the rest comes in the turn already scheduled
        reader = self.reader
        while True:
            state = self.state
            if state is HEAD:
                try:
                    head = reader.head()
                except FramingError as e:
                    self._malformed(e)
                    return
                if head is None:
                    if self.eof:
                        if reader.waiting:
                            self._malformed(FramingError(400, "the connection ended in the middle of a request head"))
                        else:
                            self._close()
                    return
                self._onHead(head)
                continue
            if state in READS_BODY and reader.state is BODY:
                try:
                    data = reader.body()
                except FramingError as e:
                    self._malformed(e)
                    return
                if data:
                    self._onBody(data)
                    if self.state is not state or reader.failed:
                        continue
                if reader.state is DONE:
                    self._onRequestEnd()
                    continue
                if reader.more:
                    self.throttle.pause("turn")
                    self._nextTurn = self.relay.reactor.callLater(0, self._continue)
                    return
                if self.eof:
                    self._malformed(FramingError(400, "the connection ended in the middle of a request body"))
                return
            if state is IDLE and self.eof and not reader.waiting:
                self._close()
            elif reader.waiting > self.relay.limits.head_bytes:
                # A pipelined request waits until this one is answered: keep
                # reading (so a client that leaves is noticed), but not more
                # than a request head's worth.
                self.throttle.pause("pipeline")
            return

    def _continue(self) -> None:
        self._nextTurn = None
        self.throttle.resume("turn")
        self.readOn()

    def _malformed(self, error: FramingError) -> None:
        _log.info(
            "malformed request from {peer} ({identity}): {error}",
            peer=self.peer,
            identity=self.identity,
            error=escape(error.reason),
        )
        if error.method:
            self.decisions.start()
            self.decisions.record(
                self.identity, error.method, error.target, "refuse", error.rule, error.reason, None, "-", error.status
            )
        ex, self.exchange = self.exchange, None
        if ex is not None:
            ex.abandon()
        if ex is None or not ex.responseStarted:
            if error.rule.startswith("limits."):
                message = f"dockguard: request refused: {error.reason}"
            else:
                message = f"dockguard: malformed HTTP request: {error.reason}"
            self._sendError(error.status, message, close=True)
        self._close()

    def _onHead(self, head: Head) -> None:
        self._deadline = None
        self.head = head
        self._closeAfter = False
        self.decisions.start()
        identity = self.identity
        assert identity is not None
        relay, listener = self.relay, self.listener
        verdict = relay.verdicts.decide(
            head.method,
            head.target,
            tuple(head.values(b"content-type")),
            head.has_body,
            identity,
            relay.policy,
            listener.name if listener.learn else None,
        )
        judge = self._judge
        if judge is None or judge.identity != identity:
            judge = self._judge = Judge(identity, relay.resolver, relay.execOwners, self.decisions, listener.learn)
        if type(verdict) is Inspect:
            limit = relay.limits.inspected_body
            if head.length > limit:
                self._outcome(judge.tooLarge(head, verdict, limit))
                return
            self._inspection = _Inspection(verdict)
            self._to(INSPECTING)
            if self.reader.state is DONE:
                self._inspectionDone()
            return
        self._outcome(judge.verdict(head, verdict))

    # -- judged: relayed or refused -----------------------------------------------

    def _outcome(self, outcome: Outcome | Deferred[Outcome]) -> None:
        """Relay or refuse the request, once judged (RESOLVING until a look-up answers)."""
        if isinstance(outcome, Deferred):
            self._lookUp(outcome)
        elif type(outcome) is Go:
            self._go(outcome)
        else:
            assert type(outcome) is Stop
            self._refuse(outcome.status, outcome.message)

    def _go(self, go: Go) -> None:
        """Relay the request, allowed: as it comes, or with the body judged."""
        head = self.head
        identity = self.identity
        assert head is not None and identity is not None
        verdict, body = go.verdict, go.body
        if body is None:
            ex = Exchange(
                self,
                head,
                head=request_head(head, target=go.target),
                hijack=type(verdict) is Forward and verdict.hijack,
                wantsUpgrade=b"upgrade" in head.fields,
                chunkedUp=head.length < 0,
                requestDone=self.reader.state is DONE,
            )
        else:
            ex = Exchange(
                self,
                head,
                head=request_head(head, len(body), go.target),
                hijack=False,
                wantsUpgrade=False,
                chunkedUp=False,
                requestDone=True,
                body=body,
            )
        plan = verdict.plan
        if plan is not None:
            # How the answer is narrowed, and what is recorded of it.
            ex.view = answer_view(plan, go.decision, identity)
            if plan.exec_create:
                ex.capture = ExecCapture(self.relay.execOwners, identity)
        self._relay(ex)

    def _lookUp(self, looking: Deferred[Outcome]) -> None:
        """
        RESOLVING until C{looking} (a judgement waiting on the daemon)
        fires, then its outcome for this same request.  A look-up that
        answers at once goes on within this call, so the read loop that
        called it carries on; one that answers later reads on itself.
        """
        head = self.head
        self._to(RESOLVING)
        self._inline = True
        looking.addCallback(self._lookedUp, head).addErrback(self._resolveCrashed)
        self._inline = False

    def _lookedUp(self, outcome: Outcome, head: Head | None) -> None:
        if self.state is not RESOLVING or self.head is not head:
            return  # the caller left meanwhile
        inline = self._inline
        self._outcome(outcome)
        if not inline and self.state is not CLOSED:
            self.throttle.resume("pipeline")
            self.readOn()

    def _resolveCrashed(self, failure: Failure) -> None:
        _log.failure("dockguard failed judging a scoped request", failure)
        if self.state is not CLOSED:
            self._sendError(500, "dockguard: internal error while judging the request's scope", close=True)
            self._close()

    # -- refusing ------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """
        Answer a request that is not relayed; what becomes of the rest of
        its body is L{dockguard.relay.refusals.fate_of_body}'s to say.
        """
        head = self.head
        assert head is not None
        fate = fate_of_body(head, self.reader.state is DONE, self.relay.limits.drain_bytes)
        self._sendError(status, message, close=fate is Fate.LINGER or fate is Fate.CLOSE)
        if fate is Fate.CLOSE:
            self._close()
        elif fate is Fate.LINGER:
            self._linger()
        else:
            self._drain()

    def _smallBody(self, head: Head) -> bool:
        """Whether the body of C{head} is known to be small enough to drain."""
        return fate_of_body(head, False, self.relay.limits.drain_bytes) is Fate.DRAIN

    def _drain(self) -> None:
        """The answer is out: read and drop the rest of the request."""
        if self.reader.state is DONE:
            self._nextRequest()
            return
        self._to(DRAINING)
        self._arm(self.relay.timeouts.drain)

    def _linger(self) -> None:
        """
        The answer is out and the rest of the request is not worth reading:
        drop what the client is still sending (at most
        C{limits.max_drain_bytes}, for at most C{timeouts.drain}, without
        parsing it) so the answer is not lost to a reset, then close.
        """
        self._to(LINGERING)
        self._lingering = self.relay.limits.drain_bytes
        self.throttle.resume("pipeline")
        self._arm(self.relay.timeouts.drain)

    def _sendError(self, status: int, message: str, close: bool = False) -> None:
        self.decisions.answered(status)
        head = self.head
        self.link.write(json_error(status, message, close, head_only=head is not None and head.method == b"HEAD"))
        if close:
            self._closeAfter = True

    # -- bodies --------------------------------------------------------------------

    def _onBody(self, data: bytes) -> None:
        state = self.state
        if state is FORWARDING:
            ex = self.exchange
            assert ex is not None
            ex.send(data)
        elif state is INSPECTING:
            ins = self._inspection
            assert ins is not None
            if len(ins.body) + len(data) > self.relay.limits.inspected_body:
                self._inspection = None
                head, judge = self.head, self._judge
                assert head is not None and judge is not None
                self._outcome(judge.tooLarge(head, ins.verdict, self.relay.limits.inspected_body))
                return
            ins.body += data

    def _onRequestEnd(self) -> None:
        state = self.state
        if state is FORWARDING:
            ex = self.exchange
            assert ex is not None
            ex.sent()
        elif state is INSPECTING:
            self._inspectionDone()
        elif state is DRAINING:
            self._nextRequest()

    def _inspectionDone(self) -> None:
        ins, self._inspection = self._inspection, None
        head, judge = self.head, self._judge
        assert ins is not None and head is not None and judge is not None
        body = bytes(ins.body)
        ins.body.clear()
        self._outcome(judge.body(head, ins.verdict, body))

    # -- the exchange ------------------------------------------------------------

    def _relay(self, ex: Exchange) -> None:
        """Relay an allowed request (CONNECTING until a daemon connection takes it)."""
        self.exchange = ex
        self._to(CONNECTING)
        ex.connect()

    # How the exchange ends (its calls):

    def exchangeConnected(self) -> None:
        """The request went to the daemon."""
        self._to(FORWARDING)

    def exchangeAgain(self) -> None:
        """A pooled connection was found closed: the request goes again."""
        assert self.exchange is not None
        self._relay(self.exchange)

    def exchangeRefused(self, status: int, message: str) -> None:
        """The request could not be sent (no daemon connection)."""
        self.exchange = None
        self._refuse(status, message)
        self.readOn()

    def exchangeLost(self, message: str) -> None:
        """The daemon closed the connection before answering."""
        ex, self.exchange = self.exchange, None
        assert ex is not None
        self._sendError(502, message, close=not ex.requestDone)
        if ex.requestDone:
            self._nextRequest()
        else:
            self._close()

    def exchangeBroken(self, error: str | None = None) -> None:
        """
        The answer cannot be relayed to its end: the connection closes
        (after C{error}, when nothing of the answer was sent yet).
        """
        self.exchange = None
        if error is not None:
            self._sendError(502, error, close=True)
        self._close()

    def exchangeEnded(self, ex: Exchange) -> None:
        """The answer is out."""
        self.exchange = None
        head = self.head
        assert head is not None
        if ex.close:
            self._close()
        elif ex.requestDone:
            self._nextRequest()
        elif self._smallBody(head):
            # The daemon answered before the upload ended: the rest of a
            # small upload is read and dropped ...
            self._drain()
            self.readOn()
        else:
            # ... and a large one closes the connection instead.
            self._linger()

    def exchangeHijacked(self, response: ResponseHead) -> None:
        """
        The daemon hijacked the connection: send its response head as it
        sent it, then pass bytes both ways untouched.
        """
        ex, self.exchange = self.exchange, None
        head = self.head
        assert ex is not None and ex.daemon is not None and ex.wiring is not None and head is not None
        self.decisions.answered(response.status)
        self._deadline = None
        self.link.write(hijack_head(response.status, response.reason, response.headers))
        splice = self._splice = Splice(ex.wiring, self._spliceEnded)
        fromDaemon = ex.daemon.goRaw(splice)
        fromClient = self.reader.take_rest()
        self._to(SPLICED)
        self.throttle.resume("pipeline")
        _log.info(
            "hijacked {identity} {method} {path}: relaying raw streams",
            identity=self.identity,
            method=escape(head.method.decode("ascii", "replace")),
            path=escape(head.target.decode("ascii", "replace")),
        )
        if fromDaemon:
            splice.daemonRaw(fromDaemon)
        if fromClient:
            splice.fromClient(fromClient)
        if self.eof:
            splice.clientDone()

    def _spliceEnded(self) -> None:
        """
        The daemon closed a hijacked stream: all output is written, the
        client connection ends too (a transport with a producer still
        registered would wait for it before closing).
        """
        splice, self._splice = self._splice, None
        if splice is not None:
            splice.wiring.unwire(clientOpen=self.state is not CLOSED)
            self._close()

    # -- between requests ------------------------------------------------------

    def _nextRequest(self) -> None:
        """
        The request is answered and read: close if the connection must
        close, or start the next request (which may be waiting already).
        """
        head = self.head
        if self._closeAfter or head is None or not head.keep_alive:
            # RFC 9112 section 9.6: nothing after a request that closes the
            # connection is read.
            self._close()
            return
        self.reader.next_request()
        self.head = None
        self.throttle.resume("pipeline")
        if self.reader.waiting:
            # The next request has begun: its head is on the header clock,
            # and read in the next turn.
            self._to(HEAD)
            self._arm(self.relay.timeouts.header)
            if self._nextTurn is None:
                self._nextTurn = self.relay.reactor.callLater(0, self._continueTurn)
        elif self.eof:
            self._close()
        else:
            self._to(IDLE)
            self._arm(self.relay.timeouts.idle)

    def _continueTurn(self) -> None:
        self._nextTurn = None
        self.readOn()


class ClientFactory(Factory):
    """Builds a L{ClientProtocol} per connection for one listener."""

    def __init__(self, relay: Relay, listener: Listener) -> None:
        self.relay = relay
        self.listener = listener

    def buildProtocol(self, addr: object) -> ClientProtocol:
        return ClientProtocol(self.relay, self.listener)
