"""
Protocol-level tests of the relay (L{dockguard.relay.ClientProtocol}).

No sockets and no daemon: the relay runs in memory with the fakes of
C{tests/harness/relayworld.py} (a L{World}: a memory clock and the real
pool over L{dockguard.testing.MemoryDaemonEndpoint}, whose daemon
connections are real L{UpstreamProtocol}s on memory transports).  So each test reads exactly what would reach the Docker daemon
(C{up.transport.value()}) and plays the daemon by feeding its response bytes
to C{up.dataReceived(...)}.

Connection loss is never delivered by the fake transports themselves (a real
reactor delivers it later, not inside C{loseConnection()}); a test that needs
it calls L{Client.lost} or L{daemon_closes}.
"""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure

from dockguard.relay import ClientProtocol, Limits, Listener, Timeouts
from dockguard.relay import DaemonConnection as UpstreamProtocol
from harness.relayworld import (
    EXEC_BODY,
    JSON_OK,
    PING,
    PING_OK,
    SOCKET,
    UPGRADED,
    Client,
    FakeTransport,
    World,
    daemon_closes,
    decisions,
    parse_requests,
    ping_works,
)

# -- relaying ------------------------------------------------------------------------


def test_allowed_get_is_relayed_without_hop_by_hop_headers() -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(
        b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\n"
        b"Host: docker\r\n"
        b"User-Agent: Docker-Client/28.0.0\r\n"
        b"Connection: keep-alive, X-Hop-Named\r\n"
        b"Keep-Alive: timeout=5\r\n"
        b"TE: trailers\r\n"
        b"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"X-Hop-Named: secret\r\n"
        b"X-Registry-Auth: e30=\r\n"
        b"\r\n"
    )
    [request] = world.daemon_saw()
    assert request.complete
    assert (request.head.method, request.head.target) == (b"GET", b"/v1.41/containers/json?all=1")
    assert request.names() == {b"host", b"user-agent", b"x-registry-auth"}
    assert request.header(b"x-registry-auth") == b"e30="
    assert client.value() == b"", "nothing is answered before the daemon answers"

    world.up.dataReceived(
        b"HTTP/1.1 200 OK\r\n"
        b"Api-Version: 1.41\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 9\r\n"
        b"Connection: keep-alive, X-Daemon-Hop\r\n"
        b"Keep-Alive: timeout=30\r\n"
        b"X-Daemon-Hop: 1\r\n"
        b"\r\n"
        b'[{"a":1}]'
    )
    [response] = client.responses(b"GET")
    assert (response.status, response.body, response.complete) == (200, b'[{"a":1}]', True)
    assert response.header(b"api-version") == b"1.41"
    assert response.header(b"content-length") == b"9"
    assert not response.names() & {b"keep-alive", b"x-daemon-hop", b"transfer-encoding"}
    assert not client.transport.disconnecting


def test_completed_exchange_releases_the_daemon_connection_for_reuse() -> None:
    world = World()
    client = world.client()
    client.send(PING)
    up = world.up
    up.dataReceived(PING_OK)
    assert world.pooled() == [up], "given back to the pool, which hands it out again"
    assert up.transport.producer is None, "flow control is unhooked from the pooled connection"
    assert client.transport.producer is None
    # The next request on the same client connection reuses it.
    ping_works(world, client)
    assert world.connections == [up]
    assert len(world.daemon_saw(up)) == 2


def test_chunked_response_streams_to_the_client() -> None:
    world = World({"EVENTS": "1"})
    client = world.client()
    client.send(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
    world.up.dataReceived(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n{"event":1}\r\n'
    )
    [partial] = client.responses(b"GET")
    assert (partial.status, partial.body, partial.complete) == (200, b'{"event":1}', False)
    world.up.dataReceived(b'b\r\n{"event":2}\r\n')
    assert client.responses(b"GET")[0].body == b'{"event":1}{"event":2}'
    world.up.dataReceived(b"0\r\n\r\n")
    [response] = client.responses(b"GET")
    assert response.complete and response.header(b"transfer-encoding") == b"chunked"
    assert world.pooled() == [world.up]
    ping_works(world, client)


def test_small_daemon_chunks_read_at_once_reach_the_client_as_one_chunk() -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(b"GET /v1.41/containers/c/archive?path=/ HTTP/1.1\r\nHost: docker\r\n\r\n")
    world.up.dataReceived(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"800\r\n" + bytes([65 + i]) * 0x800 + b"\r\n" for i in range(10))
    )
    raw = client.value()
    body = raw.partition(b"\r\n\r\n")[2]
    assert body.startswith(b"5000\r\n")  # one chunk of 10 x 2 KiB
    [partial] = client.responses(b"GET")
    assert partial.body == b"".join(bytes([65 + i]) * 0x800 for i in range(10)) and not partial.complete


def test_a_chunked_response_that_closes_the_connection_is_not_pooled() -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
    world.up.dataReceived(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n"
    )
    [response] = client.responses(b"GET")
    assert (response.body, response.complete) == (b"[]", True)
    assert world.pooled() == [] and world.up.transport.disconnecting


def test_a_malformed_chunk_from_the_daemon_ends_both_connections() -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(b"GET /v1.41/containers/c/logs?follow=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
    up = world.up
    up.dataReceived(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    up.dataReceived(b"zz\r\n")
    assert up.transport.disconnecting
    up.connectionLost(Failure(ConnectionLost()))
    [partial] = client.responses(b"GET")
    assert (partial.body, partial.complete) == (b"abc", False)
    assert client.transport.disconnecting


def test_content_length_response_arrives_in_pieces() -> None:
    world = World({"IMAGES": "1"})
    client = world.client()
    client.send(b"GET /v1.41/images/json HTTP/1.1\r\nHost: docker\r\n\r\n")
    world.up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[1,")
    [partial] = client.responses(b"GET")
    assert (partial.body, partial.complete) == (b"[1,", False)
    world.up.dataReceived(b"2,3]")
    [response] = client.responses(b"GET")
    assert (response.body, response.complete) == (b"[1,2,3]", True)
    assert response.header(b"content-length") == b"7"
    assert world.pooled() == [world.up]


def test_head_is_answered_without_a_body() -> None:
    world = World()
    client = world.client()
    client.send(b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
    assert world.daemon_saw()[0].head.method == b"HEAD"
    world.up.dataReceived(
        b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\n"
    )
    [response] = client.responses(b"HEAD")
    assert (response.status, response.body, response.complete) == (200, b"", True)
    assert response.header(b"content-length") == b"2"
    assert client.value().endswith(b"\r\n\r\n")
    assert world.pooled() == [world.up]
    ping_works(world, client)


def test_204_is_answered_without_a_body() -> None:
    world = World({"CONTAINERS": "1", "POST": "1"})
    client = world.client()
    client.send(b"DELETE /v1.41/containers/abc?force=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
    assert world.daemon_saw()[0].head.method == b"DELETE"
    world.up.dataReceived(b"HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n")
    [response] = client.responses(b"DELETE")
    assert (response.status, response.body, response.complete) == (204, b"", True)
    assert not response.names() & {b"transfer-encoding", b"content-length"}
    ping_works(world, client)


def test_client_connection_close_ends_the_client_connection_only() -> None:
    world = World()
    client = world.client()
    client.send(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
    [request] = world.daemon_saw()
    assert request.header(b"connection") is None
    world.up.dataReceived(PING_OK)
    assert client.responses(b"GET")[0].body == b"OK"
    assert client.transport.disconnecting
    assert world.pooled() == [world.up], "the daemon connection is still good"


def test_daemon_connection_close_ends_the_daemon_connection_only() -> None:
    world = World()
    client = world.client()
    client.send(PING)
    up = world.up
    up.dataReceived(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nOK")
    [response] = client.responses(b"GET")
    assert response.complete and response.header(b"connection") is None
    assert up.transport.disconnecting and world.pooled() == []
    assert not client.transport.disconnecting
    ping_works(world, client)
    assert len(world.connections) == 2


# -- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "method", "target", "path", "rule"),
    [
        ({}, b"GET", b"/v1.41/secrets", "/secrets", "SECRETS=0"),
        ({"CONTAINERS": "1"}, b"POST", b"/v1.41/containers/create", "/containers/create", "POST=0"),
        ({}, b"GET", b"/v1.41/nothing/here", "/nothing/here", "no section"),
    ],
)
def test_refused_request_gets_403_json_and_reaches_nothing(env, method, target, path, rule) -> None:
    world = World(env)
    client = world.client()
    client.send(b"%s %s HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n" % (method, target))
    [response] = client.responses(method)
    assert (response.status, response.complete) == (403, True)
    message = response.json()["message"]
    for part in ("tester", method.decode(), path, rule):
        assert part in message
    assert world.connections == []
    assert not client.transport.disconnecting


@pytest.mark.parametrize("framing", ["content-length"])
def test_refused_request_body_is_drained_and_the_connection_stays_usable(framing) -> None:
    world = World()
    client = world.client()
    # The body even looks like a request: it must never be read as one.
    hidden = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
    if framing == "content-length":
        head = b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\n\r\n" % len(hidden)
        body = [hidden[:10], hidden[10:]]
    else:
        head = b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = [b"%x\r\n%s\r\n" % (len(hidden), hidden), b"0\r\n\r\n"]
    client.send(head + body[0])
    [response] = client.responses(b"POST")
    assert response.status == 403 and "POST=0" in response.json()["message"]
    client.send(body[1])
    assert world.connections == []
    assert not client.transport.disconnecting
    ping_works(world, client)
    assert [r.head.target for r in world.daemon_saw()] == [b"/_ping"]


REFUSED_UPLOAD = b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 10000000000\r\n",
        b"Content-Length: %d\r\n" % (64 * 1024 + 1),
        b"Transfer-Encoding: chunked\r\n",
    ],
    ids=["10-GB", "just-over-the-drain-limit", "chunked"],
)
def test_a_refused_body_not_worth_reading_gets_connection_close_and_costs_nothing(framing: bytes) -> None:
    world = World()
    client = world.client()
    client.send(REFUSED_UPLOAD + framing + b"\r\n" + b"x" * 1000)
    [response] = client.responses(b"POST")
    assert response.status == 403 and response.header(b"connection") == b"close"
    assert not client.transport.disconnecting, "the answer gets a moment to be read"
    # What follows is dropped unread (a request in it is never judged) ...
    client.send(PING * 100)
    assert world.connections == []
    # ... up to limits.max_drain_bytes, then the connection closes.
    client.send(b"x" * (64 * 1024))
    assert client.transport.disconnecting
    assert world.connections == []


def test_a_refused_body_that_never_comes_is_closed_after_the_drain_timeout() -> None:
    world = World(timeouts=Timeouts(drain=5))
    for framing in (b"Content-Length: 10\r\n", b"Content-Length: 10000000000\r\n"):
        client = world.client()
        client.send(REFUSED_UPLOAD + framing + b"\r\n")
        assert client.responses(b"POST")[0].status == 403
        world.clock.advance(4.9)
        assert not client.transport.disconnecting
        world.clock.advance(0.2)
        assert client.transport.disconnecting


def test_a_small_refused_body_keeps_the_connection_and_its_end_stops_the_drain_clock() -> None:
    world = World(timeouts=Timeouts(drain=5, idle=120))
    client = world.client()
    client.send(REFUSED_UPLOAD + b"Content-Length: 10\r\n\r\n12345")
    assert client.responses(b"POST")[0].header(b"connection") is None
    client.send(b"67890")
    world.clock.advance(60)
    assert not client.transport.disconnecting
    ping_works(world, client)


def test_a_large_upload_the_daemon_answered_early_is_not_read_to_its_end() -> None:
    world = World({"IMAGES": "1", "POST": "1"})
    client = world.client()
    client.send(b"POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nContent-Length: 10000000000\r\n\r\nabc")
    world.up.dataReceived(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    [response] = client.responses(b"POST")
    assert (response.status, response.complete) == (400, True)
    client.send(b"x" * (64 * 1024 + 1))
    assert client.transport.disconnecting


def test_refused_request_expecting_100_continue_is_closed_without_reading_the_body() -> None:
    world = World()
    client = world.client()
    client.send(
        b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\n"
        b"Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n"
    )
    [response] = client.responses(b"POST")
    assert response.status == 403 and response.informational == []
    assert response.header(b"connection") == b"close"
    assert client.transport.disconnecting
    assert world.connections == []


# -- pipelining ----------------------------------------------------------------------------


def test_pipelined_forbidden_request_after_an_allowed_one_is_judged_on_its_own() -> None:
    world = World()
    client = world.client()
    client.send(PING + b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n")
    up = world.up
    assert [r.head.target for r in world.daemon_saw(up)] == [b"/_ping"]
    up.dataReceived(PING_OK)
    world.clock.advance(0)
    assert [(r.status, r.complete) for r in client.responses(b"GET", b"GET")] == [(200, True), (403, True)]
    assert "SECRETS=0" in client.responses(b"GET", b"GET")[1].json()["message"]
    assert [r.head.target for r in world.daemon_saw(up)] == [b"/_ping"]
    assert world.connections == [up]


def test_pipelined_allowed_request_after_a_forbidden_one_is_judged_on_its_own() -> None:
    world = World()
    client = world.client()
    client.send(b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n" + PING)
    world.clock.advance(0)
    assert [r.head.target for r in world.daemon_saw()] == [b"/_ping"]
    world.up.dataReceived(PING_OK)
    world.clock.advance(0)
    responses = client.responses(b"GET", b"GET")
    assert [(r.status, r.complete) for r in responses] == [(403, True), (200, True)]
    assert responses[1].body == b"OK"


def test_pipelined_requests_each_get_their_own_daemon_exchange() -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(PING + b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n" + PING)
    up = world.up
    for n, (target, answer) in enumerate(
        [(b"/_ping", PING_OK), (b"/v1.41/containers/json", JSON_OK), (b"/_ping", PING_OK)], 1
    ):
        world.clock.advance(0)
        assert [r.head.target for r in world.daemon_saw(up)][n - 1 :] == [target]
        up.dataReceived(answer)
    world.clock.advance(0)
    assert [r.body for r in client.responses(b"GET", b"GET", b"GET")] == [b"OK", b"{}", b"OK"]


def test_pipelined_backlog_pauses_the_client_until_its_turn() -> None:
    world = World({"BUILD": "1", "POST": "1"}, maxHeadBytes=1024)
    client = world.client()
    client.send(PING)
    up = world.up
    body = b"x" * 4000
    client.send(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    assert client.transport.producerState == "paused", "a backlog beyond one head's worth stops reading"
    assert [r.head.target for r in world.daemon_saw(up)] == [b"/_ping"]
    up.dataReceived(PING_OK)
    assert client.transport.producerState == "producing"
    world.clock.advance(0)
    requests = world.daemon_saw(up)
    assert [(r.head.target, r.body, r.complete) for r in requests][1:] == [(b"/v1.41/build", body, True)]


# -- malformed and ambiguous requests ----------------------------------------------------------


SMUGGLING = [
    pytest.param(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n",
        True,
        id="content-length-and-transfer-encoding",
    ),
    pytest.param(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        True,
        id="folded-transfer-encoding-with-content-length",
    ),
    pytest.param(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
        True,
        id="two-content-lengths",
    ),
    pytest.param(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 5, 40\r\n\r\nhello",
        True,
        id="content-length-list",
    ),
    pytest.param(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: +5\r\n\r\nhello",
        True,
        id="signed-content-length",
    ),
    pytest.param(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        True,
        id="unknown-transfer-encoding",
    ),
    pytest.param(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        True,
        id="doubled-chunked",
    ),
    pytest.param(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        True,
        id="space-before-colon",
    ),
    pytest.param(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-A: b\rTransfer-Encoding: chunked\r\n\r\n",
        True,
        id="bare-cr-in-header",
    ),
    pytest.param(b"GET http://docker/_ping HTTP/1.1\r\nHost: docker\r\n\r\n", False, id="absolute-form"),
    pytest.param(b"OPTIONS * HTTP/1.1\r\nHost: docker\r\n\r\n", False, id="asterisk-form"),
    pytest.param(b"GET /v1.41/images%2fjson HTTP/1.1\r\nHost: docker\r\n\r\n", False, id="encoded-slash"),
    pytest.param(b"GET /v1.41/images/%2e%2e/secrets HTTP/1.1\r\nHost: docker\r\n\r\n", False, id="encoded-dot-dot"),
    pytest.param(b"GET /v1.41/images/../secrets HTTP/1.1\r\nHost: docker\r\n\r\n", False, id="dot-dot"),
]


@pytest.mark.parametrize(("data", "framing"), SMUGGLING)
def test_ambiguous_request_is_refused_with_400_and_reaches_nothing(data: bytes, framing: bool) -> None:
    world = World({"BUILD": "1", "IMAGES": "1", "POST": "1", "SECRETS": "1"})
    client = world.client()
    client.send(data)
    world.clock.advance(0)
    responses = client.responses(b"POST")
    assert [(r.status, r.complete) for r in responses] == [(400, True)]
    assert responses[0].json()["message"].startswith("dockguard")
    assert world.nothing_reached_daemon()
    if framing:
        # The framing is unknown: nothing more can be read on this connection.
        assert client.transport.disconnecting
        assert responses[0].header(b"connection") == b"close"
    else:
        # A refused path leaves the framing intact: the connection stays.
        assert not client.transport.disconnecting
        ping_works(world, client)


def test_invalid_chunk_size_aborts_the_daemon_connection() -> None:
    world = World({"BUILD": "1", "POST": "1"})
    client = world.client()
    # Request bodies stream, so the head has gone to the daemon by the time
    # the bad chunk is read: the daemon must never see a complete request,
    # nor anything that follows the bad chunk.
    client.send(
        b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nhello\r\n0\r\n\r\nGET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n"
    )
    [response] = client.responses(b"POST")
    assert (response.status, response.complete) == (400, True)
    assert client.transport.disconnecting
    up = world.up
    requests, _ = parse_requests(up.transport.value())
    assert [(r.head.target, r.complete, r.body) for r in requests] == [(b"/v1.41/build", False, b"")]
    assert up.transport.disconnected, "the daemon connection is aborted"
    assert world.pooled() == []
    assert b"secrets" not in up.transport.value()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Folded: a\r\n b\r\n\r\n", id="obs-fold"),
        pytest.param(b"GET /_ping HTTP/1.1\nHost: docker\nX-Folded: a b\n\n", id="bare-lf"),
    ],
)
def test_odd_line_syntax_never_reaches_the_daemon_as_sent(data: bytes) -> None:
    # RFC 9112 allows a server either to refuse obs-fold / bare LF with 400
    # or to read them as SP / CRLF.  h11 does the latter; either way the
    # daemon must see one plain reading of the head.
    world = World()
    client = world.client()
    client.send(data)
    if world.connections:
        raw = world.up.transport.value()
        head = raw.split(b"\r\n\r\n")[0]
        assert b"\n" not in head.replace(b"\r\n", b""), "no bare LF reaches the daemon"
        assert b"\r\n " not in raw and b"\r\n\t" not in raw, "no folded line reaches the daemon"
        [request] = world.daemon_saw()
        assert request.header(b"x-folded") == b"a b"
        world.up.dataReceived(PING_OK)
        assert client.responses(b"GET")[0].body == b"OK"
    else:
        [response] = client.responses(b"GET")
        assert response.status == 400


def test_oversized_request_head_is_refused_with_431() -> None:
    world = World(maxHeadBytes=4096)
    client = world.client()
    client.send(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n")
    for _ in range(10):
        client.send(b"X-Filler: " + b"a" * 1000 + b"\r\n")
    [response] = client.responses(b"GET")
    assert response.status == 431
    assert client.transport.disconnecting
    assert world.connections == []


@pytest.mark.parametrize("pieces", [1, 3, 100])
def test_an_oversized_head_is_refused_however_it_is_split(pieces: int) -> None:
    world = World({"CONTAINERS": "1"}, maxHeadBytes=4096)
    head = b"GET /containers/json HTTP/1.1\r\nHost: d\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
    client = world.client()
    step = -(-len(head) // pieces)
    for i in range(0, len(head), step):
        client.send(head[i : i + step])
    [response] = client.responses(b"GET")
    assert response.status == 431 and "limits.max_head_bytes" in response.json()["message"]
    assert world.nothing_reached_daemon()


def test_too_many_header_fields_are_refused_with_431() -> None:
    world = World({"CONTAINERS": "1"}, limits=Limits(headers=5))
    client = world.client()
    client.send(b"GET /containers/json HTTP/1.1\r\nHost: d\r\n" + b"X-A: 1\r\n" * 5 + b"\r\n")
    [response] = client.responses(b"GET")
    assert response.status == 431 and "limits.max_headers" in response.json()["message"]
    assert client.transport.disconnecting
    assert world.nothing_reached_daemon()


def test_as_many_header_fields_as_the_limit_are_fine() -> None:
    world = World({"CONTAINERS": "1"}, limits=Limits(headers=5))
    client = world.client()
    client.send(b"GET /containers/json HTTP/1.1\r\nHost: d\r\n" + b"X-A: 1\r\n" * 4 + b"\r\n")
    world.clock.advance(0)
    assert world.daemon_saw()[-1].head.target == b"/containers/json"


def connect(world: World, host: str = "10.0.0.1", listener: Listener | None = None) -> Client:
    client = Client.__new__(Client)
    client.proto = ClientProtocol(world.relay, listener or Listener(name="test", identity="tester"))
    client.transport = FakeTransport(IPv4Address("TCP", host, 40000))
    client.proto.makeConnection(client.transport)
    return client


def test_tcp_connections_turn_nagle_off() -> None:
    # A response that comes from the daemon in pieces must not wait for the
    # client's delayed ACK.
    assert connect(World()).transport.noDelay


def test_connections_above_the_limit_get_503_and_are_closed_until_one_leaves() -> None:
    world = World(limits=Limits(connections=2, plain_connections=2))
    first, second = connect(world, "10.0.0.1"), connect(world, "10.0.0.2")
    third = connect(world, "10.0.0.3")
    [response] = third.responses(b"GET")
    assert response.status == 503 and "limits.max_connections" in response.json()["message"]
    assert third.transport.disconnecting
    assert not first.transport.disconnecting and not second.transport.disconnecting
    first.lost()
    fourth = connect(world, "10.0.0.3")
    assert not fourth.transport.disconnecting
    ping_works(world, fourth)


def test_one_peer_cannot_take_every_connection() -> None:
    world = World(limits=Limits(connections_per_peer=2))
    flood = [connect(world, "10.6.6.6") for _ in range(3)]
    assert [c.transport.disconnecting for c in flood] == [False, False, True]
    assert "limits.max_connections_per_peer" in flood[2].responses(b"GET")[0].json()["message"]
    other = connect(world, "10.0.0.9")
    ping_works(world, other)
    flood[0].lost()
    assert not connect(world, "10.6.6.6").transport.disconnecting
    assert world.relay.perPeer == {"10.6.6.6": 2, "10.0.0.9": 1}


UNIX = Listener(name="unix:///run/dockguard.sock", identity="local")
TLS = Listener(name="tls", identity=None)


def connect_unix(world: World) -> Client:
    from twisted.internet.address import UNIXAddress

    client = Client.__new__(Client)
    client.proto = ClientProtocol(world.relay, UNIX)
    client.transport = FakeTransport(UNIXAddress(None))  # type: ignore[arg-type]
    client.proto.makeConnection(client.transport)
    return client


def test_a_plain_tcp_flood_from_many_addresses_leaves_room_for_unix_and_tls_callers() -> None:
    world = World(limits=Limits(connections=16))
    flood = [connect(world, f"10.6.{i}.1") for i in range(16)]
    admitted = [c for c in flood if not c.transport.disconnecting]
    assert len(admitted) == 8  # limits.max_plain_connections: half of max_connections
    assert "limits.max_plain_connections" in flood[-1].responses(b"GET")[0].json()["message"]
    local = connect_unix(world)
    assert not local.transport.disconnecting
    ping_works(world, local)
    tls = connect(world, "10.9.9.9", listener=TLS)
    assert not tls.transport.disconnecting


def test_a_tls_handshake_flood_leaves_room_for_unix_and_plain_callers() -> None:
    world = World(limits=Limits(connections=16))
    flood = [connect(world, f"10.6.{i}.1", listener=TLS) for i in range(16)]
    assert sum(not c.transport.disconnecting for c in flood) == 2  # an eighth
    assert not connect_unix(world).transport.disconnecting
    assert not connect(world, "10.9.9.9").transport.disconnecting
    # A handshake that completes gives its place to the next one.
    assert world.relay.perBudget == {"handshake": 2, "plain": 1}
    admitted = next(c for c in flood if not c.transport.disconnecting)
    admitted.proto._takeBudget(None)  # what handshakeCompleted does for a valid certificate
    assert not connect(world, "10.6.99.1", listener=TLS).transport.disconnecting


def test_an_ipv6_host_counts_as_one_peer_whatever_address_of_its_64_it_uses() -> None:
    from twisted.internet.address import IPv6Address

    world = World(limits=Limits(connections_per_peer=2))
    clients = []
    for i in range(3):
        client = Client.__new__(Client)
        client.proto = ClientProtocol(world.relay, Listener(name="test", identity="tester"))
        client.transport = FakeTransport(IPv6Address("TCP", f"2001:db8::{i + 1:x}", 40000))  # type: ignore[arg-type]
        client.proto.makeConnection(client.transport)
        clients.append(client)
    assert [c.transport.disconnecting for c in clients] == [False, False, True]
    assert world.relay.perPeer == {"2001:db8::/64": 2}


def test_connection_counts_return_to_zero() -> None:
    world = World(limits=Limits(connections=16))
    clients = [connect(world, "10.0.0.1"), connect(world, "10.0.0.2", listener=TLS), connect_unix(world)]
    for c in clients:
        c.lost()
    assert world.relay.perBudget == {} and world.relay.perPeer == {} and not world.relay.connections


def test_a_tls_listener_drops_connections_above_the_limit_without_a_handshake() -> None:
    world = World(limits=Limits(connections=1))
    connect(world, listener=Listener(name="tls", identity=None))
    refused = connect(world, "10.0.0.2", listener=Listener(name="tls", identity=None))
    assert refused.transport.disconnecting and refused.value() == b""


def test_a_connection_flood_is_logged_once_per_ten_seconds_with_a_count() -> None:
    world = World(limits=Limits(connections=1))
    connect(world)
    with capturedLogs() as events:
        for _ in range(50):
            connect(world, "10.0.0.2")
        world.clock.advance(10)
        connect(world, "10.0.0.2")
    warnings = [e for e in events if "refused {count}" in e.get("log_format", "")]
    assert [w["count"] for w in warnings] == [1, 50]


def test_malformed_request_line_is_refused_with_400() -> None:
    world = World()
    client = world.client()
    client.send(b"GET /_ping HTTP/1.1 extra\r\nHost: docker\r\n\r\n")
    [response] = client.responses(b"GET")
    assert response.status == 400
    assert client.transport.disconnecting
    assert world.connections == []


# -- request body streaming and flow control ----------------------------------------------------


@pytest.mark.parametrize(
    ("head", "framing", "pieces"),
    [
        pytest.param(
            b"POST /v1.41/build?t=x HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
            b"Content-Length: 10\r\n\r\n",
            {b"content-length": b"10"},
            # (what the client sends, what the daemon has read so far)
            [(b"0123", b"0123"), (b"45", b"012345"), (b"6789", b"0123456789")],
            id="content-length",
        ),
        pytest.param(
            b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n",
            {b"transfer-encoding": b"chunked", b"content-length": None},
            [(b"4\r\nabcd\r\n", b"abcd"), (b"3\r\nef", b"abcdef"), (b"g\r\n0\r\n\r\n", b"abcdefg")],
            id="chunked",
        ),
    ],
)
def test_upload_is_forwarded_as_it_arrives(
    head: bytes, framing: dict[bytes, bytes | None], pieces: list[tuple[bytes, bytes]]
) -> None:
    world = World({"BUILD": "1", "POST": "1"})
    client = world.client()
    for n, (data, body) in enumerate(pieces, 1):
        client.send((head if n == 1 else b"") + data)
        [request] = world.daemon_saw()
        assert (request.body, request.complete) == (body, n == len(pieces))
        assert {name: request.header(name) for name in framing} == framing
    world.up.dataReceived(JSON_OK)
    assert client.responses(b"POST")[0].status == 200
    assert world.pooled() == [world.up]


def test_daemon_answering_before_the_upload_ends_drops_the_rest_of_the_upload() -> None:
    world = World({"BUILD": "1", "POST": "1"})
    client = world.client()
    client.send(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 10\r\n\r\n0123")
    up = world.up
    up.dataReceived(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    assert client.responses(b"POST")[0].status == 400
    client.send(b"456789")
    assert world.daemon_saw(up)[0].body == b"0123", "the rest of the upload is not forwarded"
    assert up not in world.pooled(), "a connection with an unfinished request is not reused"
    ping_works(world, client)


def test_100_continue_from_the_daemon_reaches_the_client() -> None:
    world = World({"BUILD": "1", "POST": "1"})
    client = world.client()
    client.send(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert client.value() == b"", "the relay does not promise what the daemon has not"
    assert world.daemon_saw()[0].header(b"expect") == b"100-continue"
    world.up.dataReceived(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert client.value().startswith(b"HTTP/1.1 100 ")
    client.send(b"abc")
    assert world.daemon_saw()[0].body == b"abc"
    world.up.dataReceived(JSON_OK)
    [response] = client.responses(b"POST")
    assert (response.informational, response.status, response.body) == ([100], 200, b"{}")


@pytest.mark.parametrize(
    ("slow", "request_sent", "answer_started"),
    [
        pytest.param(
            "daemon",
            b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 100\r\n\r\nabc",
            b"",
            id="slow-daemon-pauses-the-client-upload",
        ),
        pytest.param(
            "client",
            b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            id="slow-client-pauses-the-daemon-output",
        ),
    ],
)
def test_a_slow_reader_pauses_the_other_side(slow: str, request_sent: bytes, answer_started: bytes) -> None:
    world = World({"BUILD": "1", "EVENTS": "1", "POST": "1"})
    client = world.client()
    client.send(request_sent)
    up = world.up
    if answer_started:
        up.dataReceived(answer_started)
    full, writer = (up.transport, client.transport) if slow == "daemon" else (client.transport, up.transport)
    assert writer.producerState == "producing"
    assert full.producer is not None and full.streaming
    full.producer.pauseProducing()  # the slow side's socket buffer is full
    assert writer.producerState == "paused"
    full.producer.resumeProducing()
    assert writer.producerState == "producing"


def test_upload_paused_by_the_daemon_resumes_once_the_exchange_ends() -> None:
    world = World({"BUILD": "1", "POST": "1"})
    client = world.client()
    client.send(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 10\r\n\r\n0123")
    up = world.up
    up.transport.producer.pauseProducing()
    assert client.transport.producerState == "paused"
    # The daemon refuses the upload before reading all of it.
    up.dataReceived(b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n")
    assert client.responses(b"POST")[0].status == 413
    assert client.transport.producerState == "producing", "the rest of the upload can be read and dropped"
    client.send(b"456789")
    ping_works(world, client)


def test_daemon_connection_is_not_pooled_paused_when_the_response_ends_under_backpressure() -> None:
    world = World({"EVENTS": "1"})
    client = world.client()
    client.send(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
    up = world.up
    up.dataReceived(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    # Writing the last chunk fills the client's buffer: its transport pauses
    # its producer, and the end of the response is in the same read.
    client.transport.producer.pauseProducing()
    up.dataReceived(b"0\r\n\r\n")
    assert world.pooled() == [up]
    assert up.transport.producerState == "producing"


# -- hijacked connections ------------------------------------------------------------------------


def _exec_start(extra: bytes = b"") -> bytes:
    return (
        b"POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: docker\r\n"
        b"User-Agent: Docker-Client/28.0.0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s%s"
    ) % (len(EXEC_BODY), EXEC_BODY, extra)


def test_exec_start_with_upgrade_is_spliced_both_ways() -> None:
    world = World({"EXEC": "1", "POST": "1"})
    world.relay.execOwners.record("abc", "tester")  # as if tester had created it
    client = world.client()
    client.send(_exec_start(b"stdin-1\n"))
    up = world.up
    requests, rest = parse_requests(up.transport.value())
    [request] = requests
    assert (request.head.target, request.body, request.complete) == (b"/v1.41/exec/abc/start", EXEC_BODY, True)
    assert request.header(b"connection") == b"Upgrade" and request.header(b"upgrade") == b"tcp"
    assert rest == b"", "raw bytes wait for the daemon to accept the upgrade"

    up.dataReceived(UPGRADED + b"output-1\n")
    assert client.value() == UPGRADED + b"output-1\n"
    assert parse_requests(up.transport.value())[1] == b"stdin-1\n"

    # Raw both ways, even bytes that look like HTTP: they are stdin now.
    client.send(b"GET /v1.41/secrets HTTP/1.1\r\n\r\n")
    up.dataReceived(b"output-2\n")
    assert parse_requests(up.transport.value())[1] == b"stdin-1\nGET /v1.41/secrets HTTP/1.1\r\n\r\n"
    assert client.value() == UPGRADED + b"output-1\noutput-2\n"

    # A spliced stream is never timed out.
    world.clock.advance(10 * world.relay.timeouts.idle)
    assert not client.transport.disconnecting

    # stdin ends: the half-close is passed on, output keeps flowing.
    client.proto.readConnectionLost()
    assert up.transport.writeClosed and not up.transport.disconnecting
    assert not client.transport.disconnecting
    up.dataReceived(b"output-3\n")
    assert client.value().endswith(b"output-2\noutput-3\n")

    # The daemon ends the stream: the client connection ends after the output.
    daemon_closes(up)
    assert client.transport.disconnecting
    assert client.transport.producer is None, "a registered producer would hold the close back"
    assert client.value() == UPGRADED + b"output-1\noutput-2\noutput-3\n"
    assert world.pooled() == []


def test_client_data_and_half_close_sent_before_the_upgrade_are_passed_on() -> None:
    world = World({"EXEC": "1", "POST": "1"})
    world.relay.execOwners.record("abc", "tester")  # as if tester had created it
    client = world.client()
    client.send(_exec_start(b"early"))
    client.proto.readConnectionLost()
    up = world.up
    assert not up.transport.writeClosed
    up.dataReceived(UPGRADED)
    assert parse_requests(up.transport.value())[1] == b"early"
    assert up.transport.writeClosed
    assert not client.transport.disconnecting


def test_client_leaving_a_spliced_stream_closes_the_daemon_connection() -> None:
    world = World({"EXEC": "1", "POST": "1"})
    world.relay.execOwners.record("abc", "tester")  # as if tester had created it
    client = world.client()
    client.send(_exec_start())
    up = world.up
    up.dataReceived(UPGRADED)
    client.lost()
    assert up.transport.disconnecting
    assert up.transport.producer is None
    assert world.pooled() == []


def test_attach_answered_with_a_raw_stream_200_is_spliced() -> None:
    world = World({"CONTAINERS": "1", "POST": "1"})
    client = world.client()
    client.send(b"POST /v1.41/containers/abc/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\ntyped")
    up = world.up
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
    up.dataReceived(head + b"hello from abc\n")
    assert client.value() == head + b"hello from abc\n"
    requests, rest = parse_requests(up.transport.value())
    assert [r.head.target for r in requests] == [b"/v1.41/containers/abc/attach?stream=1&stdin=1&stdout=1"]
    assert up.transport.value().endswith(b"\r\n\r\ntyped")
    client.send(b"more\n")
    assert up.transport.value().endswith(b"typedmore\n")
    client.proto.readConnectionLost()
    assert up.transport.writeClosed
    up.dataReceived(b"bye\n")
    daemon_closes(up)
    assert client.value() == head + b"hello from abc\nbye\n"
    assert client.transport.disconnecting


@pytest.mark.parametrize("framing", ["chunked", "until-close"])
def test_logs_with_a_raw_stream_content_type_are_relayed_not_spliced(framing: str) -> None:
    world = World({"CONTAINERS": "1", "ALLOW_LOGS": "1"})
    client = world.client()
    client.send(b"GET /v1.41/containers/abc/logs?stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
    up = world.up
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
    if framing == "chunked":
        up.dataReceived(head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nline1\r\n")
    else:
        up.dataReceived(head + b"\r\nline1")
    # Bytes after the request are the next request, to be judged, not stdin.
    client.send(b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n")
    if framing == "chunked":
        up.dataReceived(b"5\r\nline2\r\n0\r\n\r\n")
    else:
        up.dataReceived(b"line2")
        daemon_closes(up)
    world.clock.advance(0)
    responses = client.responses(b"GET", b"GET")
    assert [(r.status, r.body, r.complete) for r in responses][0] == (200, b"line1line2", True)
    assert responses[0].header(b"content-type") == b"application/vnd.docker.raw-stream"
    assert responses[1].status == 403
    assert [r.head.target for r in world.daemon_saw(up)] == [b"/v1.41/containers/abc/logs?stdout=1"]
    assert not client.transport.disconnecting
    ping_works(world, client)


@pytest.mark.parametrize("upgrade", [True, False], ids=["upgrade", "no-upgrade"])
def test_hijack_route_answered_with_a_json_error_is_relayed_normally(upgrade: bool) -> None:
    world = World({"EXEC": "1", "POST": "1"})
    world.relay.execOwners.record("abc", "tester")  # as if tester had created it
    client = world.client()
    if upgrade:
        client.send(_exec_start())
    else:
        client.send(
            b"POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(EXEC_BODY), EXEC_BODY)
        )
    up = world.up
    error = b'{"message":"container abc is not running"}'
    up.dataReceived(
        b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(error), error)
    )
    [response] = client.responses(b"POST")
    assert (response.status, response.body, response.complete) == (409, error, True)
    assert not client.transport.disconnecting
    ping_works(world, client)
    assert world.connections == [up], "the connection went back to the pool and carried the ping"


# -- daemon trouble -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"{}"], ids=["no-body", "body"])
def test_unreachable_daemon_gives_502_naming_the_socket(body: bytes) -> None:
    world = World({"CONTAINERS": "1", "POST": "1"})
    world.endpoint.fail_next(ConnectError("No such file or directory"))
    client = world.client()
    client.send(
        b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    [response] = client.responses(b"POST")
    assert (response.status, response.complete) == (502, True)
    message = response.json()["message"]
    assert SOCKET in message and "No such file or directory" in message
    assert not client.transport.disconnecting
    assert client.transport.producerState == "producing"
    ping_works(world, client)


MISSING_ATTACH = b"POST /v1.41/containers/missing/attach?stream=1 HTTP/1.1\r\nHost: docker\r\n\r\n"
#: What the daemon answers an attach to a missing container: no length, the
#: body ends with the connection.
NO_LENGTH_404 = b'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{"message":"No such container"}'


@pytest.mark.parametrize("eof", ["half-close", "half-close-then-gone"])
def test_a_connection_whose_response_had_no_length_is_never_pooled(eof: str) -> None:
    world = World({"CONTAINERS": "1", "POST": "1"})
    looper, uploader = world.client(), world.client()
    looper.send(MISSING_ATTACH)
    first = world.up
    first.dataReceived(NO_LENGTH_404)
    assert first.reusable() is False, "no length: this connection ends with the body"
    # The daemon half-closes: the body, and the exchange, end here.
    first.readConnectionLost()
    if eof == "half-close-then-gone":
        first.connectionLost(Failure(ConnectionDone()))
    [answer] = looper.responses(b"POST")
    assert (answer.status, answer.complete) == (404, True)
    assert world.pooled() == []
    # Another caller's streamed upload gets a connection of its own.
    uploader.send(b"POST /v1.41/containers/c/archive?path=/ HTTP/1.1\r\nHost: docker\r\nContent-Length: 3\r\n\r\nab")
    second = world.up
    assert second is not first
    uploader.send(b"c")
    assert world.daemon_saw(second)[0].body == b"abc"


def test_the_pool_never_hands_out_a_connection_the_daemon_half_closed_while_idle() -> None:
    from twisted.internet.testing import MemoryReactor

    from dockguard.relay import DaemonPool

    reactor = MemoryReactor()
    pool = DaemonPool.unix(reactor, SOCKET)
    up = UpstreamProtocol(pool)
    up.makeConnection(FakeTransport())

    class Owner:
        def responseHead(self, head: object) -> None:
            pass

        def responseBody(self, data: bytes) -> None:
            pass

        def responseEnd(self) -> None:
            pass

    up.request(Owner(), b"GET", b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")  # type: ignore[arg-type]
    up.dataReceived(PING_OK)
    pool.release(up)
    assert pool.idleCount == 1
    up.readConnectionLost()  # the daemon closed the idle connection; connectionLost comes later
    assert pool.take() is None
    got: list[UpstreamProtocol] = []
    pool.connect().addCallback(got.append)
    assert got == [] and len(reactor.unixClients) == 1, "a new connection is made instead"


def test_closed_pooled_connection_is_retried_once_on_a_new_one() -> None:
    world = World()
    client = world.client()
    client.send(PING)
    first = world.up
    first.dataReceived(PING_OK)
    assert world.pooled() == [first]

    client.send(PING)
    assert len(world.daemon_saw(first)) == 2
    # The daemon had closed the idle connection meanwhile.
    daemon_closes(first)
    second = world.up
    assert second is not first
    assert [r.head.target for r in world.daemon_saw(second)] == [b"/_ping"]
    assert len(client.responses(b"GET", b"GET")) == 1, "no error was sent"
    second.dataReceived(PING_OK)
    assert [(r.status, r.body) for r in client.responses(b"GET", b"GET")] == [(200, b"OK"), (200, b"OK")]
    assert not client.transport.disconnecting


def test_retried_request_leaves_its_new_connection_reusable() -> None:
    world = World()
    client = world.client()
    client.send(PING)
    first = world.up
    first.dataReceived(PING_OK)
    client.send(PING)
    daemon_closes(first)
    second = world.up
    second.dataReceived(PING_OK)
    assert world.pooled() == [second]


def test_retry_happens_once_only() -> None:
    world = World()
    client = world.client()
    client.send(PING)
    world.up.dataReceived(PING_OK)
    client.send(PING)
    daemon_closes(world.up)
    daemon_closes(world.up)
    assert len(world.connections) == 2
    responses = client.responses(b"GET", b"GET")
    assert [r.status for r in responses] == [200, 502]
    assert "closed the connection before answering" in responses[1].json()["message"]


def test_request_with_a_body_is_not_replayed() -> None:
    world = World({"CONTAINERS": "1", "POST": "1"})
    client = world.client()
    client.send(PING)
    world.up.dataReceived(PING_OK)
    client.send(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n{}")
    daemon_closes(world.up)
    assert len(world.connections) == 1
    assert [r.status for r in client.responses(b"GET", b"POST")] == [200, 502]


@pytest.mark.parametrize(
    ("target", "start", "partial"),
    [
        pytest.param(
            b"/v1.41/images/json",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",
            b"partial",
            id="content-length",
        ),
        pytest.param(
            b"/v1.41/images/json",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n",
            b"partial",
            id="chunked",
        ),
        pytest.param(
            b"/v1.41/containers/c/logs?follow=1",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"ab",
            id="chunked-inside-a-chunk",
        ),
    ],
)
def test_daemon_closing_mid_response_closes_the_client_connection(target: bytes, start: bytes, partial: bytes) -> None:
    world = World({"CONTAINERS": "1", "IMAGES": "1"})
    client = world.client()
    client.send(b"GET %s HTTP/1.1\r\nHost: docker\r\n\r\n" % target)
    world.up.dataReceived(start)
    daemon_closes(world.up)
    [response] = client.responses(b"GET")
    assert (response.body, response.complete) == (partial, False)
    assert client.transport.disconnecting
    assert world.pooled() == []


# -- timeouts ------------------------------------------------------------------------------------

TIMEOUTS = Timeouts(header=5.0, idle=60.0)


def test_stalled_request_head_gets_408_and_is_closed() -> None:
    world = World(timeouts=TIMEOUTS)
    client = world.client()
    world.clock.advance(1)
    client.send(b"GET /_ping HTTP/1.1\r\nHost: dock")
    world.clock.advance(4.9)
    assert client.value() == b"" and not client.transport.disconnecting
    world.clock.advance(0.2)
    [response] = client.responses(b"GET")
    assert response.status == 408 and "5 s" in response.json()["message"]
    assert client.transport.disconnecting
    assert world.connections == []


def test_idle_keepalive_connection_is_closed_after_the_idle_timeout() -> None:
    world = World(timeouts=TIMEOUTS)
    client = world.client()
    client.send(PING)
    world.up.dataReceived(PING_OK)
    answered = client.value()
    world.clock.advance(59.9)
    assert not client.transport.disconnecting
    world.clock.advance(0.2)
    assert client.transport.disconnecting
    assert client.value() == answered, "an idle close sends nothing"


def test_streaming_response_is_never_timed_out() -> None:
    world = World({"EVENTS": "1"}, timeouts=TIMEOUTS)
    client = world.client()
    client.send(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
    world.clock.advance(1000)
    world.up.dataReceived(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(10):
        world.clock.advance(1000)
        world.up.dataReceived(b"1\r\nx\r\n")
    assert not client.transport.disconnecting
    world.up.dataReceived(b"0\r\n\r\n")
    assert client.responses(b"GET")[0].body == b"x" * 10
    assert not client.transport.disconnecting


def test_slow_upload_is_not_closed_by_the_header_timeout() -> None:
    world = World({"BUILD": "1", "POST": "1"}, timeouts=TIMEOUTS)
    client = world.client()
    client.send(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 3\r\n\r\na")
    world.clock.advance(1000)
    client.send(b"bc")
    assert not client.transport.disconnecting
    assert world.daemon_saw()[0].complete


# -- the client going away -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_sent", "answer_started"),
    [
        pytest.param(
            b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n",
            id="mid-response",
        ),
        pytest.param(
            b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 10\r\n\r\n01",
            b"",
            id="before-the-request-is-sent-upstream",
        ),
    ],
)
def test_client_leaving_mid_exchange_aborts_the_daemon_connection(request_sent: bytes, answer_started: bytes) -> None:
    world = World({"BUILD": "1", "EVENTS": "1", "POST": "1"})
    client = world.client()
    client.send(request_sent)
    up = world.up
    if answer_started:
        up.dataReceived(answer_started)
    client.lost()
    assert up.transport.disconnected
    assert world.pooled() == []
    up.connectionLost(Failure(ConnectionLost()))
    assert world.pooled() == [] and not up.alive, "a lost connection is never handed out"


def test_client_fin_after_a_request_ends_the_exchange() -> None:
    """
    Outside a hijack, a FIN means the client is gone (a closed client and a
    half-closed one look the same until a write fails, which on a quiet
    events stream is never): the daemon connection is not kept for it.
    """
    world = World()
    client = world.client()
    client.send(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
    up = world.up
    client.proto.readConnectionLost()
    assert client.transport.disconnecting
    client.lost()
    assert up.transport.disconnecting or up.transport.disconnected


def test_client_that_stops_sending_mid_body_is_not_relayed_as_complete() -> None:
    world = World({"BUILD": "1", "POST": "1"})
    client = world.client()
    client.send(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: 10\r\n\r\n12345")
    client.proto.readConnectionLost()
    assert client.transport.disconnecting
    assert not world.daemon_saw()[-1].complete


def test_a_learning_listener_lets_refusals_through_and_logs_them_as_would_deny() -> None:
    world = World()  # Tecnativa defaults: containers closed
    with capturedLogs() as events:
        client = Client.__new__(Client)
        client.proto = ClientProtocol(world.relay, Listener(name="learning", identity="tool", learn=True))
        client.transport = FakeTransport()
        client.proto.makeConnection(client.transport)
        client.send(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
        world.clock.advance(0)
        assert world.daemon_saw()[-1].head.target == b"/v1.41/containers/json"
        world.up.dataReceived(JSON_OK)
    [decision] = decisions(events)
    assert decision["decision"] == "would-deny"
    assert decision["status"] == 200
    assert decision["rule"] == "learn (listener learning): would deny: CONTAINERS=0"


# -- decision lines and metrics --------------------------------------------------------


def test_a_relayed_request_is_logged_when_its_answer_starts_with_status_and_latency() -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    with capturedLogs() as events:
        client.send(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
        world.clock.advance(0.25)
        assert decisions(events) == []  # not answered yet
        world.up.dataReceived(JSON_OK)
    [line] = decisions(events)
    assert (line["decision"], line["status"], line["section"]) == ("allow", 200, "containers")
    assert line["latency_ms"] == 250.0
    assert line["canonical"] == "/containers/json"


def test_a_refusal_is_logged_at_once_with_its_status() -> None:
    world = World()
    client = world.client()
    with capturedLogs() as events:
        client.send(b"GET /v1.41/images/json HTTP/1.1\r\nHost: docker\r\n\r\n")
    [line] = decisions(events)
    assert (line["decision"], line["status"], line["rule"], line["section"]) == ("deny", 403, "IMAGES=0", "images")


def test_a_request_whose_daemon_is_down_is_logged_with_the_502() -> None:
    world = World({"CONTAINERS": "1"})
    world.endpoint.fail_next(ConnectionRefusedError("no daemon"))
    client = world.client()
    with capturedLogs() as events:
        client.send(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
        world.clock.advance(0)
    [line] = decisions(events)
    assert (line["decision"], line["status"]) == ("allow", 502)


def test_a_client_that_leaves_before_the_answer_is_logged_without_status() -> None:
    world = World({"CONTAINERS": "1"})
    client = world.client()
    with capturedLogs() as events:
        client.send(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
        world.clock.advance(0)
        client.lost()
    [line] = decisions(events)
    assert (line["decision"], line["status"]) == ("allow", None)
    assert "no answer" in formatEvent(line)


@pytest.mark.parametrize(
    "request_line",
    [
        # %0a decodes to a newline (the path is refused, and says so).
        b"GET /v1.41/images/json%0a2026-11-23T00:00:00+0000%20[dockguard#info]%20allow HTTP/1.1",
        # Terminal escapes and a bare CR in a request line that is refused
        # as malformed: its method and target are in the decision line.
        b"G\x1b[31mET /x\rallow HTTP/1.1",
    ],
)
def test_request_values_in_a_decision_line_are_escaped(request_line: bytes) -> None:
    world = World()
    client = world.client()
    with capturedLogs() as events:
        client.send(request_line + b"\r\nHost: d\r\n\r\n")
    assert decisions(events)
    text = "".join(formatEvent(e) for e in events)
    assert not any(ch in text for ch in "\n\r\x1b")
    if b"\x1b" in request_line:
        assert "\\x1b[31m" in text and "\\r" in text, text


def test_gauges_count_streams_and_hijacks_from_the_live_connections() -> None:
    world = World({"CONTAINERS": "1", "EVENTS": "1"})
    client = world.client()
    assert world.relay.connections == {client.proto}
    client.send(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
    world.clock.advance(0)
    assert not client.proto.streaming
    world.up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert client.proto.streaming and not client.proto.hijacked
    client.lost()
    assert world.relay.connections == set()


def test_daemon_reads_grow_only_for_bulk_and_shrink_for_the_next_request() -> None:
    """
    Small answers are read 64 KiB at a time (a buffer above malloc's mmap
    threshold costs a map and an unmap per read); a read that fills the
    buffer moves to 256 KiB until the next request.
    """
    from dockguard.relay.daemon import BULK_READ_SIZE, READ_SIZE

    world = World({"CONTAINERS": "1"})
    client = world.client()
    client.send(b"GET /v1.41/containers/c/export HTTP/1.1\r\nHost: docker\r\n\r\n")
    up = world.up
    assert up.transport.bufferSize == READ_SIZE
    up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * READ_SIZE))
    up.dataReceived(b"x" * READ_SIZE)
    assert up.transport.bufferSize == BULK_READ_SIZE
    up.dataReceived(b"x" * READ_SIZE)
    client.send(PING)
    assert world.up is up and up.transport.bufferSize == READ_SIZE


def test_the_client_state_machine_refuses_a_move_outside_its_table() -> None:
    from dockguard.relay import State
    from dockguard.relay.states import TRANSITIONS

    assert set(TRANSITIONS) == set(State)
    client = World().client()
    assert client.proto.state is State.IDLE
    with pytest.raises(AssertionError, match="idle cannot move to spliced"):
        client.proto._to(State.SPLICED)
