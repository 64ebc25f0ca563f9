"""
What happens to a request, decided from its head alone: refuse it, read its
body whole and judge that first, or forward it.  Pure: no Twisted, no I/O.

The order is the order of trust: the path is read as the daemon will read
it (L{dockguard.paths}); the caller's policy decides the route; whatever
allowed it, the request must keep its meaning (L{dockguard.meaning}); and
the bodies the escalation guards read are named last.  Learn mode turns a
policy's denial into a logged pass, never a meaning check's.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import attrs

from dockguard.meaning import body_kind, check_request
from dockguard.paths import CanonicalPath, PathRefused, canonicalise
from dockguard.policy import Decision, Policy
from dockguard.queries import QueryRefused, parse_query
from dockguard.routes import SCOPED_SECTIONS, Match, lookup, placeholder

__all__ = ["Forward", "Inspect", "Plan", "Refuse", "Verdict", "Verdicts", "decide"]


#: The sections whose resources a scope holds, by the resource their lists hold.
_LISTED = {"containers": "container", "volumes": "volume", "networks": "network"}
#: An exec instance's name the daemon could resolve (its IDs are random hexadecimal).
#: Other resources are always looked up: a network's name may be anything but
#: blank, a volume driver other than "local" takes any name, and a legacy link
#: alias (C{/web/<alias>}) is never checked, so no name is sure to be unknown.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)*")
_SAFE = "-._~:@!$&'()*+,;="


@attrs.frozen
class Plan:
    """
    What the relay does for a request besides relaying it, because of who
    the resource it touches belongs to (L{dockguard.scope}).
    """

    #: The resource to look up at the daemon before relaying (C{container},
    #: C{exec}, C{volume}, C{network}), or C{None}.
    resolve: str | None = None
    #: The name the path gives it, as the daemon will resolve it.
    ref: str = ""
    #: A name the daemon cannot resolve (so no look-up is needed).
    unresolvable: bool = False
    #: The target around the name, to relay with the full ID that was judged.
    before: bytes = b""
    after: bytes = b""
    #: The answer is rewritten: C{list}, C{events} or C{inspect} of C{resource}.
    view: str | None = None
    #: The resource a list, an inspect or a create is about.
    resource: str = ""
    #: The request creates a C{resource}: the owner is stamped on its body.
    create: bool = False
    #: The request creates an exec instance: its ID is recorded with its owner.
    exec_create: bool = False
    #: The request renames or removes the resource: look-ups of it are forgotten.
    forget: bool = False
    #: The new name a rename gives the resource (it must stay in scope).
    renamed: str | None = None


def _rewrite(path: CanonicalPath, start: int, end: int) -> tuple[bytes, bytes]:
    """The target before and after the placeholder at C{segments[start:end]}."""
    segments = path.segments
    prefix = f"/v{path.version}" if path.version is not None else ""
    before = prefix + "/" + "/".join(segments[:start]) + "/"
    after = "".join("/" + quote(segment, safe=_SAFE) for segment in segments[end:])
    if path.query:
        after += "?" + path.query
    return before.encode("ascii"), after.encode("ascii")


def _plan(method: str, path: CanonicalPath, match: Match, decision: Decision) -> Plan | Refuse | None:
    """The L{Plan} of an allowed request, a refusal (a scope cannot hold what it asks), or C{None}."""
    route = match.judged_route
    scoped = bool(decision.scoped)
    if route is None:
        if scoped and match.section_name in SCOPED_SECTIONS:
            return _unscopable(method, path, decision, "it is not a known route, so no scope can be checked")
        return None
    kind = route.scoped
    if kind is None:
        if decision.redact and route.template == "/images/{name}/json":
            return Plan(view="inspect", resource="image")
        return None
    if kind == "refused":
        if scoped:
            return _unscopable(method, path, decision, "it acts on resources across the board")
        return None
    if kind == "query":
        return _query_plan(path) if scoped else None
    if kind == "list" or kind == "events":
        if scoped or (kind == "list" and decision.redact):
            return Plan(view=kind, resource=_LISTED.get(route.section, ""))
        return None
    if kind == "create":
        if decision.owner is None and not scoped:
            return None
        return Plan(create=True, resource=route.template.split("/")[1][:-1])
    # The route names its resource in its placeholder.
    exec_create = route.template == "/containers/{id}/exec"
    forget = method == "DELETE" or route.template.endswith("/rename")
    # Under scoped groups, what is hidden is what the groups whose scope
    # holds the container hide (see scoping): any one of them may redact.
    redacts = bool(decision.redact) or any(grant.redact for grant in decision.scoped)
    inspect = route.template == "/containers/{id}/json" and redacts
    if not (scoped or kind == "exec" or exec_create or inspect):
        return None
    start, end = placeholder(route, path)
    ref = "/".join(path.segments[start:end])
    before, after = _rewrite(path, start, end)
    renamed = None
    if scoped and route.template == "/containers/{id}/rename":
        try:
            renamed = parse_query(path.query).get("name").lstrip("/")
        except QueryRefused:
            renamed = ""
    return Plan(
        renamed=renamed,
        resolve=kind if (scoped or kind == "exec") else None,
        ref=ref,
        unresolvable=kind == "exec" and _NAME.fullmatch(ref) is None,
        before=before,
        after=after,
        view="inspect" if inspect else None,
        resource=kind,
        exec_create=exec_create,
        forget=forget,
    )


def _query_plan(path: CanonicalPath) -> Plan:
    """The plan of a route whose C{container} query parameter names the container (C{/commit})."""
    try:
        ref = parse_query(path.query).get("container")
        others = [pair for pair in path.query.split("&") if pair and not parse_query(pair).has("container")]
    except QueryRefused:
        return Plan(resolve="container", unresolvable=True, resource="container")
    prefix = f"/v{path.version}" if path.version is not None else ""
    # Every container= pair goes: the one sent is the full ID judged.
    before = f"{prefix}{path.path}?" + "".join(pair + "&" for pair in others) + "container="
    return Plan(
        resolve="container",
        ref=ref,
        unresolvable=_NAME.fullmatch(ref) is None,
        before=before.encode("ascii"),
        resource="container",
    )


def _unscopable(method: str, path: CanonicalPath, decision: Decision, why: str) -> Refuse:
    groups = ", ".join(grant.group for grant in decision.scoped)
    reason = (
        f"{method} {path.path} is granted only by scoped groups ({groups}), and {why}; "
        "grant it in a group without a scope"
    )
    return Refuse(
        403, "scope", reason, f"dockguard refused {method} {path.path}: {reason} (rule: scope)", "-", path.path
    )


@attrs.frozen
class Refuse:
    """Answer C{status} with C{message}; the decision log says C{rule}: C{reason}."""

    status: int
    rule: str
    reason: str
    message: str
    section: str
    canonical: str | None = None
    #: The decision log's word: C{refuse} (unreadable) or C{deny}.
    word: str = "deny"


@attrs.frozen
class Inspect:
    """Read the body (a C{kind} the guards know) whole, then judge it."""

    kind: str
    decision: Decision
    #: The decision log's word once the body passes (allow, would-deny).
    word: str
    section: str
    canonical: str
    plan: Plan | None = None


@attrs.frozen
class Forward:
    """Relay the request as it is."""

    decision: Decision
    word: str
    section: str
    canonical: str
    #: The daemon may hijack the connection in answer (attach, exec start).
    hijack: bool
    plan: Plan | None = None


Verdict = Refuse | Inspect | Forward


def decide(
    method_bytes: bytes,
    target: bytes,
    content_types: tuple[bytes, ...],
    has_body: bool,
    identity: str,
    policy: Policy,
    learn: str | None,
) -> Verdict:
    """
    The fate of a request from C{identity} under C{policy}, from its method,
    target, C{Content-Type} values and whether it has a body: nothing else
    of the request is read.  C{learn} is the listener's name when it is in
    learn mode.
    """
    method = method_bytes.decode("ascii", "replace")
    try:
        path = canonicalise(target)
    except PathRefused as e:
        return Refuse(
            400,
            "path",
            e.reason,
            f"dockguard refused {method} {target.decode('ascii', 'replace')} for {identity}: {e.reason}",
            "-",
            word="refuse",
        )
    match = lookup(method, path)
    name = match.section_name
    decision = policy.decide(identity, method, path, match)
    if learn is not None and not decision.allowed:
        decision = attrs.evolve(
            decision,
            allowed=True,
            learned=True,
            rule=f"learn (listener {learn}): would deny: {decision.rule}",
        )
    if not decision.allowed:
        return Refuse(
            403,
            decision.rule,
            decision.reason,
            f"dockguard refused {method} {path.path} for {identity}: {decision.reason} (rule: {decision.rule})",
            name,
            path.path,
        )
    word = "would-deny" if decision.learned else "allow"
    # Whatever allowed the route: the request must keep its meaning, and
    # some bodies are judged before relaying.
    verdict = check_request(method, path, list(content_types), has_body, decision.guard, match)
    if not verdict.allowed:
        rule = f"guard {verdict.guard}" if verdict.guard else "meaning"
        return Refuse(
            403,
            rule,
            verdict.reason,
            f"dockguard refused {method} {path.path} for {identity}: {verdict.reason} (rule: {rule}; {decision.rule})",
            name,
            path.path,
        )
    plan = _plan(method, path, match, decision)
    if type(plan) is Refuse:
        return attrs.evolve(
            plan, section=name, message=plan.message.replace(f" {path.path}:", f" {path.path} for {identity}:", 1)
        )
    assert plan is None or type(plan) is Plan
    kind = body_kind(match, decision.guard)
    if kind is not None:
        return Inspect(kind, decision, word, name, path.path, plan)
    return Forward(decision, word, name, path.path, match.hijack, plan)


#: Heads whose verdict is remembered: short ones only, so the memory is
#: bounded (entries x key size), and a caller cannot grow it with long ones.
_REMEMBERED_KEY = 512


class Verdicts:
    """
    L{decide}, remembered.  A verdict depends only on L{decide}'s arguments
    (it is pure), so the same request from the same identity under the same
    policy gets the same one: most traffic is the same few requests again
    (C{/_ping}, C{/containers/json}, C{/events}).  At most C{size} verdicts
    are kept; the memory is emptied when full, and when the policy changes.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._policy: Policy | None = None
        self._known: dict[tuple[object, ...], Verdict] = {}

    def decide(
        self,
        method: bytes,
        target: bytes,
        content_types: tuple[bytes, ...],
        has_body: bool,
        identity: str,
        policy: Policy,
        learn: str | None,
    ) -> Verdict:
        key = (method, target, content_types, has_body, identity, learn)
        if policy is not self._policy:
            self._policy = policy
            self._known.clear()
        else:
            known = self._known.get(key)
            if known is not None:
                return known
        verdict = decide(method, target, content_types, has_body, identity, policy, learn)
        if len(method) + len(target) + sum(map(len, content_types)) + len(identity) <= _REMEMBERED_KEY:
            if len(self._known) >= self.size:
                self._known.clear()
            self._known[key] = verdict
        return verdict
