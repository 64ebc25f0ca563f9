"""The presets: each opens the calls its tool makes, and refuses what it should not do.

The call lists follow the tools' sources cited in dockguard/presets.py; the
version prefix is the one the tool sends where it pins one (Traefik's Docker
provider: 1.24; classic Watchtower: 1.25 by default), else a negotiated one.
"""

from __future__ import annotations

import pytest

from dockguard.groups import Group, GroupPolicy
from dockguard.guards import OPEN
from dockguard.meaning import check_request
from dockguard.paths import canonicalise
from dockguard.policy import Decision
from dockguard.presets import PRESETS
from dockguard.routes import ROUTES, SECTIONS, Route, lookup, sample_path

Call = tuple[str, bytes]

# libpod (issue 17): the presets grant Docker's routes only (docs/podman.md)
ROUTES = tuple(route for route in ROUTES if not route.template.startswith("/libpod/"))

KNOWN_CALLS: dict[str, list[Call]] = {
    "traefik": [
        ("HEAD", b"/_ping"),
        ("GET", b"/_ping"),
        ("GET", b"/v1.24/version"),
        ("GET", b"/v1.24/containers/json?all=1"),
        ("GET", b"/v1.24/containers/3f2a9c0d/json"),
        ("GET", b"/v1.24/events?filters=%7B%22type%22%3A%7B%22container%22%3Atrue%7D%7D"),
        ("GET", b"/v1.47/services"),
        ("GET", b"/v1.47/networks?filters=%7B%22scope%22%3A%7B%22swarm%22%3Atrue%7D%7D"),
        ("GET", b"/v1.47/tasks?filters=%7B%22service%22%3A%7B%22abc%22%3Atrue%7D%7D"),
        ("GET", b"/v1.47/nodes/n0d3"),
    ],
    "homepage": [
        ("GET", b"/containers/json?all=true"),
        ("GET", b"/containers/homepage/stats?stream=false"),
        ("GET", b"/services"),
        ("GET", b"/tasks?filters=%7B%22desired-state%22%3A%5B%22running%22%5D%7D"),
    ],
    "dozzle": [
        ("HEAD", b"/_ping"),
        ("GET", b"/v1.45/info"),
        ("GET", b"/v1.45/containers/json?all=1"),
        ("GET", b"/v1.45/containers/0123456789ab/json"),
        ("GET", b"/v1.45/containers/0123456789ab/logs?follow=1&stdout=1&stderr=1&tail=100&timestamps=1"),
        ("GET", b"/v1.45/containers/0123456789ab/stats?stream=1"),
        ("GET", b"/v1.45/events"),
    ],
    "watchtower": [
        ("GET", b"/_ping"),
        ("GET", b"/v1.25/version"),
        ("GET", b"/v1.25/containers/json?filters=%7B%22status%22%3A%7B%22running%22%3Atrue%7D%7D"),
        ("GET", b"/v1.25/containers/abc123/json"),
        ("GET", b"/v1.25/images/ghcr.io/org/app:latest/json"),
        ("GET", b"/v1.25/images/sha256:0123abcd/json"),
        ("POST", b"/v1.25/images/create?fromImage=ghcr.io%2Forg%2Fapp&tag=latest"),
        ("POST", b"/v1.25/containers/abc123/kill?signal=SIGTERM"),
        ("DELETE", b"/v1.25/containers/abc123?force=1&v=0"),
        ("POST", b"/v1.25/containers/create?name=app"),
        ("POST", b"/v1.25/networks/frontend/disconnect"),
        ("POST", b"/v1.25/networks/frontend/connect"),
        ("POST", b"/v1.25/containers/def456/start"),
        ("POST", b"/v1.25/containers/abc123/rename?name=watchtower-old"),
        ("DELETE", b"/v1.25/images/sha256:0123abcd?force=1"),
        # nicholas-fedor/watchtower additions
        ("GET", b"/v1.47/info"),
        ("GET", b"/v1.47/system/df?type=image"),
        ("POST", b"/v1.47/containers/abc123/stop"),
        ("POST", b"/v1.47/containers/abc123/update"),
    ],
    "portainer": [
        ("GET", b"/v1.41/containers/json?all=1"),
        ("POST", b"/v1.41/containers/create"),
        ("POST", b"/v1.41/containers/abc/exec"),
        ("POST", b"/v1.41/exec/abc/start"),
        ("GET", b"/v1.41/containers/abc/archive?path=/etc"),
        ("POST", b"/v1.41/build?t=app"),
        ("POST", b"/v1.41/images/create?fromImage=nginx"),
        ("POST", b"/v1.41/services/create"),
        ("GET", b"/v1.41/secrets"),
        ("POST", b"/v1.41/plugins/pull?remote=x"),
        ("DELETE", b"/v1.41/volumes/data"),
    ],
    "dockman": [
        ("HEAD", b"/_ping"),
        ("GET", b"/v1.47/version"),
        ("GET", b"/v1.47/info"),
        ("GET", b"/v1.47/events"),
        ("GET", b"/v1.47/containers/json?all=1"),
        ("POST", b"/v1.47/containers/create?name=web"),
        ("POST", b"/v1.47/containers/abc/start"),
        ("POST", b"/v1.47/containers/abc/stop"),
        ("POST", b"/v1.47/containers/abc/restart"),
        ("DELETE", b"/v1.47/containers/abc?force=1"),
        ("POST", b"/v1.47/images/create?fromImage=nginx&tag=latest"),
        ("DELETE", b"/v1.47/images/nginx:latest"),
        ("POST", b"/v1.47/networks/create"),
        ("DELETE", b"/v1.47/networks/web_default"),
        ("POST", b"/v1.47/volumes/create"),
        ("POST", b"/v1.47/containers/abc/exec"),
        ("POST", b"/v1.47/exec/abc/start"),
        ("GET", b"/v1.47/system/df"),
    ],
    "glances": [
        ("GET", b"/version"),
        ("GET", b"/v1.47/containers/json?all=0"),
        ("GET", b"/v1.47/containers/abc/json"),
        ("GET", b"/v1.47/images/sha256:0123abcd/json"),
        ("GET", b"/v1.47/containers/abc/stats?stream=1"),
    ],
    "grafana": [
        ("HEAD", b"/_ping"),
        ("GET", b"/v1.47/version"),
        ("GET", b"/v1.47/containers/json"),
        ("GET", b"/v1.47/networks"),
        ("GET", b"/v1.47/containers/abc/json"),
        ("GET", b"/v1.47/containers/abc/logs?follow=1&since=0&stdout=1&stderr=1&timestamps=1"),
    ],
    "readonly": [
        ("HEAD", b"/_ping"),
        ("GET", b"/v1.47/containers/json"),
        ("GET", b"/v1.47/containers/abc/logs"),
        ("GET", b"/v1.47/images/a/b:c/json"),
        ("GET", b"/v1.47/secrets"),
        ("GET", b"/v1.47/system/df"),
    ],
    "admin": [
        ("POST", b"/v1.47/containers/create"),
        ("GET", b"/v1.47/containers/abc/export"),
        ("POST", b"/v1.47/swarm/init"),
        ("GET", b"/v1.47/swarm/unlockkey"),
    ],
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
    ],
    "homepage": [
        ("POST", b"/containers/x/start"),
        ("POST", b"/containers/create"),
        ("GET", b"/containers/x/export"),
        ("GET", b"/images/json"),
        ("GET", b"/events"),
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
    ],
    "grafana": [
        ("POST", b"/v1.47/containers/create"),
        ("POST", b"/v1.47/containers/x/exec"),
        ("POST", b"/v1.47/exec/x/start"),
        ("DELETE", b"/v1.47/containers/x"),
        ("GET", b"/v1.47/containers/x/archive?path=/"),
        ("GET", b"/v1.47/containers/x/attach/ws"),
    ],
    "readonly": [
        ("GET", b"/v1.47/containers/x/archive?path=/"),
        ("HEAD", b"/v1.47/containers/x/archive?path=/"),
        ("GET", b"/v1.47/containers/x/export"),
        ("GET", b"/v1.47/containers/x/attach/ws"),
        ("GET", b"/v1.47/swarm/unlockkey"),
        ("POST", b"/v1.47/containers/x/start"),
        ("POST", b"/v1.47/auth"),
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
    assert redacting == {"traefik", "homepage", "dozzle", "glances", "grafana"}
    assert all(PRESETS[name].redact == {"env"} for name in redacting)
    # Watchtower recreates containers from their inspect: it needs the environment.
    assert not PRESETS["watchtower"].redact
    assert all(preset.scope is None for preset in PRESETS.values())
    assert "; redacts env" in PRESETS["dozzle"].summary()
