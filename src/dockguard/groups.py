"""Per-identity permission groups: who may make which Engine API call.

Each caller is named (by its client certificate's CN or by its listener's fixed
identity). Each identity has one or more *groups*; a L{Group} opens
sections of the API at a level and adds fine *actions*. L{GroupPolicy}
(a L{Policy<dockguard.policy.Policy>}) holds the identities and their groups and
decides each request from them. The configuration file's C{[identities]} and
C{[groups.NAME]} tables are read by L{dockguard.groupconfig}; the built-in
groups are L{dockguard.presets.PRESETS}.

Sections, routes and actions come from L{dockguard.routes}
(L{ROUTES<dockguard.routes.ROUTES>}).

How L{GroupPolicy.decide} judges C{method path} for an identity
----------------------------------------------------------------------

=================================================  ======================================================
Situation                                          Decision
=================================================  ======================================================
identity not under C{[identities]}                deny, rule C{unknown identity}
identity with an empty group list                  deny, rule C{no groups}
path in no section (C{/foo}, C{/CONTAINERS})     deny, rule C{no section} (unless learn, below)
section C{"write"}                                allow every route of the section, every method
section C{"read"}                                 allow GET and HEAD routes of the section that are not
                                                   sensitive (logs, image exports, archive GET/HEAD,
                                                   export, attach/ws, the swarm's tokens and unlock key)
action listed                                      allow exactly the routes carrying that action,
                                                   whatever the section's level (even "none"); plain
                                                   reads have actions too (container.list, ...)
section C{"none"} or missing, no action           deny, rule C{needs ...}
path in a section but no known route               judged by the section level only: "read" allows GET
                                                   and HEAD, "write" any method; actions never apply
HEAD on a route that has only GET                  judged as that GET route (so it stays sensitive)
several groups                                     allowed if ANY group allows (union); the rule names
                                                   the first group that does, e.g.
                                                   C{group watchtower: containers=read} or
                                                   C{group watchtower: action container.start}
denied, and a group of the identity has learn      allowed with C{learned=True}, rule
                                                   C{learn (group X): would deny: needs ...}
=================================================  ======================================================

Methods are compared exactly, as the daemon's router does: C{get} is not a
read. A deny names the identity's groups and what would open the call, e.g.
C{add action "container.exec" or containers = "write" to one of: monitoring}.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from dockguard.guards import CLOSED, Allowance
from dockguard.paths import CanonicalPath
from dockguard.policy import READ_METHODS, Decision, no_section
from dockguard.routes import LIBPOD_SECTIONS, ROUTES, SECTIONS, Match, Route
from dockguard.scope import NO_REDACTION, REDACTABLE, Scope, ScopedGrant, redaction_of

__all__ = ["ACCESS_LEVELS", "ACTIONS", "SECTION_NAMES", "Group", "GroupPolicy"]

#: The levels a group can give a section, lowest first.
ACCESS_LEVELS: tuple[str, ...] = ("none", "read", "write")
#: Every fine action name that some route carries.
ACTIONS: frozenset[str] = frozenset(route.action for route in ROUTES if route.action is not None)
#: Every section name, e.g. C{"containers"}, C{"ping"}.
SECTION_NAMES: tuple[str, ...] = tuple(section.name for section in SECTIONS)
# libpod (issue 17): Podman's sections, libpod_containers, libpod_pods, ...
SECTION_NAMES = SECTION_NAMES + tuple(section.name for section in LIBPOD_SECTIONS)


def _frozen_sections(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _frozen_actions(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _frozen_identities(value: Mapping[str, Iterable[str]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({k: tuple(v) for k, v in value.items()})


def _frozen_groups(value: Mapping[str, Group]) -> Mapping[str, Group]:
    return MappingProxyType(dict(value))


def _check_sections(_group: object, _attribute: object, sections: Mapping[str, str]) -> None:
    for section, level in sections.items():
        if section not in SECTION_NAMES:
            raise ValueError(f"unknown section {section!r}")
        if level not in ACCESS_LEVELS:
            raise ValueError(f"unknown access level {level!r} for section {section!r}")


def _check_redact(_group: object, _attribute: object, redact: frozenset[str]) -> None:
    unknown = sorted(redact - set(REDACTABLE))
    if unknown:
        raise ValueError(f"unknown redactions: {', '.join(unknown)}")


def _check_actions(_group: object, _attribute: object, actions: frozenset[str]) -> None:
    unknown = sorted(actions - ACTIONS)
    if unknown:
        raise ValueError(f"unknown actions: {', '.join(unknown)}")


@attrs.frozen
class Group:
    """A named set of permissions: section levels plus fine actions."""

    name: str
    #: Section name -> C{"none"}, C{"read"} or C{"write"}; a missing section is C{"none"}.
    sections: Mapping[str, str] = attrs.field(converter=_frozen_sections, validator=_check_sections)
    #: Action names from L{ACTIONS}.
    actions: frozenset[str] = attrs.field(converter=_frozen_actions, validator=_check_actions)
    #: Learn mode: requests the rules would deny are let through and marked.
    learn: bool = False
    description: str = ""
    #: What the escalation guards let this group put in container, exec,
    #: service and volume bodies (dockguard.guards); closed by default.
    guards: Allowance = CLOSED
    #: The containers, volumes and networks its rights hold for
    #: (dockguard.scope); C{None}: all of them.
    scope: Scope | None = None
    #: What its inspects and lists hide (L{dockguard.scope.REDACTABLE}).
    redact: frozenset[str] = attrs.field(default=NO_REDACTION, converter=_frozen_actions, validator=_check_redact)

    def __attrs_post_init__(self) -> None:
        # libpod (issue 17): redaction knows Docker's inspects and lists only
        if self.redact and any(self.level(section.name) != "none" for section in LIBPOD_SECTIONS):
            raise ValueError(
                "redact does not cover Podman's libpod API (its inspects, lists and generated kube YAML "
                "would show what is redacted): give the libpod_* sections to a group without redact"
            )

    def level(self, section: str) -> str:
        """This group's level for C{section}."""
        return self.sections.get(section, "none")

    def grant(self, method: str, route: Route | None, section: str) -> str | None:
        """What in this group allows C{method} on C{route} (in C{section}), or C{None}.

        C{route} is C{None} for a path in the section that has no known route.
        """
        if route is not None and route.action is not None and route.action in self.actions:
            return f"action {route.action}"
        level = self.level(section)
        if level == "write":
            return f"{section}=write"
        if level == "read" and method in READ_METHODS and (route is None or not route.sensitive):
            return f"{section}=read"
        return None

    def summary(self) -> str:
        """One line: its sections, actions, learn mode and description."""
        opened = [f"{name}={level}" for name, level in sorted(self.sections.items()) if level != "none"]
        parts = ["sections " + (", ".join(opened) if opened else "none")]
        parts.append("actions " + (", ".join(sorted(self.actions)) if self.actions else "none"))
        if self.guards != CLOSED:
            parts.append(self.guards.describe())
        if self.scope is not None:
            parts.append(f"scope {self.scope.describe()}")
        if self.redact:
            parts.append("redacts " + ", ".join(sorted(self.redact)))
        if self.learn:
            parts.append("LEARN MODE")
        text = "; ".join(parts)
        if self.description:
            text += f" ({self.description})"
        return text


def _need(method: str, route: Route | None, section: str) -> tuple[str, str]:
    """(short rule, advice) saying what would open C{method} on C{route}."""
    if route is not None and route.action is not None and method in READ_METHODS and not route.sensitive:
        return (
            f"needs {section}=read or action {route.action}",
            f'add {section} = "read" (or action "{route.action}" for this route alone)',
        )
    if route is not None and route.action is not None:
        return (
            f"needs action {route.action} or {section}=write",
            f'add action "{route.action}" or {section} = "write"',
        )
    if route is not None and route.sensitive:
        return (f"needs {section}=write", f'add {section} = "write" (this read is sensitive: "read" does not grant it)')
    if method in READ_METHODS:
        return (f"needs {section}=read", f'add {section} = "read"')
    return (f"needs {section}=write", f'add {section} = "write"')


def _describe_call(method: str, path: CanonicalPath, route: Route | None) -> str:
    if route is None:
        return f"{method} {path.path} (no known route of its section)"
    return f"{method} {path.path} (route {route.method} {route.template})"


@attrs.frozen
class GroupPolicy:
    """Authorises each request by the groups of the identity that made it."""

    #: Identity -> the names of its groups, in the order written.
    identities: Mapping[str, tuple[str, ...]] = attrs.field(converter=_frozen_identities)
    #: Group name -> group, for every group an identity names.
    groups: Mapping[str, Group] = attrs.field(converter=_frozen_groups)

    def __attrs_post_init__(self) -> None:
        for identity, names in self.identities.items():
            for name in names:
                if name not in self.groups:
                    raise ValueError(f"identity {identity!r} names group {name!r}, which is not defined")
        for name, group in self.groups.items():
            if group.name != name:
                raise ValueError(f"group {group.name!r} is stored under the name {name!r}")

    def shut_out(self, identity: str) -> Decision | None:
        """The refusal of every request of C{identity} when it is not under
        C{[identities]} or has no groups there; C{None} when it has groups."""
        names = self.identities.get(identity)
        if names is None:
            return Decision(
                allowed=False,
                rule="unknown identity",
                reason=(
                    f"unknown identity {identity!r}: it is not listed under [identities]; "
                    f'add it there with its groups, e.g. {identity} = ["readonly"]'
                ),
            )
        if not names:
            return Decision(
                allowed=False,
                rule="no groups",
                reason=(
                    f"identity {identity!r} has no groups under [identities], so every "
                    f'request is refused; give it at least one, e.g. {identity} = ["readonly"]'
                ),
            )
        return None

    def decide(self, identity: str, method: str, path: CanonicalPath, match: Match) -> Decision:
        """Authorise C{method path} (C{match} is its lookup) for C{identity}; see the module docstring."""
        refused = self.shut_out(identity)
        if refused is not None:
            return refused
        groups = [self.groups[name] for name in self.identities[identity]]
        denied = self._judge(identity, method, path, match, groups)
        if denied.allowed:
            return denied
        for group in groups:
            if group.learn:
                return Decision(
                    allowed=True,
                    learned=True,
                    rule=f"learn (group {group.name}): would deny: {denied.rule}",
                    reason=(f"allowed only because group {group.name} is in learn mode; without it: {denied.reason}"),
                )
        return denied

    def _judge(self, identity: str, method: str, path: CanonicalPath, match: Match, groups: list[Group]) -> Decision:
        # The daemon serves HEAD only where it routes HEAD; a HEAD on a
        # GET route is judged as that GET, so it stays as sensitive.
        route = match.judged_route
        section_name = route.section if route is not None else None
        if section_name is None:
            section = match.section
            if section is None:
                return no_section(path)
            section_name = section.name
        granting = [
            (group, grant) for group in groups if (grant := group.grant(method, route, section_name)) is not None
        ]
        if granting:
            # A group without a scope grants the route for every resource;
            # when only scoped groups grant it, the relay keeps those whose
            # scope holds the resource the request touches.
            unscoped = [(group, grant) for group, grant in granting if group.scope is None]
            chosen = unscoped or granting
            group, grant = chosen[0]
            # Bodies are judged against what any granting group allows.
            allowance = group.guards
            for other, _ in chosen[1:]:
                allowance = allowance.merge(other.guards)
            scoped: tuple[ScopedGrant, ...] = ()
            shown = grant
            if not unscoped and (route is None or route.scoped is not None):
                scoped = tuple(
                    ScopedGrant(g.name, text, g.scope, g.guards, g.redact)
                    for g, text in granting
                    if g.scope is not None
                )
                shown = f"{grant}, in scope {' or '.join(g.scope.describe() for g in scoped)}"
            return Decision(
                allowed=True,
                rule=f"group {group.name}: {shown}",
                reason=f"{_describe_call(method, path, route)} is allowed for {identity} by group {group.name} ({shown})",
                guard=allowance,
                scoped=scoped,
                redact=redaction_of(g.redact for g, _ in chosen),
                owner=identity,
            )
        rule, advice = _need(method, route, section_name)
        listed = ", ".join(group.name for group in groups)
        return Decision(
            allowed=False,
            rule=rule,
            reason=(
                f"{_describe_call(method, path, route)} is not allowed for {identity}: none of its "
                f"groups ({listed}) grants it; {advice} to one of: {listed}"
            ),
        )

    def describe(self) -> list[str]:
        """Lines for the start-up log: identities and their groups; learn mode flagged loudly."""
        lines: list[str] = []
        if not self.identities:
            lines.append("identities: none are listed under [identities], so every request is refused")
        for identity in sorted(self.identities):
            names = self.identities[identity]
            if names:
                lines.append(f"identity {identity}: groups {', '.join(names)}")
            else:
                lines.append(f"identity {identity}: no groups, so every request it makes is refused")
        used = sorted({name for names in self.identities.values() for name in names})
        for name in used:
            lines.append(f"group {name}: {self.groups[name].summary()}")
        for name in used:
            if self.groups[name].learn:
                who = sorted(i for i, names in self.identities.items() if name in names)
                lines.append(
                    f"WARNING: LEARN MODE is ON for group {name} (identities: {', '.join(who)}): "
                    "requests its rules would deny are ALLOWED and logged as would-deny; "
                    f"set learn = false in [groups.{name}] to enforce"
                )
        return lines
