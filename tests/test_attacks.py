"""
Adversarial requests against the relay, in memory (issue 8, hardening).

Each test sends hostile bytes to one L{ClientProtocol} and plays the daemon
(the fakes are in C{tests/harness/relayworld.py}).  Three things are checked
every time:

  - the daemon never receives, as a request, anything the policy refuses
    (what it receives is parsed back with h11 and judged again);
  - the client gets one clean answer per request it made, never a traceback;
  - afterwards the connection is either closed or still in step: a further
    C{GET /_ping} on it is answered correctly.

C{tests/test_relay.py} already covers the basic shapes (CL+TE, two
Content-Lengths, a bad chunk size, obs-fold, bare LF, absolute form,
pipelined refusals, a request hidden in a refused body); this file adds the
other classes and variants.  The end-to-end twins of the shapes where the
daemon's own reading matters are in C{tests/test_e2e_attacks.py}.
"""

from __future__ import annotations

import gc
import json

import pytest
from twisted.logger import capturedLogs

from dockguard.envpolicy import EnvPolicy
from dockguard.groups import GroupPolicy
from dockguard.paths import canonicalise
from dockguard.relay import Timeouts
from dockguard.routes import lookup
from harness.relayworld import (
    EXEC_BODY,
    PING,
    PING_OK,
    SHELL,
    UPGRADED,
    World,
    answer_everything,
    assert_daemon_saw_only_allowed,
    clean_answers,
    daemon_reads,
    everything_the_daemon_saw,
    parse_responses,
    ping_works,
)

#: A forbidden request used as the smuggled payload everywhere: SECRETS is
#: closed in every policy below.
SECRET = b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n"

#: Build, containers and exec open; secrets and volumes closed.
OPEN_ENV = {"BUILD": "1", "CONTAINERS": "1", "EXEC": "1", "POST": "1"}


# -- helpers ---------------------------------------------------------------------


def still_in_step(world: World, client) -> None:
    """The connection is closed, or a further request on it is answered correctly."""
    if client.transport.disconnecting:
        return
    ping_works(world, client)


@pytest.fixture
def logged():
    """Every log event emitted during the test; none may carry a failure."""
    with capturedLogs() as events:
        yield events
        # A failure left in a Deferred is logged only when it is collected.
        gc.collect()
    failures = [e for e in events if "log_failure" in e]
    assert not failures, [e["log_failure"].getTraceback() for e in failures]


# -- framing: chunked bodies ---------------------------------------------------------

BUILD_CHUNKED = b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"

BAD_CHUNKS = [
    # h11 < 0.16 took any two bytes after chunk data as its CRLF
    # (CVE-2025-43859): a smuggled request could start right there.
    pytest.param(b"5\r\nhelloXX" + b"0\r\n\r\n" + SECRET, id="chunk-data-not-followed-by-crlf"),
    pytest.param(b"5\r\nhello" + SECRET, id="chunk-data-followed-by-a-request"),
    pytest.param(b"-5\r\nhello\r\n0\r\n\r\n" + SECRET, id="negative-chunk-size"),
    pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n" + SECRET, id="hex-prefixed-chunk-size"),
    pytest.param(b" 5\r\nhello\r\n0\r\n\r\n" + SECRET, id="space-before-chunk-size"),
    pytest.param(b"5 5\r\nhello\r\n0\r\n\r\n" + SECRET, id="two-chunk-sizes"),
    pytest.param(b"5;a\rb\r\nhello\r\n0\r\n\r\n" + SECRET, id="bare-cr-in-chunk-extension"),
    pytest.param(b"5\nhello\n0\n\n" + SECRET, id="bare-lf-chunk-lines"),
    pytest.param(b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n" + SECRET, id="folded-trailer"),
    pytest.param(b"5\r\nhello\r\n0\r\nContent-Length: 40\r\n\r\n" + SECRET, id="content-length-trailer"),
    pytest.param(b"1" * 40 + b"\r\nhello\r\n0\r\n\r\n" + SECRET, id="chunk-size-overflowing-64-bits"),
    pytest.param(b"5\r\nhello\r\n0\r\n\r\n\r\n" + SECRET, id="extra-crlf-after-last-chunk"),
]


@pytest.mark.parametrize("body", BAD_CHUNKS)
def test_odd_chunked_body_never_smuggles_a_request(body: bytes, logged) -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(BUILD_CHUNKED + body)
    answer_everything(world)
    assert_daemon_saw_only_allowed(world)
    responses = clean_answers(client, [b"POST", b"GET"])
    # Either refused as malformed (and closed), or read one way: the build
    # answered, then the pipelined request judged on its own.
    statuses = [r.status for r in responses]
    assert statuses in ([400], [200], [200, 403], [200, 400]), statuses
    if statuses[0] == 400:
        assert client.transport.disconnecting
        assert not any(r.complete for r in everything_the_daemon_saw(world)), "no half-read body was completed"
    still_in_step(world, client)


def test_chunked_body_is_rechunked_so_the_daemon_reads_exactly_what_was_judged() -> None:
    # Chunk extensions and trailers are the client's: the daemon gets plain chunks.
    world = World(OPEN_ENV)
    client = world.client()
    client.send(BUILD_CHUNKED + b'5;ext="x;y"\r\nhello\r\n' + b"0\r\nX-Trailer: a\r\n\r\n")
    raw = world.up.transport.value()
    assert b"ext" not in raw and b"X-Trailer" not in raw
    [request] = world.daemon_saw()
    assert (request.body, request.complete) == (b"hello", True)


# -- framing: heads ------------------------------------------------------------------------

BAD_HEADS = [
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nContent-Length: 1 0\r\n\r\n" + SECRET, id="cl-with-inner-space"
    ),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nContent-Length: 0x10\r\n\r\n" + SECRET, id="cl-hex"),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nContent-Length: -1\r\n\r\n" + SECRET, id="cl-negative"),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\nContent-Length: 5 \r\n\r\nhello" + SECRET,
        id="cl-twice-same",
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nContent-Length: 005\r\n\r\nhello" + SECRET, id="cl-leading-zeros"
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        + SECRET,
        id="te-twice",
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SECRET,
        id="te-gzip-chunked",
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: identity\r\n\r\n" + SECRET, id="te-identity"
    ),
    pytest.param(
        b'GET /_ping HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n' + SECRET, id="te-quoted"
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n" + SECRET,
        id="te-upper-case",
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding:\tchunked\t\r\n\r\n0\r\n\r\n" + SECRET, id="te-tabs"
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nTransfer_Encoding: chunked\r\n\r\n" + SECRET, id="te-underscore"
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n" + SECRET,
        id="te-folded-into-another-header",
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: docker\r\n\r\n0\r\n\r\n" + SECRET,
        id="folded-first-header",
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SECRET,
        id="bare-lf-before-te",
    ),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-A: a\x00b\r\n\r\n" + SECRET, id="nul-in-header-value"),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nNoColonHere\r\n\r\n" + SECRET, id="header-without-colon"),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX A: b\r\n\r\n" + SECRET, id="space-in-header-name"),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n: empty-name\r\n\r\n" + SECRET, id="empty-header-name"),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nHost: other\r\n\r\n" + SECRET, id="two-hosts"),
    pytest.param(b"GET /_ping HTTP/1.1\r\n\r\n" + SECRET, id="no-host"),
    pytest.param(b"GET /_ping HTTP/1.1\rHost: docker\r\n\r\n" + SECRET, id="bare-cr-after-request-line"),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\n" + SECRET, id="head-ends-crlf-lf"),
    pytest.param(b"\r\n" + PING + SECRET, id="leading-empty-line"),
    pytest.param(b"GET /_ping\r\n\r\n" + SECRET, id="http-0.9-request-line"),
    pytest.param(b"GET /_ping HTTP/1.1 x\r\nHost: docker\r\n\r\n" + SECRET, id="three-spaces-request-line"),
    pytest.param(b"GET  /_ping HTTP/1.1\r\nHost: docker\r\n\r\n" + SECRET, id="double-space-request-line"),
    pytest.param(b"GET\t/_ping HTTP/1.1\r\nHost: docker\r\n\r\n" + SECRET, id="tab-request-line"),
    pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\nGET /v1.41/secrets\r\n\r\n", id="pipelined-http-0.9"),
    pytest.param(b"GET /_ping http/1.1\r\nHost: docker\r\n\r\n" + SECRET, id="lower-case-version"),
    pytest.param(b"GET /_ping HTTP/1.10\r\nHost: docker\r\n\r\n" + SECRET, id="version-1.10"),
]


@pytest.mark.parametrize("data", BAD_HEADS)
def test_odd_request_head_never_smuggles_a_request(data: bytes, logged) -> None:
    """
    The relay rebuilds each head it relays from h11's reading, so whatever
    h11 accepts reaches the daemon in one plain form, and what it cannot
    read is refused with 400 and the connection closed.
    """
    world = World(OPEN_ENV)
    client = world.client()
    client.send(data)
    answer_everything(world)
    assert_daemon_saw_only_allowed(world)
    responses = clean_answers(client, [b"GET", b"GET"])
    statuses = [r.status for r in responses]
    assert statuses in ([400], [200, 403], [200, 400]), statuses
    if 400 in statuses:
        assert client.transport.disconnecting
        assert responses[-1].header(b"connection") == b"close"
    for raw in (up.transport.value() for up in world.connections):
        head = raw.split(b"\r\n\r\n")[0]
        assert b"\n" not in head.replace(b"\r\n", b""), "no bare LF or CR reaches the daemon"
        assert b"\r\n " not in head and b"\r\n\t" not in head, "no folded line reaches the daemon"
    still_in_step(world, client)


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/9.9"])
def test_any_accepted_http_version_reaches_the_daemon_as_http_1_1(version: bytes) -> None:
    """
    The daemon (Go) ignores Transfer-Encoding on an HTTP/1.0 request and
    answers 505 to HTTP/2.0; the relay reads every version h11 accepts as one
    HTTP/1.x message and relays it as HTTP/1.1, so the framing it judged is
    the framing the daemon reads.
    """
    world = World(OPEN_ENV)
    client = world.client()
    body = b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n"
    client.send(
        b"POST /v1.41/build %s\r\nHost: docker\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n\r\n" % (version, len(body), body)
    )
    raw = world.up.transport.value()
    assert raw.startswith(b"POST /v1.41/build HTTP/1.1\r\n")
    [request] = world.daemon_saw()
    assert (request.body, request.complete) == (body, True)
    assert request.header(b"transfer-encoding") == b"chunked"
    answer_everything(world)
    assert_daemon_saw_only_allowed(world)
    still_in_step(world, client)


def test_http_1_0_keep_alive_still_closes_so_a_pipelined_request_is_never_read() -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"GET /_ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + SECRET)
    answer_everything(world)
    # Data after a request that ends the connection is a protocol error: one
    # answer (the daemon's 200, or dockguard's 400), then the end.
    assert len(clean_answers(client, [b"GET", b"GET"])) == 1
    assert client.transport.disconnecting
    assert [r.head.target for r in everything_the_daemon_saw(world)] == [b"/_ping"]


# -- pipelining and hidden requests -----------------------------------------------------------


@pytest.mark.parametrize(
    "closing",
    [
        pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n", id="connection-close"),
        pytest.param(b"GET /_ping HTTP/1.0\r\n\r\n", id="http-1.0"),
    ],
)
def test_the_answer_to_a_closing_request_does_not_depend_on_when_extra_bytes_arrive(closing: bytes) -> None:
    # RFC 9112 section 9.6: after a request with "close" the server answers
    # it, reads no further request and closes.  Sent in two packets, the
    # relay does so; sent in one, it answered 400 instead.
    world = World(OPEN_ENV)
    client = world.client()
    client.send(closing + SECRET)
    answer_everything(world)
    assert [r.status for r in clean_answers(client, [b"GET"])] == [200]
    assert client.transport.disconnecting
    assert not world.up.transport.disconnected, "the daemon connection was aborted mid-exchange"


def test_a_partial_head_pipelined_behind_a_request_gets_the_header_timeout() -> None:
    world = World(OPEN_ENV, timeouts=Timeouts(header=5.0, idle=60.0))
    client = world.client()
    client.send(PING + b"GET /v1.41/containers/json HTTP/1.1\r\nHost: dock")
    answer_everything(world)
    world.clock.advance(5.1)
    assert client.transport.disconnecting
    assert [r.status for r in clean_answers(client, [b"GET", b"GET"])] == [200, 408]


def test_a_partial_head_sent_after_an_answer_gets_the_header_timeout() -> None:
    # The control: the same bytes in two packets.
    world = World(OPEN_ENV, timeouts=Timeouts(header=5.0, idle=60.0))
    client = world.client()
    client.send(PING)
    answer_everything(world)
    client.send(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: dock")
    world.clock.advance(5.1)
    assert client.transport.disconnecting
    assert [r.status for r in clean_answers(client, [b"GET", b"GET"])] == [200, 408]


def test_bytes_beyond_a_short_content_length_are_the_next_request_and_are_judged() -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 3\r\n\r\nabc" + SECRET + PING)
    answer_everything(world)
    responses = clean_answers(client, [b"POST", b"GET", b"GET"])
    assert [r.status for r in responses] == [200, 403, 200]
    assert [(r.head.target, r.body) for r in world.daemon_saw()] == [(b"/v1.41/build", b"abc"), (b"/_ping", b"")]
    still_in_step(world, client)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_request_hidden_in_an_allowed_body_reaches_the_daemon_only_as_body(framing: str) -> None:
    world = World(OPEN_ENV)
    client = world.client()
    hidden = SECRET + b"POST /v1.41/volumes/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n{}"
    if framing == "content-length":
        client.send(
            b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\n\r\n%s" % (len(hidden), hidden)
        )
    else:
        client.send(BUILD_CHUNKED + b"%x\r\n%s\r\n0\r\n\r\n" % (len(hidden), hidden))
    answer_everything(world)
    [request] = world.daemon_saw()
    assert (request.head.target, request.body, request.complete) == (b"/v1.41/build", hidden, True)
    assert [r.status for r in clean_answers(client, [b"POST"])] == [200]
    still_in_step(world, client)
    assert_daemon_saw_only_allowed(world)


def test_nothing_after_a_connection_close_request_is_read() -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n" + SECRET)
    answer_everything(world)
    assert client.transport.disconnecting
    assert [r.head.target for r in everything_the_daemon_saw(world)] == [b"/_ping"]
    # The data after the close is a protocol error: one answer (200 or 400), then the end.
    assert len(clean_answers(client, [b"GET", b"GET"])) == 1


def test_upgrade_on_a_route_that_does_not_hijack_leaves_the_next_request_to_be_judged() -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + SECRET)
    world.clock.advance(0)
    world.up.dataReceived(PING_OK)
    world.clock.advance(0)
    responses = clean_answers(client, [b"GET", b"GET"])
    assert [r.status for r in responses] == [200, 403]
    assert [r.head.target for r in everything_the_daemon_saw(world)] == [b"/_ping"]
    assert not client.proto.hijacked
    still_in_step(world, client)


def test_a_hijack_the_daemon_declines_leaves_the_pipelined_request_to_be_judged() -> None:
    world = World(OPEN_ENV)
    world.relay.execOwners.record("abc", "tester")  # as if tester had created it
    client = world.client()
    client.send(
        b"POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(EXEC_BODY), EXEC_BODY) + SECRET
    )
    error = b'{"message":"No such exec instance: abc"}'
    world.up.dataReceived(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(error), error)
    )
    world.clock.advance(0)
    assert [r.status for r in clean_answers(client, [b"POST", b"GET"])] == [404, 403]
    assert [r.head.target for r in everything_the_daemon_saw(world)] == [b"/v1.41/exec/abc/start"]
    still_in_step(world, client)


def test_a_101_the_client_did_not_ask_for_is_not_spliced() -> None:
    # A daemon that switches protocols unasked is out of step: nothing the
    # client sends afterwards may reach it unjudged.
    world = World(OPEN_ENV)
    client = world.client()
    client.send(PING + SECRET)
    up = world.up
    up.dataReceived(UPGRADED + b"raw")
    world.clock.advance(0)
    assert not client.proto.hijacked
    assert b"raw" not in client.value()
    assert [r.head.target for r in everything_the_daemon_saw(world)] == [b"/_ping"]
    assert up.transport.disconnected or up.transport.disconnecting
    clean_answers(client, [b"GET", b"GET"])


def test_a_raw_stream_200_on_a_route_that_does_not_hijack_is_not_spliced() -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"GET /v1.41/containers/abc/json HTTP/1.1\r\nHost: docker\r\n\r\n" + SECRET)
    world.up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nout")
    assert not client.proto.hijacked
    assert [r.head.target for r in everything_the_daemon_saw(world)] == [b"/v1.41/containers/abc/json"]


# -- refusals keep the connection in step --------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(b"Connection: Upgrade\r\nUpgrade: tcp\r\n", id="upgrade"),
        pytest.param(b"Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n", id="h2c"),
        pytest.param(b"Content-Length: 0\r\n", id="empty-body"),
        pytest.param(b"X-HTTP-Method-Override: GET\r\n", id="method-override"),
    ],
)
def test_refused_request_with_protocol_switch_headers_keeps_the_connection_in_step(extra: bytes) -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\n" + extra + b"\r\n" + PING)
    answer_everything(world)
    responses = clean_answers(client, [b"POST", b"GET"])
    assert [r.status for r in responses] == [403, 200]
    assert not client.proto.hijacked
    still_in_step(world, client)


def test_refused_connect_keeps_the_connection_in_step() -> None:
    # h11 takes CONNECT as a protocol switch proposal; a 403 declines it.
    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"CONNECT /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n" + PING)
    answer_everything(world)
    assert [r.status for r in clean_answers(client, [b"CONNECT", b"GET"])] == [403, 200]
    still_in_step(world, client)


@pytest.mark.parametrize("target", [b"/v1.41/secrets", b"/v1.41/images/../secrets"], ids=["403", "400"])
def test_refused_head_request_gets_a_bodiless_answer_and_keeps_the_connection(target: bytes) -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"HEAD %s HTTP/1.1\r\nHost: docker\r\n\r\n" % target + PING)
    answer_everything(world)
    responses = clean_answers(client, [b"HEAD", b"GET"])
    assert responses[0].status in (400, 403) and responses[0].body == b""
    # A refused HEAD must not end the connection (it did: the 403's body was
    # sent to a HEAD, h11 refused it, and the connection was closed instead).
    assert [r.status for r in responses] == [responses[0].status, 200]
    assert not client.transport.disconnecting
    still_in_step(world, client)


# -- method confusion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", [b"get", b"Get", b"gET", b"head", b"post", b"OPTIONS", b"TRACE", b"PATCH", b"PROPFIND", b"X"]
)
def test_methods_other_than_exact_get_and_head_are_writes(method: bytes) -> None:
    # The daemon's router compares methods exactly (`get /containers/json`
    # is its 404), and it answers OPTIONS on every path (its CORS route):
    # none of these is a read.
    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(b"%s /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n" % method + PING)
    answer_everything(world)
    responses = clean_answers(client, [method, b"GET"])
    assert [r.status for r in responses] == [403, 200]
    assert "POST=0" in responses[0].json()["message"]
    assert [r.head.target for r in everything_the_daemon_saw(world)] == [b"/_ping"]


def test_a_lower_case_method_that_is_allowed_is_relayed_unchanged() -> None:
    # With writes open, `get` is judged as the write it is, and relayed as
    # sent: the daemon then routes nothing (404), as it would directly.
    world = World({"CONTAINERS": "1", "POST": "1"})
    client = world.client()
    client.send(b"get /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
    assert [r.head.method for r in world.daemon_saw()] == [b"get"]
    client = world.client()
    client.send(b"get /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n")
    assert clean_answers(client, [b"GET"])[0].status == 403


@pytest.mark.parametrize(
    "header",
    [b"X-HTTP-Method-Override", b"X-HTTP-Method", b"X-Method-Override", b"X-Original-Method"],
)
def test_method_override_headers_do_not_change_the_decision(header: bytes) -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(
        b"POST /v1.41/containers/abc/kill HTTP/1.1\r\nHost: docker\r\n%s: GET\r\nContent-Length: 0\r\n\r\n" % header
        + b"GET /v1.41/containers/abc/json HTTP/1.1\r\nHost: docker\r\n%s: DELETE\r\n\r\n" % header
    )
    answer_everything(world)
    assert [r.status for r in clean_answers(client, [b"POST", b"GET"])] == [403, 200]
    [request] = world.daemon_saw()
    # The daemon (Go, moby) honours no override header: it is relayed as is.
    assert (request.head.method, request.head.target) == (b"GET", b"/v1.41/containers/abc/json")
    assert request.header(header.lower()) == b"DELETE"


@pytest.mark.parametrize(
    "target",
    [
        b"/v1.41/containers/abc/json?_method=DELETE",
        b"/v1.41/containers/abc/json?method=POST&X-HTTP-Method-Override=DELETE",
    ],
)
def test_method_in_the_query_does_not_change_the_decision(target: bytes) -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(b"GET %s HTTP/1.1\r\nHost: docker\r\n\r\n" % target)
    assert [(r.head.method, r.head.target) for r in world.daemon_saw()] == [(b"GET", target)]


# -- path confusion: names that span segments ----------------------------------------------------
#
# Moby declares container names as {name:.*}: `/containers/web/db/exec`
# is exec create in the container reachable as `web/db` - a legacy link
# name (`docker run --link db:alias --name web` registers `/web/alias`).
# tests/test_e2e_attacks.py shows the daemon serving these.


def _shell_world() -> World:
    world = World()
    world.relay.policy = GroupPolicy(identities={"tester": ("shell",)}, groups={"shell": SHELL})
    return world


SPANNING_GUARDED = [
    pytest.param(
        b"/v1.41/containers/web/alias/exec", b'{"Cmd":["id"],"Privileged":true,"User":"root"}', id="exec-create"
    ),
    pytest.param(
        b"/v1.23/containers/web/alias/start", b'{"Privileged":true,"Binds":["/:/host"]}', id="start-with-hostconfig"
    ),
    pytest.param(
        b"/v1.41/containers/web/alias/update",
        b'{"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]}',
        id="update",
    ),
]


@pytest.mark.parametrize(("target", "body"), SPANNING_GUARDED)
def test_guarded_body_sent_to_a_link_name_is_still_inspected(target: bytes, body: bytes) -> None:
    world = _shell_world()
    client = world.client()
    client.send(
        b"POST %s HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (target, len(body), body)
    )
    answer_everything(world)
    assert [r.status for r in clean_answers(client, [b"POST"])] == [403]
    assert world.nothing_reached_daemon()


def test_guarded_body_sent_to_a_plain_name_is_inspected() -> None:
    # The control for the test above.
    for target, body in [(p.values[0].replace(b"web/alias", b"web"), p.values[1]) for p in SPANNING_GUARDED]:
        world = _shell_world()
        client = world.client()
        client.send(
            b"POST %s HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (target, len(body), body)
        )
        assert [r.status for r in clean_answers(client, [b"POST"])] == [403], target
        assert world.nothing_reached_daemon()


@pytest.mark.parametrize(
    ("gate", "target"),
    [
        ("ALLOW_LOGS", b"/v1.41/containers/web/alias/logs?stdout=1"),
        ("ALLOW_ARCHIVE", b"/v1.41/containers/web/alias/archive?path=/etc/shadow"),
        ("ALLOW_EXPORT", b"/v1.41/containers/web/alias/export"),
        ("ALLOW_TOP", b"/v1.41/containers/web/alias/top"),
        ("ALLOW_CHANGES", b"/v1.41/containers/web/alias/changes"),
    ],
)
def test_closed_gate_holds_for_a_link_name(gate: str, target: bytes) -> None:
    world = World({"CONTAINERS": "1", gate: "0"})
    client = world.client()
    client.send(b"GET %s HTTP/1.1\r\nHost: docker\r\n\r\n" % target)
    [response] = clean_answers(client, [b"GET"])
    assert response.status == 403 and f"{gate}=0" in response.json()["message"]
    assert world.connections == []


def test_closed_gate_holds_for_a_plain_name() -> None:
    world = World({"CONTAINERS": "1", "ALLOW_LOGS": "0"})
    client = world.client()
    client.send(b"GET /v1.41/containers/web/logs HTTP/1.1\r\nHost: docker\r\n\r\n")
    assert clean_answers(client, [b"GET"])[0].status == 403


def test_attach_to_a_link_name_without_upgrade_is_spliced() -> None:
    world = World({"CONTAINERS": "1", "POST": "1"})
    client = world.client()
    client.send(b"POST /v1.41/containers/web/alias/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n\r\ntyped")
    world.up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nout")
    assert client.proto.hijacked
    assert world.up.transport.value().endswith(b"typed")


def test_env_policy_reads_the_same_for_every_spelling_of_a_link_name_path() -> None:
    # Whatever EnvPolicy makes of a spanning name, the spellings that
    # canonicalise alike are judged alike.
    policy = EnvPolicy.from_environ({"CONTAINERS": "1"})
    decisions = {
        policy.decide("t", "GET", canonicalise(t), lookup("GET", canonicalise(t))).allowed
        for t in (b"/containers/web/alias/json", b"/v1.41/containers/web/alias/json", b"/containers/web/%61lias/json")
    }
    assert decisions == {True}


# -- exceptions never reach the client ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)), id="tls-client-hello"),
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", id="http2-preface"),
        pytest.param(b"\x00" * 64, id="nul-bytes"),
        pytest.param(b"\xff\xfe" + "GET /_ping".encode("utf-16-le"), id="utf-16"),
        pytest.param(b"GET /\xc3\xa9 HTTP/1.1\r\nHost: docker\r\n\r\n", id="utf-8-target"),
        pytest.param(b"G\xc3\x89T /_ping HTTP/1.1\r\nHost: docker\r\n\r\n", id="utf-8-method"),
        pytest.param(b"GET /_ping HTTP/1.1\r\nHost: d\xc3\xa9\r\nX-\xff: 1\r\n\r\n", id="utf-8-header-name"),
    ],
)
def test_garbage_gets_a_clean_400_and_no_traceback(data: bytes, logged) -> None:
    world = World(OPEN_ENV)
    client = world.client()
    client.send(data)
    answer_everything(world)
    assert b"Traceback" not in client.value()
    if client.value():
        responses = parse_responses(client.value(), [b"GET"])
        assert [r.status for r in responses] in ([400], [413], [431])
    # What never makes a request head is cut off by the header timeout.
    world.clock.advance(world.relay.timeouts.header + 1)
    assert client.transport.disconnecting
    assert world.nothing_reached_daemon()


# -- hop-by-hop names for framing headers ------------------------------------------------------


@pytest.mark.parametrize(
    "connection",
    [b"content-length", b"Content-Length", b"transfer-encoding", b"host", b"keep-alive, Content-Length", b" HOST "],
)
@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 5\r\n\r\nhello", b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
    ids=["content-length", "chunked"],
)
def test_a_connection_header_naming_a_framing_header_is_refused_with_400(connection, framing, logged) -> None:
    # Dropping what Connection names would send the daemon a head without
    # its length (then a body h11 will not send: a crash) or without Host.
    world = World(OPEN_ENV)
    client = world.client()
    client.send(
        b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nConnection: %s\r\n%s" % (connection, framing)
    )
    answer_everything(world)
    [response] = clean_answers(client, [b"POST"])
    assert response.status == 400
    assert "Connection header names" in response.json()["message"]
    assert response.header(b"connection") == b"close"
    assert client.transport.disconnecting
    assert world.nothing_reached_daemon()


# -- denial of service: memory ------------------------------------------------------------------


def _one_byte_chunks(body: bytes) -> bytes:
    return b"".join(b"1\r\n%c\r\n" % b for b in body)


def test_an_inspected_body_in_one_byte_chunks_costs_about_its_size_and_is_all_returned() -> None:
    import tracemalloc

    from dockguard.relay import Limits

    limit = 128 * 1024
    world = World(limits=Limits(inspected_body=limit))
    world.relay.policy = GroupPolicy(identities={"tester": ("shell",)}, groups={"shell": SHELL})
    body = b'{"Image":"busybox","Env":["A=' + b"a" * (limit - 40) + b'"]}'
    assert len(body) <= limit
    wire = _one_byte_chunks(body)
    head = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        client = world.client()
        client.send(head)
        for start in range(0, len(wire), 65536):
            client.send(wire[start : start + 65536])
            world.clock.advance(0)
        held, _ = tracemalloc.get_traced_memory()
        # The body is buffered once, plus at most a read or two in h11.
        assert held - before < 1.5 * limit + 2 * 65536, f"{held - before} bytes held for a {len(body)}-byte body"
        client.send(b"0\r\n\r\n")
        answer_everything(world)
        assert [r.status for r in clean_answers(client, [b"POST"])] == [200]
        # Relayed whole: the body as sent, with its owner stamped.
        assert json.loads(world.daemon_saw()[0].body) == {**json.loads(body), "Labels": {"dockguard.owner": "tester"}}
        client.lost()
        for up in world.connections:
            up.transport.clear()
        del client
        after, _ = tracemalloc.get_traced_memory()
        assert after - before < 64 * 1024, f"{after - before} bytes still held after close"
    finally:
        tracemalloc.stop()


# -- denial of service: work per reactor turn -----------------------------------------------------


def _one_turn(world: World) -> None:
    """Run the calls due now, but not those they schedule (the next reactor turn)."""
    due = [c for c in world.clock.getDelayedCalls() if c.getTime() <= world.clock.seconds()]
    for call in due:
        if call.active():
            world.clock.calls.remove(call)
            call.func(*call.args, **call.kw)


def test_a_body_in_one_byte_chunks_is_handled_a_bounded_number_of_events_per_turn() -> None:
    from dockguard.relay import EVENTS_PER_TURN

    world = World(OPEN_ENV)
    client = world.client()
    client.send(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunks = 20 * EVENTS_PER_TURN
    payload = bytes(range(256)) * (chunks // 256 + 1)
    client.send(_one_byte_chunks(payload[:chunks]))
    up = world.up

    def relayed() -> int:
        [request] = daemon_reads(up.transport.value())
        return len(request.body)

    # One read of ten thousand events: a bounded share now, reading paused.
    assert 0 < relayed() <= EVENTS_PER_TURN
    assert client.transport.producerState == "paused"
    turns = 0
    while client.transport.producerState == "paused":
        before = relayed()
        _one_turn(world)
        assert relayed() - before <= EVENTS_PER_TURN
        turns += 1
        assert turns <= 2 * chunks // EVENTS_PER_TURN
    assert relayed() == chunks
    # The upload reached the daemon in one chunk per turn, not one per byte.
    [request] = daemon_reads(up.transport.value())
    assert request.body == payload[:chunks]
    assert up.transport.value().count(b"\r\n") < 4 * (turns + 2)
    client.send(b"0\r\n\r\n")
    answer_everything(world)
    assert [r.status for r in clean_answers(client, [b"POST"])] == [200]
    still_in_step(world, client)
