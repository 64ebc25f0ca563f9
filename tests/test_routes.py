"""The Engine API's routes and sections: the one lookup, hijacking routes, inspected bodies, container actions."""

from __future__ import annotations

import pytest

from dockguard.paths import canonicalise
from dockguard.routes import (
    ROUTES,
    SECTIONS,
    Match,
    Section,
    container_action,
    lookup,
)

#: The Docker Engine API's routes (the libpod ones are tested in tests/test_podman_routes.py).
DOCKER_ROUTES = tuple(route for route in ROUTES if route.section in {section.name for section in SECTIONS})


def section_of(target: bytes) -> Section | None:
    return lookup("GET", canonicalise(target)).section


def test_every_top_level_section_of_the_engine_api() -> None:
    assert [(s.name, s.env, s.prefix) for s in SECTIONS] == [
        ("auth", "AUTH", "auth"),
        ("build", "BUILD", "build"),
        ("commit", "COMMIT", "commit"),
        ("configs", "CONFIGS", "configs"),
        ("containers", "CONTAINERS", "containers"),
        ("distribution", "DISTRIBUTION", "distribution"),
        ("events", "EVENTS", "events"),
        ("exec", "EXEC", "exec"),
        ("grpc", "GRPC", "grpc"),
        ("images", "IMAGES", "images"),
        ("info", "INFO", "info"),
        ("networks", "NETWORKS", "networks"),
        ("nodes", "NODES", "nodes"),
        ("ping", "PING", "_ping"),
        ("plugins", "PLUGINS", "plugins"),
        ("secrets", "SECRETS", "secrets"),
        ("services", "SERVICES", "services"),
        ("session", "SESSION", "session"),
        ("swarm", "SWARM", "swarm"),
        ("system", "SYSTEM", "system"),
        ("tasks", "TASKS", "tasks"),
        ("version", "VERSION", "version"),
        ("volumes", "VOLUMES", "volumes"),
    ]


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.name)
def test_each_section_is_found_by_its_prefix(section: Section) -> None:
    prefix = section.prefix.encode()
    assert section_of(b"/" + prefix) == section
    assert section_of(b"/" + prefix + b"/abc/json") == section
    assert section_of(b"/v1.41/" + prefix + b"/abc") == section
    # case-sensitive and exact, as the daemon routes
    assert section_of(b"/" + prefix.upper()) is None
    assert section_of(b"/" + prefix + b"x") is None


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (b"/containers/json", "containers"),
        (b"/v1.41/containers/json", "containers"),
        (b"/v01.41/containers/json", "containers"),
        (b"/_ping", "ping"),
        (b"/v1.41/_ping", "ping"),
        (b"/_ping?/containers/json", "ping"),
        # an escaped literal (/%69mages/json) is refused by canonicalise: tests/test_podman_paths.py
        (b"/exec/abc/start", "exec"),
        (b"/containers/abc/exec", "containers"),
        (b"/session", "session"),
        (b"/grpc", "grpc"),
        (b"/system/df", "system"),
        # no section
        (b"/", None),
        (b"/v1.41", None),
        (b"/ping", None),
        (b"/foo", None),
        (b"/CONTAINERS/json", None),
        (b"/Containers/json", None),
        (b"/containersfoo/json", None),
        (b"/_pingx", None),
        (b"/V1.41/containers/json", None),
        (b"/va1.41/containers/json", None),
        (b"/v1.41/v1.41/containers/json", None),
        # (a libpod path's section is its route's: tests/test_podman_routes.py)
        (b"/libpod/foo", None),
    ],
)
def test_lookup_finds_the_section(target: bytes, name: str | None) -> None:
    for method in ("GET", "HEAD", "POST", "get"):
        match = lookup(method, canonicalise(target))
        assert (match.section.name if match.section else None) == name
        assert match.section_name == (name or "none")


@pytest.mark.parametrize(
    ("method", "target", "hijacked"),
    [
        ("POST", b"/containers/abc/attach", True),
        ("POST", b"/v1.41/containers/abc/attach?stream=1&stdin=1", True),
        ("POST", b"/exec/abc/start", True),
        ("POST", b"/v1.44/exec/0123abcd/start", True),
        # other methods: the daemon's router matches methods exactly
        ("GET", b"/containers/abc/attach", False),
        ("post", b"/containers/abc/attach", False),
        ("PUT", b"/exec/abc/start", False),
        # neighbouring routes that do not hijack without an Upgrade header
        ("GET", b"/containers/abc/attach/ws", False),
        ("POST", b"/containers/abc/attach/ws", False),
        ("POST", b"/containers/abc/start", False),
        ("POST", b"/containers/abc/exec", False),
        ("POST", b"/exec/abc/resize", False),
        ("GET", b"/exec/abc/json", False),
        ("POST", b"/containers/attach", False),
        ("POST", b"/exec/start", False),
        ("POST", b"/images/abc/attach", False),
        ("POST", b"/session", False),
        ("POST", b"/grpc", False),
    ],
)
def test_lookup_finds_the_hijack_routes(method: str, target: bytes, hijacked: bool) -> None:
    assert lookup(method, canonicalise(target)).hijack is hijacked


@pytest.mark.parametrize(
    ("target", "action"),
    [
        (b"/containers/abc/start", "start"),
        (b"/v1.41/containers/abc/kill?signal=KILL", "kill"),
        (b"/containers/my.app/logs", "logs"),
        (b"/containers/json", None),
        (b"/containers/abc", None),
        (b"/containers/abc/attach/ws", None),
        (b"/images/abc/start", None),
        (b"/exec/abc/start", None),
        (b"/", None),
    ],
)
def test_container_action(target: bytes, action: str | None) -> None:
    assert container_action(canonicalise(target)) == action


# --- the route table -------------------------------------------------------

from dockguard.routes import ROUTES, Route, sample_path  # noqa: E402


def route_of(method: str, target: bytes) -> Route | None:
    return lookup(method, canonicalise(target)).route


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        # images: names contain slashes and tags; the literal routes win
        ("GET", b"/images/json", "GET /images/json"),
        ("GET", b"/v1.41/images/json?all=1", "GET /images/json"),
        ("GET", b"/images/a/b:c/json", "GET /images/{name}/json"),
        ("GET", b"/v1.47/images/ghcr.io/org/app:1.2/json", "GET /images/{name}/json"),
        ("GET", b"/images/sha256:0123abcd/json", "GET /images/{name}/json"),
        ("GET", b"/images/json/json", "GET /images/{name}/json"),
        ("GET", b"/images/search?term=x", "GET /images/search"),
        ("GET", b"/images/get?names=a", "GET /images/get"),
        ("GET", b"/images/library/busybox/get", "GET /images/{name}/get"),
        ("GET", b"/images/a/b/history", "GET /images/{name}/history"),
        ("DELETE", b"/images/library/busybox:latest", "DELETE /images/{name}"),
        ("POST", b"/images/create?fromImage=a%2Fb", "POST /images/create"),
        ("POST", b"/images/registry:5000/a/b/push", "POST /images/{name}/push"),
        ("POST", b"/images/a/b:1/tag?repo=c", "POST /images/{name}/tag"),
        ("POST", b"/images/prune", "POST /images/prune"),
        ("POST", b"/images/load", "POST /images/load"),
        ("GET", b"/images", None),
        # exec
        ("POST", b"/exec/abc/start", "POST /exec/{id}/start"),
        ("POST", b"/v1.44/exec/abc/resize?h=40&w=100", "POST /exec/{id}/resize"),
        ("GET", b"/exec/abc/json", "GET /exec/{id}/json"),
        ("GET", b"/exec/abc/start", None),
        ("POST", b"/exec/start", None),
        # containers
        ("GET", b"/containers/json", "GET /containers/json"),
        ("GET", b"/containers/json/json", "GET /containers/{id}/json"),
        ("GET", b"/containers/abc/attach/ws?stdin=1", "GET /containers/{id}/attach/ws"),
        ("POST", b"/containers/abc/attach", "POST /containers/{id}/attach"),
        ("POST", b"/containers/abc/attach/ws", None),
        ("POST", b"/containers/abc/exec", "POST /containers/{id}/exec"),
        ("POST", b"/containers/create?name=x", "POST /containers/create"),
        ("POST", b"/containers/abc/start", "POST /containers/{id}/start"),
        ("GET", b"/containers/abc/archive?path=/etc", "GET /containers/{id}/archive"),
        ("HEAD", b"/containers/abc/archive?path=/etc", "HEAD /containers/{id}/archive"),
        ("PUT", b"/containers/abc/archive?path=/", "PUT /containers/{id}/archive"),
        # legacy link names ("web/db") span segments, as moby's {name:.*} does
        ("GET", b"/containers/web/db/archive", "GET /containers/{id}/archive"),
        ("GET", b"/containers/web/db/json", "GET /containers/{id}/json"),
        ("DELETE", b"/containers/web/db", "DELETE /containers/{id}"),
        ("DELETE", b"/containers/abc", "DELETE /containers/{id}"),
        # the checkpoint router is registered before the container router
        ("DELETE", b"/containers/abc/checkpoints/cp1", "DELETE /containers/{id}/checkpoints/{checkpoint}"),
        ("GET", b"/containers/abc/checkpoints", "GET /containers/{id}/checkpoints"),
        # unknown sub-routes and methods
        ("GET", b"/containers/abc/foo", None),
        ("POST", b"/containers/abc/start/now", None),
        ("GET", b"/containers/abc/start", None),
        ("POST", b"/containers/json", None),
        ("get", b"/containers/json", None),
        ("HEAD", b"/containers/json", None),
        ("GET", b"/containers", None),
        # HEAD routes
        ("HEAD", b"/_ping", "HEAD /_ping"),
        ("GET", b"/v1.41/_ping", "GET /_ping"),
        ("POST", b"/_ping", None),
        # distribution and plugins names span segments
        ("GET", b"/distribution/docker.io/library/busybox:latest/json", "GET /distribution/{name}/json"),
        ("GET", b"/distribution/busybox/json", "GET /distribution/{name}/json"),
        ("GET", b"/distribution/json", None),
        ("GET", b"/plugins/vieux/sshfs:latest/json", "GET /plugins/{name}/json"),
        ("GET", b"/plugins/privileges", "GET /plugins/privileges"),
        ("DELETE", b"/plugins/vieux/sshfs:latest", "DELETE /plugins/{name}"),
        # networks ({id:.+}) and volumes
        ("GET", b"/networks", "GET /networks"),
        ("GET", b"/networks/a/b", "GET /networks/{id}"),
        ("GET", b"/networks/create", "GET /networks/{id}"),
        ("POST", b"/networks/create", "POST /networks/create"),
        ("POST", b"/networks/n1/disconnect", "POST /networks/{id}/disconnect"),
        ("PUT", b"/volumes/v1", "PUT /volumes/{name}"),
        ("POST", b"/volumes/prune", "POST /volumes/prune"),
        # swarm routes take one segment ({id}, not {id:.*})
        ("GET", b"/services/abc", "GET /services/{id}"),
        ("GET", b"/services/a/b", None),
        ("GET", b"/services/abc/logs", "GET /services/{id}/logs"),
        ("POST", b"/nodes/n1/update?version=3", "POST /nodes/{id}/update"),
        ("GET", b"/swarm/unlockkey", "GET /swarm/unlockkey"),
        # system, build, session, grpc, commit
        ("GET", b"/system/df", "GET /system/df"),
        ("POST", b"/auth", "POST /auth"),
        ("POST", b"/build?t=x", "POST /build"),
        ("POST", b"/build/prune", "POST /build/prune"),
        ("POST", b"/session", "POST /session"),
        ("POST", b"/grpc", "POST /grpc"),
        ("POST", b"/commit?container=abc", "POST /commit"),
        ("GET", b"/", None),
        ("GET", b"/foo", None),
    ],
)
def test_lookup_finds_the_route(method: str, target: bytes, expected: str | None) -> None:
    route = route_of(method, target)
    assert (f"{route.method} {route.template}" if route else None) == expected


@pytest.mark.parametrize(
    ("method", "target", "section", "action", "sensitive"),
    [
        ("POST", b"/containers/abc/start", "containers", "container.start", False),
        ("POST", b"/exec/abc/start", "exec", "container.exec", False),
        ("GET", b"/exec/abc/json", "exec", "container.exec", False),
        ("GET", b"/containers/abc/attach/ws", "containers", "container.attach", True),
        ("POST", b"/containers/abc/attach", "containers", "container.attach", False),
        ("GET", b"/containers/abc/export", "containers", "container.export", True),
        ("HEAD", b"/containers/abc/archive", "containers", "container.archive", True),
        ("PUT", b"/containers/abc/archive", "containers", "container.archive", False),
        ("GET", b"/containers/abc/logs", "containers", "container.logs", True),
        ("GET", b"/images/abc/get", "images", "image.export", True),
        ("GET", b"/images/get", "images", "image.export", True),
        ("GET", b"/services/abc/logs", "services", "service.logs", True),
        ("GET", b"/tasks/abc/logs", "tasks", "task.logs", True),
        ("POST", b"/images/create", "images", "image.pull", False),
        ("POST", b"/commit", "commit", "image.commit", False),
        ("POST", b"/session", "session", "image.build", False),
        ("POST", b"/grpc", "grpc", "image.build", False),
        ("POST", b"/networks/n/disconnect", "networks", "network.connect", False),
        ("HEAD", b"/_ping", "ping", None, False),
        ("GET", b"/swarm/unlockkey", "swarm", None, True),
        ("GET", b"/containers/abc/json", "containers", "container.inspect", False),
        ("GET", b"/containers/json", "containers", "container.list", False),
        ("GET", b"/containers/abc/checkpoints", "containers", None, False),
        ("GET", b"/images/search", "images", "image.search", False),
        ("GET", b"/nodes/n1", "nodes", "node.inspect", False),
        ("GET", b"/secrets", "secrets", None, False),
    ],
)
def test_route_section_action_sensitive(
    method: str, target: bytes, section: str, action: str | None, sensitive: bool
) -> None:
    route = route_of(method, target)
    assert route is not None
    assert (route.section, route.action, route.sensitive) == (section, action, sensitive)


def test_every_action_name() -> None:
    assert {route.action for route in DOCKER_ROUTES if route.action} == {
        "container.create",
        "container.start",
        "container.stop",
        "container.restart",
        "container.kill",
        "container.pause",
        "container.unpause",
        "container.delete",
        "container.exec",
        "container.attach",
        "container.logs",
        "container.archive",
        "container.export",
        "container.update",
        "container.rename",
        "container.prune",
        "image.pull",
        "image.push",
        "image.export",
        "image.build",
        "image.load",
        "image.delete",
        "image.prune",
        "image.tag",
        "image.commit",
        "network.create",
        "network.delete",
        "network.connect",
        "network.prune",
        "volume.create",
        "volume.delete",
        "volume.prune",
        "service.logs",
        "task.logs",
        # plain reads, which a section's "read" opens all at once
        "container.list",
        "container.inspect",
        "container.top",
        "container.stats",
        "container.changes",
        "image.list",
        "image.inspect",
        "image.history",
        "image.search",
        "network.list",
        "network.inspect",
        "volume.list",
        "volume.inspect",
        "service.list",
        "service.inspect",
        "task.list",
        "task.inspect",
        "node.list",
        "node.inspect",
    }


def test_route_table_is_consistent() -> None:
    prefixes = {s.prefix: s.name for s in SECTIONS}
    keys = [(r.method, r.template) for r in DOCKER_ROUTES]
    assert len(keys) == len(set(keys))
    for route in DOCKER_ROUTES:
        assert route.method in {"GET", "HEAD", "POST", "PUT", "DELETE"}
        assert route.section == prefixes[route.template.split("/")[1]]
    # every section has at least one route
    assert {r.section for r in DOCKER_ROUTES} == {s.name for s in SECTIONS}
    # HEAD is routed only where moby registers it
    assert {r.template for r in DOCKER_ROUTES if r.method == "HEAD"} == {"/_ping", "/containers/{id}/archive"}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_sample_path_finds_its_route(route: Route) -> None:
    sample = sample_path(route)
    assert "{" not in sample.path
    assert canonicalise(sample.path.encode()) == sample
    assert lookup(route.method, sample).route == route
    assert route_of(route.method, b"/v1.43" + sample.path.encode()) == route


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        pytest.param(SECTIONS[0], "env", "ANYTHING", id="section"),
        pytest.param(ROUTES[0], "action", "container.exec", id="route"),
        pytest.param(lookup("GET", canonicalise(b"/containers/json")), "route", None, id="match"),
    ],
)
def test_is_frozen(model: object, field: str, value: object) -> None:
    with pytest.raises(AttributeError):
        setattr(model, field, value)


# --- what a route carries: hijacking and the inspected body ------------------


@pytest.mark.parametrize(
    ("flag", "routes"),
    [
        pytest.param(
            "sensitive",
            {
                ("HEAD", "/containers/{id}/archive"),
                ("GET", "/containers/{id}/archive"),
                ("GET", "/containers/{id}/export"),
                ("GET", "/containers/{id}/attach/ws"),
                ("GET", "/swarm/unlockkey"),
                ("GET", "/swarm"),  # the join tokens
                ("GET", "/containers/{id}/logs"),
                ("GET", "/services/{id}/logs"),
                ("GET", "/tasks/{id}/logs"),
                ("GET", "/images/get"),  # docker save
                ("GET", "/images/{name}/get"),
            },
            id="sensitive",
        ),
        pytest.param("hijack", {("POST", "/containers/{id}/attach"), ("POST", "/exec/{id}/start")}, id="hijack"),
    ],
)
def test_exactly_these_routes_are_flagged(flag: str, routes: set[tuple[str, str]]) -> None:
    assert {(r.method, r.template) for r in DOCKER_ROUTES if getattr(r, flag)} == routes


def test_exactly_these_routes_have_their_body_inspected() -> None:
    assert {(r.method, r.template): r.inspected for r in DOCKER_ROUTES if r.inspected} == {
        ("POST", "/containers/create"): "container.create",
        ("POST", "/services/create"): "service.create",
        ("POST", "/volumes/create"): "volume.create",
        ("POST", "/containers/{id}/update"): "container.update",
        ("POST", "/containers/{id}/start"): "container.start",
        ("POST", "/containers/{id}/exec"): "exec.create",
        ("POST", "/services/{id}/update"): "service.update",
        ("POST", "/plugins/pull"): "plugin.pull",
        ("POST", "/plugins/{name}/upgrade"): "plugin.upgrade",
        ("POST", "/plugins/{name}/set"): "plugin.set",
        ("POST", "/networks/create"): "network.create",
        ("POST", "/networks/{id}/connect"): "network.connect",
    }


def test_every_inspected_or_hijack_route_is_a_real_route() -> None:
    # Each is in the table and is what the lookup finds for it (no route
    # registered before it masks it), with a kind the guards can judge.
    from dockguard.guards import INSPECTED_KINDS

    marked = [r for r in ROUTES if r.inspected is not None or r.hijack]
    assert marked
    for route in marked:
        assert route in ROUTES
        for target in (sample_path(route).path.encode(), b"/v1.41" + sample_path(route).path.encode()):
            match = lookup(route.method, canonicalise(target))
            assert match.route is route
            assert (match.hijack, match.inspected) == (route.hijack, route.inspected)
        assert route.inspected is None or route.inspected in INSPECTED_KINDS
    assert {r.inspected for r in ROUTES if r.inspected} == set(INSPECTED_KINDS)


def test_other_route_keyed_tables_name_real_routes() -> None:
    # Tables that still key on (method, template) must not drift from ROUTES.
    from dockguard import envpolicy as policy
    from dockguard import meaning
    from dockguard.builds import BUILD_ROUTES
    from dockguard.images import IMAGE_WRITE_ROUTES

    known = {(r.method, r.template) for r in ROUTES}
    for table in (
        BUILD_ROUTES,
        IMAGE_WRITE_ROUTES,
        meaning._NETWORK_PATH_ROUTES,
        policy._GATED_ROUTES,
        policy._LOGS_WHEN_ASKED,
    ):
        assert set(table) <= known, set(table) - known


@pytest.mark.parametrize(
    ("method", "target", "hijack", "inspected"),
    [
        ("POST", b"/containers/web/alias/exec", False, "exec.create"),
        ("POST", b"/v1.41/containers/create?name=x", False, "container.create"),
        ("POST", b"/containers/abc/start", False, "container.start"),
        ("POST", b"/containers/web/alias/attach", True, None),
        ("POST", b"/exec/abc/start", True, None),
        ("POST", b"/services/abc/update", False, "service.update"),
        ("POST", b"/services/a/b/update", False, None),  # swarm ids are one segment
        ("GET", b"/containers/create", False, None),
        ("PUT", b"/containers/create", False, None),
        ("post", b"/containers/create", False, None),
        ("POST", b"/containers/json", False, None),
        ("POST", b"/foo", False, None),
        ("GET", b"/", False, None),
    ],
)
def test_lookup_hijack_and_inspected(method: str, target: bytes, hijack: bool, inspected: str | None) -> None:
    match = lookup(method, canonicalise(target))
    assert (match.hijack, match.inspected) == (hijack, inspected)


def test_a_path_without_segments_matches_nothing() -> None:
    match = lookup("GET", canonicalise(b"/"))
    assert match == Match(route=None, section=None)
    assert (match.section_name, match.hijack, match.inspected, match.judged_route) == ("none", False, None, None)


@pytest.mark.parametrize(
    ("target", "routed", "judged"),
    [
        # HEAD routes of their own
        (b"/_ping", "HEAD /_ping", "HEAD /_ping"),
        (b"/containers/abc/archive?path=/", "HEAD /containers/{id}/archive", "HEAD /containers/{id}/archive"),
        # HEAD on a GET route: the daemon routes it nowhere, the policies judge it as that GET
        (b"/containers/json", None, "GET /containers/json"),
        (b"/containers/web/alias/export", None, "GET /containers/{id}/export"),
        (b"/swarm/unlockkey", None, "GET /swarm/unlockkey"),
        # no GET route either
        (b"/containers/abc/start", None, None),
        (b"/foo", None, None),
    ],
)
def test_head_is_judged_as_the_get_route(target: bytes, routed: str | None, judged: str | None) -> None:
    match = lookup("HEAD", canonicalise(target))
    assert (f"{match.route.method} {match.route.template}" if match.route else None) == routed
    route = match.judged_route
    assert (f"{route.method} {route.template}" if route else None) == judged
    assert match.head_as_get is (None if routed else route)


def test_only_head_is_judged_as_another_method() -> None:
    for route in ROUTES:
        for method in ("GET", "POST", "PUT", "DELETE", "get", "head"):
            match = lookup(method, sample_path(route))
            assert match.head_as_get is None
            assert match.judged_route is match.route


# --- scopes: how a group's scope applies to each route -------------------------------

from dockguard.routes import SCOPE_KINDS, SCOPED_RESOURCES, placeholder  # noqa: E402

#: The sections whose resources a scope holds.
SCOPED_SECTIONS = ("containers", "exec", "volumes", "networks")


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.section in SCOPED_SECTIONS], ids=lambda r: f"{r.method} {r.template}"
)
def test_every_route_of_a_scoped_section_says_how_a_scope_applies(route: Route) -> None:
    # a route added to these sections can't be silently left unscoped
    assert route.scoped is not None
    assert route.scoped in SCOPE_KINDS
    assert route.scoped != "query"  # only /commit, outside these sections
    if route.scoped in ("container", "exec", "volume", "network"):
        # it names its resource in its (first) placeholder, right after the section
        assert route.template.split("/")[2].startswith("{")
        assert (
            route.scoped
            == {"containers": "container", "exec": "exec", "volumes": "volume", "networks": "network"}[route.section]
        )


def test_the_scope_kind_of_every_route() -> None:
    kinds: dict[str, set[tuple[str, str]]] = {}
    for route in DOCKER_ROUTES:
        kinds.setdefault(str(route.scoped), set()).add((route.method, route.template))
    assert kinds["list"] == {("GET", "/containers/json"), ("GET", "/volumes"), ("GET", "/networks")}
    assert kinds["events"] == {("GET", "/events")}
    assert kinds["create"] == {
        ("POST", "/containers/create"),
        ("POST", "/volumes/create"),
        ("POST", "/networks/create"),
    }
    assert kinds["refused"] == {
        ("POST", "/containers/prune"),
        ("POST", "/volumes/prune"),
        ("POST", "/networks/prune"),
        ("GET", "/system/df"),
        ("POST", "/networks/{id}/connect"),
        ("POST", "/networks/{id}/disconnect"),
    }
    # /commit names its container in its query
    assert kinds["query"] == {("POST", "/commit")}
    assert kinds["exec"] == {("GET", "/exec/{id}/json"), ("POST", "/exec/{id}/start"), ("POST", "/exec/{id}/resize")}
    assert kinds["volume"] == {("GET", "/volumes/{name}"), ("PUT", "/volumes/{name}"), ("DELETE", "/volumes/{name}")}
    assert kinds["network"] == {("GET", "/networks/{id}"), ("DELETE", "/networks/{id}")}
    assert kinds["container"] == {
        (r.method, r.template) for r in DOCKER_ROUTES if r.template.startswith("/containers/{id}")
    }
    assert set(kinds) == {*SCOPE_KINDS, "None"}
    # outside the scoped sections, only /events, /system/df and /commit are scoped at all
    assert {
        (r.method, r.template) for r in DOCKER_ROUTES if r.scoped is not None and r.section not in SCOPED_SECTIONS
    } == {
        ("GET", "/events"),
        ("GET", "/system/df"),
        ("POST", "/commit"),
    }


def test_scoped_resources() -> None:
    assert SCOPED_RESOURCES == ("container", "volume", "network")
    assert set(SCOPED_RESOURCES) < set(SCOPE_KINDS)


@pytest.mark.parametrize(
    ("method", "target", "scoped"),
    [
        ("GET", b"/events", "events"),
        ("GET", b"/v1.41/events?since=1", "events"),
        ("GET", b"/containers/json", "list"),
        ("GET", b"/volumes", "list"),
        ("GET", b"/networks", "list"),
        ("POST", b"/containers/prune", "refused"),
        ("POST", b"/volumes/prune", "refused"),
        ("POST", b"/networks/prune", "refused"),
        ("GET", b"/system/df", "refused"),
        ("POST", b"/commit?container=abc", "query"),
        ("POST", b"/networks/front/connect", "refused"),
        ("POST", b"/networks/a/b/disconnect", "refused"),
        ("POST", b"/containers/create", "create"),
        ("POST", b"/containers/web/db/exec", "container"),
        ("DELETE", b"/containers/abc/checkpoints/cp1", "container"),
        ("GET", b"/containers/json/json", "container"),
        ("GET", b"/networks/create", "network"),
        ("GET", b"/exec/abc/json", "exec"),
        ("POST", b"/images/prune", None),
        ("POST", b"/build/prune", None),
        ("GET", b"/images/json", None),
        ("GET", b"/info", None),
        ("GET", b"/services/abc", None),
        ("GET", b"/_ping", None),
    ],
)
def test_lookup_finds_the_scope_kind(method: str, target: bytes, scoped: str | None) -> None:
    route = route_of(method, target)
    assert route is not None and route.scoped == scoped


@pytest.mark.parametrize(
    ("method", "target", "ref"),
    [
        ("GET", b"/containers/abc/json", "abc"),
        ("GET", b"/v1.41/containers/abc/json", "abc"),
        ("GET", b"/v1.41/containers/abc/json?size=1", "abc"),
        # moby's {name:.*}: a legacy link name spans segments
        ("GET", b"/containers/web/db/json", "web/db"),
        ("GET", b"/v1.47/containers/a/b/c/archive", "a/b/c"),
        ("DELETE", b"/containers/web/db", "web/db"),
        ("DELETE", b"/containers/abc", "abc"),
        ("POST", b"/containers/web/db/exec", "web/db"),
        ("GET", b"/containers/json/json", "json"),
        ("GET", b"/containers/abc/attach/ws", "abc"),
        ("GET", b"/containers/web/db/attach/ws", "web/db"),
        # checkpoints: the container, before the checkpoint
        ("GET", b"/containers/abc/checkpoints", "abc"),
        ("GET", b"/containers/web/db/checkpoints", "web/db"),
        ("DELETE", b"/containers/abc/checkpoints/cp1", "abc"),
        ("DELETE", b"/v1.41/containers/abc/checkpoints/cp1", "abc"),
        # exec, volumes, networks
        ("POST", b"/exec/abc/start", "abc"),
        ("GET", b"/v1.44/exec/abc/json", "abc"),
        ("GET", b"/volumes/data", "data"),
        ("GET", b"/volumes/a/b", "a/b"),
        ("DELETE", b"/volumes/data", "data"),
        ("GET", b"/networks/front", "front"),
        ("GET", b"/networks/a/b", "a/b"),
        ("POST", b"/networks/a/b/connect", "a/b"),
        # other sections use the same placeholders
        ("GET", b"/images/library/busybox:latest/json", "library/busybox:latest"),
        ("DELETE", b"/images/busybox", "busybox"),
        ("POST", b"/plugins/vieux/sshfs:latest/enable", "vieux/sshfs:latest"),
        ("GET", b"/distribution/docker.io/library/busybox/json", "docker.io/library/busybox"),
        ("GET", b"/services/abc", "abc"),
        ("POST", b"/nodes/n1/update", "n1"),
        ("GET", b"/tasks/t1/logs", "t1"),
    ],
)
def test_placeholder(method: str, target: bytes, ref: str) -> None:
    path = canonicalise(target)
    route = lookup(method, path).route
    assert route is not None
    start, end = placeholder(route, path)
    assert "/".join(path.segments[start:end]) == ref
    # the placeholder sits where the template has it
    assert path.segments[:start] == tuple(route.template[1:].split("/")[:start])


@pytest.mark.parametrize("route", [r for r in ROUTES if "{" in r.template], ids=lambda r: f"{r.method} {r.template}")
def test_placeholder_of_every_route(route: Route) -> None:
    for prefix in (b"", b"/v1.41"):
        path = canonicalise(prefix + sample_path(route).path.encode())
        start, end = placeholder(route, path)
        assert path.segments[start:end] == ("example",)
