"""
What a scope does to a request and to its answer (L{dockguard.scope}).

Before relaying (L{judge_named}): the container, volume, network or exec a
path names is looked up at the daemon (L{dockguard.relay.lookup}); a
resource outside the caller's scope gets the daemon's own "no such" answer,
so a caller cannot tell it from one that does not exist; one inside is
relayed to its full ID, so what the daemon acts on is what was judged.  An
exec instance is started, resized or inspected only by the identity that
created it.

A create (L{judge_create}) is stamped with its owner, and under a scope must
create something the scope holds.

After (L{answer_view}): lists and inspects are read whole and narrowed
(filtered, redacted), the event stream line by line; the ID of a new exec
instance is recorded with its owner (L{ExecCapture}).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import attrs
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.python.failure import Failure

from dockguard.guards import judge_volume_in_use
from dockguard.guards.verdict import Refusal
from dockguard.hostpaths import resolve as resolve_host_path
from dockguard.owners import ExecOwners, created, networks_joined, other_containers, stamp, volumes_named
from dockguard.policy import Decision
from dockguard.relay.lookup import LookupFailed, Resolver
from dockguard.relay.verdict import Plan
from dockguard.scope import Resource, ScopedGrant, held, redaction_of
from dockguard.views import EventFilter, Unreadable, filter_list, redact_inspect

__all__ = [
    "MAX_VIEWED",
    "Allowed",
    "Denied",
    "ExecCapture",
    "Unreadable",
    "View",
    "answer_view",
    "judge_create",
    "judge_named",
    "judge_references",
]

#: The largest answer read whole to be narrowed (a list of many containers).
MAX_VIEWED = 64 * 1024 * 1024

#: The daemon's own words for a name it cannot resolve.
_NO_SUCH = {
    "container": "No such container: {}",
    "exec": "No such exec instance: {}",
    "volume": "get {}: no such volume",
    "network": "network {} not found",
}


@attrs.frozen
class Allowed:
    """In scope: relay with this decision, to C{target} (C{None}: as sent)."""

    decision: Decision
    target: bytes | None = None
    #: The full ID judged (what a rename or a remove makes stale).
    ident: str | None = None


@attrs.frozen
class Denied:
    """Answer C{status} with C{message}; the decision log says C{rule}: C{reason}."""

    status: int
    message: str
    rule: str
    reason: str


def _narrowed(decision: Decision, grants: list[ScopedGrant], what: str) -> Decision:
    """C{decision} as the C{grants} whose scope holds the resource give it."""
    first = grants[0]
    guard = first.guard
    for other in grants[1:]:
        guard = guard.merge(other.guard)
    rule = f"group {first.group}: {first.grant}, {what} in scope {first.scope.describe()}"
    return attrs.evolve(
        decision,
        rule=rule,
        reason=f"{decision.reason}; {what} is in the scope of group {first.group} ({first.scope.describe()})",
        guard=guard,
        redact=redaction_of(grant.redact for grant in grants),
    )


def _no_such(kind: str, ref: str, reason: str) -> Denied:
    return Denied(404, _NO_SUCH[kind].format(ref), "scope", reason)


def _outside(decision: Decision, resource: Resource) -> str:
    groups = "; ".join(f"group {g.group}: {g.scope.describe()}" for g in decision.scoped)
    return (
        f"{resource.describe()} is outside the scope of every group that grants the call ({groups}); "
        "the caller is answered as if it did not exist"
    )


def judge_named(
    resolver: Resolver, execs: ExecOwners, identity: str, decision: Decision, plan: Plan
) -> Deferred[Allowed | Denied]:
    """Whether the resource C{plan} names is the caller's to act on, and the target to relay."""
    kind = plan.resolve
    assert kind is not None
    ref = plan.ref
    if kind == "exec":
        owner = execs.owner(ref)
        if owner != identity and not decision.learned:
            who = "another identity" if owner is not None else "no identity through dockguard"
            return succeed(
                _no_such("exec", ref, f"exec instance {ref} was created by {who}: only its creator may use it")
            )
        if not decision.scoped:
            return succeed(Allowed(decision))
        found = resolver.exec_container(ref)

        def container(container_id: str | None) -> Deferred[Allowed | Denied]:
            if container_id is None:
                return succeed(_no_such("exec", ref, f"the daemon has no exec instance {ref}"))
            return _judge(resolver, identity, decision, "container", container_id, "exec", ref, None)

        return found.addCallback(container).addErrback(_failed, "exec", ref)
    if plan.unresolvable:
        return succeed(_no_such(kind, ref, f"{ref!r} is not a name the daemon can resolve"))
    return _judge(resolver, identity, decision, kind, ref, kind, ref, plan)


def _judge(
    resolver: Resolver,
    identity: str,
    decision: Decision,
    kind: str,
    ref: str,
    answer_kind: str,
    answer_ref: str,
    plan: Plan | None,
) -> Deferred[Allowed | Denied]:
    grants = decision.scoped
    names = any(grant.scope.names for grant in grants)

    def judged(resource: Resource | None, fresh: bool) -> Deferred[Allowed | Denied] | Allowed | Denied:
        if resource is None:
            return _no_such(answer_kind, answer_ref, f"the daemon has no {kind} {ref}")
        holding = held(grants, resource, identity, by_name=fresh)
        if not holding:
            if not fresh and names:
                # Remembered: names can change, so they are judged afresh.
                return resolver.resource(kind, ref, fresh=True).addCallback(judged, True)
            return _no_such(answer_kind, answer_ref, _outside(decision, resource))
        narrowed = _narrowed(decision, holding, resource.describe())
        if plan is None:
            return Allowed(narrowed)
        if plan.renamed is not None and not held(holding, attrs.evolve(resource, name=plan.renamed), identity):
            reason = (
                f"renaming {resource.describe()} to {plan.renamed!r} would take it out of the scope that holds "
                f"it ({'; '.join(f'group {g.group}: {g.scope.describe()}' for g in holding)}): "
                "choose a name the scope holds"
            )
            return Denied(403, reason, "scope", reason)
        return Allowed(narrowed, plan.before + quote(resource.id, safe="").encode("ascii") + plan.after, resource.id)

    asked = resolver.asked
    found = resolver.resource(kind, ref)
    # A look-up sent just now is as fresh as a second one would be: a name
    # is judged from it; only a remembered description is looked up again.
    outcome: Deferred[Allowed | Denied] = found.addCallback(judged, resolver.asked != asked)
    return outcome.addErrback(_failed, answer_kind, answer_ref)


def _failed(failure: Failure, kind: str, ref: str) -> Denied:
    failure.trap(LookupFailed)
    reason = f"cannot look up {kind} {ref} at the Docker daemon: {failure.getErrorMessage()}"
    return Denied(502, f"dockguard: {reason}", "lookup", reason)


def judge_create(
    identity: str, decision: Decision, plan: Plan, body: bytes, query: str
) -> tuple[bytes, Decision] | Denied:
    """
    The body to relay for a create (stamped with its owner), and the
    decision as the groups whose scope holds the new resource give it.
    """
    kind = plan.resource
    try:
        if decision.scoped and kind == "container":
            named = other_containers(body)
            if named:
                reason = (
                    f"the body names other containers ({', '.join(named)}), and the groups that grant "
                    "the create are scoped: a scope cannot be left through another container"
                )
                return Denied(403, reason, "scope", reason)
        if decision.owner is not None:
            body = stamp(body, decision.owner)
        if not decision.scoped:
            return body, decision
        resource = created(kind, body, query)
    except Refusal as refused:
        return Denied(403, refused.reason, "guard owner" if "owner" in refused.field else "guard", refused.reason)
    holding = held(decision.scoped, resource, identity)
    if not holding:
        reason = (
            f"the new {kind} {resource.name or '(unnamed)'} would be outside the scope of every group that "
            f"grants the create ({'; '.join(f'group {g.group}: {g.scope.describe()}' for g in decision.scoped)}): "
            "give it a name or labels the scope holds"
        )
        return Denied(403, reason, "scope", reason)
    return body, _narrowed(decision, holding, f"new {kind}")


def judge_references(
    resolver: Resolver, identity: str, decision: Decision, body: bytes
) -> Deferred[Denied | None] | None:
    """
    The named volumes a container create mounts, and under a scope the
    networks it joins, looked up at the daemon: C{None} when there is none.

    A volume that exists is judged as if the caller created it now (a bind
    volume an administrator made reaches its host path).  Under a scope,
    each volume and network must be one the scope holds: one that does not
    exist is refused too, with the same words, so the answer does not say
    which exist (create it first: what the caller creates is its own).
    """
    volumes = volumes_named(body)
    networks = networks_joined(body) if decision.scoped else []
    if not volumes and not networks:
        return None
    wanted = [("volume", field, name) for field, name in volumes] + [
        ("network", field, name) for field, name in networks
    ]
    looks = [resolver.resource(kind, name, fresh=True) for kind, _, name in wanted]

    def judged(results: list[tuple[bool, Any]]) -> Denied | None:
        for (kind, field, name), (ok, found) in zip(wanted, results):
            if not ok:
                assert isinstance(found, Failure)
                found.trap(LookupFailed)
                reason = f"cannot look up {kind} {name} at the Docker daemon: {found.getErrorMessage()}"
                return Denied(502, f"dockguard: {reason}", "lookup", reason)
            resource = found if isinstance(found, Resource) else None
            if decision.scoped and (resource is None or not held(decision.scoped, resource, identity)):
                groups = "; ".join(f"group {g.group}: {g.scope.describe()}" for g in decision.scoped)
                reason = (
                    f"{field} uses the {kind} {name}, which does not exist or is outside the scope of every "
                    f"group that grants the create ({groups}); create it first (what you create is yours)"
                )
                return Denied(403, reason, "scope", reason)
            if kind == "volume" and resource is not None:
                verdict = judge_volume_in_use(
                    resource.driver,
                    resource.options,
                    f"{field} (the volume {name})",
                    decision.guard,
                    host_paths=resolve_host_path,
                )
                if not verdict.allowed:
                    return Denied(
                        403, verdict.reason, f"guard {verdict.guard}" if verdict.guard else "guard", verdict.reason
                    )
        return None

    everything: Deferred[list[tuple[bool, Any]]] = DeferredList(looks, consumeErrors=True)
    return everything.addCallback(judged)


class View:
    """What the caller sees of an answer: C{hold} it whole, or pass it on in parts."""

    #: Read the answer whole, then L{end} gives what is sent.
    whole = True

    def part(self, data: bytes) -> bytes:
        return data

    def end(self, body: bytes) -> bytes:
        return body


class _List(View):
    def __init__(
        self,
        kind: str,
        in_scope: Callable[[Resource], bool] | None,
        redact: frozenset[str],
        redaction_for: Callable[[Resource], frozenset[str]] | None = None,
    ) -> None:
        self.kind, self.in_scope, self.redact, self.redaction_for = kind, in_scope, redact, redaction_for

    def end(self, body: bytes) -> bytes:
        return filter_list(self.kind, body, self.in_scope, self.redact, self.redaction_for)


class _Inspect(View):
    def __init__(self, redact: frozenset[str]) -> None:
        self.redact = redact

    def end(self, body: bytes) -> bytes:
        return redact_inspect(body, self.redact)


class _Events(View):
    whole = False

    def __init__(self, in_scope: Callable[[Resource], bool]) -> None:
        self.events = EventFilter(in_scope)

    def part(self, data: bytes) -> bytes:
        return self.events.feed(data)


def answer_view(plan: Plan | None, decision: Decision, identity: str) -> View | None:
    """How the answer to a request is narrowed for the caller, or C{None}: not at all."""
    if plan is None or plan.view is None:
        return None
    grants = decision.scoped

    def in_scope(resource: Resource) -> bool:
        return bool(held(grants, resource, identity))

    if plan.view == "events":
        return _Events(in_scope) if grants else None
    if plan.view == "list":
        if not grants:
            return _List(plan.resource, None, decision.redact)

        def redaction_for(resource: Resource) -> frozenset[str]:
            # What the groups whose scope holds this one resource all hide.
            return redaction_of(grant.redact for grant in held(grants, resource, identity))

        return _List(plan.resource, in_scope, decision.redact, redaction_for)
    if decision.redact:
        return _Inspect(decision.redact)
    return None


class ExecCapture:
    """Reads the ID of a new exec instance from the daemon's answer, to record its owner."""

    def __init__(self, execs: ExecOwners, identity: str) -> None:
        self.execs, self.identity = execs, identity
        self.body = bytearray()

    def part(self, data: bytes) -> None:
        if len(self.body) < 64 * 1024:
            self.body += data

    def end(self, status: int) -> None:
        if status != 201:
            return
        try:
            ident = json.loads(bytes(self.body)).get("Id")
        except (ValueError, AttributeError):
            return
        if isinstance(ident, str) and ident:
            self.execs.record(ident, self.identity)
