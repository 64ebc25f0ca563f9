"""
What C{dockguard suggest} prints: per identity, the smallest group that
allows what a decision log saw, scope included, as TOML.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

import attrs

from dockguard.paths import CanonicalPath, PathRefused, canonicalise
from dockguard.policy import READ_METHODS
from dockguard.queries import QueryRefused, parse_query
from dockguard.routes import SCOPED_RESOURCES, SCOPED_SECTIONS, Match, lookup, placeholder

__all__ = ["suggest_groups"]

#: A reference to a resource by its ID (or an ID prefix of 12 or more hex
#: digits): it cannot become a name pattern of a scope.
_HEX_ID = re.compile(r"[0-9a-f]{12,64}")
#: A reference a scope's name pattern can hold: a container's own name (not a
#: legacy link name such as C{web/db}), a volume's or a network's.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: How many IDs a suggestion's comment names.
_MAX_SHOWN = 10


@attrs.define
class _Seen:
    """What the decision log showed one identity do."""

    sections: dict[str, str] = attrs.Factory(dict)
    actions: set[str] = attrs.Factory(set)
    #: The containers, volumes and networks it named by name.
    names: set[str] = attrs.Factory(set)
    #: ... by ID, or otherwise than by a name a scope can hold.
    unnamed: set[str] = attrs.Factory(set)
    #: Whether it created containers, volumes or networks, and the names it gave them.
    created: bool = False
    created_names: set[str] = attrs.Factory(set)
    #: The calls it made that a scope refuses (prune, system df, ...).
    unscopable: set[str] = attrs.Factory(set)

    def add_scope(self, method: str, path: CanonicalPath, match: Match) -> None:
        """Note which scoped resources C{method path} touched."""
        route = match.judged_route
        if route is None:
            if match.section_name in SCOPED_SECTIONS:
                self.unscopable.add(f"{method} {path.path}")
            return
        kind = route.scoped
        if kind == "refused":
            self.unscopable.add(f"{method} {route.template}")
        elif kind == "create":
            self.created = True
            for name in parse_qs(path.query).get("name", []):
                self.created_names.add(name.lstrip("/"))
        elif kind in SCOPED_RESOURCES or kind == "query":
            if kind == "query":
                try:
                    ref = parse_query(path.query).get("container")
                except QueryRefused:
                    return
            else:
                start, end = placeholder(route, path)
                ref = "/".join(path.segments[start:end])
            if _HEX_ID.fullmatch(ref) or not _PLAIN_NAME.fullmatch(ref):
                self.unnamed.add(ref)
            else:
                self.names.add(ref)

    def scope_lines(self) -> list[str]:
        """The C{scope} to suggest, with comments saying what was left out and why."""
        if not (self.names or self.unnamed or self.created or self.unscopable):
            return []  # it named no container, volume or network: nothing to scope
        lines = []
        if self.unscopable:
            calls = ", ".join(sorted(self.unscopable))
            lines.append(f"# no scope: it called {calls}, which a scope refuses")
            return lines
        names = self.names - self.created_names if self.created else set(self.names)
        if self.created:
            own = sorted(self.names & self.created_names)
            if own:
                lines.append(f"# {', '.join(own)}: created by it, so held by owner = true")
        if self.unnamed:
            refs = sorted({ref[:12] if _HEX_ID.fullmatch(ref) else ref for ref in self.unnamed})
            shown = ", ".join(refs[:_MAX_SHOWN]) + (
                f" and {len(refs) - _MAX_SHOWN} more" if len(refs) > _MAX_SHOWN else ""
            )
            how = "by ID" if all(_HEX_ID.fullmatch(ref) for ref in self.unnamed) else "by ID or by a link name"
            lines.append(f"# the containers, volumes or networks it named {how} ({shown}) cannot be held by name:")
            if self.created:
                lines.append(
                    "# owner = true holds those it created; scope the others by label (labels = [...]) or by name"
                )
            else:
                lines.append("# scope them by label (labels = [...]) or by name")
        if not (names or self.created):
            lines.append("# no scope: it named no container, volume or network by a name")
            return lines
        parts = []
        if names:
            parts.append("names = [" + ", ".join(json.dumps(name) for name in sorted(names)) + "]")
        if self.created:
            parts.append("owner = true")
        lines.append("scope = { " + ", ".join(parts) + " }")
        return lines


def suggest_groups(records: list[dict[str, Any]], only: set[str] | None = None) -> str:
    """
    The smallest group per identity that allows every request the log saw
    allowed or let through in learn mode (would-deny), as TOML ready to paste
    into the configuration.  Refused requests are not counted: enforcing
    groups meant them to fail.

    Its scope is no wider than what the log saw: the names of the
    containers, volumes and networks its paths named, and C{owner = true}
    when it created some (what it creates is its own).  IDs cannot be names:
    they are left out, with a comment.  No scope when it named none, or
    when it made a call that a scope refuses (prune, C{/system/df}, ...).
    """
    needs: dict[str, _Seen] = {}
    for record in records:
        if record.get("decision") not in ("allow", "would-deny"):
            continue
        identity, method, target = record.get("identity"), record.get("method"), record.get("path")
        if only is not None and identity not in only:
            continue
        if not (isinstance(identity, str) and isinstance(method, str) and isinstance(target, str)):
            continue
        try:
            path = canonicalise(target.encode())
        except PathRefused:
            continue
        seen = needs.setdefault(identity, _Seen())
        sections, actions = seen.sections, seen.actions
        match = lookup(method, path)
        seen.add_scope(method, path, match)
        route = match.route
        if route is not None and route.action is not None:
            actions.add(route.action)
            continue
        section = match.section
        if section is None:
            continue
        sensitive = route is not None and route.sensitive
        # a sensitive read without an action of its own only opens with write
        level = "read" if method in READ_METHODS and not sensitive else "write"
        if sections.get(section.name) != "write":
            sections[section.name] = level
    lines = []
    for identity in sorted(needs):
        seen = needs[identity]
        group = f"learned-{identity}"
        lines.append(f"[groups.{json.dumps(group)}]")
        lines.append(f'description = "suggested from the decision log for {identity}"')
        body = ", ".join(f'{name} = "{level}"' for name, level in sorted(seen.sections.items()))
        lines.append(f"sections = {{ {body} }}")
        lines.append("actions = [" + ", ".join(f'"{a}"' for a in sorted(seen.actions)) + "]")
        lines.extend(seen.scope_lines())
        lines.append("")
    if needs:
        lines.append("[identities]")
        for identity in sorted(needs):
            lines.append(f'{json.dumps(identity)} = ["learned-{identity}"]')
    return "\n".join(lines) + "\n"
