"""
What becomes of a request after its head's verdict: the steps between
L{verdict<dockguard.relay.verdict>} and an exchange or a refusal.

A verdict forwards, inspects or refuses.  Between it and the daemon there
may be more to judge: the resource a scoped request names (looked up at the
daemon, L{dockguard.relay.scoping}); the body of an inspected request, read
whole (its owner stamped on a create, then the escalation guards, then the
named volumes and networks a scoped create uses, looked up).  L{Judge} walks
those steps for one request and ends in one L{Outcome}: L{Go} (relay it) or
L{Stop} (refuse it), each recorded in the decision line.  A step that needs
the daemon returns a L{Deferred} of the outcome instead, and the client
connection waits (RESOLVING) until it fires.
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred

from dockguard.guards import CLOSED as NO_GUARDS
from dockguard.guards import judge
from dockguard.hostpaths import resolve as resolve_host_path
from dockguard.owners import ExecOwners
from dockguard.policy import Decision
from dockguard.relay.decisions import DecisionLine
from dockguard.relay.framing import Head
from dockguard.relay.lookup import Resolver
from dockguard.relay.scoping import Allowed, Denied, judge_create, judge_named, judge_references
from dockguard.relay.verdict import Forward, Inspect, Refuse, Verdict

__all__ = ["Go", "Judge", "Outcome", "Stop"]


@attrs.frozen
class Go:
    """Relay the request: as it comes (C{body} is None) or with exactly C{body}."""

    verdict: Forward | Inspect
    decision: Decision
    #: The target to relay to (the full ID judged), or None for the request's own.
    target: bytes | None = None
    #: The body read whole and judged (stamped with its owner on a create).
    body: bytes | None = None


@attrs.frozen
class Stop:
    """Refuse the request: answer C{status} with C{message}."""

    status: int
    message: str


Outcome = Go | Stop


@attrs.define
class Judge:
    """The judgements of one caller's requests, recorded in its decision line."""

    identity: str
    resolver: Resolver
    execOwners: ExecOwners
    decisions: DecisionLine
    #: Learn mode: a scope's refusal is logged as C{would-deny}, and relayed.
    learn: bool

    def verdict(self, head: Head, verdict: Verdict) -> Outcome | Deferred[Outcome]:
        """What becomes of a request whose head's verdict forwards or refuses it (not L{Inspect})."""
        if type(verdict) is Refuse:
            self._record(head, verdict, verdict.word, verdict.rule, verdict.reason, verdict.status)
            return Stop(verdict.status, verdict.message)
        assert type(verdict) is Forward
        plan = verdict.plan
        if plan is not None and plan.resolve is not None:
            return self._resolve(head, verdict, None)
        return self._go(head, verdict, verdict.decision, verdict.word, None, None)

    def body(self, head: Head, verdict: Inspect, body: bytes) -> Outcome | Deferred[Outcome]:
        """What becomes of an inspected request, its body read whole."""
        plan = verdict.plan
        if plan is not None and plan.resolve is not None:
            return self._resolve(head, verdict, body)
        return self._judgeBody(head, verdict, verdict.decision, verdict.word, body, None)

    def tooLarge(self, head: Head, verdict: Inspect, limit: int) -> Stop:
        """An inspected body is larger than C{limit} (C{limits.max_inspected_body})."""
        reason = f"the body of a {verdict.kind} is larger than {limit} bytes"
        self._record(head, verdict, "refuse", "limits.max_inspected_body", reason, 413)
        return Stop(
            413,
            f"dockguard refused {head.method.decode('ascii', 'replace')} {verdict.canonical} for {self.identity}: "
            f"the body of a {verdict.kind} is inspected and may be at most {limit} bytes "
            "(limits.max_inspected_body)",
        )

    # -- scope: the resource a request names ---------------------------------------

    def _resolve(self, head: Head, verdict: Forward | Inspect, body: bytes | None) -> Deferred[Outcome]:
        """Look up the resource the request names, and judge it against the caller's scope."""
        plan = verdict.plan
        assert plan is not None
        looking = judge_named(self.resolver, self.execOwners, self.identity, verdict.decision, plan)
        return looking.addCallback(self._resolved, head, verdict, body)

    def _resolved(
        self, outcome: Allowed | Denied, head: Head, verdict: Forward | Inspect, body: bytes | None
    ) -> Outcome | Deferred[Outcome]:
        word = verdict.word
        if type(outcome) is Denied and self.learn and outcome.rule == "scope":
            outcome, word = Allowed(verdict.decision), "would-deny"
        if type(outcome) is Denied:
            word = "deny" if outcome.status < 500 else "refuse"
            self._record(head, verdict, word, outcome.rule, outcome.reason, outcome.status)
            return Stop(outcome.status, outcome.message)
        assert type(outcome) is Allowed
        plan = verdict.plan
        if plan is not None and plan.forget and outcome.ident is not None:
            self.resolver.forget(outcome.ident)
        if type(verdict) is Forward:
            return self._go(head, verdict, outcome.decision, word, outcome.target, None)
        assert body is not None and type(verdict) is Inspect
        return self._judgeBody(head, verdict, outcome.decision, word, body, outcome.target)

    # -- bodies ----------------------------------------------------------------------

    def _judgeBody(
        self, head: Head, verdict: Inspect, decision: Decision, word: str, body: bytes, target: bytes | None
    ) -> Outcome | Deferred[Outcome]:
        """Judge a body read whole (stamped with its owner on a create)."""
        plan = verdict.plan
        if plan is not None and plan.create:
            made = judge_create(self.identity, decision, plan, body, head.target.partition(b"?")[2].decode("ascii"))
            if type(made) is Denied:
                return self._refuseBody(head, verdict, decision, made)
            assert type(made) is tuple
            body, decision = made
        judged = judge(verdict.kind, body, decision.guard or NO_GUARDS, host_paths=resolve_host_path)
        if not judged.allowed:
            rule = f"guard {judged.guard}" if judged.guard else "guard: ambiguous body"
            return self._refuseBody(head, verdict, decision, Denied(403, judged.reason, rule, judged.reason))
        if verdict.kind == "container.create" and decision.owner is not None:
            looked = judge_references(self.resolver, self.identity, decision, body)
            if looked is not None:
                return looked.addCallback(self._referencesJudged, head, verdict, decision, word, body, target)
        return self._go(head, verdict, decision, word, target, body)

    def _referencesJudged(
        self,
        denied: Denied | None,
        head: Head,
        verdict: Inspect,
        decision: Decision,
        word: str,
        body: bytes,
        target: bytes | None,
    ) -> Outcome:
        if denied is not None:
            return self._refuseBody(head, verdict, decision, denied)
        return self._go(head, verdict, decision, word, target, body)

    def _refuseBody(self, head: Head, verdict: Inspect, decision: Decision, denied: Denied) -> Stop:
        """Refuse a request whose body was read whole and judged."""
        self._record(
            head, verdict, "deny" if denied.status < 500 else "refuse", denied.rule, denied.reason, denied.status
        )
        return Stop(
            denied.status,
            f"dockguard refused {head.method.decode('ascii', 'replace')} {verdict.canonical} for "
            f"{self.identity}: {denied.message} (rule: {denied.rule}; {decision.rule})",
        )

    # -- outcomes --------------------------------------------------------------------

    def _go(
        self,
        head: Head,
        verdict: Forward | Inspect,
        decision: Decision,
        word: str,
        target: bytes | None,
        body: bytes | None,
    ) -> Go:
        self._record(head, verdict, word, decision.rule, decision.reason, None)
        return Go(verdict, decision, target, body)

    def _record(
        self, head: Head, verdict: Forward | Inspect | Refuse, word: str, rule: str, reason: str, status: int | None
    ) -> None:
        self.decisions.record(
            self.identity, head.method, head.target, word, rule, reason, verdict.canonical, verdict.section, status
        )
