"""
Fuzzing the request parser, the path canonicaliser and the policies with
hypothesis (issue 8, hardening).

The relay is driven in memory with C{tests/harness/relayworld.py}: a
L{ClientProtocol} on a L{StringTransport}, a memory clock, and a fake pool
whose daemon answers each complete request with a small C{200}.  Requests
come from a grammar (methods, targets with nasty bytes, headers, framings,
bodies), and each stream is fed once whole and once cut at random points.
For every stream:

  - no exception escapes C{dataReceived}, nothing is logged with a failure,
    and no answer holds a traceback;
  - what the client receives, what the daemon receives and whether the
    connection is closed are the same however the bytes were split;
  - every request the daemon receives is one the policy allows (its target
    canonicalises, the decision allows it, and an inspected body passes).

Bounded for a shared 2-core machine: the whole file runs in well under a
minute.  A coverage-guided harness for the same driver is
C{tests/fuzz_atheris.py} (opt-in, run by hand).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Sequence

import attrs
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twisted.logger import LogLevel, capturedLogs

from dockguard.envpolicy import GATES, KNOWN_VARIABLES, EnvPolicy
from dockguard.groups import GroupPolicy
from dockguard.guards import INSPECTED_KINDS, inspection_kind, judge
from dockguard.paths import PathRefused, canonicalise
from dockguard.presets import PRESETS
from dockguard.routes import LITERAL_SEGMENTS, lookup
from harness.relayworld import (
    SHELL,
    World,
    answer_everything,
    assert_daemon_saw_only_allowed,
    daemon_reads,
    parse_responses,
)

#: DOCKGUARD_FUZZ_EXAMPLES=20000 for a longer run by hand.
FUZZ = settings(
    max_examples=int(os.environ.get("DOCKGUARD_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SMALL = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OPEN_ENV = {"BUILD": "1", "CONTAINERS": "1", "EXEC": "1", "POST": "1", "ALLOW_LOGS": "0"}

# -- the grammar -------------------------------------------------------------------------------

METHODS = st.one_of(
    st.sampled_from(
        [b"GET"] * 4
        + [b"POST"] * 4
        + [b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"get", b"Post", b"PATCH", b"X-Y"]
    ),
    st.binary(max_size=5),
)

TARGETS = [
    b"/_ping",
    b"/v1.41/_ping",
    b"/containers/json?all=1",
    b"/v1.41/containers/create",
    b"/v1.41/containers/create?name=x",
    b"/v1.41/containers/abc/start",
    b"/v1.23/containers/abc/start",
    b"/v1.41/containers/abc/exec",
    b"/v1.41/exec/abc/start",
    b"/v1.41/containers/abc/attach?stream=1",
    b"/v1.41/containers/abc/logs",
    b"/v1.41/containers/web/alias/logs",
    b"/v1.41/build",
    b"/v1.41/secrets",
    b"/v1.41/secrets/create",
    b"/volumes/create",
    b"/v1.41/images/json",
    b"/%69mages/json",
    b"/images%2fjson",
    b"/v1.41/images/../secrets",
    b"//_ping",
    b"/_ping/",
    b"/_ping?/../secrets",
    b"/_ping#x",
    b"http://docker/_ping",
    b"*",
    b"docker:2375",
    b"",
    b"/CONTAINERS/json",
    b"/v1.41abc/_ping",
    b"/%76%31.41/_ping",
    b"/_ping%00",
    b"/\xc3\xa9",
]

PIECES = st.sampled_from(
    [
        b"/",
        b"/",
        b"v1.41",
        b"containers",
        b"json",
        b"_ping",
        b"secrets",
        b"create",
        b"exec",
        b"start",
        b"abc",
        b".",
        b"..",
        b"%2f",
        b"%2e",
        b"%25",
        b"%",
        b"%zz",
        b"%00",
        b"?",
        b"#",
        b"\\",
        b";",
        b" ",
        b"\t",
        b"\r",
        b"\n",
        b"\x00",
        b"\xff",
        b"%69",
        b"=",
        b"&",
    ]
)

TARGET = st.one_of(
    st.sampled_from(TARGETS),
    st.lists(PIECES, max_size=10).map(lambda pieces: b"/" + b"".join(pieces)),
)

VERSIONS = st.sampled_from([b" HTTP/1.1"] * 8 + [b" HTTP/1.0", b" HTTP/2.0", b" http/1.1", b"", b" HTTP/1.1 x"])
EOL = st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r"])

HEADER_LINES = st.sampled_from(
    [
        b"Content-Type: application/json",
        b"Connection: close",
        b"Connection: keep-alive",
        b"Connection: Upgrade",
        b"Connection: content-length",
        b"Connection: Transfer-Encoding",
        b"Connection: keep-alive, host",
        b"Upgrade: tcp",
        b"Expect: 100-continue",
        b"X-HTTP-Method-Override: DELETE",
        b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: identity",
        b"Content-Length: 0",
        b"Content-Length: 3",
        b"Content-Length: 5, 40",
        b"Content-Length: -1",
        b"Transfer-Encoding : chunked",
        b" folded: continuation",
        b"X-A: a\rb",
        b"X-A: \xc3\xa9",
        b"No colon",
        b"Host: second",
        b"X-Registry-Auth: e30=",
    ]
)

BODIES = st.one_of(
    st.sampled_from(
        [
            b"",
            b"{}",
            b"hello",
            b'{"Image":"busybox"}',
            b'{"Image":"busybox","HostConfig":{"Privileged":true}}',
            b'{"Cmd":["id"],"User":"1000"}',
            b'{"Cmd":["id"],"Privileged":true}',
            b'{"Detach":false,"Tty":false}',
            b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n",
            b"0\r\n\r\nGET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n",
        ]
    ),
    st.binary(max_size=24),
)

FRAMINGS = st.sampled_from(
    [
        "none",
        "cl",
        "cl",
        "chunked",
        "chunked",
        "cl-short",
        "cl-long",
        "cl+te",
        "chunked-bad-size",
        "chunked-no-crlf",
        "chunked-ext",
        "chunked-trailer",
        "two-cl",
    ]
)


@st.composite
def requests(draw) -> bytes:
    eol = draw(EOL)
    head = [draw(METHODS) + b" " + draw(TARGET) + draw(VERSIONS)]
    if draw(st.integers(0, 9)):
        head.append(b"Host: docker")
    head.extend(draw(st.lists(HEADER_LINES, max_size=3)))
    body = draw(BODIES)
    framing = draw(FRAMINGS)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    if framing == "cl":
        head.append(b"Content-Length: %d" % len(body))
    elif framing == "cl-short":
        head.append(b"Content-Length: %d" % max(len(body) - 2, 0))
    elif framing == "cl-long":
        head.append(b"Content-Length: %d" % (len(body) + 3))
    elif framing == "two-cl":
        head += [b"Content-Length: %d" % len(body), b"Content-Length: 1"]
    elif framing == "cl+te":
        head += [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"]
        body = chunked
    elif framing == "chunked":
        head.append(b"Transfer-Encoding: chunked")
        body = chunked
    elif framing == "chunked-bad-size":
        head.append(b"Transfer-Encoding: chunked")
        body = b"%s\r\n%s\r\n0\r\n\r\n" % (draw(st.sampled_from([b"zz", b"-1", b"0x2", b" 2", b"1" * 30])), body)
    elif framing == "chunked-no-crlf":
        head.append(b"Transfer-Encoding: chunked")
        body = b"%x\r\n%sXX0\r\n\r\n" % (len(body), body)
    elif framing == "chunked-ext":
        head.append(b"Transfer-Encoding: chunked")
        body = b"%x;a=b\r\n%s\r\n0;c\r\n\r\n" % (len(body), body)
    elif framing == "chunked-trailer":
        head.append(b"Transfer-Encoding: chunked")
        body = chunked[:-2] + b"Content-Length: 9\r\n\r\n"
    return eol.join(head) + eol + eol + body


STREAMS = st.tuples(
    st.lists(requests(), min_size=1, max_size=3).map(b"".join),
    st.sampled_from([b"", b"", b"", b"\r\n", b"GARBAGE", b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n"]),
).map(b"".join)


# -- the driver ----------------------------------------------------------------------------------


def _world(which: str) -> World:
    world = World(OPEN_ENV)
    if which == "groups":
        world.relay.policy = GroupPolicy(identities={"tester": ("shell",)}, groups={"shell": SHELL})
    return world


@attrs.frozen
class Outcome:
    client: bytes
    daemon: tuple
    closed: bool


def run(which: str, data: bytes, cuts: list[int], eof: bool) -> tuple[Outcome, World, bytes]:
    world = _world(which)
    client = world.client()
    answered: dict[int, int] = {}
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(data))), len(data)]
    for start, end in zip(bounds, bounds[1:]):
        if client.transport.disconnecting:
            break  # a real transport delivers nothing more once it is closing
        client.send(data[start:end])
        answer_everything(world, answered)
    if eof and not client.transport.disconnecting:
        client.proto.readConnectionLost()
        answer_everything(world, answered)
    # Every timer fires: a partial head gets its 408 and an idle connection
    # its close, whichever way the bytes came.
    world.clock.advance(1000)
    answer_everything(world, answered)
    daemon = []
    for up in world.connections:
        daemon.append(
            tuple(
                (r.head.method, r.head.target, tuple(r.headers), r.body, r.complete)
                for r in daemon_reads(up.transport.value())
            )
        )
    outcome = Outcome(client=_answers(client.value()), daemon=tuple(daemon), closed=client.transport.disconnecting)
    return outcome, world, client.value()


# A 400 for a malformed request: its head from the Content-Length on, and its body.
_MALFORMED = re.compile(
    rb'(Content-Length: )[0-9]+(\r\n(?:[^\r\n]+\r\n)*\r\n)\{"message": "dockguard: malformed HTTP request: [^\n]*\n'
)


def _answers(data: bytes) -> bytes:
    """
    What the client received, exactly, except that the detail of a 400 for a
    malformed request is cut: it is h11's message, which may quote the part
    of a broken line read so far (C{malformed chunk footer: bytearray(b'X')}
    or C{b'XX'}), so it may differ with the split while the decision (400,
    connection closed) does not.
    """
    return _MALFORMED.sub(rb"\1N\2<malformed request>\n", data)


def _check(outcome: Outcome, world: World, raw: bytes, events: Sequence[dict]) -> None:
    assert b"Traceback" not in raw and b'File "' not in raw
    assert raw == b"" or raw.startswith(b"HTTP/1.1 ")
    # No traceback in the log under any input: no failure logged (an
    # unhandled error in a Deferred included), nothing at error level.
    bad = [e for e in events if "log_failure" in e]
    assert not bad, bad[0]["log_failure"].getTraceback()
    errors = [e for e in events if e.get("log_level") in (LogLevel.error, LogLevel.critical)]
    assert not errors, errors[0]
    assert_daemon_saw_only_allowed(world)


@FUZZ
@given(
    which=st.sampled_from(["env", "groups"]),
    data=STREAMS,
    cuts=st.one_of(st.lists(st.integers(0, 400), max_size=8), st.just(list(range(400)))),
    eof=st.booleans(),
)
@example(
    which="env",
    data=b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\nGET /v1.41/secrets HTTP/1.1\r\nHost: d\r\n\r\n",
    cuts=[20],
    eof=False,
)
@example(
    which="env",
    data=b"POST /v1.41/build HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    cuts=list(range(100)),
    eof=True,
)
@example(
    which="groups",
    data=b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 51\r\n\r\n"
    b'{"Image":"busybox","HostConfig":{"Privileged":true}}',
    cuts=[60, 61],
    eof=False,
)
@example(
    which="env",
    data=b"POST /v1.41/build HTTP/1.1\r\nHost: d\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello",
    cuts=[],
    eof=False,
)
def test_relay_decisions_do_not_depend_on_how_bytes_are_split(which, data, cuts, eof) -> None:
    with capturedLogs() as events:
        whole, world, raw = run(which, data, [], eof)
        # A failure left in a Deferred ("Unhandled error in Deferred") is
        # logged only when the Deferred is collected.
        gc.collect()
    _check(whole, world, raw, events)
    with capturedLogs() as events:
        split, world, split_raw = run(which, data, cuts, eof)
        gc.collect()
    _check(split, world, split_raw, events)
    assert split == whole


@SMALL
@given(
    prefix=st.sampled_from([b"", b"/v1.41", b"/v01.41", b"/%76%31.41", b"/v1.41.0"]),
    path=st.sampled_from(
        [
            b"/_ping",
            b"/containers/json",
            b"/images/json",
            b"/secrets",
            b"/containers/abc/logs",
            b"/containers/abc/start",
            b"/volumes/create",
            b"/nothing",
        ]
    ),
    encode=st.sets(st.integers(0, 40)),
    method=st.sampled_from([b"GET", b"HEAD", b"POST", b"DELETE"]),
)
def test_equivalent_spellings_get_the_same_answer(prefix, path, encode, method) -> None:
    """Percent-encoding plain characters or adding a version prefix never changes the decision."""
    spelled = bytearray()
    for index, byte in enumerate(path):
        if index in encode and chr(byte).isalnum():
            spelled += b"%%%02X" % byte
        else:
            spelled.append(byte)
    answers = []
    for target in (path, prefix + bytes(spelled)):
        world = World({"CONTAINERS": "1", "ALLOW_LOGS": "0"})
        client = world.client()
        client.send(b"%s %s HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n" % (method, target))
        answers.append([r.status for r in parse_responses(client.value(), [method])] or "relayed")
    # libpod (issue 17): an escape in the version or in a segment a route names literally has two
    # readings (Podman matches the encoded path) and is refused; an escape in a name is not
    literal = prefix.startswith(b"/%") or any(
        index in encode and chr(byte).isalnum() and segment in LITERAL_SEGMENTS
        for index, byte, segment in _positions(path)
    )
    assert (answers[1] == [400]) if literal else (answers[0] == answers[1])


def _positions(path: bytes) -> list[tuple[int, int, str]]:
    """``(index, byte, segment)`` for every byte of ``path``: the segment the byte is in."""
    found, start = [], 0
    for segment in path.split(b"/"):
        for offset, byte in enumerate(segment):
            found.append((start + offset, byte, segment.decode()))
        start += len(segment) + 1
    return found


# -- the canonicaliser and the policies on their own ---------------------------------------------


ENVS = st.dictionaries(st.sampled_from(sorted(KNOWN_VARIABLES)), st.sampled_from(["0", "1", ""]), max_size=8)


@SMALL
@given(
    method=st.one_of(
        st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "get", "OPTIONS"]),
        st.binary(max_size=6).map(lambda b: b.decode("ascii", "replace")),
    ),
    target=st.one_of(TARGET, st.binary(max_size=40)),
    env=ENVS,
    preset=st.sampled_from(sorted(PRESETS)),
)
def test_canonicaliser_and_policies_never_raise(method, target, env, preset) -> None:
    try:
        path = canonicalise(target)
    except PathRefused as refused:
        assert refused.reason
        return
    policies = [
        EnvPolicy.from_environ(env),
        GroupPolicy(identities={"t": (preset,)}, groups=dict(PRESETS)),
        GroupPolicy(identities={"t": ("shell",)}, groups={"shell": SHELL}),
    ]
    for policy in policies:
        decision = policy.decide("t", method, path, lookup(method, path))
        assert decision.rule and decision.reason
    lookup(method, path)
    kind = inspection_kind(method, path)
    assert kind is None or kind in INSPECTED_KINDS


# Moby names containers {name:.*}: one or more segments (a legacy link
# name such as web/alias is two).
NAMES = st.lists(st.sampled_from(["web", "alias", "db", "a.b", "x_y", "1"]), min_size=1, max_size=3).map("/".join)
VERSION = st.sampled_from(["", "/v1.41", "/v1.23"])

_INSPECTED_ROUTES = {
    "/containers/{id}/exec": "exec.create",
    "/containers/{id}/start": "container.start",
    "/containers/{id}/update": "container.update",
}


@SMALL
@given(version=VERSION, name=NAMES, action=st.sampled_from(["exec", "start", "update"]))
@example(version="/v1.41", name="web/alias", action="exec")
def test_every_inspected_route_is_inspected_whatever_the_name(version, name, action) -> None:
    path = canonicalise(f"{version}/containers/{name}/{action}".encode())
    route = lookup("POST", path).route
    assert route is not None
    assert inspection_kind("POST", path) == _INSPECTED_ROUTES[route.template]


@SMALL
@given(version=VERSION, name=NAMES, gate=st.sampled_from(GATES))
@example(version="/v1.41", name="web/alias", gate=GATES[3])
def test_a_closed_gate_holds_whatever_the_name(version, name, gate) -> None:
    path = canonicalise(f"{version}/containers/{name}/{gate.resource}".encode())
    decision = EnvPolicy.from_environ({"CONTAINERS": "1", gate.env: "0"}).decide("t", "GET", path, lookup("GET", path))
    assert not decision.allowed, decision


@SMALL
@given(version=VERSION, name=NAMES, route=st.sampled_from(["archive", "export", "attach/ws"]))
def test_group_sensitive_reads_hold_whatever_the_name(version, name, route) -> None:
    # The groups policy follows the daemon's spanning names (the control for the two above).
    path = canonicalise(f"{version}/containers/{name}/{route}".encode())
    policy = GroupPolicy(identities={"t": ("readonly",)}, groups=dict(PRESETS))
    assert not policy.decide("t", "GET", path, lookup("GET", path)).allowed


@SMALL
@given(kind=st.sampled_from(INSPECTED_KINDS), body=st.binary(max_size=64))
def test_judge_never_raises_on_bytes(kind, body) -> None:
    verdict = judge(kind, body, SHELL.guards)
    assert verdict.allowed or verdict.reason
