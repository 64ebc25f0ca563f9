"""
The traces of the presets: which Engine API calls each preset's tool really
makes, and where that was seen (``tests/traces/<preset>.toml``).

A trace file holds ``[[evidence]]`` tables, each with the calls as the tool
sends them (``"GET /v1.41/containers/json?all=1"``) and where they come from:
``from = "learn"`` (``run``: a run of the tool through dockguard's learn mode
or decision log here) or ``from = "source"`` (``repo``, ``commit``, ``file``:
the tool's source the call is made in). ``[[extra]]`` tables name the routes
a preset grants without a traced call (``routes``, or every route it grants
in some ``sections``), each with its ``reason``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import attrs

from dockguard.paths import canonicalise
from dockguard.routes import lookup

TRACES = Path(__file__).resolve().parent.parent / "traces"

ORIGINS = ("learn", "source")


@attrs.frozen
class TracedCall:
    """One call a tool makes, as it sends it, and where that was seen."""

    method: str
    #: The request target as the tool sends it, e.g. ``/v1.41/containers/json?all=1``.
    path: str
    #: ``"learn"`` or ``"source"``.
    origin: str
    #: The run it was seen in, or ``repo@commit:file``.
    where: str


@attrs.frozen
class Extra:
    """Routes a preset grants on purpose without a traced call."""

    routes: tuple[str, ...]
    sections: tuple[str, ...]
    reason: str


@attrs.frozen
class Trace:
    preset: str
    tool: str
    calls: tuple[TracedCall, ...]
    extra: tuple[Extra, ...]


def route_key(method: str, target: str) -> str:
    """``"METHOD TEMPLATE"`` of the route dockguard judges the call as, or the call itself if it has none."""
    path = canonicalise(target.encode())
    route = lookup(method, path).judged_route
    if route is None:
        return f"{method} {path.path} (no route)"
    return f"{route.method} {route.template}"


def _where(table: dict[str, object], origin: str, name: str) -> str:
    if origin == "learn":
        run = table.get("run")
        if not isinstance(run, str) or not run:
            raise ValueError(f"{name}: a learn evidence needs its run")
        return run
    parts = [table.get(key) for key in ("repo", "commit", "file")]
    if not all(isinstance(part, str) and part for part in parts):
        raise ValueError(f"{name}: a source evidence needs repo, commit and file")
    repo, commit, file = parts
    return f"{repo}@{commit}:{file}"


def load_trace(preset: str) -> Trace:
    """The trace of ``preset``, checked for shape."""
    path = TRACES / f"{preset}.toml"
    data = tomllib.loads(path.read_text())
    calls: list[TracedCall] = []
    for table in data.get("evidence", []):
        origin = table.get("from")
        if origin not in ORIGINS:
            raise ValueError(f"{path.name}: evidence from {origin!r}, not one of {ORIGINS}")
        where = _where(table, origin, path.name)
        for call in table["calls"]:
            method, _, target = call.partition(" ")
            if not target.startswith("/") or method.upper() != method:
                raise ValueError(f"{path.name}: {call!r} is not 'METHOD /path'")
            calls.append(TracedCall(method=method, path=target, origin=origin, where=where))
    extra = tuple(
        Extra(
            routes=tuple(table.get("routes", ())),
            sections=tuple(table.get("sections", ())),
            reason=table["reason"],
        )
        for table in data.get("extra", [])
    )
    return Trace(preset=preset, tool=data["tool"], calls=tuple(calls), extra=extra)
