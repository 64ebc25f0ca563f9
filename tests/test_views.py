"""What a scoped or redacted caller sees (L{dockguard.views}): lists, inspects and events, narrowed."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from dockguard.scope import OWNER_LABEL, Resource, Scope
from dockguard.views import REDACTED, EventFilter, Unreadable, filter_list, listed_resource, redact_inspect

WEB = "8dfafdbc3a40f2d3b4b5e6a7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091"
DB = "9cd87474be90a1b2c3d4e5f60718293a4b5c6d7e8f9001122334455667788990"
CACHE = "3176a2479c92b4c5d6e7f8091a2b3c4d5e6f7081920a1b2c3d4e5f6071829304"
FRONT = "f2de39df4171b0dc801e8002d1d999b77256983dfc63041c0f34030aa3977566"
BACK = "649cf6e6e5b5a4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9"


def in_names(*names: str) -> Callable[[Resource], bool]:
    return lambda resource: resource.name in names


def recorder(verdict: bool = True) -> tuple[list[Resource], Callable[[Resource], bool]]:
    seen: list[Resource] = []

    def judge(resource: Resource) -> bool:
        seen.append(resource)
        return verdict

    return seen, judge


def dumped(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- the daemon's lists (shapes from the Engine API reference) -------------------------


def container_item(
    ident: str, names: list[str], labels: dict[str, str] | None, mounts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "Id": ident,
        "Names": names,
        "Image": "ubuntu:latest",
        "ImageID": "sha256:d74508fb6632491cea586a1fd7d748dfc5274cd6fdfedee309ecdcbc2bf5cb82",
        "Command": "echo 1",
        "Created": 1367854155,
        "State": "running",
        "Status": "Up 2 minutes",
        "Ports": [{"PrivatePort": 2222, "PublicPort": 3333, "Type": "tcp"}],
        "Labels": labels,
        "SizeRw": 12288,
        "SizeRootFs": 0,
        "HostConfig": {"NetworkMode": "default"},
        "NetworkSettings": {
            "Networks": {
                "bridge": {
                    "NetworkID": "7ea29fc1412292a2d7bba362f9253545fecdfa8ce9a6e37dd10ba8bee7129812",
                    "EndpointID": "2cdc4edb1ded3631c81f57966563e5c8525b81121bb3706a9a9a3ae102711f3f",
                    "Gateway": "172.17.0.1",
                    "IPAddress": "172.17.0.2",
                    "IPPrefixLen": 16,
                    "MacAddress": "02:42:ac:11:00:02",
                }
            }
        },
        "Mounts": mounts if mounts is not None else [],
    }


BIND = {
    "Type": "bind",
    "Source": "/srv/secret",
    "Destination": "/data",
    "Mode": "ro,Z",
    "RW": False,
    "Propagation": "rprivate",
}
NAMED = {
    "Type": "volume",
    "Name": "pgdata",
    "Source": "/var/lib/docker/volumes/pgdata/_data",
    "Destination": "/var/lib/postgresql/data",
    "Driver": "local",
    "Mode": "z",
    "RW": True,
    "Propagation": "",
}

CONTAINERS = [
    container_item(WEB, ["/web"], {"com.example.team": "a", OWNER_LABEL: "alice"}, [BIND]),
    # db is linked from web as "db": the daemon lists the link alias too
    container_item(DB, ["/web/db", "/db"], {"com.example.team": "b"}, [NAMED]),
    container_item(CACHE, ["/cache"], None),
]

VOLUMES: dict[str, Any] = {
    "Volumes": [
        {
            "CreatedAt": "2024-01-15T10:00:00Z",
            "Driver": "local",
            "Labels": {"com.example.team": "a", OWNER_LABEL: "alice"},
            "Mountpoint": "/var/lib/docker/volumes/data/_data",
            "Name": "data",
            "Options": {},
            "Scope": "local",
        },
        {
            "CreatedAt": "2024-01-15T10:00:00Z",
            "Driver": "local",
            "Labels": None,
            "Mountpoint": "/var/lib/docker/volumes/pgdata/_data",
            "Name": "pgdata",
            "Options": None,
            "Scope": "local",
        },
    ],
    "Warnings": ["a warning"],
}


def network_item(ident: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "Name": name,
        "Id": ident,
        "Created": "2016-10-19T06:21:00.416543526Z",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": True,
        "EnableIPv6": False,
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "IPAM": {"Driver": "default", "Config": [{"Subnet": "172.17.0.0/16"}]},
        "Options": {"com.docker.network.bridge.default_bridge": "true"},
        "Labels": labels,
    }


NETWORKS = [network_item(FRONT, "front", {"com.example.team": "a"}), network_item(BACK, "back", {})]


@pytest.mark.parametrize(
    ("names", "kept"),
    [
        ((), []),
        (("web",), [0]),
        (("db",), [1]),  # its own name, not the link alias web/db
        (("web/db",), []),
        (("web", "cache"), [0, 2]),
        (("web", "db", "cache"), [0, 1, 2]),
    ],
)
def test_container_list_keeps_what_is_in_scope(names: tuple[str, ...], kept: list[int]) -> None:
    out = filter_list("container", dumped(CONTAINERS), in_names(*names), frozenset())
    assert json.loads(out) == [CONTAINERS[index] for index in kept]


def test_container_list_judges_each_container_as_a_resource() -> None:
    seen, judge = recorder()
    filter_list("container", dumped(CONTAINERS), judge, frozenset())
    assert seen == [
        Resource("container", WEB, "web", {"com.example.team": "a", OWNER_LABEL: "alice"}),
        Resource("container", DB, "db", {"com.example.team": "b"}),
        Resource("container", CACHE, "cache", {}),
    ]


@pytest.mark.parametrize(
    ("names", "name"),
    [
        (["/db"], "db"),
        (["/web/db", "/db"], "db"),
        (["/db", "/web/db", "/app/db"], "db"),
        (["/web/db"], ""),  # only aliases: no name of its own
        ([], ""),
        (None, ""),
        ("/db", ""),
        ([1, "/db"], "db"),
    ],
)
def test_a_listed_container_is_named_by_its_own_name(names: Any, name: str) -> None:
    resource = listed_resource("container", {"Id": DB, "Names": names, "Labels": {}})
    assert resource is not None and resource.name == name


@pytest.mark.parametrize(
    ("kind", "item", "expected"),
    [
        (
            "container",
            {"Id": WEB, "Names": ["/web"], "Labels": {"a": "b", "n": 1}},
            Resource("container", WEB, "web", {"a": "b"}),
        ),
        ("container", {"Id": WEB, "Names": ["/web"], "Labels": None}, Resource("container", WEB, "web")),
        ("container", {"Id": WEB, "Names": ["/web"], "Labels": ["a=b"]}, Resource("container", WEB, "web")),
        ("container", {"Names": ["/web"]}, None),
        ("container", {"Id": 1, "Names": ["/web"]}, None),
        ("container", "web", None),
        ("container", None, None),
        ("volume", {"Name": "data", "Labels": {"a": "b"}}, Resource("volume", "data", "data", {"a": "b"})),
        ("volume", {"Labels": {}}, None),
        ("volume", {"Name": None}, None),
        ("network", {"Id": FRONT, "Name": "front", "Labels": {}}, Resource("network", FRONT, "front")),
        ("network", {"Id": FRONT}, None),
        ("network", {"Name": "front"}, None),
        ("network", [FRONT, "front"], None),
    ],
)
def test_listed_resource(kind: str, item: Any, expected: Resource | None) -> None:
    assert listed_resource(kind, item) == expected


@pytest.mark.parametrize(
    ("names", "kept"),
    [((), []), (("data",), [0]), (("pgdata",), [1]), (("data", "pgdata"), [0, 1])],
)
def test_volume_list_keeps_what_is_in_scope_and_the_warnings(names: tuple[str, ...], kept: list[int]) -> None:
    out = json.loads(filter_list("volume", dumped(VOLUMES), in_names(*names), frozenset()))
    assert out == {"Volumes": [VOLUMES["Volumes"][index] for index in kept], "Warnings": ["a warning"]}


def test_volume_list_judges_each_volume_by_its_name() -> None:
    seen, judge = recorder(False)
    filter_list("volume", dumped(VOLUMES), judge, frozenset())
    assert seen == [
        Resource("volume", "data", "data", {"com.example.team": "a", OWNER_LABEL: "alice"}),
        Resource("volume", "pgdata", "pgdata"),
    ]


@pytest.mark.parametrize("in_scope", [None, in_names("data")])
@pytest.mark.parametrize(
    "document",
    [{"Volumes": None, "Warnings": None}, {"Volumes": [], "Warnings": []}, {"Warnings": None}],
)
def test_an_empty_volume_list(in_scope: Callable[[Resource], bool] | None, document: dict[str, Any]) -> None:
    out = json.loads(filter_list("volume", dumped(document), in_scope, frozenset()))
    assert out == {**document, "Volumes": []}


@pytest.mark.parametrize(("names", "kept"), [((), []), (("front",), [0]), (("back", "front"), [0, 1])])
def test_network_list_keeps_what_is_in_scope(names: tuple[str, ...], kept: list[int]) -> None:
    out = filter_list("network", dumped(NETWORKS), in_names(*names), frozenset())
    assert json.loads(out) == [NETWORKS[index] for index in kept]


def test_network_list_judges_each_network_by_its_id_and_name() -> None:
    seen, judge = recorder()
    filter_list("network", dumped(NETWORKS), judge, frozenset())
    assert seen == [Resource("network", FRONT, "front", {"com.example.team": "a"}), Resource("network", BACK, "back")]


@pytest.mark.parametrize(
    ("kind", "document"),
    [("container", CONTAINERS), ("volume", VOLUMES), ("network", NETWORKS), ("container", []), ("network", [])],
)
def test_without_a_scope_every_item_is_kept(kind: str, document: Any) -> None:
    out = filter_list(kind, dumped(document), None, frozenset())
    assert json.loads(out) == document
    assert out.endswith(b"\n") and out.count(b"\n") == 1


def test_the_scope_is_the_caller_judgement() -> None:
    scope = Scope(owner=True)
    out = filter_list("container", dumped(CONTAINERS), lambda r: scope.holds(r, "alice"), frozenset())
    assert [item["Id"] for item in json.loads(out)] == [WEB]
    out = filter_list("volume", dumped(VOLUMES), lambda r: scope.holds(r, "bob"), frozenset())
    assert json.loads(out)["Volumes"] == []


def test_items_that_name_no_resource_are_dropped_under_a_scope_only() -> None:
    document = [CONTAINERS[0], {"Names": ["/ghost"]}, "junk", None, CONTAINERS[2]]
    out = filter_list("container", dumped(document), lambda resource: True, frozenset())
    assert json.loads(out) == [CONTAINERS[0], CONTAINERS[2]]
    assert json.loads(filter_list("container", dumped(document), None, frozenset())) == document


# --- redaction in lists --------------------------------------------------------------


@pytest.mark.parametrize("in_scope", [None, in_names("web", "db", "cache")])
def test_list_redaction_of_labels(in_scope: Callable[[Resource], bool] | None) -> None:
    out = json.loads(filter_list("container", dumped(CONTAINERS), in_scope, frozenset({"labels"})))
    assert [item["Labels"] for item in out] == [
        {"com.example.team": REDACTED, OWNER_LABEL: REDACTED},
        {"com.example.team": REDACTED},
        None,
    ]
    # nothing else changes
    for item, original in zip(out, CONTAINERS):
        assert {**item, "Labels": None} == {**original, "Labels": None}


def test_list_redaction_of_mounts() -> None:
    out = filter_list("container", dumped(CONTAINERS), None, frozenset({"mounts"}))
    assert b"/srv/secret" not in out and b"/var/lib/docker/volumes/pgdata" not in out
    items = json.loads(out)
    assert items[0]["Mounts"] == [{**BIND, "Source": REDACTED}]
    assert items[1]["Mounts"] == [{**NAMED, "Source": REDACTED}]
    assert items[0]["Labels"] == CONTAINERS[0]["Labels"]


def test_list_redaction_of_both_and_of_nothing() -> None:
    both = json.loads(filter_list("container", dumped(CONTAINERS), None, frozenset({"labels", "mounts", "env"})))
    assert both[0]["Labels"] == {"com.example.team": REDACTED, OWNER_LABEL: REDACTED}
    assert both[0]["Mounts"][0]["Source"] == REDACTED
    assert json.loads(filter_list("container", dumped(CONTAINERS), None, frozenset())) == CONTAINERS


def test_the_scope_is_judged_before_the_labels_are_redacted() -> None:
    scope = Scope(labels=["com.example.team=a"])
    out = filter_list("container", dumped(CONTAINERS), lambda r: scope.holds(r, "x"), frozenset({"labels"}))
    assert [item["Id"] for item in json.loads(out)] == [WEB]


@pytest.mark.parametrize("kind", ["volume", "network"])
def test_list_redaction_of_volume_and_network_labels(kind: str) -> None:
    document = VOLUMES if kind == "volume" else NETWORKS
    out = json.loads(filter_list(kind, dumped(document), None, frozenset({"labels"})))
    items = out["Volumes"] if kind == "volume" else out
    assert b"alice" not in dumped(items) and all(set((item["Labels"] or {}).values()) <= {REDACTED} for item in items)


def test_odd_mounts_are_left_alone() -> None:
    item = container_item(WEB, ["/web"], {}, [{"Type": "tmpfs", "Destination": "/t"}, "junk", None])  # type: ignore[list-item]
    item["Mounts"].append({"Source": None})
    out = json.loads(filter_list("container", dumped([item]), None, frozenset({"mounts"})))
    assert out[0]["Mounts"] == [{"Type": "tmpfs", "Destination": "/t"}, "junk", None, {"Source": REDACTED}]


# --- unreadable lists ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("container", b""),
        ("container", b"not json"),
        ("container", b"[{"),
        ("container", b"{}"),
        ("container", b'{"Volumes":[]}'),
        ("container", b'"x"'),
        ("container", b"null"),
        ("network", b"{}"),
        ("network", b"\xff\xfe\x00"),
        ("volume", b"[]"),
        ("volume", b"null"),
        ("volume", b'{"Volumes":{"data":{"Name":"data"}}}'),
        ("volume", b'{"Volumes":"data"}'),
        ("volume", b"<html>502 Bad Gateway</html>"),
    ],
)
@pytest.mark.parametrize("in_scope", [None, in_names("web")])
def test_unreadable_lists_raise(kind: str, raw: bytes, in_scope: Callable[[Resource], bool] | None) -> None:
    with pytest.raises(Unreadable):
        filter_list(kind, raw, in_scope, frozenset())


# --- redact_inspect --------------------------------------------------------------------

CONTAINER_INSPECT: dict[str, Any] = {
    "Id": WEB,
    "Created": "2024-01-15T10:00:00.000000000Z",
    "Path": "/docker-entrypoint.sh",
    "Args": ["nginx", "-g", "daemon off;"],
    "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0},
    "Image": "sha256:d74508fb6632491cea586a1fd7d748dfc5274cd6fdfedee309ecdcbc2bf5cb82",
    "Name": "/web",
    "RestartCount": 0,
    "Driver": "overlay2",
    "HostConfig": {
        "Binds": ["/srv/secret:/data:ro", "pgdata:/var/lib/postgresql/data"],
        "NetworkMode": "bridge",
        "Mounts": [{"Type": "bind", "Source": "/srv/other", "Target": "/other", "ReadOnly": True}],
        "Privileged": False,
    },
    "Mounts": [BIND, NAMED],
    "Config": {
        "Hostname": "8dfafdbc3a40",
        "Env": ["PATH=/usr/local/sbin:/usr/bin", "DB_PASSWORD=hunter2", "EMPTY=", "JUST_A_NAME", "TOKEN=a=b=c"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Image": "nginx",
        "Labels": {"com.example.team": "a", "com.example.secret": "s3cr3t", OWNER_LABEL: "alice"},
    },
    "NetworkSettings": {"IPAddress": "172.17.0.2"},
}

IMAGE_INSPECT: dict[str, Any] = {
    "Id": "sha256:d74508fb6632491cea586a1fd7d748dfc5274cd6fdfedee309ecdcbc2bf5cb82",
    "RepoTags": ["example/app:1.0"],
    "RepoDigests": [],
    "Parent": "",
    "Comment": "",
    "Created": "2024-01-15T10:00:00Z",
    "ContainerConfig": {"Env": ["BUILD_TOKEN=ghp_abcdef"], "Labels": {"build.secret": "x1"}},
    "Config": {
        "Env": ["PATH=/usr/bin", "API_KEY=sk-live-123"],
        "Cmd": ["/app"],
        "Labels": {"org.opencontainers.image.source": "https://example.com/app"},
    },
    "Architecture": "amd64",
    "Os": "linux",
    "Size": 1234,
    "RootFS": {"Type": "layers", "Layers": ["sha256:aaaa"]},
}

SECRETS = [b"hunter2", b"a=b=c", b"ghp_abcdef", b"sk-live-123"]


def test_env_redaction_keeps_the_names() -> None:
    out = redact_inspect(dumped(CONTAINER_INSPECT), frozenset({"env"}))
    data = json.loads(out)
    assert data["Config"]["Env"] == [
        f"PATH={REDACTED}",
        f"DB_PASSWORD={REDACTED}",
        f"EMPTY={REDACTED}",
        f"JUST_A_NAME={REDACTED}",
        f"TOKEN={REDACTED}",
    ]
    for secret in SECRETS:
        assert secret not in out
    # nothing else changes
    assert {**data, "Config": None} == {**CONTAINER_INSPECT, "Config": None}
    assert {**data["Config"], "Env": None} == {**CONTAINER_INSPECT["Config"], "Env": None}


def test_env_redaction_of_an_image_hides_both_configs() -> None:
    out = redact_inspect(dumped(IMAGE_INSPECT), frozenset({"env"}))
    data = json.loads(out)
    assert data["Config"]["Env"] == [f"PATH={REDACTED}", f"API_KEY={REDACTED}"]
    assert data["ContainerConfig"]["Env"] == [f"BUILD_TOKEN={REDACTED}"]
    for secret in SECRETS:
        assert secret not in out
    assert data["Config"]["Labels"] == IMAGE_INSPECT["Config"]["Labels"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"Env": None}, {"Env": None}),
        ({"Env": []}, {"Env": []}),
        ({"Env": "A=1"}, {"Env": "A=1"}),  # not the documented array: left as it is
        ({"Env": ["A=1", 7, None]}, {"Env": [f"A={REDACTED}", 7, None]}),
        ({}, {}),
        (None, None),
    ],
)
def test_env_redaction_of_odd_configs(config: Any, expected: Any) -> None:
    data = json.loads(redact_inspect(dumped({"Id": WEB, "Config": config}), frozenset({"env"})))
    assert data["Config"] == expected


def test_mount_redaction_hides_every_host_path() -> None:
    out = redact_inspect(dumped(CONTAINER_INSPECT), frozenset({"mounts"}))
    for path in (b"/srv/secret", b"/srv/other", b"/var/lib/docker/volumes/pgdata"):
        assert path not in out
    data = json.loads(out)
    assert data["Mounts"] == [{**BIND, "Source": REDACTED}, {**NAMED, "Source": REDACTED}]
    assert data["HostConfig"]["Binds"] == [REDACTED, REDACTED]
    assert data["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": REDACTED, "Target": "/other", "ReadOnly": True}]
    assert data["Config"] == CONTAINER_INSPECT["Config"]


def test_label_redaction_keeps_the_keys() -> None:
    out = redact_inspect(dumped(CONTAINER_INSPECT), frozenset({"labels"}))
    data = json.loads(out)
    assert data["Config"]["Labels"] == {
        "com.example.team": REDACTED,
        "com.example.secret": REDACTED,
        OWNER_LABEL: REDACTED,
    }
    assert b"s3cr3t" not in out
    assert data["Config"]["Env"] == CONTAINER_INSPECT["Config"]["Env"]
    image = json.loads(redact_inspect(dumped(IMAGE_INSPECT), frozenset({"labels"})))
    assert image["Config"]["Labels"] == {"org.opencontainers.image.source": REDACTED}
    assert image["ContainerConfig"]["Labels"] == {"build.secret": REDACTED}


def test_redacting_everything_and_nothing() -> None:
    out = redact_inspect(dumped(CONTAINER_INSPECT), frozenset({"env", "mounts", "labels"}))
    for secret in [*SECRETS, b"s3cr3t", b"/srv/secret", b"/srv/other"]:
        assert secret not in out
    assert json.loads(redact_inspect(dumped(CONTAINER_INSPECT), frozenset())) == CONTAINER_INSPECT
    assert json.loads(redact_inspect(dumped(IMAGE_INSPECT), frozenset())) == IMAGE_INSPECT


def test_redaction_does_not_touch_the_callers_copy() -> None:
    original = copy.deepcopy(CONTAINER_INSPECT)
    redact_inspect(dumped(CONTAINER_INSPECT), frozenset({"env", "mounts", "labels"}))
    assert CONTAINER_INSPECT == original


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"null", b'"x"', b"{", b"404 page not found", b"[" + dumped(CONTAINER_INSPECT) + b"]"]
)
def test_unreadable_inspects_raise(raw: bytes) -> None:
    with pytest.raises(Unreadable):
        redact_inspect(raw, frozenset({"env"}))


# --- EventFilter ----------------------------------------------------------------------


def event(**fields: Any) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode() + b"\n"


def container_event(action: str, ident: str, name: str, **labels: str) -> bytes:
    attributes = {"image": "busybox", "name": name, **labels}
    return event(
        status=action,
        id=ident,
        **{"from": "busybox"},
        Type="container",
        Action=action,
        Actor={"ID": ident, "Attributes": attributes},
        scope="local",
        time=1700000000,
        timeNano=1700000000000000000,
    )


def exec_event(action: str, ident: str, name: str) -> bytes:
    attributes = {"execID": "b2e7f1c6a9d84d1c9e3f7a0b5c2d4e6f", "image": "busybox", "name": name}
    return event(
        status=action,
        id=ident,
        **{"from": "busybox"},
        Type="container",
        Action=action,
        Actor={"ID": ident, "Attributes": attributes},
        scope="local",
        time=1700000001,
        timeNano=1700000001000000000,
    )


def network_event(action: str, network: str, name: str, container: str | None) -> bytes:
    attributes = {"name": name, "type": "bridge"}
    if container is not None:
        attributes["container"] = container
    return event(
        Type="network",
        Action=action,
        Actor={"ID": network, "Attributes": attributes},
        scope="local",
        time=1,
        timeNano=1,
    )


def volume_event(action: str, volume: str, container: str | None) -> bytes:
    attributes = {"driver": "local"}
    if container is not None:
        attributes.update({"container": container, "destination": "/data", "propagation": "", "read/write": "true"})
    return event(
        Type="volume", Action=action, Actor={"ID": volume, "Attributes": attributes}, scope="local", time=1, timeNano=1
    )


IMAGE_PULL = event(
    status="pull",
    id="busybox:latest",
    Type="image",
    Action="pull",
    Actor={"ID": "busybox:latest", "Attributes": {"name": "busybox"}},
    scope="local",
    time=1,
    timeNano=1,
)
DAEMON_RELOAD = event(
    Type="daemon",
    Action="reload",
    Actor={"ID": "KNNX:5JRZ:JJ5R:5B6A", "Attributes": {"debug": "false", "name": "host"}},
    scope="local",
    time=1,
    timeNano=1,
)
PLUGIN_ENABLE = event(
    Type="plugin",
    Action="enable",
    Actor={"ID": "abc", "Attributes": {"name": "vieux/sshfs:latest"}},
    time=1,
    timeNano=1,
)
OLD_SHAPE = b'{"status":"start","id":"' + WEB.encode() + b'","from":"busybox","time":1700000000}\n'

WEB_START = container_event("start", WEB, "web", **{"com.example": "x"})
DB_START = container_event("start", DB, "db", **{"com.example": "y"})


def web_only(resource: Resource) -> bool:
    return resource.name == "web"


def run(events: list[bytes], in_scope: Callable[[Resource], bool] = web_only) -> list[bytes]:
    out = EventFilter(in_scope).feed(b"".join(events))
    return out.splitlines(keepends=True)


@pytest.mark.parametrize(
    ("events", "passed"),
    [
        ([WEB_START], [0]),
        ([DB_START], []),
        ([WEB_START, DB_START, WEB_START], [0, 2]),
        ([exec_event("exec_create: sh -c date", WEB, "web")], [0]),
        ([exec_event("exec_start: sh -c date", DB, "db")], []),
        ([exec_event("exec_die", WEB, "web")], [0]),
        ([container_event("die", WEB, "web", exitCode="0", execDuration="3")], [0]),
        ([container_event("kill", DB, "db", signal="15")], []),
        ([container_event("health_status: healthy", WEB, "web")], [0]),
        ([container_event("rename", WEB, "web", oldName="/web-old")], [0]),
        ([container_event("rename", DB, "db", oldName="/web")], []),  # renamed away from a name in scope
        # images, the daemon, plugins: not scoped resources
        ([IMAGE_PULL, DAEMON_RELOAD, PLUGIN_ENABLE], [0, 1, 2]),
        # network and volume events: only for a container seen in scope on this stream
        ([WEB_START, network_event("connect", FRONT, "front", WEB)], [0, 1]),
        ([network_event("connect", FRONT, "front", WEB), WEB_START], [1]),  # not seen yet
        ([DB_START, network_event("connect", FRONT, "front", DB)], []),
        (
            [WEB_START, network_event("disconnect", FRONT, "front", WEB), volume_event("unmount", "data", WEB)],
            [0, 1, 2],
        ),
        ([WEB_START, volume_event("mount", "data", WEB), volume_event("mount", "pgdata", DB)], [0, 1]),
        ([WEB_START, network_event("connect", FRONT, "front", WEB[:12])], [0]),  # the daemon gives the full ID
        ([network_event("create", FRONT, "front", None), volume_event("create", "data", None)], []),
        ([WEB_START, network_event("destroy", FRONT, "front", None), volume_event("destroy", "data", None)], [0]),
        # the old shape (API < 1.22) does not say what its actor is
        ([OLD_SHAPE], []),
        ([b'{"Type":"container","Action":"start"}\n'], []),
        ([b'{"Type":"container","Action":"start","Actor":"web"}\n'], []),
        ([b'{"Type":"container","Action":"start","Actor":{"Attributes":{"name":"web"}}}\n'], []),
        ([b'{"Type":"container","Action":"start","Actor":{"ID":7,"Attributes":{"name":"web"}}}\n'], []),
        ([b'{"Type":7,"Action":"start","Actor":{"ID":"x","Attributes":{"name":"web"}}}\n'], []),
        # garbage
        ([b"not json\n", WEB_START, b"[]\n", b'"web"\n', b"{\n", b"null\n", b"\n", b"   \n", DB_START], [1]),
    ],
)
def test_event_filter(events: list[bytes], passed: list[int]) -> None:
    assert run(events) == [events[index] for index in passed]


def test_container_events_are_judged_by_their_actor() -> None:
    seen, judge = recorder()
    owned = container_event("create", WEB, "web", **{OWNER_LABEL: "alice", "com.example": "x"})
    run([owned, exec_event("exec_start: sh", DB, "db"), container_event("die", WEB, "web", exitCode="1")], judge)
    assert seen == [
        Resource("container", WEB, "web", {OWNER_LABEL: "alice", "com.example": "x"}),
        Resource("container", DB, "db"),
        Resource("container", WEB, "web"),
    ]


@pytest.mark.parametrize(
    ("scope", "identity", "passed"),
    [
        (Scope(owner=True), "alice", [0, 2]),
        (Scope(owner=True), "bob", [1]),
        (Scope(labels=["com.example=x"]), "bob", [0, 2]),
        (Scope(labels=["com.example"]), "bob", [0, 1, 2]),
        (Scope(names=["w*"]), "bob", [0, 2]),
        (Scope(labels=["image"]), "bob", []),  # the daemon's attributes are not labels
        (Scope(labels=["name=web"]), "bob", []),
    ],
)
def test_event_filter_with_a_scope(scope: Scope, identity: str, passed: list[int]) -> None:
    events = [
        container_event("start", WEB, "web", **{OWNER_LABEL: "alice", "com.example": "x"}),
        container_event("start", DB, "db", **{OWNER_LABEL: "bob", "com.example": "y"}),
        # exec events carry the container's labels too
        container_event("exec_create: sh", WEB, "web", execID="e1", **{OWNER_LABEL: "alice", "com.example": "x"}),
    ]
    assert run(events, lambda resource: scope.holds(resource, identity)) == [events[index] for index in passed]


def test_a_container_judged_again_out_of_scope_loses_its_network_events() -> None:
    renamed = container_event("rename", WEB, "cache", oldName="/web")
    events = [
        WEB_START,
        network_event("connect", FRONT, "front", WEB),
        renamed,
        network_event("disconnect", FRONT, "front", WEB),
    ]
    assert run(events) == events[:2]


STREAM = [
    WEB_START,
    IMAGE_PULL,
    DB_START,
    container_event("start", WEB, "web", **{"com.example": "caf\u00e9 \u2603 \U0001f600"}),
    network_event("connect", FRONT, "front", WEB),
    b"garbage\n",
    OLD_SHAPE,
    volume_event("mount", "data", DB),
    exec_event("exec_die", WEB, "web"),
]


def test_a_split_anywhere_gives_the_same_events() -> None:
    data = b"".join(STREAM)
    whole = EventFilter(web_only).feed(data)
    assert whole == b"".join(STREAM[index] for index in (0, 1, 3, 4, 8))
    for offset in range(len(data) + 1):
        events = EventFilter(web_only)
        assert events.feed(data[:offset]) + events.feed(data[offset:]) == whole, offset


def test_a_split_anywhere_in_three_gives_the_same_events() -> None:
    data = b"".join(STREAM[:5])
    whole = EventFilter(web_only).feed(data)
    for first in range(0, len(data) + 1, 7):
        for second in range(first, len(data) + 1, 11):
            events = EventFilter(web_only)
            out = events.feed(data[:first]) + events.feed(data[first:second]) + events.feed(data[second:])
            assert out == whole, (first, second)


def test_byte_by_byte() -> None:
    data = b"".join(STREAM)
    events = EventFilter(web_only)
    assert b"".join(events.feed(data[i : i + 1]) for i in range(len(data))) == EventFilter(web_only).feed(data)


def test_an_event_cut_short_waits_for_its_end() -> None:
    events = EventFilter(web_only)
    assert events.feed(WEB_START[:-1]) == b""
    assert events.feed(b"") == b""
    assert events.feed(b"\n") == WEB_START
    assert events.feed(b"") == b""


@pytest.mark.parametrize("pieces", [1, 2, 3, 64])
def test_a_line_longer_than_max_line_raises(pieces: int) -> None:
    line = container_event("start", WEB, "web", padding="x" * 200)
    events = EventFilter(web_only, max_line=len(line) - 2)  # the line without its newline is one byte too long
    size = -(-len(line) // pieces)
    with pytest.raises(Unreadable, match="longer than"):
        for start in range(0, len(line), size):
            events.feed(line[start : start + size])


def test_a_line_of_max_line_passes() -> None:
    line = container_event("start", WEB, "web", padding="x" * 200)
    events = EventFilter(web_only, max_line=len(line) - 1)
    assert events.feed(line[:-1]) == b""
    assert events.feed(line[-1:]) == line
    assert EventFilter(web_only, max_line=len(line) - 1).feed(line * 3) == line * 3


def test_a_long_unfinished_line_raises_at_once() -> None:
    events = EventFilter(web_only, max_line=100)
    events.feed(b"x" * 100)
    with pytest.raises(Unreadable):
        events.feed(b"x")


def test_the_containers_seen_are_bounded() -> None:
    events = EventFilter(lambda resource: True)
    lines = b"".join(
        b'{"Type":"container","Action":"start","Actor":{"ID":"c%d","Attributes":{"name":"n"}}}\n' % n
        for n in range(70000)
    )
    events.feed(lines)
    assert len(events._seen) <= 65537
    # what was forgotten fails closed: its network events are dropped
    assert events.feed(network_event("connect", FRONT, "front", "c1")) == b""
    assert events.feed(network_event("connect", FRONT, "front", "c69999")) != b""


def test_a_scoped_list_is_redacted_per_resource_by_the_groups_whose_scope_holds_it() -> None:
    body = json.dumps(
        [
            {"Id": "a" * 64, "Names": ["/heal"], "Labels": {"autoheal": "true", "secret": "s1"}},
            {"Id": "b" * 64, "Names": ["/db"], "Labels": {"secret": "s2"}},
        ]
    ).encode()

    def hidden(resource: Resource) -> frozenset[str]:
        # one group holds autoheal=true and redacts labels; another holds db* and redacts nothing
        return frozenset({"labels"}) if resource.name == "heal" else frozenset()

    listed = json.loads(filter_list("container", body, lambda r: True, frozenset(), hidden))
    assert listed[0]["Labels"] == {"autoheal": REDACTED, "secret": REDACTED}
    assert listed[1]["Labels"] == {"secret": "s2"}


def test_a_kept_list_item_goes_on_as_the_daemon_wrote_it() -> None:
    # spacing and escapes as sent: the item is not decoded and encoded again
    kept = b'{"Id": "' + b"a" * 64 + b'", "Names": ["/w\\u0065b"], "Labels": {"x": "1"}}'
    dropped = b'{"Id":"' + b"b" * 64 + b'","Names":["/db"],"Labels":{}}'
    body = b"[ " + kept + b" ,\n" + dropped + b" ]\n"
    assert filter_list("container", body, lambda r: r.name == "web", frozenset()) == b"[" + kept + b"]\n"


@pytest.mark.parametrize(
    "body",
    [b"[1,2", b"[1,,2]", b"[1,]", b"[1] x", b"", b"[\xff]", b"[{}]{}"],
    ids=["unfinished", "empty item", "trailing comma", "trailing text", "empty", "not utf-8", "two documents"],
)
def test_a_list_that_is_not_one_json_array_is_unreadable(body: bytes) -> None:
    with pytest.raises(Unreadable):
        filter_list("network", body, None, frozenset())
