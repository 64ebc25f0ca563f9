"""Owner tenancy (L{dockguard.owners}): the owner stamp, what a create makes, other containers, exec owners."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dockguard.guards.gojson import decode, go_fold
from dockguard.guards.verdict import Refusal
from dockguard.owners import ExecOwners, created, networks_joined, other_containers, stamp, volumes_named
from dockguard.queries import QueryRefused
from dockguard.scope import OWNER_LABEL, Resource

OWNER = {OWNER_LABEL: "alice"}

# --- realistic create bodies ----------------------------------------------------

#: What the docker CLI sends for `docker run -d --name web -l com.example.team=a -e A=1 -v data:/data nginx`.
CONTAINER: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "ExposedPorts": {"80/tcp": {}},
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": ["A=1"],
    "Cmd": None,
    "Image": "nginx",
    "Volumes": {},
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": {"com.example.team": "a"},
    "HostConfig": {
        "Binds": ["data:/data"],
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "labels": "com.example.team"}},
        "NetworkMode": "bridge",
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False,
        "VolumeDriver": "",
        "VolumesFrom": None,
        "CapAdd": None,
        "CapDrop": None,
        "CgroupnsMode": "",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": None,
        "GroupAdd": None,
        "IpcMode": "",
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": False,
        "PublishAllPorts": False,
        "ReadonlyRootfs": False,
        "SecurityOpt": None,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 0,
        "ConsoleSize": [0, 0],
        "Isolation": "",
        "CpuShares": 0,
        "Memory": 0,
        "NanoCpus": 0,
        "BlkioWeight": 0,
        "Devices": [],
        "Ulimits": None,
        "OomKillDisable": None,
        "PidsLimit": None,
        "MaskedPaths": None,
        "ReadonlyPaths": None,
        "Mounts": [{"Type": "volume", "Source": "cache", "Target": "/cache", "VolumeOptions": {"Labels": {"x": "y"}}}],
    },
    "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": None, "Links": None}}},
}

#: `docker volume create --label com.example.team=a data`.
VOLUME: dict[str, Any] = {"Driver": "local", "DriverOpts": {}, "Labels": {"com.example.team": "a"}, "Name": "data"}

#: `docker network create --label com.example.team=a front`.
NETWORK: dict[str, Any] = {
    "Name": "front",
    "CheckDuplicate": True,
    "Driver": "bridge",
    "Scope": "",
    "EnableIPv6": False,
    "IPAM": {"Driver": "default", "Options": {}, "Config": []},
    "Internal": False,
    "Attachable": False,
    "Ingress": False,
    "ConfigOnly": False,
    "ConfigFrom": None,
    "Options": {},
    "Labels": {"com.example.team": "a"},
}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def pairs(raw: bytes) -> list[tuple[str, Any]]:
    """The top-level keys of ``raw`` in order, with their values (duplicates kept)."""
    result: list[tuple[str, Any]] = json.loads(raw, object_pairs_hook=list)
    return result


def with_owner(value: dict[str, Any], key: str = "Labels", owner: str = "alice") -> dict[str, Any]:
    expected = dict(value)
    expected[key] = {**(value.get(key) or {}), OWNER_LABEL: owner}
    return expected


# --- stamp: the result -----------------------------------------------------------


@pytest.mark.parametrize("document", [CONTAINER, VOLUME, NETWORK], ids=["container", "volume", "network"])
@pytest.mark.parametrize("indent", [None, 2])
def test_stamp_adds_the_owner_and_keeps_everything_else(document: dict[str, Any], indent: int | None) -> None:
    stamped = stamp(json.dumps(document, indent=indent).encode(), "alice")
    assert json.loads(stamped) == with_owner(document)
    # the keys keep their order: Labels is replaced where it was
    assert [key for key, _ in pairs(stamped)] == list(document)
    # the label goes last, after the caller's own
    assert list(json.loads(stamped)["Labels"]) == [*document["Labels"], OWNER_LABEL]


@pytest.mark.parametrize("identity", ["alice", "CN=alice,O=example", "tool with spaces", "é", "\u017f", 'quote"s', ""])
def test_stamp_names_the_identity_exactly(identity: str) -> None:
    stamped = stamp(body(VOLUME), identity)
    assert json.loads(stamped)["Labels"][OWNER_LABEL] == identity
    assert decode(stamped).get("Labels").get(OWNER_LABEL) == identity


def test_stamp_output_is_ascii_json() -> None:
    stamped = stamp(body({"Name": "caf\u00e9", "Labels": {"\u00fc": "\u2603"}}), "\u00e9")
    assert stamped.isascii()
    assert json.loads(stamped) == {"Name": "caf\u00e9", "Labels": {"\u00fc": "\u2603", OWNER_LABEL: "\u00e9"}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", {"Labels": OWNER}),
        (b" \r\n\t", {"Labels": OWNER}),
        (b"{}", {"Labels": OWNER}),
        (b"null", {"Labels": OWNER}),  # Go reads null into a struct as nothing at all
        (b" { } ", {"Labels": OWNER}),
        (b'{"Labels":null}', {"Labels": OWNER}),
        (b'{"Labels":{}}', {"Labels": OWNER}),
        (b'{"Image":"nginx"}', {"Image": "nginx", "Labels": OWNER}),
        (b'{"Labels":{"a":null}}', {"Labels": {"a": None, **OWNER}}),  # null values are Go's "", kept as sent
        (b'{"Labels":{"a":""}}', {"Labels": {"a": "", **OWNER}}),
    ],
)
def test_stamp_of_small_bodies(raw: bytes, expected: dict[str, Any]) -> None:
    assert json.loads(stamp(raw, "alice")) == expected


# --- stamp: spellings Go reads as Labels -------------------------------------------


@pytest.mark.parametrize(
    "spelling", ["labels", "LABELS", "lAbElS", "Labels", "label\u017f", "LABEL\u017f", "Label\u017f"]
)
def test_a_spelling_go_folds_to_labels_is_replaced_in_place(spelling: str) -> None:
    document = {"Image": "nginx", spelling: {"team": "a"}, "Cmd": ["sh"]}
    stamped = stamp(body(document), "alice")
    assert [key for key, _ in pairs(stamped)] == ["Image", spelling, "Cmd"]
    assert json.loads(stamped) == {"Image": "nginx", spelling: {"team": "a", **OWNER}, "Cmd": ["sh"]}
    # Go reads exactly one Labels, with the owner in it
    assert decode(stamped).get("Labels").get(OWNER_LABEL) == "alice"


@pytest.mark.parametrize("spelling", ["labels", "LABEL\u017f"])
def test_a_folded_spelling_with_null_is_replaced_in_place(spelling: str) -> None:
    stamped = stamp(body({spelling: None, "Name": "x"}), "alice")
    assert pairs(stamped) == [(spelling, [(OWNER_LABEL, "alice")]), ("Name", "x")]


def test_a_folded_spelling_written_with_escapes_is_replaced() -> None:
    stamped = stamp(b'{"\\u004cabel\\u017f":{"a":"b"}}', "alice")
    assert pairs(stamped) == [("Label\u017f", [("a", "b"), (OWNER_LABEL, "alice")])]


@pytest.mark.parametrize(
    "spelling",
    [
        "Label",
        "Labels2",
        "Label s",
        "Labels ",
        "Label\u00df",  # sharp s upper-cases to "SS": Go does not fold it to S
        "Label\u0455",  # Cyrillic dze looks like s
        "LabeIs",  # capital i
        "Lab\u0435ls",  # Cyrillic ie
    ],
)
def test_a_spelling_go_does_not_fold_to_labels_is_left_alone(spelling: str) -> None:
    assert go_fold(spelling) != "LABELS"
    document = {spelling: {"a": "b"}, "Image": "nginx"}
    stamped = stamp(body(document), "alice")
    assert json.loads(stamped) == {**document, "Labels": OWNER}
    assert [key for key, _ in pairs(stamped)] == [spelling, "Image", "Labels"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"Labels":{},"labels":{}}',
        b'{"labels":{"a":"b"},"LABELS":null}',
        b'{"Labels":{},"label\\u017f":{}}',
        b'{"Image":"a","image":"b"}',
        b'{"Image":"a","Image":"b"}',
        b'{"HostConfig":{"Privileged":false,"privileged":true}}',
        b'{"HostConfig":{"Binds":[],"BIND\\u017f":["/:/host"]}}',
        b'{"Labels":{"team":"a","TEAM":"b"}}',  # Go keeps both in a map; dockguard refuses the doubt
        b'{"Labels":{"a":"1"},"Labels":{"b":"2"}}',
        b'{"Labels":{"a":"1","a":"2"}}',
    ],
)
def test_keys_that_fold_together_are_refused(raw: bytes) -> None:
    with pytest.raises(Refusal, match="two readings"):
        stamp(raw, "alice")


# --- stamp: the owner label cannot be forged ----------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"Labels":{"dockguard.owner":"bob"}}',
        b'{"Labels":{"dockguard.owner":"alice"}}',  # not even one's own name
        b'{"Labels":{"dockguard.owner":""}}',
        b'{"Labels":{"dockguard.owner":null}}',
        b'{"Labels":{"a":"b","dockguard.owner":"bob","c":"d"}}',
        b'{"labels":{"dockguard.owner":"bob"}}',
        b'{"LABEL\\u017f":{"dockguard.owner":"bob"}}',
        b'{"Labels":{"dockguard.owne\\u0072":"bob"}}',
        b'{"Labels":{"\\u0064ockguard.owner":"bob"}}',
        b'{"Image":"nginx","HostConfig":{},"Labels":{"dockguard.owner":"bob"}}',
    ],
)
def test_a_body_that_sets_the_owner_label_is_refused(raw: bytes) -> None:
    with pytest.raises(Refusal) as refused:
        stamp(raw, "alice")
    assert refused.value.field == f"Labels.{OWNER_LABEL}"
    assert OWNER_LABEL in refused.value.reason


@pytest.mark.parametrize(
    "raw",
    [
        b'{"Labels":{"DOCKGUARD.OWNER":"bob"}}',
        b'{"Labels":{"Dockguard.Owner":null}}',
    ],
)
def test_a_label_spelled_like_the_owner_label_is_refused(raw: bytes) -> None:
    # The daemon keeps label keys as written (a map), so these would be other
    # labels; dockguard refuses them all the same rather than stamp a second
    # key that reads alike.
    with pytest.raises(Refusal):
        stamp(raw, "alice")


@pytest.mark.parametrize(
    "labels",
    [
        {"dockguard.owner2": "bob"},
        {"dockguard": "bob"},
        {"com.example.dockguard.owner": "bob"},
        {"dockguard.owner ": "bob"},
        {"owner": "bob"},
    ],
)
def test_labels_near_the_owner_label_are_kept(labels: dict[str, str]) -> None:
    assert json.loads(stamp(body({"Labels": labels}), "alice")) == {"Labels": {**labels, **OWNER}}


def test_the_owner_label_elsewhere_in_the_body_is_not_a_label() -> None:
    document = {"Env": ["dockguard.owner=bob"], "HostConfig": {"LogConfig": {"Config": {"dockguard.owner": "bob"}}}}
    assert json.loads(stamp(body(document), "alice")) == with_owner(document)


# --- stamp: bodies the daemon would not read as sent --------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'[{"Labels":{}}]',
        b'"Labels"',
        b"1",
        b"true",
        b"{",
        b'{"Labels":{}} {}',
        b'{"Labels":{}},',
        b"{'Labels':{}}",
        b'{"Labels":NaN}',
        b'{"Memory":Infinity}',
        b'{"Memory":-Infinity}',
        b'{"Image":"caf\xe9"}',  # not UTF-8
        b'\xef\xbb\xbf{"Image":"nginx"}',  # a byte order mark
        b'{"Labels":[]}',
        b'{"Labels":"a=b"}',
        b'{"Labels":{"a":1}}',
        b'{"Labels":{"a":true}}',
        b'{"Labels":{"a":["b"]}}',
        b'{"Labels":{"a":{"b":"c"}}}',
        b'{"labels":["a=b"]}',
    ],
)
def test_bodies_that_cannot_be_read_as_the_daemon_reads_them_are_refused(raw: bytes) -> None:
    with pytest.raises(Refusal):
        stamp(raw, "alice")


# --- stamp: numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "reads_as"),
    [
        (b"0", 0),
        (b"-0", 0),
        (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"18446744073709551616", 2**64),
        (b"123456789012345678901234567890123456789", 123456789012345678901234567890123456789),
        (b"0.5", 0.5),
        (b"1.5e300", 1.5e300),
        (b"-2.5E-3", -2.5e-3),
        (b"1e308", 1e308),
        (b"1e-400", 0.0),  # underflows to zero, in Go too
        (b"0.1000000000000000055511151231257827", 0.1),
    ],
)
def test_numbers_keep_their_value(number: bytes, reads_as: int | float) -> None:
    raw = b'{"HostConfig":{"Memory":' + number + b',"Ulimits":[{"Soft":' + number + b"}]}}"
    stamped = json.loads(stamp(raw, "alice"))
    for value in (stamped["HostConfig"]["Memory"], stamped["HostConfig"]["Ulimits"][0]["Soft"]):
        assert value == reads_as and type(value) is type(reads_as)


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1E309", b"2e308", b"123456789e999"])
def test_numbers_too_large_to_read_are_refused(number: bytes) -> None:
    for raw in (b'{"Memory":' + number + b"}", b'{"HostConfig":{"Ulimits":[{"Soft":' + number + b"}]}}"):
        with pytest.raises(Refusal, match="too large"):
            stamp(raw, "alice")


# --- stamp: strings keep their Go reading -------------------------------------------


def go_reading(value: Any) -> Any:
    """What Go's encoding/json makes of a decoded value: a lone surrogate is U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, list):
        return [go_reading(item) for item in value]
    if isinstance(value, dict):
        return {go_reading(key): go_reading(item) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    "text",
    [
        r"plain",
        r"caf\u00e9",
        r"caf" + "\u00e9",  # raw UTF-8
        r"\ud83d\ude00",  # a pair: one character
        "\U0001f600",
        r"\ud83d",  # lone high surrogate
        r"\ude00",  # lone low surrogate
        r"\ude00\ud83d",  # reversed pair: two lone ones
        r"\ud83dx",
        r"\ud83d\u0041",
        r"\ud83d\ud83d\ude00",
        r"tab\there\nnew\u0000nul",
        r"quote\"back\\slash\/solidus",
        r"\u2028\u2029",
        r"\uFFFD\uffff",
    ],
)
def test_strings_keep_their_go_reading(text: str) -> None:
    raw = ('{"Env":["A=' + text + '"],"Labels":{"k' + text + '":"v' + text + '"},"' + text + '":1}').encode()
    original = json.loads(raw)
    stamped = stamp(raw, "alice")
    assert stamped.isascii()
    assert go_reading(json.loads(stamped)) == go_reading(with_owner(original))
    # and Python's reading too: nothing was re-decoded along the way
    assert json.loads(stamped) == with_owner(original)


def test_nested_structures_are_untouched() -> None:
    document: dict[str, Any] = {
        "Labels": None,
        "HostConfig": {
            "Labels": {"not": "these"},
            "Mounts": [
                {"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"Labels": {"a": "b"}}},
                {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 65536, "Mode": 1023}},
            ],
            "LogConfig": {"Type": "json-file", "Config": {"labels": "a,b"}},
        },
        "NetworkingConfig": {"EndpointsConfig": {"front": {"Aliases": ["web"], "DriverOpts": {"labels": "x"}}}},
        "Deep": [[[[{"a": [None, True, False, 0, -1.5, "", [], {}]}]]]],
    }
    stamped = json.loads(stamp(body(document), "alice"))
    assert stamped == {**document, "Labels": OWNER}
    assert stamped["HostConfig"] == document["HostConfig"]


# --- stamp: a round trip on any object -----------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.text(st.characters(codec=None, categories=["Cs", "Lu", "Ll", "Nd"]), max_size=4)
)
_keys = st.text(max_size=6) | st.sampled_from(
    ["Image", "image", "Env", "HostConfig", "hostconfig", "\u017f", "s", "S", "\u212a", "k"]
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=20,
)
_label_keys = st.text(max_size=10).filter(lambda key: go_fold(key) != go_fold(OWNER_LABEL))
_labels = st.none() | st.dictionaries(_label_keys, st.text(max_size=6) | st.none(), max_size=4)
_spellings = st.none() | st.sampled_from(["Labels", "labels", "LABELS", "label\u017f", "LABEL\u017f"])


def fold_collisions(value: Any) -> bool:
    """Whether an object in ``value`` has two keys Go folds to one name."""
    if isinstance(value, list):
        return any(fold_collisions(item) for item in value)
    if isinstance(value, dict):
        folded = [go_fold(key) for key in value]
        return len(set(folded)) != len(folded) or any(fold_collisions(item) for item in value.values())
    return False


def encoded(value: Any, ascii_only: bool) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its escape is UTF-8
        return json.dumps(value).encode("utf-8")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rest=st.dictionaries(_keys, _json, max_size=6),
    spelling=_spellings,
    labels=_labels,
    position=st.integers(min_value=0, max_value=6),
    ascii_only=st.booleans(),
    identity=st.text(min_size=1, max_size=10),
)
def test_stamp_round_trip(
    rest: dict[str, Any],
    spelling: str | None,
    labels: dict[str, Any] | None,
    position: int,
    ascii_only: bool,
    identity: str,
) -> None:
    assume(all(go_fold(key) != "LABELS" for key in rest))
    items = list(rest.items())
    if spelling is not None:
        items.insert(min(position, len(items)), (spelling, labels))
    document = dict(items)
    assume(not fold_collisions(document))
    raw = encoded(document, ascii_only)
    original = json.loads(raw)

    stamped = stamp(raw, identity)

    key = spelling if spelling is not None else "Labels"
    expected = dict(original)
    expected[key] = {**(original.get(key) or {}), OWNER_LABEL: identity}
    assert json.loads(stamped) == expected
    order = [name for name, _ in pairs(stamped)]
    assert order == (list(original) if spelling is not None else [*original, "Labels"])
    assert go_reading(json.loads(stamped)) == go_reading(expected)
    # Go reads it back as the same document with one Labels, owned by the identity
    assert decode(stamped).get("Labels").get(OWNER_LABEL) == identity
    # stamping is not repeatable: the stamp is the owner label
    with pytest.raises(Refusal):
        stamp(stamped, identity)


# --- created ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "query", "expected"),
    [
        ("container", body(CONTAINER), "name=web", Resource("container", "", "web", {"com.example.team": "a"})),
        ("container", body(CONTAINER), "name=%2Fweb", Resource("container", "", "web", {"com.example.team": "a"})),
        ("container", body(CONTAINER), "name=/web", Resource("container", "", "web", {"com.example.team": "a"})),
        ("container", body(CONTAINER), "", Resource("container", "", "", {"com.example.team": "a"})),
        ("container", body(CONTAINER), "platform=linux", Resource("container", "", "", {"com.example.team": "a"})),
        # Go's Form.Get: the first value
        ("container", b"{}", "name=web&name=db", Resource("container", "", "web")),
        ("container", b"{}", "name=we%62", Resource("container", "", "web")),
        ("container", b"{}", "Name=web", Resource("container", "", "")),  # query keys are case-sensitive
        ("container", b"", "name=web", Resource("container", "", "web")),
        ("container", b'{"Name":"db","labels":{"a":"b"}}', "name=web", Resource("container", "", "web", {"a": "b"})),
        ("volume", body(VOLUME), "", Resource("volume", "", "data", {"com.example.team": "a"})),
        ("volume", b'{"name":"data","LABELS":null}', "name=other", Resource("volume", "", "data")),
        ("volume", b"{}", "", Resource("volume", "", "")),
        ("network", body(NETWORK), "", Resource("network", "", "front", {"com.example.team": "a"})),
        ("network", b'{"NAME":"back","Label\\u017f":{"x":""}}', "", Resource("network", "", "back", {"x": ""})),
    ],
)
def test_created(kind: str, raw: bytes, query: str, expected: Resource) -> None:
    assert created(kind, raw, query) == expected


def test_created_reads_a_null_label_value_as_the_daemon_does() -> None:
    # Go stores a null map value as "": the new resource has the label, empty.
    resource = created("volume", b'{"Name":"data","Labels":{"team":null}}', "")
    assert dict(resource.labels) == {"team": ""}


@pytest.mark.parametrize(
    ("kind", "raw", "query"),
    [
        ("container", b"[]", "name=web"),
        ("container", b'{"Labels":["a"]}', ""),
        ("container", b'{"Labels":{"a":1}}', ""),
        ("container", b'{"Labels":{},"labels":{}}', ""),
        ("volume", b'{"Name":1}', ""),
        ("volume", b'{"Name":"a","name":"b"}', ""),
        ("network", b'{"Name":["front"]}', ""),
        ("network", b"{", ""),
    ],
)
def test_created_refuses_what_the_daemon_would_not_read(kind: str, raw: bytes, query: str) -> None:
    with pytest.raises(Refusal):
        created(kind, raw, query)


def test_created_refuses_a_query_with_two_readings() -> None:
    with pytest.raises(QueryRefused):
        created("container", b"{}", "name=web;x=1")


# --- other_containers ------------------------------------------------------------------


def create(**host: Any) -> bytes:
    document = json.loads(json.dumps(CONTAINER))
    document["HostConfig"].update(host)
    return body(document)


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        (body(CONTAINER), []),
        (b"", []),
        (b"{}", []),
        (b'{"HostConfig":null}', []),
        (create(VolumesFrom=["db"]), ["HostConfig.VolumesFrom"]),
        (create(VolumesFrom=["db:ro"]), ["HostConfig.VolumesFrom"]),
        (create(VolumesFrom=[]), []),
        (create(VolumesFrom=None), []),
        (create(Links=["db:db"]), ["HostConfig.Links"]),
        (create(Links=[]), []),
        (create(NetworkMode="container:db"), ["HostConfig.NetworkMode"]),
        (create(NetworkMode="container:4fa6e0f0c678"), ["HostConfig.NetworkMode"]),
        (create(NetworkMode="bridge"), []),
        (create(NetworkMode="host"), []),
        (create(NetworkMode="none"), []),
        (create(NetworkMode="front"), []),
        (create(NetworkMode="Container:db"), []),  # the daemon's prefix is case-sensitive: a network's name
        (create(PidMode="container:db"), ["HostConfig.PidMode"]),
        (create(PidMode="host"), []),
        (create(IpcMode="container:db"), ["HostConfig.IpcMode"]),
        (create(IpcMode="shareable"), []),
        (create(UTSMode="container:db"), ["HostConfig.UTSMode"]),
        (create(UsernsMode="container:db"), ["HostConfig.UsernsMode"]),
        (create(CgroupnsMode="container:db"), ["HostConfig.CgroupnsMode"]),
        (create(Cgroup="container:db"), ["HostConfig.Cgroup"]),
        (
            create(
                VolumesFrom=["a"],
                Links=["b:b"],
                NetworkMode="container:c",
                PidMode="container:d",
                IpcMode="container:e",
            ),
            [
                "HostConfig.VolumesFrom",
                "HostConfig.Links",
                "HostConfig.NetworkMode",
                "HostConfig.PidMode",
                "HostConfig.IpcMode",
            ],
        ),
        # Go folds the keys
        (b'{"hostconfig":{"volumesfrom":["db"]}}', ["HostConfig.VolumesFrom"]),
        (b'{"HOSTCONFIG":{"networkmode":"container:db"}}', ["HostConfig.NetworkMode"]),
        (b'{"HostConfig":{"Link\\u017f":["db:db"]}}', ["HostConfig.Links"]),
        # the API's old top-level fields
        (b'{"VolumesFrom":["db"]}', ["VolumesFrom"]),
        (b'{"Links":["db:db"],"HostConfig":{"Links":["x:x"]}}', ["Links", "HostConfig.Links"]),
        # a link on a user-defined network's endpoint
        (
            b'{"NetworkingConfig":{"EndpointsConfig":{"front":{"Links":["db:db"]}}}}',
            ["NetworkingConfig.EndpointsConfig.front.Links"],
        ),
        (b'{"NetworkingConfig":{"EndpointsConfig":{"front":{"Aliases":["web"]}}}}', []),
    ],
)
def test_other_containers(raw: bytes, found: list[str]) -> None:
    assert other_containers(raw) == found


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"HostConfig":[]}',
        b'{"HostConfig":{"VolumesFrom":"db"}}',
        b'{"HostConfig":{"Links":[1]}}',
        b'{"HostConfig":{"NetworkMode":["container:db"]}}',
        b'{"HostConfig":{"PidMode":1}}',
        b'{"HostConfig":{"Links":[],"links":["db"]}}',
        b'{"HostConfig":{},"hostConfig":{"VolumesFrom":["db"]}}',
    ],
)
def test_other_containers_refuses_what_the_daemon_would_not_read(raw: bytes) -> None:
    with pytest.raises(Refusal):
        other_containers(raw)


# --- volumes_named and networks_joined ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        (body(CONTAINER), [("HostConfig.Binds[0]", "data"), ("HostConfig.Mounts[0].Source", "cache")]),
        (b"", []),
        (b'{"HostConfig":null}', []),
        (create(Binds=None, Mounts=None), []),
        (create(Binds=["/srv/data:/data:ro"], Mounts=[]), []),  # a bind: a host path, not a volume
        (
            create(Binds=["data:/data", "/srv:/srv", "logs:/var/log:rw,z"], Mounts=[]),
            [("HostConfig.Binds[0]", "data"), ("HostConfig.Binds[2]", "logs")],
        ),
        (create(Binds=["data"], Mounts=[]), []),
        (create(Binds=[":/data"], Mounts=[]), []),
        (
            create(
                Binds=[],
                Mounts=[
                    {"Type": "bind", "Source": "/srv", "Target": "/srv"},
                    {"Type": "volume", "Source": "data", "Target": "/d"},
                ],
            ),
            [("HostConfig.Mounts[1].Source", "data")],
        ),
        (create(Binds=[], Mounts=[{"Type": "volume", "Target": "/anonymous"}]), []),
        (create(Binds=[], Mounts=[{"Type": "volume", "Source": "", "Target": "/anonymous"}]), []),
        (create(Binds=[], Mounts=[{"Type": "tmpfs", "Target": "/t"}, None]), []),
        (
            b'{"hostconfig":{"binds":["data:/d"],"mounts":[{"type":"volume","source":"v2","target":"/v"}]}}',
            [("HostConfig.Binds[0]", "data"), ("HostConfig.Mounts[0].Source", "v2")],
        ),
        (b'{"Binds":["old:/d"]}', [("Binds[0]", "old")]),  # the API's old top-level field
    ],
)
def test_volumes_named(raw: bytes, found: list[tuple[str, str]]) -> None:
    assert volumes_named(raw) == found


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"HostConfig":{"Binds":"data:/d"}}',
        b'{"HostConfig":{"Mounts":{}}}',
        b'{"HostConfig":{"Mounts":[{"Type":1}]}}',
        b'{"HostConfig":{"Mounts":[{"Type":"volume","Source":["data"]}]}}',
    ],
)
def test_volumes_named_refuses_what_the_daemon_would_not_read(raw: bytes) -> None:
    with pytest.raises(Refusal):
        volumes_named(raw)


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        (body(CONTAINER), []),  # bridge
        (b"", []),
        (create(NetworkMode="front"), [("HostConfig.NetworkMode", "front")]),
        (create(NetworkMode="host"), []),
        (create(NetworkMode="none"), []),
        (create(NetworkMode="default"), []),
        (create(NetworkMode=""), []),
        (create(NetworkMode="container:db"), []),  # other_containers' business
        (
            create(NetworkMode="Host"),
            [("HostConfig.NetworkMode", "Host")],
        ),  # a network's name: the daemon's modes are exact
        (
            b'{"HostConfig":{"NetworkMode":"front"},"NetworkingConfig":{"EndpointsConfig":{"front":{"Aliases":["web"]},"back":null}}}',
            [
                ("HostConfig.NetworkMode", "front"),
                ("NetworkingConfig.EndpointsConfig.front", "front"),
                ("NetworkingConfig.EndpointsConfig.back", "back"),
            ],
        ),
        (
            b'{"NetworkingConfig":{"EndpointsConfig":{"bridge":{"NetworkID":"f2de39df4171"}}}}',
            [("NetworkingConfig.EndpointsConfig.bridge.NetworkID", "f2de39df4171")],
        ),
        (b'{"NetworkingConfig":{"EndpointsConfig":{"bridge":{},"host":{}}}}', []),
        (
            b'{"networkingconfig":{"endpointsconfig":{"front":{"networkid":"abc"}}}}',
            [
                ("NetworkingConfig.EndpointsConfig.front.NetworkID", "abc"),
                ("NetworkingConfig.EndpointsConfig.front", "front"),
            ],
        ),
    ],
)
def test_networks_joined(raw: bytes, found: list[tuple[str, str]]) -> None:
    assert networks_joined(raw) == found


@pytest.mark.parametrize(
    "raw",
    [
        b'{"HostConfig":{"NetworkMode":1}}',
        b'{"NetworkingConfig":[]}',
        b'{"NetworkingConfig":{"EndpointsConfig":{"front":"x"}}}',
        b'{"NetworkingConfig":{"EndpointsConfig":{"front":{"NetworkID":2}}}}',
    ],
)
def test_networks_joined_refuses_what_the_daemon_would_not_read(raw: bytes) -> None:
    with pytest.raises(Refusal):
        networks_joined(raw)


# --- ExecOwners -------------------------------------------------------------------------

EXEC = "b2e7f1c6a9d84d1c9e3f7a0b5c2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d"


def test_exec_owners_remember_who_created_each_exec() -> None:
    owners = ExecOwners()
    assert owners.owner(EXEC) is None and len(owners) == 0
    owners.record(EXEC, "alice")
    owners.record("other", "bob")
    assert (owners.owner(EXEC), owners.owner("other"), owners.owner("unknown")) == ("alice", "bob", None)
    assert len(owners) == 2
    # IDs are compared exactly: no prefixes, no case folding
    assert owners.owner(EXEC[:12]) is None
    assert owners.owner(EXEC.upper()) is None


def test_exec_owners_are_bounded_and_forget_the_oldest() -> None:
    owners = ExecOwners(size=3)
    for n in range(10):
        owners.record(f"e{n}", f"id{n}")
        assert len(owners) == min(n + 1, 3)
    assert [owners.owner(f"e{n}") for n in range(10)] == [None] * 7 + ["id7", "id8", "id9"]


def test_recording_again_makes_an_exec_the_newest() -> None:
    owners = ExecOwners(size=3)
    for name in ("a", "b", "c"):
        owners.record(name, "alice")
    owners.record("a", "alice")  # a is now the newest: b is the oldest
    owners.record("d", "alice")
    assert [owners.owner(name) for name in "abcd"] == ["alice", None, "alice", "alice"]
    assert len(owners) == 3


def test_recording_again_replaces_the_owner() -> None:
    owners = ExecOwners(size=2)
    owners.record("a", "alice")
    owners.record("a", "bob")
    assert owners.owner("a") == "bob" and len(owners) == 1


def test_exec_owners_of_size_one() -> None:
    owners = ExecOwners(size=1)
    owners.record("a", "alice")
    owners.record("b", "bob")
    assert (owners.owner("a"), owners.owner("b"), len(owners)) == (None, "bob", 1)


def test_exec_owners_default_size() -> None:
    owners = ExecOwners()
    assert owners.size == 65536
    for n in range(owners.size + 5):
        owners.record(str(n), "alice")
    assert len(owners) == owners.size
    assert owners.owner("4") is None and owners.owner("5") == "alice"
