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

import attrs

from dockguard.meaning import body_kind, check_request
from dockguard.paths import PathRefused, canonicalise
from dockguard.policy import Decision, Policy
from dockguard.routes import lookup


__all__ = ["Forward", "Inspect", "Refuse", "Verdict", "Verdicts", "decide"]


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


@attrs.frozen
class Forward:
    """Relay the request as it is."""

    decision: Decision
    word: str
    section: str
    canonical: str
    #: The daemon may hijack the connection in answer (attach, exec start).
    hijack: bool


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
            f"dockguard refused {method} {path.path} for {identity}: {verdict.reason} "
            f"(rule: {rule}; {decision.rule})",
            name,
            path.path,
        )
    kind = body_kind(match, decision.guard)
    if kind is not None:
        return Inspect(kind, decision, word, name, path.path)
    return Forward(decision, word, name, path.path, match.hijack)


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
