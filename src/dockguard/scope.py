"""Scopes: which containers, volumes and networks a group's rights hold for.

A group without a scope acts on every resource its sections and actions
reach.  A group with one (C{[groups.NAME.scope]}) acts only on the
containers, volumes and networks its L{Scope} *holds*: those whose
name matches one of its C{names} patterns, or that carry one of its
C{labels}, or (C{owner = true}) that carry the L{OWNER_LABEL} naming
the caller, which dockguard stamps on every resource a caller creates
(L{dockguard.owners}).  One match is enough: the criteria are
alternatives.

An identity with several groups gets, for each resource, the rights of the
groups whose scope holds it.  The policy records, in an allowed
L{Decision<dockguard.policy.Decision>}, the scoped groups that grant the
route (L{ScopedGrant}); once the relay has looked the resource up at
the daemon it keeps the grants that hold it (L{held}).

A scope restricts only the routes that touch containers, volumes and
networks (L{dockguard.routes.Route.scoped}): the routes that name one,
the lists and the event stream (filtered, L{dockguard.views}), and the
creates (stamped, and the new resource must be in scope).  A route that acts
on such resources across the board (prune, C{/system/df}, C{/commit}) is
refused under a scope.  Images, the swarm, builds and the system routes are
not scoped resources.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any

import attrs

__all__ = [
    "NO_REDACTION",
    "OWNER_LABEL",
    "REDACTABLE",
    "Resource",
    "Scope",
    "ScopedGrant",
    "held",
    "redaction_of",
]

#: The label dockguard stamps on what a caller creates: its identity.
OWNER_LABEL = "dockguard.owner"

#: What a group's C{redact} may hide from the inspects and lists it sees:
#: environment variables (C{Config.Env}), mount sources and binds, labels.
REDACTABLE: tuple[str, ...] = ("env", "mounts", "labels")

NO_REDACTION: frozenset[str] = frozenset()


def _frozen_labels(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Resource:
    """A container, volume or network, as the daemon described it."""

    #: C{"container"}, C{"volume"} or C{"network"}.
    kind: str
    #: The full ID (a volume's name: volumes have no other).
    id: str
    #: Its name, without the leading C{/} the daemon gives container names.
    name: str
    labels: Mapping[str, str] = attrs.field(converter=_frozen_labels, factory=dict)
    #: A volume's driver and its options (what a C{local} volume mounts).
    driver: str = ""
    options: Mapping[str, str] = attrs.field(converter=_frozen_labels, factory=dict)

    @property
    def owner(self) -> str | None:
        """The identity that created it through dockguard, if any."""
        return self.labels.get(OWNER_LABEL)

    def describe(self) -> str:
        shown = self.name or self.id[:12]
        return f"{self.kind} {shown}" + (f" ({self.id[:12]})" if self.name and self.id != self.name else "")


def _label_ok(label: str) -> str:
    key = label.partition("=")[0]
    if not key or key != key.strip():
        raise ValueError(f'a label must be "key" or "key=value", got {label!r}')
    return label


def _as_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _check_labels(_scope: object, _attribute: object, labels: tuple[str, ...]) -> None:
    for label in labels:
        _label_ok(label)


def _check_names(_scope: object, _attribute: object, names: tuple[str, ...]) -> None:
    for name in names:
        if not name or name.startswith("/"):
            raise ValueError(f"a name pattern must be a non-empty name without a leading /, got {name!r}")


@attrs.frozen
class Scope:
    """The resources a group's rights hold for: any name pattern, any label, or the owner's own."""

    #: Glob patterns (C{*}, C{?}, C{[...]}, case-sensitive) on the name.
    names: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple, validator=_check_names)
    #: C{"key"} (the label is set, to anything) or C{"key=value"}.
    labels: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple, validator=_check_labels)
    #: What the caller created itself (the L{OWNER_LABEL} names it).
    owner: bool = False

    def __attrs_post_init__(self) -> None:
        if not (self.names or self.labels or self.owner):
            raise ValueError("a scope holds nothing: give it names, labels or owner = true")

    def holds(self, resource: Resource, identity: str, *, by_name: bool = True) -> bool:
        """Whether C{resource} is in this scope for C{identity}.

        C{by_name=False} leaves the name patterns out: a name can change
        (a rename), labels and owners cannot, so a judgement on a
        remembered description of a resource uses only those.
        """
        labels = resource.labels
        if self.owner and labels.get(OWNER_LABEL) == identity:
            return True
        for label in self.labels:
            key, equals, value = label.partition("=")
            if key in labels and (not equals or labels[key] == value):
                return True
        if by_name:
            name = resource.name
            for pattern in self.names:
                if fnmatchcase(name, pattern):
                    return True
        return False

    def describe(self) -> str:
        """E.g. C{name web-*, label autoheal=true, owner}."""
        parts = [f"name {name}" for name in self.names]
        parts += [f"label {label}" for label in self.labels]
        if self.owner:
            parts.append("owner")
        return ", ".join(parts)


@attrs.frozen
class ScopedGrant:
    """What one scoped group grants on a route, for the resources its scope holds."""

    group: str
    #: What in the group allows the route, e.g. C{"containers=read"}.
    grant: str
    scope: Scope
    #: The escalation guards' allowance of the group (dockguard.guards).
    guard: Any
    redact: frozenset[str] = NO_REDACTION


def held(
    grants: Iterable[ScopedGrant], resource: Resource, identity: str, *, by_name: bool = True
) -> list[ScopedGrant]:
    """The grants whose scope holds C{resource} for C{identity}."""
    return [grant for grant in grants if grant.scope.holds(resource, identity, by_name=by_name)]


def redaction_of(redactions: Iterable[frozenset[str]]) -> frozenset[str]:
    """What stays hidden when several groups grant a view: only what all of them hide."""
    result: frozenset[str] | None = None
    for redact in redactions:
        result = redact if result is None else result & redact
    return result if result is not None else NO_REDACTION
