"""Authorisation: the interface every policy offers, and what it answers.

A L{Policy} says, for each request an identity makes, whether it may
reach the daemon: its L{Decision}. Whatever the policy, a path in no
section of the Engine API is refused (L{no_section}), and
L{explain} lists its decision on every route for one identity. There
are two policies:

* L{EnvPolicy<dockguard.envpolicy.EnvPolicy>}: one permission set for every
  identity, from the Tecnativa / linuxserver environment variables;
* L{GroupPolicy<dockguard.groups.GroupPolicy>}: per-identity groups from the
  configuration file (read by L{dockguard.groupconfig}).

L{dockguard.config.choose_policy} picks one of them.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import typing

import attrs

from dockguard.paths import CanonicalPath
from dockguard.routes import ROUTES, Match, Route, case_hint, lookup, sample_path

__all__ = ["READ_METHODS", "Decision", "Policy", "explain", "no_section"]

#: The methods that count as reads. Compared exactly: C{"get"} is a write.
READ_METHODS: frozenset[str] = frozenset({"GET", "HEAD"})


@attrs.frozen
class Decision:
    """The outcome of authorising one request."""

    allowed: bool
    #: The rule that decided, in the user's own words, e.g. C{"CONTAINERS=0"},
    #: C{"POST=0"}, C{"ALLOW_START=1"}, C{"no section"}.
    rule: str
    #: A full sentence saying why, and what to change for another outcome.
    reason: str
    #: True when a learn-mode group let through a request its rules would
    #: deny; C{rule} and C{reason} then say what would have denied it.
    learned: bool = False
    #: For an allowed request whose body the escalation guards inspect
    #: (dockguard.guards): the Allowance that body is judged against.
    #: None: the body is relayed uninspected.
    guard: typing.Any = None
    #: For an allowed request that only scoped groups grant: those grants
    #: (L{dockguard.scope.ScopedGrant}). The request is allowed only
    #: for the resources one of their scopes holds; empty: no scope applies.
    scoped: tuple[typing.Any, ...] = ()
    #: What the inspects and lists this request reads hide
    #: (L{dockguard.scope.REDACTABLE}).
    redact: frozenset[str] = frozenset()
    #: The identity dockguard stamps as the owner of what this request
    #: creates (L{dockguard.scope.OWNER_LABEL}), or C{None} (no stamp).
    owner: str | None = None


class Policy(typing.Protocol):
    """Anything that can authorise a request made by an identity."""

    def decide(self, identity: str, method: str, path: CanonicalPath, match: Match) -> Decision:
        """
        Authorise C{method path} for C{identity}. C{match} is
        C{dockguard.routes.lookup(method, path)}, looked up once per request
        by the caller: a policy reads the route and section there and never
        looks them up again.
        """
        ...

    def shut_out(self, identity: str) -> Decision | None:
        """
        The decision that refuses every request of C{identity} whatever it
        asks (an identity the policy does not know, or one without groups),
        or C{None} when some request of it may pass.  A reload closes the
        open connections of an identity that is now shut out.
        """
        ...


def no_section(path: CanonicalPath) -> Decision:
    """The refusal of a path in no section of the Engine API (C{/foo}, C{/CONTAINERS}), whatever the policy."""
    return Decision(
        allowed=False,
        rule="no section",
        reason=f"{path.path} is not in any Engine API section, so dockguard refuses it{case_hint(path)}",
    )


def explain(policy: Policy, identity: str) -> list[tuple[Route, Decision]]:
    """Every route in L{ROUTES<dockguard.routes.ROUTES>} with C{identity}'s decision.

    Each route is judged on a sample path (placeholders filled with
    C{"example"}, see L{sample_path<dockguard.routes.sample_path>}).
    """
    rows = []
    for route in ROUTES:
        path = sample_path(route)
        rows.append((route, policy.decide(identity, route.method, path, lookup(route.method, path))))
    return rows
