"""
What C{dockguard explain} prints: what an identity may do, every API route
with allow or deny and the deciding rule (its scope and redaction too), or
one request's decision.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from dockguard.config import load_policy
from dockguard.errors import did_you_mean
from dockguard.groups import GroupPolicy
from dockguard.paths import PathRefused, canonicalise
from dockguard.policy import Decision, Policy, explain
from dockguard.presets import PRESETS
from dockguard.routes import SCOPED_SECTIONS, Match, Route, lookup, sample_path
from dockguard.scope import OWNER_LABEL, REDACTABLE

__all__ = ["explain_command"]

#: What a redaction hides, in explain's words.
_HIDES = {
    "env": "environment variables' values, names kept",
    "mounts": "mount sources and binds",
    "labels": "label values, keys kept",
}


def _groups_summary(policy: Policy, identity: str) -> list[str]:
    """One line per group of C{identity}: the resources its rights hold for, what it redacts."""
    if not isinstance(policy, GroupPolicy):
        return []
    lines = []
    for name in policy.identities.get(identity, ()):
        group = policy.groups[name]
        scope = (
            f"scope {group.scope.describe()}"
            if group.scope is not None
            else "no scope (every container, volume and network)"
        )
        redact = "redacts " + ", ".join(sorted(group.redact)) if group.redact else "redacts nothing"
        lines.append(f"  group {name}: {scope}; {redact}")
    return lines


def _scope_refusal(method: str, path: str, match: Match, decision: Decision) -> str | None:
    """
    Why the relay refuses a request its policy allows only through scoped
    groups, with the reason it logs (rule C{scope}), or C{None}.
    """
    if not (decision.allowed and decision.scoped):
        return None
    route = match.judged_route
    if route is None:
        if match.section_name not in SCOPED_SECTIONS:
            return None
        why = "it is not a known route, so no scope can be checked"
    elif route.scoped == "refused":
        why = "it acts on resources across the board"
    else:
        return None
    groups = ", ".join(grant.group for grant in decision.scoped)
    return (
        f"{method} {path} is granted only by scoped groups ({groups}), and {why}; grant it in a group without a scope"
    )


def _in_scope(route: Route, decision: Decision) -> str:
    """The scopes that hold the resources of a route only scoped groups grant
    (with several: each group's, and what it redacts beyond the others)."""
    grants = decision.scoped
    if len(grants) == 1:
        return str(grants[0].scope.describe())
    parts = []
    for grant in grants:
        part = f"group {grant.group}: {grant.scope.describe()}"
        more = [name for name in _redacted(route, grant.redact) if name not in decision.redact]
        if more:
            part += f" (redacts {', '.join(more)})"
        parts.append(part)
    return "; ".join(parts)


def _has_scope(policy: Policy, identity: str) -> bool:
    """Whether a group of C{identity} has a scope."""
    if not isinstance(policy, GroupPolicy):
        return False
    return any(policy.groups[name].scope is not None for name in policy.identities.get(identity, ()))


def _scoped_rule(decision: Decision) -> str:
    """The deciding rule, without the scope (shown on its own)."""
    if decision.scoped:
        first = decision.scoped[0]
        return f"group {first.group}: {first.grant}"
    return decision.rule


def _redacted(route: Route | None, redact: frozenset[str]) -> list[str]:
    """What of C{redact} the answer of C{route} hides, as the relay rewrites it."""
    if route is None or not redact:
        return []
    if route.template in ("/containers/{id}/json", "/images/{name}/json"):
        shown = REDACTABLE
    elif route.scoped == "list":
        shown = ("mounts", "labels")  # a list has no environment
    else:
        return []
    return [name for name in shown if name in redact]


def _scope_effect(route: Route, identity: str) -> str:
    """What a scope does to C{route}, for C{dockguard explain METHOD PATH}."""
    kind = route.scoped
    if kind in ("container", "volume", "network"):
        return f"any other {kind} answers 404, as if it did not exist"
    if kind == "exec":
        return "an exec of any other container answers 404, as if it did not exist"
    if kind == "list":
        return "the list shows only those"
    if kind == "events":
        return "only their events are delivered"
    if kind == "query":
        return "the container its container= parameter names must be in scope (any other answers 404)"
    return f"what it creates must be in scope; it is labelled {OWNER_LABEL}={identity}"


def _preset_policy(name: str) -> GroupPolicy | None:
    """A policy in which the identity C{name} has the preset C{name} alone."""
    preset = PRESETS.get(name)
    if preset is None:
        return None
    return GroupPolicy(identities={name: (name,)}, groups={name: preset})


def explain_command(args: argparse.Namespace, out: TextIO) -> int:
    if getattr(args, "preset", False):
        policy: Policy | None = _preset_policy(args.identity)
        if policy is None:
            print(
                f"dockguard explain: no preset {args.identity!r}{did_you_mean(args.identity, PRESETS)}; "
                f"the presets: {', '.join(sorted(PRESETS))}",
                file=sys.stderr,
            )
            return 2
    else:
        policy = load_policy(args.config, os.environ)
    assert policy is not None
    if args.method is not None:
        if args.path is None:
            print("dockguard explain: give both METHOD and PATH", file=sys.stderr)
            return 2
        try:
            path = canonicalise(args.path.encode())
        except PathRefused as e:
            print(f"refuse {args.method} {args.path}: {e.reason}", file=out)
            return 1
        match = lookup(args.method, path)
        decision = policy.decide(args.identity, args.method, path, match)
        refused = _scope_refusal(args.method, path.path, match, decision)
        if refused is not None:
            print(f"deny {args.identity} {args.method} {args.path}", file=out)
            print("  rule: scope", file=out)
            print(f"  why:  {refused}", file=out)
            return 1
        verdict = (
            "allow"
            if decision.allowed and not decision.learned
            else "learn (would deny)"
            if decision.learned
            else "deny"
        )
        print(f"{verdict} {args.identity} {args.method} {args.path}", file=out)
        print(f"  rule: {decision.rule}", file=out)
        print(f"  why:  {decision.reason}", file=out)
        route = match.judged_route
        if decision.scoped and route is not None and route.scoped is not None:
            print(
                f"  scope: only for the containers, volumes and networks in scope ({_in_scope(route, decision)}); "
                f"{_scope_effect(route, args.identity)}",
                file=out,
            )
        elif decision.allowed and route is not None and route.scoped is None and _has_scope(policy, args.identity):
            print("  scope: none applies: this route touches no container, volume or network", file=out)
        hidden = _redacted(route, decision.redact) if decision.allowed else []
        if hidden:
            print(f"  redact: {'; '.join(f'{name} ({_HIDES[name]})' for name in hidden)}", file=out)
        return 0 if decision.allowed else 1
    rows = explain(policy, args.identity)
    width = max(len(f"{route.method} {route.template}") for route, _ in rows)
    print(
        f"what {args.identity} may do ({'allow' if any(d.allowed for _, d in rows) else 'nothing allowed'}):", file=out
    )
    for line in _groups_summary(policy, args.identity):
        print(line, file=out)
    for route, decision in rows:
        verdict = "learn" if decision.learned else "allow" if decision.allowed else "deny"
        rule = decision.rule
        notes = [route.amounts_to] if decision.allowed and route.amounts_to else []
        template = f"{route.method} {route.template}"
        if _scope_refusal(route.method, route.template, lookup(route.method, sample_path(route)), decision):
            verdict, rule = "deny", "scope"
            notes = ["granted only by scoped groups, which refuse it: it acts on resources across the board"]
        elif decision.scoped:
            rule = _scoped_rule(decision)
            if route.scoped is not None:
                notes.append(f"in scope: {_in_scope(route, decision)}")
        hidden = _redacted(route, decision.redact) if decision.allowed and verdict != "deny" else []
        if hidden:
            notes.append("redacts " + ", ".join(hidden))
        note = f"  ({'; '.join(notes)})" if notes else ""
        print(f"  {verdict:5}  {template:{width}}  {rule}{note}", file=out)
    return 0
