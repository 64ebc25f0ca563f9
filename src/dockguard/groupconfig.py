"""The configuration file's C{[identities]} and C{[groups.NAME]} tables, read into a
L{GroupPolicy<dockguard.groups.GroupPolicy>}.

Each caller is named (by its client certificate's CN or by its listener's fixed
identity). The file gives each identity one or more groups: presets
(L{dockguard.presets.PRESETS}) or groups of its own::

    [identities]
    traefik = ["traefik"]             # a preset (see dockguard.presets)
    ci = ["builder"]

    [groups.builder]
    extends = ["readonly"]
    sections = { images = "write" }
    actions = ["image.build", "container.start"]
    description = "CI: builds and pushes images"

A group's C{extends} come first (the highest level of each section among
them, the union of their actions and guards), then its own entries, which may
lower a level. Every mistake raises L{ConfigError<dockguard.errors.ConfigError>}
naming the file, the dotted key (e.g. C{groups.web.sections.contaners}) and
what to write instead.

A group may narrow its rights to some containers, volumes and networks
(C{scope}, a L{Scope<dockguard.scope.Scope>}) and hide parts of what it reads
(C{redact}, from L{REDACTABLE<dockguard.scope.REDACTABLE>})::

    [groups.autoheal]
    actions = ["container.restart"]
    sections = { containers = "read", events = "read" }
    scope = { labels = ["autoheal=true"] }
    redact = ["env"]

A group's own C{scope} and C{redact} replace its parents'. Without one of
its own it inherits: the scope its parents share (parents whose scopes
differ, or a parent with a scope beside one without, are an error: the
group must write its own), and the redactions all its parents make (the
intersection: what one parent shows stays shown).

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dockguard.errors import ConfigError, did_you_mean
from dockguard.groups import ACCESS_LEVELS, ACTIONS, SECTION_NAMES, Group, GroupPolicy
from dockguard.guards import CLOSED, Allowance, allowance_from_mapping
from dockguard.names import NAME_RULE, is_plain_name
from dockguard.presets import PRESETS
from dockguard.scope import NO_REDACTION, REDACTABLE, Scope, redaction_of

__all__ = ["policy_from_config"]

_RANK = {level: rank for rank, level in enumerate(ACCESS_LEVELS)}
_GROUP_KEYS = ("extends", "sections", "actions", "learn", "description", "guards", "scope", "redact")
_SCOPE_KEYS = ("names", "labels", "owner")
_SCOPE_EXAMPLE = 'e.g. scope = { labels = ["autoheal=true"] } or scope = { owner = true, names = ["ci-*"] }'
_LEVELS_QUOTED = ", ".join(f'"{level}"' for level in ACCESS_LEVELS)


def _names_as_list(source: str, key: str, value: object, what: str) -> list[str]:
    """A string or a list of strings, as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigError(source, key, f'must be a list of {what} names, e.g. ["readonly"]; got {value!r}')


def policy_from_config(source: str, data: Mapping[str, Any]) -> GroupPolicy | None:
    """The L{GroupPolicy} in a parsed TOML file, or C{None} if it has none.

    Reads only the top-level keys C{identities} and C{groups}; returns
    C{None} when neither is present. Every mistake raises
    L{ConfigError<dockguard.errors.ConfigError>} naming the dotted key, e.g.
    C{groups.web.sections.contaners}.
    """
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
                    f'unknown group or preset "{parent}"{did_you_mean(parent, known)}; '
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
            raise ConfigError(source, key, f"an identity name must be a plain name: {NAME_RULE}")
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
                    f'unknown group or preset "{name}"{did_you_mean(name, known)}; define it as '
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
    #: Its own scope and redactions; C{None}: not written, so inherited.
    scope: Scope | None = None
    redact: frozenset[str] | None = None


def _read_group(source: str, name: object, body: object, presets: Mapping[str, Group]) -> _Spec:
    key = f"groups.{name}"
    if not is_plain_name(name):
        raise ConfigError(source, key, f"a group name must be a plain name: {NAME_RULE}")
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
                f"unknown key{did_you_mean(str(field), _GROUP_KEYS)}; a group takes: {', '.join(_GROUP_KEYS)}",
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
                source,
                where,
                f"unknown section{did_you_mean(str(section), SECTION_NAMES)}; known: {', '.join(SECTION_NAMES)}",
            )
        if not isinstance(level, str) or level not in ACCESS_LEVELS:
            shown = f'"{level}"' if isinstance(level, str) else repr(level)
            hint = did_you_mean(level, ACCESS_LEVELS) if isinstance(level, str) else ""
            raise ConfigError(source, where, f"unknown access level {shown}{hint}; write one of: {_LEVELS_QUOTED}")
        sections[section] = level

    raw_actions = body.get("actions", [])
    if not isinstance(raw_actions, list) or not all(isinstance(a, str) for a in raw_actions):
        raise ConfigError(source, f"{key}.actions", 'must be a list of action names, e.g. ["container.start"]')
    for action in raw_actions:
        if action not in ACTIONS:
            raise ConfigError(
                source,
                f"{key}.actions",
                f'unknown action "{action}"{did_you_mean(action, ACTIONS)}; known: {", ".join(sorted(ACTIONS))}',
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
    scope = _read_scope(source, f"{key}.scope", body["scope"]) if "scope" in body else None
    redact = _read_redact(source, f"{key}.redact", body["redact"]) if "redact" in body else None
    return _Spec(
        guards=guards,
        guard_keys=guard_keys,
        scope=scope,
        redact=redact,
        name=name,
        extends=extends,
        sections=MappingProxyType(sections),
        actions=frozenset(raw_actions),
        learn=learn,
        description=description,
    )


def _strings(source: str, key: str, value: object, example: str) -> list[str]:
    if isinstance(value, str):
        raise ConfigError(source, key, f"must be a list of strings: write [{json.dumps(value)}]")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(source, key, f"must be a list of strings, e.g. {example}; got {value!r}")
    return list(value)


def _read_scope(source: str, key: str, table: object) -> Scope:
    """A C{[groups.NAME.scope]} table (C{names}, C{labels}, C{owner}) as a L{Scope}."""
    if not isinstance(table, Mapping):
        raise ConfigError(source, key, f"must be a table with keys {', '.join(_SCOPE_KEYS)}, {_SCOPE_EXAMPLE}")
    for field in table:
        if field not in _SCOPE_KEYS:
            raise ConfigError(
                source,
                f"{key}.{field}",
                f"unknown key{did_you_mean(str(field), _SCOPE_KEYS)}; a scope takes: {', '.join(_SCOPE_KEYS)}",
            )
    names = _strings(source, f"{key}.names", table.get("names", []), '["ci-*", "web"]')
    for name in names:
        if not name or name.startswith("/") or name != name.strip():
            raise ConfigError(
                source,
                f"{key}.names",
                f"{name!r} is not a name pattern: write the name as docker ps shows it, without a "
                'leading / or spaces, with * and ? as wildcards, e.g. "ci-*"',
            )
    labels = _strings(source, f"{key}.labels", table.get("labels", []), '["autoheal=true", "com.example.managed"]')
    for label in labels:
        label_key, equals, value = label.partition("=")
        if not label_key.strip() or label_key != label_key.strip() or (equals and value != value.lstrip()):
            shown = label_key.strip() + (f"={value.strip()}" if equals else "")
            hint = f' (did you mean "{shown}"?)' if label_key.strip() and shown != label else ""
            raise ConfigError(
                source,
                f"{key}.labels",
                f'{label!r} is not a label: write "key" (the label is set) or "key=value", '
                f"without spaces around the ={hint}",
            )
    owner = table.get("owner", False)
    if not isinstance(owner, bool):
        raise ConfigError(source, f"{key}.owner", f"must be true or false (without quotes); got {owner!r}")
    if not (names or labels or owner):
        raise ConfigError(
            source,
            key,
            "this scope holds nothing, so the group could act on no container, volume or network; "
            f"give it names, labels or owner = true ({_SCOPE_EXAMPLE}), or remove it for no scope",
        )
    try:
        return Scope(names=names, labels=labels, owner=owner)
    except ValueError as e:  # the checks above should have caught it
        raise ConfigError(source, key, str(e)) from None


def _read_redact(source: str, key: str, value: object) -> frozenset[str]:
    """A C{redact} list, e.g. C{["env"]}, as a set of L{REDACTABLE} names."""
    items = _strings(source, key, value, '["env"]')
    for item in items:
        if item not in REDACTABLE:
            raise ConfigError(
                source,
                key,
                f'unknown redaction "{item}"{did_you_mean(item, REDACTABLE)}; write any of: '
                + ", ".join(f'"{name}"' for name in REDACTABLE),
            )
    return frozenset(items)


def _same_scope(a: Scope, b: Scope) -> bool:
    """Whether two scopes hold the same resources (the order of their lists aside)."""
    return (set(a.names), set(a.labels), a.owner) == (set(b.names), set(b.labels), b.owner)


def _scope_toml(scope: Scope) -> str:
    """C{scope} as the inline table to write in the file."""
    parts = []
    if scope.names:
        parts.append("names = [" + ", ".join(f'"{name}"' for name in scope.names) + "]")
    if scope.labels:
        parts.append("labels = [" + ", ".join(f'"{label}"' for label in scope.labels) + "]")
    if scope.owner:
        parts.append("owner = true")
    return "scope = { " + ", ".join(parts) + " }"


def _inherited_scope(source: str, name: str, parents: list[Group]) -> Scope | None:
    """The scope a group without one of its own gets from its parents."""
    scoped = [parent for parent in parents if parent.scope is not None]
    if not scoped:
        return None
    first = scoped[0]
    assert first.scope is not None
    unscoped = [parent for parent in parents if parent.scope is None]
    if unscoped:
        raise ConfigError(
            source,
            f"groups.{name}.extends",
            f'"{first.name}" has a scope ({first.scope.describe()}) but "{unscoped[0].name}" has none, so '
            "it is not clear whether the rights this group inherits hold for every container, volume "
            "and network or only for those in scope: write the scope in "
            f"[groups.{name}] itself, e.g. {_scope_toml(first.scope)}",
        )
    for other in scoped[1:]:
        assert other.scope is not None
        if not _same_scope(first.scope, other.scope):
            raise ConfigError(
                source,
                f"groups.{name}.extends",
                f'"{first.name}" and "{other.name}" have different scopes ({first.scope.describe()}; '
                f"{other.scope.describe()}): a group inherits a scope only when all its parents "
                f"share it; write the scope in [groups.{name}] itself, e.g. {_scope_toml(first.scope)}",
            )
    return first.scope


def _resolve(
    source: str,
    name: str,
    specs: Mapping[str, _Spec],
    presets: Mapping[str, Group],
    resolved: dict[str, Group],
    chain: list[str],
) -> Group:
    """The group C{name} with its extends applied (parents first, then its own entries)."""
    if name in presets:
        return presets[name]
    if name in resolved:
        return resolved[name]
    if name in chain:
        cycle = " -> ".join([*chain[chain.index(name) :], name])
        raise ConfigError(source, f"groups.{chain[-1]}.extends", f"extends cycle: {cycle}; remove one of these extends")
    spec = specs[name]
    chain = [*chain, name]
    sections: dict[str, str] = {}
    actions: set[str] = set()
    allowance: Allowance | None = None
    parents: list[Group] = []
    for parent_name in spec.extends:
        parent = _resolve(source, parent_name, specs, presets, resolved, chain)
        parents.append(parent)
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
    # Its own scope and redactions replace the parents'.
    scope = spec.scope if spec.scope is not None else _inherited_scope(source, name, parents)
    if spec.redact is not None:
        redact = spec.redact
    elif parents:
        redact = redaction_of(parent.redact for parent in parents)
    else:
        redact = NO_REDACTION
    # Group's redact converter (a bare frozenset) leaves mypy no argument
    # type it accepts, so it goes in through a mapping.
    redaction: dict[str, Any] = {"redact": redact}
    group = Group(
        scope=scope,
        guards=allowance,
        name=name,
        sections={section: level for section, level in sections.items() if level != "none"},
        actions=frozenset(actions),
        learn=spec.learn,
        description=spec.description,
        **redaction,
    )
    resolved[name] = group
    return group
