"""
End to end: hostile bytes on a raw socket to a real ``twistd dockguard`` in
front of the private real dockerd (issue 8, hardening).

Every smuggling shape carries a forbidden ``POST /volumes/create`` for a
volume with a unique name.  For each shape the test checks

  (a) the answer dockguard gives (status, or the connection closed);
  (b) by effect, that the daemon never ran the forbidden request: the volume
      does not exist (asked on the daemon's own socket);
  (c) that the connection is either closed or still in step: a further
      ``GET /_ping`` on it is answered ``200 OK`` as the next response.

Where it shows something, the same bytes are also sent to the daemon
directly, to show that the shape is a real attack there (the daemon alone
runs the smuggled request).  The in-memory twins, with more variants, are in
``tests/test_attacks.py``.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from harness.dockerd import api_request
from harness.guard import free_port, start_with_config
from harness.rawhttp import Answer, Conn, Guarded, inspect, parse_answers, start_guarded

pytestmark = pytest.mark.e2e

HOST = b"Host: docker\r\n"
PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"


def volume_exists(daemon_socket: str, name: str) -> bool:
    status, _ = api_request(daemon_socket, "GET", f"/volumes/{name}")
    return status == 200


def make_volume_request(name: str, method: bytes = b"POST") -> bytes:
    body = json.dumps({"Name": name}).encode()
    return (
        b"%s /v1.41/volumes/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (method, len(body), body)
    )


def unique(prefix: str) -> str:
    return f"dg-attack-{prefix}-{uuid.uuid4().hex[:8]}"


# -- guards under test --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def readonly(tmp_path_factory, dockerd):
    """Containers readable, writes closed (POST=0), volumes and secrets closed; _ping open."""
    g = start_guarded(tmp_path_factory, dockerd, "readonly", {"CONTAINERS": "1"})
    yield g
    g.assert_clean_log()
    g.guard.stop()


@pytest.fixture(scope="module")
def writer(tmp_path_factory, dockerd):
    """Containers and exec writable (POST=1); volumes and secrets closed."""
    g = start_guarded(tmp_path_factory, dockerd, "writer", {"CONTAINERS": "1", "EXEC": "1", "POST": "1"})
    yield g
    g.assert_clean_log()
    g.guard.stop()


@pytest.fixture(scope="module")
def gated(tmp_path_factory, dockerd):
    """Containers readable, with linuxserver's logs and archive gates closed."""
    g = start_guarded(tmp_path_factory, dockerd, "gated", {"CONTAINERS": "1", "ALLOW_LOGS": "0", "ALLOW_ARCHIVE": "0"})
    yield g
    g.assert_clean_log()
    g.guard.stop()


@pytest.fixture(scope="module")
def shell(tmp_path_factory, dockerd):
    """A group that may exec and write containers, with no escalation guard opened and exec_root = false."""
    work = tmp_path_factory.mktemp("shell")
    port = free_port()
    guard = start_with_config(
        work,
        dockerd.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=tester"

[identities]
tester = ["shell"]

[groups.shell]
sections = {{ containers = "write", exec = "write", ping = "read" }}
guards = {{ exec_root = false }}
""",
        wait_for=("127.0.0.1", port),
    )
    g = Guarded(guard, port)
    yield g
    g.assert_clean_log()
    guard.stop()


@pytest.fixture(scope="module")
def linked(dockerd):
    """
    A container ``db`` reachable under a legacy link name ``web/alias``
    (``--link db:alias`` on ``web`` registers ``/web/alias`` in the daemon's
    name store), running and printing a secret; and a second pair whose
    target was never started.  Made directly on the daemon's socket.
    """
    sock = dockerd.socket_path
    tag = uuid.uuid4().hex[:8]
    names = {k: f"dg-{k}-{tag}" for k in ("db", "web", "db2", "web2")}

    def create(name: str, cmd: list[str], links: list[str] | None = None) -> None:
        body = {"Image": "busybox:local", "Cmd": cmd, "HostConfig": {"NetworkMode": "none", "Links": links or []}}
        status, out = api_request(
            sock,
            "POST",
            f"/containers/create?name={name}",
            json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 201, out

    create(names["db"], ["sh", "-c", "echo the-secret-log-line; exec sleep 600"])
    create(names["web"], ["sleep", "600"], [f"{names['db']}:alias"])
    create(names["db2"], ["sleep", "600"])
    create(names["web2"], ["sleep", "600"], [f"{names['db2']}:alias"])
    status, out = api_request(sock, "POST", f"/containers/{names['db']}/start")
    assert status == 204, out
    yield names
    for name in names.values():
        api_request(sock, "DELETE", f"/containers/{name}?force=1&v=1")


# -- request smuggling and framing ----------------------------------------------------------------

# Each shape: (bytes with {SMUGGLED} standing for the forbidden request,
# the methods of the requests dockguard should answer, the answers it gives,
# whether the daemon alone runs the smuggled request).
GET_CONTAINERS = b"GET /v1.41/containers/json HTTP/1.1\r\n" + HOST


def _shapes(smuggled: bytes) -> dict[str, tuple[bytes, list[bytes], list[int] | None, bool]]:
    n = len(smuggled)
    return {
        # CL.TE: a Content-Length reader sees one request, a chunked reader two.
        "content-length-and-chunked": (
            GET_CONTAINERS + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + n) + smuggled,
            [b"GET"],
            [400],
            True,
        ),
        "chunked-and-content-length": (
            GET_CONTAINERS
            + b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (n, smuggled),
            [b"GET"],
            [400],
            False,
        ),
        "two-content-lengths": (
            GET_CONTAINERS + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % n + smuggled,
            [b"GET"],
            [400],
            False,
        ),
        "content-length-list": (
            GET_CONTAINERS + b"Content-Length: 0, %d\r\n\r\n" % n + smuggled,
            [b"GET"],
            [400],
            False,
        ),
        "invalid-chunk-size": (
            GET_CONTAINERS + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + smuggled,
            [b"GET"],
            [400],
            False,
        ),
        "chunk-data-without-crlf": (  # the CVE-2025-43859 shape (h11 < 0.16)
            GET_CONTAINERS + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" + smuggled,
            [b"GET"],
            [400],
            False,
        ),
        "unknown-transfer-coding": (
            GET_CONTAINERS + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled,
            [b"GET"],
            [400],
            False,
        ),
        "space-before-colon": (
            GET_CONTAINERS + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled,
            [b"GET"],
            [400],
            False,
        ),
        "bare-cr-in-header": (
            GET_CONTAINERS + b"X-A: a\rTransfer-Encoding: chunked\r\n\r\n" + smuggled,
            [b"GET"],
            [400],
            False,
        ),
        # Read as one plain head by both: the smuggled request is the next
        # request, judged on its own.
        "obs-fold-hiding-transfer-encoding": (
            GET_CONTAINERS + b"X-A: a\r\n Transfer-Encoding: chunked\r\n\r\n" + smuggled,
            [b"GET", b"POST"],
            [200, 403],
            True,
        ),
        "bare-lf-line-endings": (
            b"GET /v1.41/containers/json HTTP/1.1\nHost: docker\n\n" + smuggled,
            [b"GET", b"POST"],
            [200, 403],
            True,
        ),
        "pipelined-in-the-same-packet": (
            GET_CONTAINERS + b"\r\n" + smuggled,
            [b"GET", b"POST"],
            [200, 403],
            True,
        ),
        # Go ignores Transfer-Encoding on HTTP/1.0; dockguard reads it and
        # relays the request as HTTP/1.1, so the daemon reads the same body.
        "http-1.0-chunked-keep-alive": (
            b"GET /v1.41/containers/json HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"%x\r\n%s\r\n0\r\n\r\n" % (n, smuggled),
            [b"GET"],
            [200],
            False,
        ),
        "hidden-in-an-allowed-body": (
            GET_CONTAINERS + b"Content-Length: %d\r\n\r\n" % n + smuggled,
            [b"GET"],
            [200],
            False,
        ),
        "hidden-in-an-allowed-chunked-body": (
            GET_CONTAINERS + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (n, smuggled),
            [b"GET"],
            [200],
            False,
        ),
        "hidden-in-a-refused-body": (
            b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\n\r\n" % n + smuggled,
            [b"POST"],
            [403],
            False,
        ),
        "refused-with-expect-100-continue": (
            b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % n + smuggled,
            [b"POST"],
            [403],
            False,
        ),
        # After Connection: close nothing more is read (one answer, 200 or 400).
        "after-connection-close": (
            GET_CONTAINERS + b"Connection: close\r\n\r\n" + smuggled,
            [b"GET"],
            None,
            False,
        ),
        "upgrade-on-a-route-that-does-not-hijack": (
            GET_CONTAINERS + b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + smuggled,
            [b"GET", b"POST"],
            [200, 403],
            False,
        ),
    }


SHAPES = list(_shapes(b"").keys())


@pytest.mark.parametrize("shape", SHAPES)
def test_smuggled_request_never_reaches_the_daemon(readonly, dockerd, shape: str) -> None:
    name = unique("smuggle")
    data, methods, statuses, daemon_alone_fooled = _shapes(make_volume_request(name))[shape]
    conn = readonly.connect()
    try:
        conn.send(data, *methods)
        answers = conn.answers()
        assert all(a.complete for a in answers), answers
        if statuses is None:
            assert len(answers) == 1 and answers[0].status in (200, 400), answers
        else:
            assert [a.status for a in answers] == statuses, answers
        for answer in answers:
            if answer.status in (400, 403):
                assert answer.json()["message"].startswith("dockguard")
        if 400 in (a.status for a in answers):
            # The framing is in doubt: nothing more is read on this connection.
            assert conn.ends()
            assert len(parse_answers(conn.data, conn.methods + [b"GET"])) == len(answers), "nothing more was sent"
        conn.in_step()
    finally:
        conn.close()
    assert not volume_exists(dockerd.socket_path, name), f"{shape}: the smuggled request ran"
    readonly.assert_clean_log()

    if daemon_alone_fooled:
        # The same bytes straight to the daemon run the smuggled request:
        # the shape is a real attack, and dockguard is what stops it.
        direct_name = unique("direct")
        direct = Conn(dockerd.socket_path)
        try:
            direct.send(_shapes(make_volume_request(direct_name))[shape][0], b"GET", b"POST")
            assert [a.status for a in direct.answers()][1:] == [201]
        finally:
            direct.close()
        assert volume_exists(dockerd.socket_path, direct_name)
        api_request(dockerd.socket_path, "DELETE", f"/volumes/{direct_name}")


def test_forbidden_request_after_a_declined_hijack_is_judged(writer, dockerd) -> None:
    """
    Bytes after an exec start that asks to upgrade are stdin only if the
    daemon hijacks; when it declines (no such exec: 404) they are the next
    request, judged on its own.
    """
    name = unique("hijack")
    body = b'{"Detach":false,"Tty":false}'
    conn = writer.connect()
    try:
        conn.send(
            b"POST /v1.41/exec/no-such-exec/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
            + make_volume_request(name),
            b"POST",
            b"POST",
        )
        answers = conn.answers()
        assert [a.status for a in answers] == [404, 403], answers
        assert "VOLUMES=0" in answers[1].json()["message"]
        conn.in_step()
    finally:
        conn.close()
    assert not volume_exists(dockerd.socket_path, name)


def test_request_hidden_in_an_allowed_write_body_is_only_body(writer, dockerd) -> None:
    """An allowed POST's body is relayed with its exact length: the daemon reads it as JSON, not as a request."""
    name = unique("body")
    hidden = make_volume_request(name)
    conn = writer.connect()
    try:
        conn.send(
            b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(hidden), hidden),
            b"POST",
        )
        [answer] = conn.answers()
        # the daemon (20.10: 500) read the body as JSON
        assert answer.status in (400, 500) and "invalid character 'P'" in answer.json()["message"], answer
        conn.in_step()
    finally:
        conn.close()
    assert not volume_exists(dockerd.socket_path, name)


def test_a_closing_request_followed_by_stray_bytes_gets_the_daemons_answer(writer, dockerd) -> None:
    name = unique("close")
    body = b'{"Image":"busybox:local","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}'
    conn = writer.connect()
    try:
        conn.send(
            b"POST /v1.41/containers/create?name=%s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s\r\n" % (name.encode(), len(body), body),
            b"POST",
        )
        [answer] = conn.answers()
        assert conn.ends()
    finally:
        conn.close()
        created = api_request(dockerd.socket_path, "GET", f"/containers/{name}/json")[0] == 200
        api_request(dockerd.socket_path, "DELETE", f"/containers/{name}?force=1")
    # Whatever dockguard answers must match what happened.
    assert (answer.status == 201) == created, (answer, created)
    assert answer.status == 201


def test_decision_does_not_depend_on_how_the_bytes_are_split(readonly, dockerd) -> None:
    """The same requests, sent whole and one byte per segment, get the same answers."""
    name = unique("split")
    data = PING + make_volume_request(name) + GET_CONTAINERS + b"\r\n"
    results = []
    for size in (len(data), 1, 7):
        conn = readonly.connect()
        try:
            for offset in range(0, len(data), size):
                conn.send(data[offset : offset + size])
                if size < len(data):
                    time.sleep(0.002)
            conn.methods = [b"GET", b"POST", b"GET"]
            answers = conn.answers()
            results.append([(a.status, a.body if a.status != 200 or a.body == b"OK" else b"list") for a in answers])
            conn.in_step()
        finally:
            conn.close()
    assert results[0][:2] == [(200, b"OK"), (403, results[0][1][1])]
    assert results[0] == results[1] == results[2]
    assert not volume_exists(dockerd.socket_path, name)


# -- method confusion --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [b"get", b"Get", b"OPTIONS", b"PATCH", b"TRACE"])
def test_methods_other_than_get_and_head_are_writes(readonly, dockerd, method: bytes) -> None:
    request = b"%s /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n" % method
    direct = Conn(dockerd.socket_path)
    try:
        direct.send(request, method)
        [daemon_answer] = direct.answers()
    finally:
        direct.close()
    # The daemon's router is case-sensitive (404 for `get`), and it answers
    # OPTIONS on any path (its CORS route): dockguard refuses them all as writes.
    assert daemon_answer.status == (200 if method == b"OPTIONS" else 404)
    conn = readonly.connect()
    try:
        conn.send(request, method)
        [answer] = conn.answers()
        assert answer.status == 403 and "POST=0" in answer.json()["message"]
        conn.in_step()
    finally:
        conn.close()


def test_an_allowed_lower_case_method_is_relayed_and_routed_as_the_daemon_does(writer, dockerd) -> None:
    name = unique("lower")
    conn = writer.connect()
    try:
        conn.send(b"get /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n", b"get")
        conn.send(make_volume_request(name, b"post"), b"post")
        answers = conn.answers()
        assert [a.status for a in answers] == [404, 403], answers  # the daemon's 404; VOLUMES=0
        conn.in_step()
    finally:
        conn.close()
    assert not volume_exists(dockerd.socket_path, name)


@pytest.mark.parametrize("header", [b"X-HTTP-Method-Override", b"X-HTTP-Method", b"X-Method-Override"])
def test_method_override_headers_change_nothing(readonly, dockerd, linked, header: bytes) -> None:
    name = unique("override")
    target = linked["web"]
    conn = readonly.connect()
    try:
        conn.send(make_volume_request(name).replace(b"\r\n\r\n", b"\r\n%s: GET\r\n\r\n" % header, 1), b"POST")
        conn.send(
            b"GET /v1.41/containers/%s/json?force=1 HTTP/1.1\r\nHost: docker\r\n%s: DELETE\r\n\r\n"
            % (target.encode(), header),
            b"GET",
        )
        answers = conn.answers()
        assert [a.status for a in answers] == [403, 200], answers
        assert answers[1].json()["Name"] == "/" + target
        conn.in_step()
    finally:
        conn.close()
    assert not volume_exists(dockerd.socket_path, name)
    inspect(dockerd, target)  # still there


# -- path confusion: names that span segments (legacy links) ---------------------------------------


def test_the_daemon_serves_a_container_under_its_link_name(dockerd, linked) -> None:
    """What the tests below rely on: /containers/web/alias/... is the db container."""
    status, body = api_request(dockerd.socket_path, "GET", f"/containers/{linked['web']}/alias/logs?stdout=1")
    assert status == 200 and b"the-secret-log-line" in body
    status, body = api_request(dockerd.socket_path, "GET", f"/containers/{linked['web']}/alias/json")
    assert status == 200 and json.loads(body)["Name"] == "/" + linked["db"]


def _get(g: Guarded, target: str) -> Answer:
    conn = g.connect()
    try:
        conn.send(b"GET %s HTTP/1.1\r\nHost: docker\r\n\r\n" % target.encode(), b"GET")
        [answer] = conn.answers()
        conn.in_step()
        return answer
    finally:
        conn.close()


def test_closed_gate_refuses_the_plain_name(gated, linked) -> None:
    assert _get(gated, f"/v1.41/containers/{linked['db']}/logs?stdout=1").status == 403


@pytest.mark.parametrize("resource", ["logs?stdout=1", "archive?path=/etc/hostname"])
def test_closed_gate_refuses_the_link_name(gated, linked, resource: str) -> None:
    answer = _get(gated, f"/v1.41/containers/{linked['web']}/alias/{resource}")
    assert answer.status == 403, answer
    assert b"the-secret-log-line" not in answer.body


def _post(g: Guarded, target: str, body: bytes) -> Answer:
    conn = g.connect()
    try:
        conn.send(
            b"POST %s HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (target.encode(), len(body), body),
            b"POST",
        )
        [answer] = conn.answers()
        conn.in_step()
        return answer
    finally:
        conn.close()


PRIVILEGED_EXEC = b'{"Cmd":["id"],"Privileged":true,"User":"root"}'


def test_exec_guard_refuses_a_privileged_exec_by_plain_name(shell, dockerd, linked) -> None:
    answer = _post(shell, f"/v1.41/containers/{linked['db']}/exec", PRIVILEGED_EXEC)
    assert answer.status == 403 and "Privileged" in answer.json()["message"]
    assert not inspect(dockerd, linked["db"])["ExecIDs"]


def test_exec_guard_refuses_a_privileged_exec_by_link_name(shell, dockerd, linked) -> None:
    answer = _post(shell, f"/v1.41/containers/{linked['web']}/alias/exec", PRIVILEGED_EXEC)
    try:
        assert answer.status == 403, answer
    finally:
        assert not inspect(dockerd, linked["db"])["ExecIDs"], "a privileged root exec was created"


def test_start_guard_refuses_a_hostconfig_sent_to_a_link_name(shell, dockerd, linked) -> None:
    answer = _post(shell, f"/v1.23/containers/{linked['web2']}/alias/start", b'{"Privileged":true}')
    try:
        assert answer.status == 403, answer
    finally:
        assert inspect(dockerd, linked["db2"])["HostConfig"]["Privileged"] is False, "the start applied Privileged"


@pytest.mark.parametrize("named", [b"content-length", b"Transfer-Encoding", b"host"])
def test_a_connection_header_naming_a_framing_header_gets_400_and_no_traceback(writer, named: bytes) -> None:
    """Connection naming a framing header once crashed the relay (a traceback, sometimes no answer)."""
    body = b'{"Image":"busybox:local"}'
    conn = writer.connect()
    try:
        conn.send(
            b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nConnection: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (named, len(body), body),
            b"POST",
        )
        [answer] = conn.answers()
        assert answer.status == 400 and "Connection header names" in answer.json()["message"]
        assert conn.ends()
    finally:
        conn.close()
    writer.assert_clean_log()
