"""The configuration file's ``[identities]`` and ``[groups.NAME]`` tables, read into a
:class:`~dockguard.groups.GroupPolicy`.

Each caller is named (by its client certificate's CN or by its listener's fixed
identity). The file gives each identity one or more groups: presets
(:data:`dockguard.presets.PRESETS`) or groups of its own::

    [identities]
    traefik = ["traefik"]             # a preset (see dockguard.presets)
    ci = ["builder"]

    [groups.builder]
    extends = ["readonly"]
    sections = { images = "write" }
    actions = ["image.build", "container.start"]
    description = "CI: builds and pushes images"

A group's ``extends`` come first (the highest level of each section among
them, the union of their actions and guards), then its own entries, which may
lower a level. Every mistake raises :class:`~dockguard.errors.ConfigError`
naming the file, the dotted key (e.g. ``groups.web.sections.contaners``) and
what to write instead.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dockguard.errors import ConfigError, did_you_mean
from dockguard.groups import ACCESS_LEVELS, ACTIONS, SECTION_NAMES, Group, GroupPolicy
from dockguard.guards import CLOSED, Allowance, allowance_from_mapping
from dockguard.names import NAME_RULE, is_plain_name
from dockguard.presets import PRESETS

__all__ = ["policy_from_config"]

_RANK = {level: rank for rank, level in enumerate(ACCESS_LEVELS)}
_GROUP_KEYS = ("extends", "sections", "actions", "learn", "description", "guards")
_LEVELS_QUOTED = ", ".join(f'"{level}"' for level in ACCESS_LEVELS)


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
                source, where, f"unknown section{did_you_mean(str(section), SECTION_NAMES)}; known: {', '.join(SECTION_NAMES)}"
            )
        if not isinstance(level, str) or level not in ACCESS_LEVELS:
            shown = f'"{level}"' if isinstance(level, str) else repr(level)
            hint = did_you_mean(level, ACCESS_LEVELS) if isinstance(level, str) else ""
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
