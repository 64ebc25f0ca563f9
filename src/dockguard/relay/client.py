"""
The client's side of the relay: one L{ClientProtocol} per accepted
connection, and the L{Relay} they share.

A connection is always in one L{State}; L{TRANSITIONS} is the whole list of
moves, and every move goes through L{ClientProtocol._to}.  A request's life:

    IDLE ─bytes─▶ HEAD ─head read, judged (verdict)─┬─▶ CONNECTING ─▶ FORWARDING ─▶ IDLE
                                                    ├─▶ INSPECTING (body read whole, judged) ─▶ CONNECTING
                                                    ├─▶ RESOLVING (scope: the resource looked up) ─▶ CONNECTING
                                                    └─▶ refused: DRAINING (small body dropped) ─▶ IDLE
                                                                 LINGERING (answer out, closing)
    FORWARDING ─daemon hijacks─▶ SPLICED (raw bytes both ways until either side ends)
    any ─▶ CLOSED

Where does a refused request's body go?  L{dockguard.relay.refusals}: a
small one is read and dropped (DRAINING), a large or unknown one is not read
at all (LINGERING, then the connection closes).  Nothing of a refused request
ever reaches the daemon: a daemon connection is only asked for in
CONNECTING.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
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

from dockguard.guards import CLOSED as NO_GUARDS
from dockguard.guards import judge
from dockguard.hostpaths import resolve as resolve_host_path
from dockguard.identities import IdentityRefused, identity_from_certificate
from dockguard.interfaces import StreamTransport, stream
from dockguard.logs import escape
from dockguard.metrics import Metrics, NoMetrics
from dockguard.owners import ExecOwners
from dockguard.policy import Decision, Policy
from dockguard.relay.admission import HANDSHAKE, PLAIN, Admission, format_peer, peer_key
from dockguard.relay.daemon import CHUNKED, TO_EOF, DaemonConnection, DaemonPool, ResponseHead
from dockguard.relay.decisions import DecisionLine
from dockguard.relay.framing import (
    BODY,
    DONE,
    FramingError,
    Head,
    RequestReader,
    end_to_end,
    json_error,
    request_head,
)
from dockguard.relay.lookup import Resolver
from dockguard.relay.refusals import Fate, fate_of_body
from dockguard.relay.scoping import (
    MAX_VIEWED,
    Allowed,
    Denied,
    ExecCapture,
    Unreadable,
    View,
    answer_view,
    judge_create,
    judge_named,
    judge_references,
)
from dockguard.relay.settings import Limits, Listener, Timeouts
from dockguard.relay.splice import Splice, Throttle, hijack_head
from dockguard.relay.verdict import Forward, Inspect, Plan, Refuse, Verdicts

__all__ = ["ClientFactory", "ClientProtocol", "EVENTS_PER_TURN", "Relay", "State"]

_log = Logger(namespace="dockguard")

#: Chunks of a chunked body read per connection per reactor turn: a body
#: sent in one-byte chunks cannot keep the process from everyone else.
EVENTS_PER_TURN = 64

HIJACK_CONTENT_TYPES = frozenset(
    {
        b"application/vnd.docker.raw-stream",
        b"application/vnd.docker.multiplexed-stream",
    }
)


class State(enum.Enum):
    IDLE = "idle"  # between requests, on the idle clock
    HEAD = "head"  # a request head is arriving, on the header clock
    INSPECTING = "inspecting"  # reading a body whole to judge it
    RESOLVING = "resolving"  # looking up the resource the request names (scope)
    CONNECTING = "connecting"  # allowed: waiting for a daemon connection
    FORWARDING = "forwarding"  # the request and its answer are relayed
    DRAINING = "draining"  # refused: the rest of a small body is dropped
    LINGERING = "lingering"  # refused: the answer is out, closing
    SPLICED = "spliced"  # hijacked: raw bytes both ways
    CLOSED = "closed"

    # Members are singletons: identity is equality, so the identity hash
    # (C, not Enum's Python-level one) serves the transition table.
    __hash__ = object.__hash__


IDLE, HEAD, INSPECTING, RESOLVING, CONNECTING = (
    State.IDLE,
    State.HEAD,
    State.INSPECTING,
    State.RESOLVING,
    State.CONNECTING,
)
FORWARDING, DRAINING, LINGERING, SPLICED, CLOSED = (
    State.FORWARDING,
    State.DRAINING,
    State.LINGERING,
    State.SPLICED,
    State.CLOSED,
)

#: Every move a connection may make.  (A refusal answered at once goes
#: straight back to IDLE, or to DRAINING/LINGERING.)
TRANSITIONS: dict[State, frozenset[State]] = {
    IDLE: frozenset({HEAD, CLOSED}),
    HEAD: frozenset({INSPECTING, RESOLVING, CONNECTING, DRAINING, LINGERING, IDLE, HEAD, CLOSED}),
    INSPECTING: frozenset({RESOLVING, CONNECTING, DRAINING, LINGERING, IDLE, HEAD, CLOSED}),
    RESOLVING: frozenset({CONNECTING, DRAINING, LINGERING, IDLE, HEAD, CLOSED}),
    CONNECTING: frozenset({FORWARDING, DRAINING, LINGERING, IDLE, HEAD, CLOSED}),
    FORWARDING: frozenset({IDLE, HEAD, SPLICED, CONNECTING, DRAINING, LINGERING, CLOSED}),
    DRAINING: frozenset({IDLE, HEAD, CLOSED}),
    LINGERING: frozenset({CLOSED}),
    SPLICED: frozenset({CLOSED}),
    CLOSED: frozenset({CLOSED}),
}

#: The states in which a request body is being read (and where it goes).
_READS_BODY = frozenset({INSPECTING, FORWARDING, DRAINING})


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


@attrs.define
class _Exchange:
    """One request relayed to the daemon, and its answer."""

    #: The request head as sent to the daemon.
    head: bytes
    hijack: bool
    wantsUpgrade: bool
    #: The client's body is chunked: it goes on chunked, framed again.
    chunkedUp: bool
    requestDone: bool
    daemon: DaemonConnection | None = None
    #: A body read whole and judged before anything went to the daemon.
    body: bytes | None = None
    #: How the caller sees the answer (a scope or a redaction narrows it).
    view: View | None = None
    #: The answer, read whole for the view (C{view.whole}), and its head.
    held: bytearray | None = None
    heldHead: ResponseHead | None = None
    #: Records the owner of the exec instance the request creates.
    capture: ExecCapture | None = None
    status: int = 0
    responseStarted: bool = False
    #: The answer goes to the client chunked, framed again.
    chunkedDown: bool = False
    #: The connection closes once the answer is out.
    close: bool = False
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
        self.state = IDLE
        limits = relay.limits
        self.reader = RequestReader(limits.head_bytes, limits.headers, EVENTS_PER_TURN)
        self._peerKey: str | None = None
        #: The connection budget this connection counts in (see Admission).
        self._budget: str | None = None
        self._admitted = False
        self._throttle: Throttle | None = None
        self._daemonThrottle: Throttle | None = None
        #: The request being answered, and what became of it.
        self._head: Head | None = None
        self._exchange: _Exchange | None = None
        self._inspection: _Inspection | None = None
        self._splice: Splice | None = None
        #: The client ended its side (a FIN outside a hijack).
        self._eof = False
        #: The answer said Connection: close.
        self._closeAfter = False
        #: After a refusal not worth reading: this many more bytes are dropped.
        self._lingering = 0
        #: One clock per connection: the deadline moves, the timer catches up.
        self._deadline: float | None = None
        self._timer: IDelayedCall | None = None
        #: The rest of a chunked body waits for this call (see _read).
        self._nextTurn: IDelayedCall | None = None
        #: A scope look-up is answering within the call that asked (see _resolved).
        self._inline = False
        #: One line per decision (the relayed request's once its answer starts).
        self.decisions = DecisionLine(relay.reactor.seconds, lambda: relay.metrics, listener.name)

    @property
    def streaming(self) -> bool:
        """A response is being relayed now."""
        return self._exchange is not None and self._exchange.responseStarted

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
        self._throttle = Throttle(self.link)
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
            self._unwire(splice.daemon)
            splice.daemon.close()
        ex, self._exchange = self._exchange, None
        if ex is not None and ex.daemon is not None:
            # The client left mid-exchange: the daemon connection cannot be
            # reused (its response is unfinished), so it goes too.
            self._unwire(ex.daemon)
            ex.daemon.close(abort=True)

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
        self._eof = True
        ex = self._exchange
        if state is FORWARDING and ex is not None and ex.requestDone and not ex.wantsUpgrade:
            self._close()
            return
        self._read()

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
        self._read()

    def _read(self) -> None:
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
                    if self._eof:
                        if reader.waiting:
                            self._malformed(FramingError(400, "the connection ended in the middle of a request head"))
                        else:
                            self._close()
                    return
                self._onHead(head)
                continue
            if state in _READS_BODY and reader.state is BODY:
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
                    assert self._throttle is not None
                    self._throttle.pause("turn")
                    self._nextTurn = self.relay.reactor.callLater(0, self._continue)
                    return
                if self._eof:
                    self._malformed(FramingError(400, "the connection ended in the middle of a request body"))
                return
            if state is IDLE and self._eof and not reader.waiting:
                self._close()
            elif reader.waiting > self.relay.limits.head_bytes and self._throttle is not None:
                # A pipelined request waits until this one is answered: keep
                # reading (so a client that leaves is noticed), but not more
                # than a request head's worth.
                self._throttle.pause("pipeline")
            return

    def _continue(self) -> None:
        assert self._throttle is not None
        self._nextTurn = None
        self._throttle.resume("turn")
        self._read()

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
        ex, self._exchange = self._exchange, None
        if ex is not None and ex.daemon is not None:
            self._unwire(ex.daemon)
            ex.daemon.close(abort=True)
        if ex is None or not ex.responseStarted:
            if error.rule.startswith("limits."):
                message = f"dockguard: request refused: {error.reason}"
            else:
                message = f"dockguard: malformed HTTP request: {error.reason}"
            self._sendError(error.status, message, close=True)
        self._close()

    def _onHead(self, head: Head) -> None:
        self._deadline = None
        self._head = head
        self._closeAfter = False
        self.decisions.start()
        identity = self.identity
        assert identity is not None
        listener = self.listener
        verdict = self.relay.verdicts.decide(
            head.method,
            head.target,
            tuple(head.values(b"content-type")),
            head.has_body,
            identity,
            self.relay.policy,
            listener.name if listener.learn else None,
        )
        if type(verdict) is Forward:
            plan = verdict.plan
            if plan is not None and plan.resolve is not None:
                self._resolve(verdict, None)
                return
            self._forward(verdict, verdict.decision, verdict.word, None)
        elif type(verdict) is Inspect:
            if head.length > self.relay.limits.inspected_body:
                self._refuse(413, self._tooLarge(head, verdict))
                return
            self._inspection = _Inspection(verdict)
            self._to(INSPECTING)
            if self.reader.state is DONE:
                self._inspectionDone()
        else:
            assert type(verdict) is Refuse
            self.decisions.record(
                self.identity,
                head.method,
                head.target,
                verdict.word,
                verdict.rule,
                verdict.reason,
                verdict.canonical,
                verdict.section,
                verdict.status,
            )
            self._refuse(verdict.status, verdict.message)

    def _forward(self, verdict: Forward, decision: Decision, word: str, target: bytes | None) -> None:
        """Relay the request as it comes (to C{target}, the full ID judged, when given)."""
        head = self._head
        assert head is not None
        self.decisions.record(
            self.identity,
            head.method,
            head.target,
            word,
            decision.rule,
            decision.reason,
            verdict.canonical,
            verdict.section,
            None,
        )
        self._exchange = self._scoped(
            _Exchange(
                head=request_head(head, target=target),
                hijack=verdict.hijack,
                wantsUpgrade=b"upgrade" in head.fields,
                chunkedUp=head.length < 0,
                requestDone=self.reader.state is DONE,
            ),
            verdict.plan,
            decision,
        )
        self._connect()

    def _scoped(self, ex: _Exchange, plan: Plan | None, decision: Decision) -> _Exchange:
        """C{ex}, with how its answer is narrowed and what is recorded of it."""
        if plan is not None:
            identity = self.identity
            assert identity is not None
            ex.view = answer_view(plan, decision, identity)
            if plan.exec_create:
                ex.capture = ExecCapture(self.relay.execOwners, identity)
        return ex

    # -- scope: the resource a request names -------------------------------------

    def _resolve(self, verdict: Forward | Inspect, body: bytes | None) -> None:
        """
        Look up the resource the request names at the daemon, and judge it
        against the caller's scope before anything is relayed (RESOLVING).
        """
        plan = verdict.plan
        identity = self.identity
        assert plan is not None and identity is not None
        relay = self.relay
        self._lookUp(
            judge_named(relay.resolver, relay.execOwners, identity, verdict.decision, plan),
            self._resolved,
            verdict,
            body,
        )

    def _lookUp(self, looking: Deferred[Any], then: Callable[..., None], *args: object) -> None:
        """
        RESOLVING until C{looking} (a look-up at the daemon) fires, then
        C{then(result, *args)} for this same request.  A look-up that
        answers at once goes on within this call, so the read loop that
        called it carries on; one that answers later reads on itself.
        """
        head = self._head
        self._to(RESOLVING)
        self._inline = True
        looking.addCallback(self._lookedUp, head, then, args).addErrback(self._resolveCrashed)
        self._inline = False

    def _lookedUp(self, result: object, head: Head | None, then: Callable[..., None], args: tuple[object, ...]) -> None:
        if self.state is not RESOLVING or self._head is not head:
            return  # the caller left meanwhile
        inline = self._inline
        then(result, *args)
        if not inline and self.state is not CLOSED:
            assert self._throttle is not None
            self._throttle.resume("pipeline")
            self._read()

    def _resolved(self, outcome: Allowed | Denied, verdict: Forward | Inspect, body: bytes | None) -> None:
        head = self._head
        assert head is not None
        word = verdict.word
        if type(outcome) is Denied and self.listener.learn and outcome.rule == "scope":
            outcome, word = Allowed(verdict.decision), "would-deny"
        if type(outcome) is Denied:
            self.decisions.record(
                self.identity,
                head.method,
                head.target,
                "deny" if outcome.status < 500 else "refuse",
                outcome.rule,
                outcome.reason,
                verdict.canonical,
                verdict.section,
                outcome.status,
            )
            self._refuse(outcome.status, outcome.message)
        else:
            assert type(outcome) is Allowed
            plan = verdict.plan
            if plan is not None and plan.forget and outcome.ident is not None:
                self.relay.resolver.forget(outcome.ident)
            if type(verdict) is Forward:
                self._forward(verdict, outcome.decision, word, outcome.target)
            else:
                assert body is not None and type(verdict) is Inspect
                self._judgeBody(verdict, outcome.decision, word, body, outcome.target)

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
        head = self._head
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
        assert self._throttle is not None
        self._throttle.resume("pipeline")
        self._arm(self.relay.timeouts.drain)

    def _sendError(self, status: int, message: str, close: bool = False) -> None:
        self.decisions.answered(status)
        head = self._head
        self.link.write(json_error(status, message, close, head_only=head is not None and head.method == b"HEAD"))
        if close:
            self._closeAfter = True

    def _tooLarge(self, head: Head, verdict: Inspect) -> str:
        limit = self.relay.limits.inspected_body
        self.decisions.record(
            self.identity,
            head.method,
            head.target,
            "refuse",
            "limits.max_inspected_body",
            f"the body of a {verdict.kind} is larger than {limit} bytes",
            verdict.canonical,
            verdict.section,
            413,
        )
        return (
            f"dockguard refused {head.method.decode('ascii', 'replace')} {verdict.canonical} for {self.identity}: "
            f"the body of a {verdict.kind} is inspected and may be at most {limit} bytes "
            "(limits.max_inspected_body)"
        )

    # -- bodies --------------------------------------------------------------------

    def _onBody(self, data: bytes) -> None:
        state = self.state
        if state is FORWARDING:
            ex = self._exchange
            assert ex is not None and ex.daemon is not None
            if ex.chunkedUp:
                ex.daemon.link.writeSequence((b"%x\r\n" % len(data), data, b"\r\n"))
            else:
                ex.daemon.write(data)
        elif state is INSPECTING:
            ins = self._inspection
            assert ins is not None
            if len(ins.body) + len(data) > self.relay.limits.inspected_body:
                self._inspection = None
                head = self._head
                assert head is not None
                self._refuse(413, self._tooLarge(head, ins.verdict))
                return
            ins.body += data

    def _onRequestEnd(self) -> None:
        state = self.state
        if state is FORWARDING:
            ex = self._exchange
            assert ex is not None
            ex.requestDone = True
            if ex.chunkedUp and ex.daemon is not None:
                ex.daemon.write(b"0\r\n\r\n")
        elif state is INSPECTING:
            self._inspectionDone()
        elif state is DRAINING:
            self._nextRequest()

    def _inspectionDone(self) -> None:
        ins, self._inspection = self._inspection, None
        assert ins is not None
        body = bytes(ins.body)
        ins.body.clear()
        verdict = ins.verdict
        plan = verdict.plan
        if plan is not None and plan.resolve is not None:
            self._resolve(verdict, body)
            return
        self._judgeBody(verdict, verdict.decision, verdict.word, body, None)

    def _judgeBody(self, verdict: Inspect, decision: Decision, word: str, body: bytes, target: bytes | None) -> None:
        """Judge a body read whole (stamped with its owner on a create), then relay exactly it."""
        head = self._head
        assert head is not None
        plan = verdict.plan
        if plan is not None and plan.create:
            identity = self.identity
            assert identity is not None
            made = judge_create(identity, decision, plan, body, head.target.partition(b"?")[2].decode("ascii"))
            if type(made) is Denied:
                self._refuseBody(verdict, decision, made)
                return
            assert type(made) is tuple
            body, decision = made
        judged = judge(verdict.kind, body, decision.guard or NO_GUARDS, host_paths=resolve_host_path)
        if not judged.allowed:
            rule = f"guard {judged.guard}" if judged.guard else "guard: ambiguous body"
            self._refuseBody(verdict, decision, Denied(403, judged.reason, rule, judged.reason))
            return
        if verdict.kind == "container.create" and decision.owner is not None:
            identity = self.identity
            assert identity is not None
            looked = judge_references(self.relay.resolver, identity, decision, body)
            if looked is not None:
                self._lookUp(looked, self._referencesJudged, verdict, decision, word, body, target)
                return
        self._relayJudged(verdict, decision, word, body, target)

    def _referencesJudged(
        self, denied: Denied | None, verdict: Inspect, decision: Decision, word: str, body: bytes, target: bytes | None
    ) -> None:
        if denied is not None:
            self._refuseBody(verdict, decision, denied)
        else:
            self._relayJudged(verdict, decision, word, body, target)

    def _refuseBody(self, verdict: Inspect, decision: Decision, denied: Denied) -> None:
        """Refuse a request whose body was read whole and judged: nothing of it went on."""
        head = self._head
        assert head is not None
        self.decisions.record(
            self.identity,
            head.method,
            head.target,
            "deny" if denied.status < 500 else "refuse",
            denied.rule,
            denied.reason,
            verdict.canonical,
            verdict.section,
            denied.status,
        )
        self._sendError(
            denied.status,
            f"dockguard refused {head.method.decode('ascii', 'replace')} {verdict.canonical} for "
            f"{self.identity}: {denied.message} (rule: {denied.rule}; {decision.rule})",
        )
        self._nextRequest()

    def _relayJudged(self, verdict: Inspect, decision: Decision, word: str, body: bytes, target: bytes | None) -> None:
        """Relay a body read whole and judged: exactly those bytes, framed by their length."""
        head = self._head
        assert head is not None
        plan = verdict.plan
        self.decisions.record(
            self.identity,
            head.method,
            head.target,
            word,
            decision.rule,
            decision.reason,
            verdict.canonical,
            verdict.section,
            None,
        )
        self._exchange = self._scoped(
            _Exchange(
                head=request_head(head, len(body), target),
                hijack=False,
                wantsUpgrade=False,
                chunkedUp=False,
                requestDone=True,
                body=body,
            ),
            plan,
            decision,
        )
        self._connect()

    # -- the daemon side -----------------------------------------------------

    def _connect(self) -> None:
        self._to(CONNECTING)
        daemon = self.relay.pool.take()
        if daemon is not None:
            self._connected(daemon)
            return
        assert self._throttle is not None
        self._throttle.pause("upstream")
        self.relay.pool.connect().addCallbacks(self._connectedLater, self._connectFailed)

    def _connectedLater(self, daemon: DaemonConnection) -> None:
        assert self._throttle is not None
        self._throttle.resume("upstream")
        if self.state is not CONNECTING or self._exchange is None:
            self.relay.pool.release(daemon)
            return
        self._connected(daemon)
        self._read()

    def _connected(self, daemon: DaemonConnection) -> None:
        ex = self._exchange
        head = self._head
        assert ex is not None and head is not None and self._throttle is not None
        ex.daemon = daemon
        daemon.request(self, head.method, ex.head)
        if ex.body:
            daemon.write(ex.body)
        # Flow control both ways: a slow daemon pauses the client's upload,
        # a slow client pauses the daemon's output.
        self._daemonThrottle = Throttle(daemon.link)
        daemon.link.registerProducer(self._throttle, True)
        self.link.registerProducer(self._daemonThrottle, True)
        self._to(FORWARDING)

    def _connectFailed(self, failure: Failure) -> None:
        assert self._throttle is not None
        self._throttle.resume("upstream")
        if self.state is not CONNECTING or self._exchange is None:
            return
        self._exchange = None
        self.relay.metrics.upstreamError("connect")
        address = self.relay.pool.address
        _log.error(
            "cannot reach the Docker daemon at {socket}: {error}", socket=address, error=failure.getErrorMessage()
        )
        self._refuse(502, f"dockguard: cannot reach the Docker daemon at {address}: {failure.getErrorMessage()}")
        self._read()

    def _unwire(self, daemon: DaemonConnection) -> None:
        """Undo the flow-control wiring between this client and C{daemon}."""
        if daemon.alive:
            daemon.link.unregisterProducer()
        if self.state is not CLOSED:
            self.link.unregisterProducer()
        if self._daemonThrottle is not None and daemon.alive:
            # A slow client may have paused the daemon connection: it must
            # not go back to the pool paused.
            self._daemonThrottle.resume("backpressure")
        self._daemonThrottle = None
        if self._throttle is not None:
            self._throttle.resume("backpressure")

    # What the daemon connection reports (DaemonOwner):

    def responseHead(self, response: ResponseHead) -> None:
        ex = self._exchange
        head = self._head
        assert ex is not None and head is not None
        status = response.status
        if status < 200:
            if status == 101:
                if ex.wantsUpgrade:
                    self._spliceWith(response)
                else:
                    assert ex.daemon is not None
                    ex.daemon.close(abort=True)
                    self.daemonLost(Failure(ConnectionError("the daemon switched protocols unasked")))
            elif head.version == b"1.1":
                ex.responseStarted = True
                self.link.write(self._responseHead(response, ex, informational=True))
            return
        ex.responseStarted = True
        ex.status = status
        if ex.hijack and _is_raw_stream(response):
            self._spliceWith(response)
            return
        view = ex.view
        if view is not None:
            if status != 200 or head.method == b"HEAD":
                ex.view = None  # errors are the daemon's own words
            elif view.whole:
                # Logged once the narrowed answer is out (or the 502 instead).
                ex.held, ex.heldHead = bytearray(), response
                return
        self.decisions.answered(status)
        self.link.write(self._responseHead(response, ex))

    def _responseHead(self, response: ResponseHead, ex: _Exchange, informational: bool = False) -> bytes:
        head = self._head
        assert head is not None
        length = response.length
        reframe = not informational and (length == CHUNKED or length == TO_EOF or ex.view is not None)
        lines = [b"HTTP/1.1 %d %s\r\n" % (response.status, response.reason)]
        if response.plain and not reframe:
            if response.block:
                lines += (response.block, b"\r\n")
        else:
            for name, value in end_to_end(response.headers):
                if not (reframe and name.lower() == b"content-length"):
                    lines += (name, b": ", value, b"\r\n")
        if not informational:
            if not head.keep_alive or self._eof:
                ex.close = True
            if reframe:
                if head.version == b"1.1":
                    ex.chunkedDown = True
                    lines.append(b"Transfer-Encoding: chunked\r\n")
                else:
                    ex.close = True  # read to the end of the connection
            if ex.close:
                lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def responseBody(self, data: bytes) -> None:
        ex = self._exchange
        if ex is None or not data:
            return
        if ex.capture is not None:
            ex.capture.part(data)
        if ex.view is not None:
            if ex.held is not None:
                if len(ex.held) + len(data) > MAX_VIEWED:
                    self._viewFailed(ex, f"the answer is larger than {MAX_VIEWED} bytes")
                    return
                ex.held += data
                return
            try:
                data = ex.view.part(data)
            except Unreadable as e:
                self._viewFailed(ex, str(e))
                return
            if not data:
                return
        if ex.chunkedDown:
            self.link.writeSequence((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            self.link.write(data)

    def responseEnd(self) -> None:
        ex = self._exchange
        assert ex is not None
        if ex.capture is not None:
            ex.capture.end(ex.status)
        if ex.held is not None:
            assert ex.view is not None and ex.heldHead is not None
            try:
                body = ex.view.end(bytes(ex.held))
            except Unreadable as e:
                self._viewFailed(ex, str(e))
                return
            ex.held = None
            self.decisions.answered(ex.status)
            self.link.write(self._heldHead(ex.heldHead, ex, len(body)) + body)
        self._exchange = None
        head = self._head
        assert head is not None
        if ex.chunkedDown:
            self.link.write(b"0\r\n\r\n")
        daemon, ex.daemon = ex.daemon, None
        if daemon is not None:
            self._unwire(daemon)
            if ex.requestDone and daemon.reusable():
                daemon.release()
            else:
                daemon.close()
        if ex.close:
            self._close()
        elif ex.requestDone:
            self._nextRequest()
        elif self._smallBody(head):
            # The daemon answered before the upload ended: the rest of a
            # small upload is read and dropped ...
            self._drain()
            self._read()
        else:
            # ... and a large one closes the connection instead.
            self._linger()

    def _heldHead(self, response: ResponseHead, ex: _Exchange, length: int) -> bytes:
        """The head of an answer read whole and narrowed: framed by its new length."""
        head = self._head
        assert head is not None
        lines = [b"HTTP/1.1 %d %s\r\n" % (response.status, response.reason)]
        for name, value in end_to_end(response.headers):
            if name.lower() != b"content-length":
                lines += (name, b": ", value, b"\r\n")
        lines.append(b"Content-Length: %d\r\n" % length)
        if not head.keep_alive or self._eof:
            ex.close = True
        if ex.close:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def _viewFailed(self, ex: _Exchange, reason: str) -> None:
        """The daemon's answer cannot be narrowed: the caller gets none of it."""
        _log.error("cannot narrow the daemon's answer for {identity}: {reason}", identity=self.identity, reason=reason)
        self._exchange = None
        if ex.daemon is not None:
            self._unwire(ex.daemon)
            ex.daemon.close(abort=True)
            ex.daemon = None
        if ex.held is not None:
            self._sendError(502, f"dockguard: cannot narrow the daemon's answer to your scope: {reason}", close=True)
        self._close()

    def daemonRaw(self, data: bytes) -> None:
        if self._splice is not None:
            self._splice.fromDaemon(data)

    def daemonLost(self, reason: Failure | None) -> None:
        splice, self._splice = self._splice, None
        if splice is not None:
            # The daemon closed a hijacked stream: all output is written, end
            # the client connection too (a transport with a producer still
            # registered would wait for it before closing).
            self._unwire(splice.daemon)
            self._close()
            return
        ex = self._exchange
        if ex is None:
            return
        daemon, ex.daemon = ex.daemon, None
        if daemon is not None:
            self._unwire(daemon)
        if not ex.responseStarted:
            head = self._head
            assert head is not None
            replayable = not head.has_body or ex.body is not None
            if daemon is not None and daemon.reused and replayable and not ex.retried:
                # A pooled connection the daemon had closed meanwhile: the
                # request never reached it, so it is sent again once.
                ex.retried = True
                self._connect()
                return
            self._exchange = None
            self.relay.metrics.upstreamError("closed")
            message = reason.getErrorMessage() if reason is not None else "connection closed"
            _log.error("the Docker daemon closed the connection before answering: {error}", error=message)
            self._sendError(
                502,
                f"dockguard: the Docker daemon closed the connection before answering ({message})",
                close=not ex.requestDone,
            )
            if ex.requestDone:
                self._nextRequest()
            else:
                self._close()
            return
        # Mid-response: the only honest signal left is to close, so the
        # client sees a truncated message rather than a complete-looking one.
        self._exchange = None
        self._close()

    # -- hijack --------------------------------------------------------------

    def _spliceWith(self, response: ResponseHead) -> None:
        """
        The daemon hijacked the connection: send its response head as it
        sent it, then pass bytes both ways untouched.
        """
        ex, self._exchange = self._exchange, None
        head = self._head
        assert ex is not None and ex.daemon is not None and head is not None
        daemon = ex.daemon
        self.decisions.answered(response.status)
        self._deadline = None
        self.link.write(hijack_head(response.status, response.reason, response.headers))
        fromDaemon = daemon.goRaw()
        fromClient = self.reader.take_rest()
        self._splice = Splice(self.link, daemon)
        self._to(SPLICED)
        assert self._throttle is not None
        self._throttle.resume("pipeline")
        _log.info(
            "hijacked {identity} {method} {path}: relaying raw streams",
            identity=self.identity,
            method=escape(head.method.decode("ascii", "replace")),
            path=escape(head.target.decode("ascii", "replace")),
        )
        if fromDaemon:
            self._splice.fromDaemon(fromDaemon)
        if fromClient:
            self._splice.fromClient(fromClient)
        if self._eof:
            self._splice.clientDone()

    # -- between requests ------------------------------------------------------

    def _nextRequest(self) -> None:
        """
        The request is answered and read: close if the connection must
        close, or start the next request (which may be waiting already).
        """
        head = self._head
        if self._closeAfter or head is None or not head.keep_alive:
            # RFC 9112 section 9.6: nothing after a request that closes the
            # connection is read.
            self._close()
            return
        self.reader.next_request()
        self._head = None
        assert self._throttle is not None
        self._throttle.resume("pipeline")
        if self.reader.waiting:
            # The next request has begun: its head is on the header clock,
            # and read in the next turn.
            self._to(HEAD)
            self._arm(self.relay.timeouts.header)
            if self._nextTurn is None:
                self._nextTurn = self.relay.reactor.callLater(0, self._continueTurn)
        elif self._eof:
            self._close()
        else:
            self._to(IDLE)
            self._arm(self.relay.timeouts.idle)

    def _continueTurn(self) -> None:
        self._nextTurn = None
        self._read()


def _is_raw_stream(response: ResponseHead) -> bool:
    ctype = response.fields.get(b"content-type")
    return (
        response.status == 200
        and ctype is not None
        and ctype.split(b";")[0].strip().lower() in HIJACK_CONTENT_TYPES
        and response.length == TO_EOF
    )


class ClientFactory(Factory):
    """Builds a L{ClientProtocol} per connection for one listener."""

    def __init__(self, relay: Relay, listener: Listener) -> None:
        self.relay = relay
        self.listener = listener

    def buildProtocol(self, addr: object) -> ClientProtocol:
        return ClientProtocol(self.relay, self.listener)
