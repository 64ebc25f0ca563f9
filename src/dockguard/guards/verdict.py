"""What the guards decide: a L{Verdict}, and the L{Refusal} a guard raises to make one.

A refusal names the JSON field that decided, the allowance key (the guard)
that would open it, and a sentence a person can act on; L{show} and
L{to_allow} write the parts of that sentence every guard shares.
"""

from __future__ import annotations

import json

import attrs

__all__ = ["ALLOWED", "Refusal", "Verdict", "refusal", "show", "to_allow"]


@attrs.frozen
class Verdict:
    """What L{judge<dockguard.guards.judge>} decided about one body."""

    allowed: bool
    #: The dotted JSON field that decided, e.g. C{"HostConfig.Binds[0]"}; C{""} when allowed.
    field: str
    #: The allowance key that would open it, e.g. C{"bind_roots"}; C{""} when allowed
    #: or when no guard can open it (a body with two readings).
    guard: str
    #: A sentence a person can act on; C{""} when allowed.
    reason: str


#: The verdict of everything that passes.
ALLOWED = Verdict(allowed=True, field="", guard="", reason="")


def refusal(field: str, guard: str, reason: str) -> Verdict:
    """A refusing L{Verdict}: C{field} decided, C{guard} would open it (C{""}: none can)."""
    return Verdict(allowed=False, field=field, guard=guard, reason=reason)


class Refusal(Exception):
    """Raised by a guard that refuses the body; L{verdict} is the refusing L{Verdict}."""

    def __init__(self, field: str, guard: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.guard = guard
        self.reason = reason

    def verdict(self) -> Verdict:
        return refusal(self.field, self.guard, self.reason)


def show(text: str, limit: int = 80) -> str:
    """C{text} for a reason: as-is when plain printable ASCII, else JSON-quoted; shortened."""
    short = text if len(text) <= limit else text[:limit] + "..."
    if short and short.isascii() and short.isprintable() and " " not in short:
        return short
    return json.dumps(short)


def to_allow(setting: str) -> str:
    """The end of a reason: how to open the guard, e.g. C{to_allow("devices = true")}."""
    return f"set {setting} in the group's guards to allow it"
