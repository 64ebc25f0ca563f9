"""Podman's libpod API in the route table, its sections, EnvPolicy's LIBPOD_* variables and explain (issue 17)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dockguard.cli import main
from dockguard.envpolicy import KNOWN_VARIABLES, EnvPolicy
from dockguard.groups import ACTIONS, SECTION_NAMES, Group, GroupPolicy
from dockguard.paths import canonicalise
from dockguard.routes import LIBPOD_ROUTES, LIBPOD_SECTIONS, ROUTES, Route, lookup, sample_path


def match(method: str, target: bytes):
    return lookup(method, canonicalise(target))


def test_the_sections_are_linuxservers_libpod_variables() -> None:
    assert [s.env for s in LIBPOD_SECTIONS] == [
        "LIBPOD_BUILD", "LIBPOD_COMMIT", "LIBPOD_CONTAINERS", "LIBPOD_EVENTS", "LIBPOD_EXEC",
        "LIBPOD_GENERATE", "LIBPOD_IMAGES", "LIBPOD_INFO", "LIBPOD_MANIFESTS", "LIBPOD_NETWORKS",
        "LIBPOD_PING", "LIBPOD_PLAY", "LIBPOD_PODS", "LIBPOD_SECRETS", "LIBPOD_SYSTEM", "LIBPOD_VERSION",
        "LIBPOD_VOLUMES",
    ]  # fmt: skip
    assert all(s.name == "libpod_" + s.env[len("LIBPOD_") :].lower() for s in LIBPOD_SECTIONS)
    assert {s.name for s in LIBPOD_SECTIONS} <= set(SECTION_NAMES)
    assert {env for env, on in KNOWN_VARIABLES.items() if on and env.startswith("LIBPOD")} == {
        "LIBPOD_PING",
        "LIBPOD_VERSION",
    }


@pytest.mark.parametrize(
    ("method", "target", "template", "section", "action"),
    [
        ("GET", b"/v4.3.1/libpod/containers/json", "/libpod/containers/json", "libpod_containers", None),
        ("GET", b"/libpod/containers/json", "/libpod/containers/json", "libpod_containers", None),
        ("GET", b"/v5.0.0/libpod/containers/web/json", "/libpod/containers/{name}/json", "libpod_containers", None),
        ("POST", b"/v4.3.1/libpod/containers/create", "/libpod/containers/create", "libpod_containers", "libpod.container.create"),
        ("POST", b"/v4.3.1/libpod/containers/web/start", "/libpod/containers/{name}/start", "libpod_containers", "libpod.container.start"),
        ("POST", b"/v4.3.1/libpod/containers/web/exec", "/libpod/containers/{name}/exec", "libpod_containers", "libpod.container.exec"),
        ("POST", b"/v4.3.1/libpod/exec/abc/start", "/libpod/exec/{id}/start", "libpod_exec", "libpod.container.exec"),
        ("POST", b"/v4.3.1/libpod/pods/p1/start", "/libpod/pods/{name}/start", "libpod_pods", "libpod.pod.start"),
        ("POST", b"/v4.3.1/libpod/pods/create", "/libpod/pods/create", "libpod_pods", "libpod.pod.create"),
        ("DELETE", b"/v4.3.1/libpod/pods/p1", "/libpod/pods/{name}", "libpod_pods", "libpod.pod.delete"),
        ("POST", b"/v4.3.1/libpod/play/kube", "/libpod/play/kube", "libpod_play", "libpod.kube.play"),
        ("POST", b"/v4.3.1/libpod/kube/play", "/libpod/kube/play", "libpod_play", "libpod.kube.play"),
        ("GET", b"/v4.3.1/libpod/kube/generate", "/libpod/kube/generate", "libpod_generate", None),
        ("GET", b"/v4.3.1/libpod/images/docker.io/library/x:1/json", "/libpod/images/{name}/json", "libpod_images", None),
        # the batch remove is registered before the {name:.*} delete
        ("DELETE", b"/v4.3.1/libpod/images/remove", "/libpod/images/remove", "libpod_images", "libpod.image.delete"),
        ("DELETE", b"/v4.3.1/libpod/images/a/b", "/libpod/images/{name}", "libpod_images", "libpod.image.delete"),
        # manifests: /v3.x/ and /v4.x/ register different routes, one action for every write
        ("POST", b"/v4.3.1/libpod/manifests/list/registry/docker.io/x", "/libpod/manifests/{name}", "libpod_manifests", "libpod.image.manifest"),
        ("POST", b"/v3.4.0/libpod/manifests/create", "/libpod/manifests/{name}", "libpod_manifests", "libpod.image.manifest"),
        ("GET", b"/v4.3.1/libpod/manifests/a/b/json", "/libpod/manifests/{name}/json", "libpod_manifests", None),
        ("POST", b"/v4.3.1/libpod/system/prune", "/libpod/system/prune", "libpod_system", "libpod.system.prune"),
        ("GET", b"/libpod/_ping", "/libpod/_ping", "libpod_ping", None),
        ("HEAD", b"/libpod/_ping", "/libpod/_ping", "libpod_ping", None),
        ("POST", b"/v4.3.1/libpod/build", "/libpod/build", "libpod_build", "libpod.image.build"),
        ("POST", b"/v4.3.1/libpod/commit", "/libpod/commit", "libpod_commit", "libpod.image.commit"),
    ],
)  # fmt: skip
def test_libpod_routes(method: str, target: bytes, template: str, section: str, action: str | None) -> None:
    found = match(method, target)
    assert found.route is not None
    assert (found.route.template, found.route.section, found.route.action) == (template, section, action)
    assert found.section_name == section


def test_placeholders_are_one_segment_unless_podman_spans() -> None:
    # /libpod/containers/{name}/json is one segment in Podman: a/b is no route
    assert match("GET", b"/v4.3.1/libpod/containers/a/b/json").route is None
    # and a libpod path that is no route of Podman 4.3 is in no section: refused whatever is open
    assert match("GET", b"/v4.3.1/libpod/containers/a/b/json").section is None
    # healthcheck is {name:.*}
    assert match("GET", b"/v4.3.1/libpod/containers/a/b/healthcheck").route is not None


def test_no_section_outside_the_libpod_sections() -> None:
    for target in (
        b"/libpod",
        b"/libpod/foo",
        b"/libpod/kube/other",
        b"/libpod/swagger",
        b"/libpod/containers/x/clone",
    ):
        assert match("GET", target).section is None


@pytest.mark.parametrize("route", LIBPOD_ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_every_libpod_route_is_found_versioned_and_not(route: Route) -> None:
    sample = sample_path(route)
    assert lookup(route.method, sample).route == route
    for prefix in (b"/v4.3.1", b"/v5.0.0", b"/v1.41"):
        assert match(route.method, prefix + sample.path.encode()).route == route
    assert route in ROUTES
    # scopes know Docker's bodies only: a scoped group cannot use a libpod route that touches resources
    if route.section in ("libpod_containers", "libpod_pods", "libpod_volumes", "libpod_networks", "libpod_exec"):
        assert route.scoped == "refused"


def test_what_is_sensitive_or_hijacked() -> None:
    assert {(r.method, r.template) for r in LIBPOD_ROUTES if r.sensitive} == {
        ("GET", "/libpod/containers/{name}/archive"),
        ("HEAD", "/libpod/containers/{name}/archive"),
        ("GET", "/libpod/containers/{name}/export"),
        # logs and image exports ask for their action, as Docker's (issue 15)
        ("GET", "/libpod/containers/{name}/logs"),
        ("GET", "/libpod/images/{name}/get"),
        ("GET", "/libpod/images/export"),
    }
    assert {(r.method, r.template) for r in LIBPOD_ROUTES if r.hijack} == {
        ("POST", "/libpod/containers/{name}/attach"),
        ("POST", "/libpod/exec/{id}/start"),
    }
    assert {r.inspected for r in LIBPOD_ROUTES if r.inspected} == {
        "libpod.container.create",
        "libpod.container.update",
        "libpod.pod.create",
        "libpod.volume.create",
        "libpod.network.create",
        "libpod.network.connect",
        "libpod.kube.play",
        "libpod.unjudged",
        "libpod.scp",
        "exec.create",
    }


def test_pod_actions_are_their_own() -> None:
    assert {a for a in ACTIONS if a.startswith("libpod.pod.")} == {
        "libpod.pod.create", "libpod.pod.delete", "libpod.pod.kill", "libpod.pod.pause", "libpod.pod.prune",
        "libpod.pod.restart", "libpod.pod.start", "libpod.pod.stop", "libpod.pod.unpause",
    }  # fmt: skip


def test_an_action_opens_one_apis_routes() -> None:
    """A grant made for a tool that speaks Docker's API (a preset's
    container.start) never reaches Podman's own, nor the reverse."""
    libpod = {r.action for r in LIBPOD_ROUTES if r.action is not None}
    docker = {r.action for r in ROUTES if r.action is not None and r not in LIBPOD_ROUTES}
    assert libpod and all(action.startswith("libpod.") for action in libpod)
    assert not libpod & docker
    group = Group(name="starter", sections={}, actions=frozenset({"container.start"}))
    policy = GroupPolicy(groups={"starter": group}, identities={"tool": ("starter",)})

    def allowed(target: bytes) -> bool:
        path = canonicalise(target)
        return policy.decide("tool", "POST", path, lookup("POST", path)).allowed

    assert allowed(b"/v1.41/containers/web/start")
    assert not allowed(b"/v4.3.1/libpod/containers/web/start")


# --- EnvPolicy: linuxserver's LIBPOD_* ---------------------------------------------------


def decide(env: dict[str, str], method: str, target: bytes) -> tuple[bool, str]:
    path = canonicalise(target)
    decision = EnvPolicy.from_environ(env).decide("x", method, path, lookup(method, path))
    return decision.allowed, decision.rule


@pytest.mark.parametrize(
    ("env", "method", "target", "expected"),
    [
        ({}, "GET", b"/libpod/_ping", (True, "LIBPOD_PING=1")),
        ({}, "GET", b"/v4.3.1/libpod/version", (True, "LIBPOD_VERSION=1")),
        ({}, "GET", b"/v4.3.1/libpod/containers/json", (False, "LIBPOD_CONTAINERS=0")),
        # CONTAINERS opens Docker's containers, not libpod's (and the other way round)
        ({"CONTAINERS": "1"}, "GET", b"/v4.3.1/libpod/containers/json", (False, "LIBPOD_CONTAINERS=0")),
        ({"LIBPOD_CONTAINERS": "1"}, "GET", b"/v1.41/containers/json", (False, "CONTAINERS=0")),
        ({"LIBPOD_CONTAINERS": "1"}, "GET", b"/v4.3.1/libpod/containers/json", (True, "LIBPOD_CONTAINERS=1")),
        ({"LIBPOD_CONTAINERS": "1"}, "POST", b"/v4.3.1/libpod/containers/create", (False, "POST=0")),
        ({"LIBPOD_CONTAINERS": "1", "POST": "1"}, "POST", b"/v4.3.1/libpod/containers/create", (True, "LIBPOD_CONTAINERS=1")),
        # the action switches work with POST=0, as linuxserver's
        ({"LIBPOD_ALLOW_START": "1"}, "POST", b"/v4.3.1/libpod/containers/web/start", (True, "LIBPOD_ALLOW_START=1")),
        ({"LIBPOD_ALLOW_START": "1"}, "POST", b"/v4.3.1/libpod/pods/p/start", (False, "POST=0")),
        ({"LIBPOD_ALLOW_POD_START": "1"}, "POST", b"/v4.3.1/libpod/pods/p/start", (True, "LIBPOD_ALLOW_POD_START=1")),
        ({"LIBPOD_ALLOW_POD_RESTARTS": "1"}, "POST", b"/v4.3.1/libpod/pods/p/kill", (True, "LIBPOD_ALLOW_POD_RESTARTS=1")),
        # linuxserver's ALLOW_* match (/libpod)?/(containers|pods)/ID/<action> too
        ({"ALLOW_RESTARTS": "1"}, "POST", b"/v4.3.1/libpod/pods/p/restart", (True, "ALLOW_RESTARTS=1")),
        ({"ALLOW_STOP": "1"}, "POST", b"/v4.3.1/libpod/containers/web/stop", (True, "ALLOW_STOP=1")),
        ({"LIBPOD_ALLOW_START": "1"}, "POST", b"/v4.3.1/libpod/containers/web/kill", (False, "POST=0")),
        # and so do its gates
        ({"LIBPOD_CONTAINERS": "1", "ALLOW_LOGS": "0"}, "GET", b"/v4.3.1/libpod/containers/web/logs", (False, "ALLOW_LOGS=0")),
        ({"LIBPOD_CONTAINERS": "1"}, "GET", b"/v4.3.1/libpod/containers/web/logs", (True, "LIBPOD_CONTAINERS=1")),
        ({"LIBPOD_CONTAINERS": "1", "POST": "1", "ALLOW_LOGS": "0"}, "POST", b"/v4.3.1/libpod/containers/web/attach?logs=true&stream=true", (False, "ALLOW_LOGS=0")),
        ({"LIBPOD_CONTAINERS": "1", "POST": "1", "ALLOW_LOGS": "0"}, "POST", b"/v4.3.1/libpod/containers/web/attach?stream=true", (True, "LIBPOD_CONTAINERS=1")),
        ({"LIBPOD_PLAY": "1", "POST": "1"}, "POST", b"/v4.3.1/libpod/kube/play", (True, "LIBPOD_PLAY=1")),
        ({"LIBPOD_GENERATE": "1"}, "GET", b"/v4.3.1/libpod/kube/generate", (True, "LIBPOD_GENERATE=1")),
        ({"LIBPOD_CONTAINERS": "1"}, "GET", b"/v4.3.1/libpod/nothing", (False, "no section")),
    ],
)  # fmt: skip
def test_env_policy_libpod(env: dict[str, str], method: str, target: bytes, expected: tuple[bool, str]) -> None:
    assert decide(env, method, target) == expected


def test_describe_lists_the_open_libpod_sections() -> None:
    lines = EnvPolicy.from_environ({"LIBPOD_CONTAINERS": "1", "LIBPOD_ALLOW_POD_START": "1"}).describe()
    assert any(line.startswith("open libpod (Podman) sections: ") and "libpod_containers" in line for line in lines)
    assert any("starting pods" in line for line in lines)


# --- groups and explain -------------------------------------------------------------------------


def test_explain_shows_the_libpod_routes(tmp_path) -> None:
    config = tmp_path / "dockguard.toml"
    config.write_text(
        "[identities]\nexporter = ['podmon']\n"
        "[groups.podmon]\nsections = { libpod_containers = 'read', libpod_pods = 'read' }\n"
        "actions = ['libpod.pod.start']\n"
    )
    out = io.StringIO()
    assert main(["explain", "exporter", "--config", str(config)], out) == 0
    rows = {
        " ".join(line.split()[1:3]): line.split()[0] for line in out.getvalue().splitlines()[1:] if "/libpod/" in line
    }
    assert rows["GET /libpod/containers/json"] == "allow"
    assert rows["GET /libpod/pods/{name}/json"] == "allow"
    assert rows["POST /libpod/pods/{name}/start"] == "allow"
    assert rows["POST /libpod/pods/{name}/stop"] == "deny"
    assert rows["GET /libpod/containers/{name}/export"] == "deny"  # sensitive: needs its action
    assert rows["GET /libpod/images/json"] == "deny"
    out = io.StringIO()
    assert main(["explain", "exporter", "POST", "/v4.3.1/libpod/pods/p1/start", "--config", str(config)], out) == 0
    assert out.getvalue().startswith("allow exporter POST /v4.3.1/libpod/pods/p1/start")


def test_the_documented_exporter_group_loads_and_explains(tmp_path) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "podman.md").read_text()
    toml = page.split("```toml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "dockguard.toml"
    config.write_text(toml)
    out = io.StringIO()
    assert main(["explain", "exporter", "GET", "/v4.3.1/libpod/pods/json", "--config", str(config)], out) == 0
    out = io.StringIO()
    assert main(["explain", "exporter", "POST", "/v4.3.1/libpod/pods/p/start", "--config", str(config)], out) == 1


def test_of_the_presets_only_admin_opens_the_libpod_api() -> None:
    """C{admin} is everything, Podman's own API too; every other preset is
    a Docker tool's, and its trace has no libpod call."""
    from dockguard.presets import PRESETS

    for name, preset in PRESETS.items():
        policy = GroupPolicy(groups={name: preset}, identities={"tool": (name,)})
        opened = []
        for route in LIBPOD_ROUTES:
            path = sample_path(route)
            if policy.decide("tool", route.method, path, lookup(route.method, path)).allowed:
                opened.append(f"{route.method} {route.template}")
        if name == "admin":
            assert len(opened) == len(LIBPOD_ROUTES), name
        else:
            assert opened == [], name
