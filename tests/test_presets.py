"""The presets: each opens the calls its tool makes, and refuses what it should not do.

The calls each tool makes are its trace (``tests/traces/<preset>.toml``, see
``test_preset_traces.py``), as the tool sends them: with the version prefix it
pins (classic Watchtower: 1.25 by default) or negotiates.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dockguard.cli import main
from dockguard.envpolicy import EnvPolicy
from dockguard.groups import Group, GroupPolicy
from dockguard.guards import OPEN
from dockguard.meaning import check_request
from dockguard.paths import canonicalise
from dockguard.policy import Decision
from dockguard.presets import PRESETS
from dockguard.routes import ROUTES, SECTIONS, Route, lookup, sample_path
from harness.traces import load_trace

Call = tuple[str, bytes]

# libpod (issue 17): the presets grant Docker's routes only (docs/podman.md)
ROUTES = tuple(route for route in ROUTES if not route.template.startswith("/libpod/"))

#: The calls each preset's tool makes: its trace (tests/traces/<preset>.toml).
KNOWN_CALLS: dict[str, list[Call]] = {
    name: [(call.method, call.path.encode()) for call in load_trace(name).calls] for name in PRESETS
}

REFUSED_CALLS: dict[str, list[Call]] = {
    "traefik": [
        ("POST", b"/v1.24/containers/create"),
        ("POST", b"/v1.24/containers/x/exec"),
        ("POST", b"/v1.24/exec/x/start"),
        ("DELETE", b"/v1.24/containers/x"),
        ("POST", b"/v1.24/containers/x/stop"),
        ("GET", b"/v1.24/containers/x/archive?path=/"),
        ("GET", b"/v1.24/containers/x/attach/ws"),
        ("GET", b"/v1.47/secrets"),
        ("POST", b"/v1.47/services/create"),
        ("GET", b"/v1.24/containers/x/logs?stdout=1"),
        ("GET", b"/v1.51/containers/x/top"),
        ("GET", b"/v1.51/containers/x/stats?stream=0"),
        ("GET", b"/v1.51/containers/x/changes"),
        ("GET", b"/v1.51/services/s"),
        ("GET", b"/v1.51/nodes"),
        ("GET", b"/v1.47/services/s/logs?stdout=1"),
        ("GET", b"/v1.47/tasks/t/logs?stdout=1"),
    ],
    "homepage": [
        ("POST", b"/containers/x/start"),
        ("POST", b"/containers/create"),
        ("GET", b"/containers/x/export"),
        ("GET", b"/images/json"),
        ("GET", b"/events"),
        ("GET", b"/containers/x/logs?stdout=1"),
        ("GET", b"/services/s/logs?stdout=1"),
        ("GET", b"/tasks/t/logs?stdout=1"),
    ],
    "dozzle": [
        ("POST", b"/v1.45/containers/x/exec"),
        ("POST", b"/v1.45/exec/x/start"),
        ("POST", b"/v1.45/containers/x/attach"),
        ("GET", b"/v1.45/containers/x/attach/ws"),
        ("POST", b"/v1.45/containers/x/start"),
        ("DELETE", b"/v1.45/containers/x"),
        ("GET", b"/v1.45/containers/x/archive?path=/"),
    ],
    "watchtower": [
        ("POST", b"/v1.25/containers/x/exec"),
        ("POST", b"/v1.25/exec/x/start"),
        ("POST", b"/v1.25/containers/x/attach"),
        ("GET", b"/v1.25/containers/x/archive?path=/"),
        ("PUT", b"/v1.25/containers/x/archive?path=/"),
        ("GET", b"/v1.25/containers/x/export"),
        ("POST", b"/v1.25/build"),
        ("POST", b"/v1.25/volumes/create"),
        ("DELETE", b"/v1.25/volumes/data"),
        ("POST", b"/v1.25/networks/create"),
        ("POST", b"/v1.25/images/prune"),
        ("POST", b"/v1.25/swarm/init"),
        ("GET", b"/v1.25/containers/x/logs?stdout=1"),
        ("GET", b"/v1.25/images/get?names=app"),
        ("GET", b"/v1.25/images/app:latest/get"),
    ],
    "portainer": [
        ("GET", b"/v1.41/foo"),
        ("GET", b"/v1.41/CONTAINERS/json"),
        ("POST", b"/v1.41/swarm/init"),  # cluster admin: no preset but admin
        ("POST", b"/v1.41/nodes/n1/update?version=3"),
    ],
    "dockman": [
        ("POST", b"/v1.47/build"),
        ("POST", b"/v1.47/commit?container=abc"),
        ("POST", b"/v1.47/session"),
        ("POST", b"/v1.47/swarm/init"),
        ("GET", b"/v1.47/secrets"),
        ("POST", b"/v1.47/auth"),
        ("POST", b"/v1.47/plugins/pull"),
        ("GET", b"/v1.47/services"),
    ],
    "glances": [
        ("POST", b"/v1.47/containers/x/start"),
        ("POST", b"/v1.47/containers/x/exec"),
        ("GET", b"/v1.47/containers/x/archive?path=/"),
        ("POST", b"/v1.47/images/create"),
        ("GET", b"/v1.47/networks"),
        ("GET", b"/v1.47/containers/x/logs?stdout=1"),
        ("GET", b"/v1.47/images/get?names=app"),
        ("GET", b"/v1.47/images/sha256:0123abcd/get"),
        ("GET", b"/v1.47/images/json"),
        ("GET", b"/v1.47/images/search?term=x"),
        ("GET", b"/v1.47/containers/x/top"),
        ("HEAD", b"/v1.47/images/app/get"),
    ],
    "grafana": [
        ("POST", b"/v1.47/containers/create"),
        ("POST", b"/v1.47/containers/x/exec"),
        ("POST", b"/v1.47/exec/x/start"),
        ("DELETE", b"/v1.47/containers/x"),
        ("GET", b"/v1.47/containers/x/archive?path=/"),
        ("GET", b"/v1.47/containers/x/attach/ws"),
        ("GET", b"/v1.47/images/get?names=app"),
        ("GET", b"/v1.47/services/s/logs?stdout=1"),
    ],
    "prometheus": [
        # it lists: no inspect, no logs, no stats
        ("GET", b"/v1.41/containers/x/json"),
        ("GET", b"/v1.41/containers/x/logs?stdout=1"),
        ("GET", b"/v1.41/containers/x/stats?stream=0"),
        ("GET", b"/v1.41/containers/x/top"),
        ("GET", b"/v1.41/networks/n"),
        ("GET", b"/v1.41/services/s"),
        ("GET", b"/v1.41/events"),
        ("GET", b"/v1.41/version"),
        ("POST", b"/v1.41/containers/create"),
    ],
    "uptime-kuma": [
        ("GET", b"/containers/x/logs?stdout=1"),
        ("GET", b"/containers/x/stats?stream=0"),
        ("GET", b"/events"),
        ("POST", b"/containers/x/restart"),
        ("GET", b"/images/json"),
    ],
    "crowdsec": [
        ("GET", b"/v1.51/containers/x/archive?path=/"),
        ("GET", b"/v1.51/containers/x/top"),
        ("POST", b"/v1.51/containers/x/exec"),
        ("POST", b"/v1.51/containers/x/restart"),
        ("GET", b"/v1.51/images/get?names=app"),
        ("GET", b"/v1.51/tasks/t/logs?stdout=1"),
    ],
    "diun": [
        ("GET", b"/v1.51/containers/x/json"),
        ("GET", b"/v1.51/containers/x/logs?stdout=1"),
        ("POST", b"/v1.51/images/create?fromImage=nginx"),
        ("GET", b"/v1.51/images/nginx/get"),
        ("GET", b"/v1.51/events"),
    ],
    "docker-autoheal": [
        ("GET", b"/containers/x/json"),
        ("GET", b"/containers/x/logs?stdout=1"),
        ("POST", b"/containers/x/stop"),
        ("POST", b"/containers/x/kill"),
        ("POST", b"/containers/x/start"),
        ("DELETE", b"/containers/x"),
        ("POST", b"/containers/create"),
    ],
    "beszel": [
        ("GET", b"/containers/x/archive?path=/"),
        ("GET", b"/containers/x/top"),
        ("POST", b"/containers/x/restart"),
        ("GET", b"/images/json"),
        ("GET", b"/events"),
    ],
    "wud": [
        ("GET", b"/containers/x/logs?stdout=1"),
        ("POST", b"/images/create?fromImage=nginx"),
        ("POST", b"/containers/create"),
        ("POST", b"/containers/x/stop"),
        ("GET", b"/images/nginx/get"),
    ],
    "caddy-docker-proxy": [
        ("GET", b"/v1.51/containers/x/logs?stdout=1"),
        ("GET", b"/v1.51/secrets"),
        ("POST", b"/v1.51/configs/create"),
        ("POST", b"/v1.51/containers/create"),
        ("GET", b"/v1.51/images/json"),
    ],
    "ofelia-exec": [
        ("POST", b"/containers/create"),
        ("POST", b"/containers/x/start"),
        ("DELETE", b"/containers/x"),
        ("POST", b"/images/create?fromImage=busybox"),
        ("GET", b"/containers/x/logs?stdout=1"),
        ("POST", b"/containers/x/attach"),
        ("POST", b"/services/create"),
    ],
    "homarr": [
        ("POST", b"/containers/create"),
        ("POST", b"/containers/x/exec"),
        ("POST", b"/containers/x/kill"),
        ("GET", b"/containers/x/archive?path=/"),
        ("POST", b"/images/create?fromImage=nginx"),
        ("GET", b"/images/json"),
    ],
    "netdata": [
        ("GET", b"/v1.51/containers/x/logs?stdout=1"),
        ("GET", b"/v1.51/containers/x/top"),
        ("GET", b"/v1.51/images/x/get"),
        ("POST", b"/v1.51/containers/x/start"),
        ("GET", b"/v1.51/events"),
    ],
    "woodpecker-agent": [
        ("POST", b"/v1.51/containers/x/exec"),
        ("POST", b"/v1.51/exec/x/start"),
        ("POST", b"/v1.51/build?t=x"),
        ("POST", b"/v1.51/images/x/push"),
        ("GET", b"/v1.51/containers/x/archive?path=/"),
        ("POST", b"/v1.51/containers/prune"),
        ("POST", b"/v1.51/swarm/init"),
        ("GET", b"/v1.51/secrets"),
    ],
    "readonly": [
        ("GET", b"/v1.47/containers/x/archive?path=/"),
        ("HEAD", b"/v1.47/containers/x/archive?path=/"),
        ("GET", b"/v1.47/containers/x/export"),
        ("GET", b"/v1.47/containers/x/attach/ws"),
        ("GET", b"/v1.47/swarm/unlockkey"),
        ("POST", b"/v1.47/containers/x/start"),
        ("POST", b"/v1.47/auth"),
        ("GET", b"/v1.47/containers/x/logs?stdout=1"),
        ("GET", b"/v1.47/services/s/logs?stdout=1"),
        ("GET", b"/v1.47/tasks/t/logs?stdout=1"),
        ("GET", b"/v1.47/images/get?names=app"),
        ("GET", b"/v1.47/images/app/get"),
    ],
    "admin": [
        ("GET", b"/v1.47/foo"),
    ],
}


def preset_policy(name: str) -> GroupPolicy:
    return GroupPolicy(identities={"tool": (name,)}, groups={name: PRESETS[name]})


def decide_sample(policy: GroupPolicy, route: Route) -> Decision:
    path = sample_path(route)
    return policy.decide("tool", route.method, path, lookup(route.method, path))


def test_the_presets() -> None:
    assert set(PRESETS) == {
        "traefik",
        "homepage",
        "dozzle",
        "watchtower",
        "portainer",
        "dockman",
        "glances",
        "grafana",
        "prometheus",
        "uptime-kuma",
        "crowdsec",
        "diun",
        "docker-autoheal",
        "beszel",
        "wud",
        "caddy-docker-proxy",
        "ofelia-exec",
        "homarr",
        "netdata",
        "woodpecker-agent",
        "readonly",
        "admin",
    }
    assert set(KNOWN_CALLS) == set(PRESETS) == set(REFUSED_CALLS)
    for name, group in PRESETS.items():
        assert isinstance(group, Group)
        assert group.name == name
        assert group.description
        assert group.learn is False


@pytest.mark.parametrize(
    ("preset", "method", "target"),
    [(name, m, t) for name, calls in KNOWN_CALLS.items() for m, t in calls],
)
def test_preset_allows_the_calls_its_tool_makes(preset: str, method: str, target: bytes) -> None:
    path = canonicalise(target)
    decision = preset_policy(preset).decide("tool", method, path, lookup(method, path))
    assert decision.allowed, decision.reason
    assert decision.rule.startswith(f"group {preset}: ")


@pytest.mark.parametrize(
    ("preset", "method", "target"),
    [(name, m, t) for name, calls in REFUSED_CALLS.items() for m, t in calls],
)
def test_preset_refuses_calls_outside_its_purpose(preset: str, method: str, target: bytes) -> None:
    path = canonicalise(target)
    decision = preset_policy(preset).decide("tool", method, path, lookup(method, path))
    assert not decision.allowed, decision.rule


def test_readonly_allows_every_plain_read_and_nothing_else() -> None:
    p = preset_policy("readonly")
    for route in ROUTES:
        allowed = decide_sample(p, route).allowed
        assert allowed is (route.method in ("GET", "HEAD") and not route.sensitive), route
    assert dict(PRESETS["readonly"].sections) == {s.name: "read" for s in SECTIONS}
    assert not PRESETS["readonly"].actions


def test_admin_allows_every_route() -> None:
    p = preset_policy("admin")
    for route in ROUTES:
        assert decide_sample(p, route).allowed, route


def test_portainer_allows_every_route_but_cluster_admin() -> None:
    p = preset_policy("portainer")
    for route in ROUTES:
        assert decide_sample(p, route).allowed is not bool(route.amounts_to), route


@pytest.mark.parametrize("name", sorted(set(PRESETS) - {"admin"}))
def test_no_preset_but_admin_is_cluster_admin(name: str) -> None:
    p = preset_policy(name)
    granted = [r for r in ROUTES if r.amounts_to and decide_sample(p, r).allowed]
    assert not granted, granted


def test_dockman_is_its_documented_minimum() -> None:
    # PING VERSION INFO EVENTS (GET-only sections), CONTAINERS IMAGES NETWORKS
    # VOLUMES EXEC SYSTEM with POST=1, and ALLOW_START/STOP/RESTARTS
    dockman = PRESETS["dockman"]
    assert dict(dockman.sections) == {
        "ping": "read",
        "version": "read",
        "info": "read",
        "events": "read",
        "containers": "write",
        "images": "write",
        "networks": "write",
        "volumes": "write",
        "exec": "write",
        "system": "write",
    }
    assert dockman.actions == {"container.start", "container.stop", "container.restart", "container.kill"}


@pytest.mark.parametrize(
    ("preset", "method", "target"),
    [(name, m, t) for name, calls in KNOWN_CALLS.items() for m, t in calls],
)
def test_the_calls_a_tool_makes_pass_the_query_guards(preset: str, method: str, target: bytes) -> None:
    """The guards on queries (builds, image names, plugin create) leave every preset's own calls alone."""
    path = canonicalise(target)
    match = lookup(method, path)
    decision = preset_policy(preset).decide("tool", method, path, match)
    verdict = check_request(method, path, [], False, decision.guard, match)
    assert verdict.allowed, verdict.reason


TAG_WRITES = [
    ("POST", b"/v1.47/images/busybox/tag?repo=victim&tag=latest"),
    ("POST", b"/v1.47/build?t=victim&networkmode=host&version=2"),
    ("POST", b"/v1.47/images/load"),
    ("POST", b"/v1.47/commit?container=c&repo=victim"),
    ("POST", b"/v1.47/plugins/create?name=p"),
]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_open_presets_may_write_any_name_and_the_others_reach_no_writes(name: str) -> None:
    policy = preset_policy(name)
    open_guards = PRESETS[name].guards == OPEN
    assert ("*" in PRESETS[name].guards.image_names) is open_guards
    for method, target in TAG_WRITES:
        path = canonicalise(target)
        match = lookup(method, path)
        decision = policy.decide("tool", method, path, match)
        if not decision.allowed:
            continue
        verdict = check_request(method, path, [b"application/x-tar"], True, decision.guard, match)
        assert verdict.allowed is open_guards, (target, verdict.reason)


def test_the_presets_of_tools_that_never_read_the_environment_redact_it() -> None:
    redacting = {name for name, preset in PRESETS.items() if preset.redact}
    assert redacting == {
        "traefik",
        "homepage",
        "dozzle",
        "glances",
        "grafana",
        "prometheus",
        "uptime-kuma",
        "crowdsec",
        "diun",
        "docker-autoheal",
        "beszel",
        "wud",
        "caddy-docker-proxy",
        "ofelia-exec",
        "homarr",
    }
    # Netdata names containers from their environment (cgroup-name reads Config.Env).
    assert not PRESETS["netdata"].redact
    assert all(PRESETS[name].redact == {"env"} for name in redacting)
    # Watchtower recreates containers from their inspect: it needs the environment.
    assert not PRESETS["watchtower"].redact
    assert all(preset.scope is None for preset in PRESETS.values())
    assert "; redacts env" in PRESETS["dozzle"].summary()


def _explain_lines(tmp_path: Path, identity: str, *request: str) -> tuple[int, list[str]]:
    """What ``dockguard explain`` prints for an identity that has one preset per name."""
    config = tmp_path / "dockguard.toml"
    config.write_text("[identities]\n" + "".join(f'{name} = ["{name}"]\n' for name in PRESETS))
    out = io.StringIO()
    status = main(["explain", identity, *request, "--config", str(config)], out)
    return status, out.getvalue().splitlines()


@pytest.mark.parametrize("name", ["traefik", "homepage", "glances", "watchtower", "readonly"])
def test_explain_shows_presets_without_logs_refused_them(name: str, tmp_path: Path) -> None:
    status, lines = _explain_lines(tmp_path, name, "GET", "/v1.47/containers/web/logs?follow=1")
    assert status == 1
    assert lines[0] == f"deny {name} GET /v1.47/containers/web/logs?follow=1"
    assert lines[1] == "  rule: needs action container.logs or containers=write"
    _, table = _explain_lines(tmp_path, name)
    (row,) = [line for line in table if " GET /containers/{id}/logs " in line]
    assert row.split()[0] == "deny"


@pytest.mark.parametrize("name", ["glances", "watchtower", "readonly", "traefik"])
def test_explain_shows_no_image_export_but_for_write(name: str, tmp_path: Path) -> None:
    status, lines = _explain_lines(tmp_path, name, "GET", "/v1.47/images/get?names=app")
    assert status == 1
    assert lines[1] == "  rule: needs action image.export or images=write"


@pytest.mark.parametrize("name", ["dozzle", "grafana", "crowdsec", "beszel", "homarr", "woodpecker-agent"])
def test_explain_shows_log_readers_their_logs_by_action(name: str, tmp_path: Path) -> None:
    status, lines = _explain_lines(tmp_path, name, "GET", "/v1.47/containers/web/logs?follow=1")
    assert status == 0
    assert lines[1] == f"  rule: group {name}: action container.logs"


def test_only_open_presets_export_images() -> None:
    exporting = {
        name
        for name in PRESETS
        if any(decide_sample(preset_policy(name), r).allowed for r in ROUTES if r.action == "image.export")
    }
    assert exporting == {"portainer", "dockman", "admin"}


# Traefik 2.11.31+ and 3.6.1+ (on the moby/moby client) negotiate the API
# version with HEAD /_ping, and fall back to GET when HEAD fails.
TRAEFIK_PINGS = [("HEAD", b"/_ping"), ("GET", b"/_ping")]
#: The environment of the Traefik recipe (docs/permissions.md), and of its Swarm line.
TRAEFIK_ENVIRONMENTS = [
    {"CONTAINERS": "1"},
    {"CONTAINERS": "1", "SERVICES": "1", "TASKS": "1", "NETWORKS": "1", "NODES": "1"},
]


@pytest.mark.parametrize(("method", "target"), TRAEFIK_PINGS)
def test_traefik_negotiates_the_version_with_its_preset(method: str, target: bytes) -> None:
    path = canonicalise(target)
    decision = preset_policy("traefik").decide("tool", method, path, lookup(method, path))
    assert (decision.allowed, decision.rule) == (True, "group traefik: ping=read")


@pytest.mark.parametrize("environ", TRAEFIK_ENVIRONMENTS)
@pytest.mark.parametrize(("method", "target"), TRAEFIK_PINGS)
def test_traefik_negotiates_the_version_with_its_env_recipe(
    environ: dict[str, str], method: str, target: bytes
) -> None:
    path = canonicalise(target)
    decision = EnvPolicy.from_environ(environ).decide("tool", method, path, lookup(method, path))
    assert (decision.allowed, decision.rule) == (True, "PING=1")
    # and PING=0 says what it breaks
    closed = EnvPolicy.from_environ({**environ, "PING": "0"}).decide("tool", method, path, lookup(method, path))
    assert not closed.allowed and "PING=1" in closed.reason
