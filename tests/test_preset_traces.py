"""Every preset against the trace of its tool (``tests/traces/<preset>.toml``).

A trace lists each call the tool really makes, as it sends it, with where it
was seen: a run of the tool through dockguard's learn mode here, or the file
of the tool's source the call is made in (see ``harness/traces.py``). For
every preset:

* every traced call is allowed by the preset, through the real policy
  (``GroupPolicy.decide`` with the routes lookup), and by ``dockguard explain``;
* every route the preset allows is justified: by a traced call (the route
  dockguard judges it as), or by an ``[[extra]]`` entry of the trace that
  says why the preset grants it anyway; and no extra is stale.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dockguard.cli import main
from dockguard.groups import GroupPolicy
from dockguard.paths import canonicalise
from dockguard.presets import PRESETS
from dockguard.routes import ROUTES, lookup, sample_path
from harness.traces import TRACES, Trace, load_trace, route_key

NAMES = sorted(PRESETS)


def _policy(name: str) -> GroupPolicy:
    return GroupPolicy(identities={"tool": (name,)}, groups={name: PRESETS[name]})


def _allowed_routes(name: str) -> set[str]:
    policy = _policy(name)
    allowed = set()
    for route in ROUTES:
        path = sample_path(route)
        if policy.decide("tool", route.method, path, lookup(route.method, path)).allowed:
            allowed.add(f"{route.method} {route.template}")
    return allowed


def _extra_routes(trace: Trace, allowed: set[str]) -> tuple[set[str], set[str]]:
    """The routes the trace's extras name one by one, and those they name by section."""
    sections = {f"{r.method} {r.template}": r.section for r in ROUTES}
    by_route: set[str] = set()
    by_section: set[str] = set()
    for extra in trace.extra:
        assert extra.reason.strip(), f"{trace.preset}: an extra without a reason"
        assert extra.routes or extra.sections, f"{trace.preset}: an extra that names nothing"
        for key in extra.routes:
            assert key in sections, f"{trace.preset}: extra {key!r} is no route of ROUTES"
            by_route.add(key)
        for section in extra.sections:
            held = {key for key in allowed if sections[key] == section}
            assert held, f"{trace.preset}: extra section {section!r} grants nothing"
            by_section |= held
    return by_route, by_section


def test_every_preset_has_a_trace_and_every_trace_a_preset() -> None:
    assert sorted(path.stem for path in TRACES.glob("*.toml")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_traced_call_is_allowed_by_its_preset(name: str) -> None:
    trace = load_trace(name)
    assert trace.calls, f"{name}: an empty trace"
    policy = _policy(name)
    for call in trace.calls:
        path = canonicalise(call.path.encode())
        decision = policy.decide("tool", call.method, path, lookup(call.method, path))
        assert decision.allowed, f"{name}: {call.method} {call.path} ({call.where}): {decision.reason}"


@pytest.mark.parametrize("name", NAMES)
def test_every_route_a_preset_allows_is_justified_by_its_trace(name: str) -> None:
    trace = load_trace(name)
    allowed = _allowed_routes(name)
    traced = {route_key(call.method, call.path) for call in trace.calls}
    by_route, by_section = _extra_routes(trace, allowed)
    unjustified = sorted(allowed - traced - by_route - by_section)
    assert not unjustified, f"{name} allows routes its tool was never seen to call: {unjustified}"
    stale = sorted(key for key in by_route if key not in allowed or key in traced)
    assert not stale, f"{name}: extras that are not granted, or that a traced call already justifies: {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_explain_preset_shows_every_traced_call_allowed(name: str) -> None:
    """C{dockguard explain --preset PRESET METHOD PATH}, for each call of the trace."""
    for call in load_trace(name).calls:
        out = io.StringIO()
        status = main(["explain", "--preset", name, call.method, call.path], out)
        first = out.getvalue().splitlines()[0]
        assert (status, first) == (0, f"allow {name} {call.method} {call.path}"), out.getvalue()


@pytest.mark.parametrize("name", NAMES)
def test_explain_preset_lists_every_traced_route_as_allowed(name: str, tmp_path: Path) -> None:
    """C{dockguard explain --preset PRESET} (the table of every route), and the
    same table for an identity given the preset in a file."""
    config = tmp_path / "dockguard.toml"
    config.write_text(f'[identities]\n"{name}" = ["{name}"]\n')
    traced = {route_key(call.method, call.path) for call in load_trace(name).calls}
    tables = []
    for argv in (["explain", "--preset", name], ["explain", name, "--config", str(config)]):
        out = io.StringIO()
        assert main(argv, out) == 0
        verdicts = {}
        for line in out.getvalue().splitlines()[2:]:
            verdict, method, template = line.split()[:3]
            verdicts[f"{method} {template}"] = verdict
        assert {key: verdicts[key] for key in traced} == dict.fromkeys(traced, "allow")
        tables.append(out.getvalue())
    assert tables[0] == tables[1]


def test_explain_names_the_presets_when_asked_for_one_that_is_not(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--preset", "Traefik"], io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "no preset 'Traefik' (did you mean \"traefik\"?)" in err and "dozzle" in err


def test_a_trace_names_where_each_call_was_seen() -> None:
    for name in NAMES:
        for call in load_trace(name).calls:
            assert call.origin in ("learn", "source")
            if call.origin == "source":
                repo, _, rest = call.where.partition("@")
                assert "/" in repo and ":" in rest, call.where
