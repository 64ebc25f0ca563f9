"""Per-identity permission groups: who may make which Engine API call.

Each caller is named (by its client certificate's CN or by its listener's fixed
identity). The configuration file gives each identity one or more *groups*; a
group opens sections of the API at a level and adds fine *actions*::

    [identities]
    traefik = ["traefik"]             # a preset (see dockguard.presets)
    ci = ["builder"]

    [groups.builder]
    extends = ["readonly"]
    sections = { images = "write" }
    actions = ["image.build", "container.start"]
    description = "CI: builds and pushes images"

Sections, routes and actions come from :mod:`dockguard.routes`
(:data:`~dockguard.routes.ROUTES`).

How :meth:`GroupPolicy.decide` judges ``method path`` for an identity
----------------------------------------------------------------------

=================================================  ======================================================
Situation                                          Decision
=================================================  ======================================================
identity not under ``[identities]``                deny, rule ``unknown identity``
identity with an empty group list                  deny, rule ``no groups``
path in no section (``/foo``, ``/CONTAINERS``)     deny, rule ``no section`` (unless learn, below)
section ``"write"``                                allow every route of the section, every method
section ``"read"``                                 allow GET and HEAD routes of the section that are not
                                                   sensitive (archive GET/HEAD, export, attach/ws,
                                                   the swarm unlock key)
action listed                                      allow exactly the routes carrying that action,
                                                   whatever the section's level (even "none")
section ``"none"`` or missing, no action           deny, rule ``needs ...``
path in a section but no known route               judged by the section level only: "read" allows GET
                                                   and HEAD, "write" any method; actions never apply
HEAD on a route that has only GET                  judged as that GET route (so it stays sensitive)
several groups                                     allowed if ANY group allows (union); the rule names
                                                   the first group that does, e.g.
                                                   ``group watchtower: containers=read`` or
                                                   ``group watchtower: action container.start``
denied, and a group of the identity has learn      allowed with ``learned=True``, rule
                                                   ``learn (group X): would deny: needs ...``
=================================================  ======================================================

Methods are compared exactly, as the daemon's router does: ``get`` is not a
read. A deny names the identity's groups and what would open the call, e.g.
``add action "container.exec" or containers = "write" to one of: monitoring``.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dockguard.errors import ConfigError
from dockguard.names import is_plain_name
from dockguard.guards import CLOSED, Allowance, allowance_from_mapping
from dockguard.paths import CanonicalPath
from dockguard.policy import READ_METHODS, Decision, Policy
from dockguard.routes import ROUTES, SECTIONS, Match, Route, case_hint, lookup, sample_path

__all__ = [
    "ACCESS_LEVELS",
    "ACTIONS",
    "SECTION_NAMES",
    "Group",
    "GroupPolicy",
    "explain",
    "policy_from_config",
]

#: The levels a group can give a section, lowest first.
ACCESS_LEVELS: tuple[str, ...] = ("none", "read", "write")
#: Every fine action name that some route carries.
ACTIONS: frozenset[str] = frozenset(route.action for route in ROUTES if route.action is not None)
#: Every section name, e.g. ``"containers"``, ``"ping"``.
SECTION_NAMES: tuple[str, ...] = tuple(section.name for section in SECTIONS)

_RANK = {level: rank for rank, level in enumerate(ACCESS_LEVELS)}
_GROUP_KEYS = ("extends", "sections", "actions", "learn", "description", "guards")
_LEVELS_QUOTED = ", ".join(f'"{level}"' for level in ACCESS_LEVELS)


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


def _check_actions(_group: object, _attribute: object, actions: frozenset[str]) -> None:
    unknown = sorted(actions - ACTIONS)
    if unknown:
        raise ValueError(f"unknown actions: {', '.join(unknown)}")


@attrs.frozen
class Group:
    """A named set of permissions: section levels plus fine actions."""

    name: str
    #: Section name -> ``"none"``, ``"read"`` or ``"write"``; a missing section is ``"none"``.
    sections: Mapping[str, str] = attrs.field(converter=_frozen_sections, validator=_check_sections)
    #: Action names from :data:`ACTIONS`.
    actions: frozenset[str] = attrs.field(converter=_frozen_actions, validator=_check_actions)
    #: Learn mode: requests the rules would deny are let through and marked.
    learn: bool = False
    description: str = ""
    #: What the escalation guards let this group put in container, exec,
    #: service and volume bodies (dockguard.guards); closed by default.
    guards: Allowance = CLOSED

    def level(self, section: str) -> str:
        """This group's level for ``section``."""
        return self.sections.get(section, "none")

    def grant(self, method: str, route: Route | None, section: str) -> str | None:
        """What in this group allows ``method`` on ``route`` (in ``section``), or ``None``.

        ``route`` is ``None`` for a path in the section that has no known route.
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
        if self.learn:
            parts.append("LEARN MODE")
        text = "; ".join(parts)
        if self.description:
            text += f" ({self.description})"
        return text


def _need(method: str, route: Route | None, section: str) -> tuple[str, str]:
    """(short rule, advice) saying what would open ``method`` on ``route``."""
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
        """The refusal of every request of ``identity`` when it is not under
        ``[identities]`` or has no groups there; ``None`` when it has groups."""
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
        """Authorise ``method path`` (``match`` is its lookup) for ``identity``; see the module docstring."""
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
                    reason=(
                        f"allowed only because group {group.name} is in learn mode; "
                        f"without it: {denied.reason}"
                    ),
                )
        return denied

    def _judge(
        self, identity: str, method: str, path: CanonicalPath, match: Match, groups: list[Group]
    ) -> Decision:
        # The daemon serves HEAD only where it routes HEAD; a HEAD on a
        # GET route is judged as that GET, so it stays as sensitive.
        route = match.judged_route
        section_name = route.section if route is not None else None
        if section_name is None:
            section = match.section
            if section is None:
                return Decision(
                    allowed=False,
                    rule="no section",
                    reason=(
                        f"{path.path} is not in any Engine API section, so dockguard refuses it"
                        f"{case_hint(path)}"
                    ),
                )
            section_name = section.name
        granting = [
            (group, grant)
            for group in groups
            if (grant := group.grant(method, route, section_name)) is not None
        ]
        if granting:
            group, grant = granting[0]
            # Bodies are judged against what any granting group allows.
            allowance = group.guards
            for other, _ in granting[1:]:
                allowance = allowance.merge(other.guards)
            return Decision(
                allowed=True,
                rule=f"group {group.name}: {grant}",
                reason=f"{_describe_call(method, path, route)} is allowed for {identity} by group {group.name} ({grant})",
                guard=allowance,
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


def explain(policy: Policy, identity: str) -> list[tuple[Route, Decision]]:
    """Every route in :data:`~dockguard.routes.ROUTES` with ``identity``'s decision.

    Each route is judged on a sample path (placeholders filled with
    ``"example"``, see :func:`~dockguard.routes.sample_path`).
    """
    rows = []
    for route in ROUTES:
        path = sample_path(route)
        rows.append((route, policy.decide(identity, route.method, path, lookup(route.method, path))))
    return rows


# ---------------------------------------------------------------------------
# Reading the configuration
# ---------------------------------------------------------------------------


def _closest(word: str, choices: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    """`` (did you mean "x"?)`` or ``""``."""
    options = sorted(choices)
    if word.lower() in options and word.lower() != word:
        return f' (did you mean "{word.lower()}"?)'
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""


def _names_as_list(source: str, key: str, value: object, what: str) -> list[str]:
    """A string or a list of strings, as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigError(source, key, f"must be a list of {what} names, e.g. [\"readonly\"]; got {value!r}")


def policy_from_config(source: str, data: Mapping[str, Any]) -> GroupPolicy | None:
    """The :class:`GroupPolicy` in a parsed TOML file, or ``None`` if it has none.

    Reads only the top-level keys ``identities`` and ``groups``; returns
    ``None`` when neither is present. Every mistake raises
    :class:`~dockguard.errors.ConfigError` naming the dotted key, e.g.
    ``groups.web.sections.contaners``.
    """
    from dockguard.presets import PRESETS

    if "identities" not in data and "groups" not in data:
        return None
    raw_identities = data.get("identities", {})
    raw_groups = data.get("groups", {})
    if not isinstance(raw_identities, Mapping):
        raise ConfigError(source, "identities", 'must be a table of identity = ["group", ...]')
    if not isinstance(raw_groups, Mapping):
        raise ConfigError(source, "groups", "must be a table of [groups.NAME] tables")

    specs: dict[str, _Spec] = {}
    for name, body in raw_groups.items():
        specs[name] = _read_group(source, name, body, PRESETS)
    known = sorted(set(PRESETS) | set(specs))
    for name, spec in specs.items():
        for parent in spec.extends:
            if parent not in PRESETS and parent not in specs:
                raise ConfigError(
                    source,
                    f"groups.{name}.extends",
                    f'unknown group or preset "{parent}"{_closest(parent, known)}; '
                    f"presets: {', '.join(sorted(PRESETS))}; groups: {', '.join(sorted(specs)) or 'none'}",
                )

    resolved: dict[str, Group] = {}
    for name in specs:
        _resolve(source, name, specs, PRESETS, resolved, [])

    identities: dict[str, tuple[str, ...]] = {}
    groups: dict[str, Group] = {}
    for identity, value in raw_identities.items():
        key = f"identities.{identity}"
        if not is_plain_name(identity):
            raise ConfigError(
                source,
                key,
                "an identity name must start with a letter or digit and contain only "
                "letters, digits and . _ @ + - (at most 128 characters)",
            )
        names = _names_as_list(source, key, value, "group")
        ordered: list[str] = []
        for name in names:
            if name in resolved:
                groups[name] = resolved[name]
            elif name in PRESETS:
                groups[name] = PRESETS[name]
            else:
                raise ConfigError(
                    source,
                    key,
                    f'unknown group or preset "{name}"{_closest(name, known)}; define it as '
                    f"[groups.{name}] or use a preset: {', '.join(sorted(PRESETS))}",
                )
            if name not in ordered:
                ordered.append(name)
        identities[identity] = tuple(ordered)
    return GroupPolicy(identities=identities, groups=groups)


@attrs.frozen
class _Spec:
    """One [groups.NAME] table as written, checked but not yet resolved."""

    name: str
    extends: tuple[str, ...]
    sections: Mapping[str, str]
    actions: frozenset[str]
    learn: bool
    description: str
    guards: Allowance | None = None
    guard_keys: tuple[str, ...] = ()


def _read_group(source: str, name: object, body: object, presets: Mapping[str, Group]) -> _Spec:
    key = f"groups.{name}"
    if not is_plain_name(name):
        raise ConfigError(
            source,
            key,
            "a group name must start with a letter or digit and contain only "
            "letters, digits and . _ @ + - (at most 128 characters)",
        )
    if name in presets:
        raise ConfigError(
            source,
            key,
            f'"{name}" is a preset, and preset names are reserved; use extends: '
            f'name your group differently and write extends = ["{name}"]',
        )
    if not isinstance(body, Mapping):
        raise ConfigError(source, key, f"must be a table ([groups.{name}]) with keys {', '.join(_GROUP_KEYS)}")
    for field in body:
        if field not in _GROUP_KEYS:
            raise ConfigError(
                source,
                f"{key}.{field}",
                f"unknown key{_closest(str(field), _GROUP_KEYS)}; a group takes: {', '.join(_GROUP_KEYS)}",
            )

    extends = tuple(_names_as_list(source, f"{key}.extends", body.get("extends", []), "group or preset"))

    raw_sections = body.get("sections", {})
    if not isinstance(raw_sections, Mapping):
        raise ConfigError(source, f"{key}.sections", 'must be a table, e.g. sections = { containers = "read" }')
    sections: dict[str, str] = {}
    for section, level in raw_sections.items():
        where = f"{key}.sections.{section}"
        if section not in SECTION_NAMES:
            raise ConfigError(
                source, where, f"unknown section{_closest(str(section), SECTION_NAMES)}; known: {', '.join(SECTION_NAMES)}"
            )
        if not isinstance(level, str) or level not in ACCESS_LEVELS:
            shown = f'"{level}"' if isinstance(level, str) else repr(level)
            hint = _closest(level, ACCESS_LEVELS) if isinstance(level, str) else ""
            raise ConfigError(
                source, where, f"unknown access level {shown}{hint}; write one of: {_LEVELS_QUOTED}"
            )
        sections[section] = level

    raw_actions = body.get("actions", [])
    if not isinstance(raw_actions, list) or not all(isinstance(a, str) for a in raw_actions):
        raise ConfigError(source, f"{key}.actions", 'must be a list of action names, e.g. ["container.start"]')
    for action in raw_actions:
        if action not in ACTIONS:
            raise ConfigError(
                source,
                f"{key}.actions",
                f'unknown action "{action}"{_closest(action, ACTIONS)}; known: {", ".join(sorted(ACTIONS))}',
            )

    learn = body.get("learn", False)
    if not isinstance(learn, bool):
        raise ConfigError(source, f"{key}.learn", f"must be true or false (without quotes); got {learn!r}")
    description = body.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(source, f"{key}.description", f"must be a string; got {description!r}")
    guards, guard_keys = None, ()
    if "guards" in body:
        table = body["guards"]
        if not isinstance(table, Mapping):
            raise ConfigError(source, f"{key}.guards", "must be a table, e.g. guards = { privileged = true }")
        guards = allowance_from_mapping(source, f"{key}.guards", table)
        guard_keys = tuple(table)
    return _Spec(
        guards=guards,
        guard_keys=guard_keys,
        name=name,
        extends=extends,
        sections=MappingProxyType(sections),
        actions=frozenset(raw_actions),
        learn=learn,
        description=description,
    )


def _resolve(
    source: str,
    name: str,
    specs: Mapping[str, _Spec],
    presets: Mapping[str, Group],
    resolved: dict[str, Group],
    chain: list[str],
) -> Group:
    """The group ``name`` with its extends applied (parents first, then its own entries)."""
    if name in presets:
        return presets[name]
    if name in resolved:
        return resolved[name]
    if name in chain:
        cycle = " -> ".join([*chain[chain.index(name):], name])
        raise ConfigError(source, f"groups.{chain[-1]}.extends", f"extends cycle: {cycle}; remove one of these extends")
    spec = specs[name]
    chain = [*chain, name]
    sections: dict[str, str] = {}
    actions: set[str] = set()
    allowance: Allowance | None = None
    for parent_name in spec.extends:
        parent = _resolve(source, parent_name, specs, presets, resolved, chain)
        # The parents' union (not CLOSED's: its exec_root = true would undo a
        # parent's exec_root = false).
        allowance = parent.guards if allowance is None else allowance.merge(parent.guards)
        for section, level in parent.sections.items():
            if _RANK[level] > _RANK[sections.get(section, "none")]:
                sections[section] = level
        actions |= parent.actions
    if allowance is None:
        allowance = CLOSED
    # Its own entries override the parents' levels (and may lower them).
    sections.update(spec.sections)
    actions |= spec.actions
    if spec.guards is not None:
        # Its own guard keys override the parents' (exec_root = false narrows).
        allowance = attrs.evolve(allowance, **{k: getattr(spec.guards, k) for k in spec.guard_keys})
    group = Group(
        guards=allowance,
        name=name,
        sections={section: level for section, level in sections.items() if level != "none"},
        actions=frozenset(actions),
        learn=spec.learn,
        description=spec.description,
    )
    resolved[name] = group
    return group
