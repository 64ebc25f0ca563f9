"""
The relay's scope stage (issue 14), in memory: what the client and the
daemon see on the wire when a group has a scope, a redaction, or when the
request creates something or uses an exec instance.

The fakes are those of C{tests/harness/relayworld.py}: the client
connection and every daemon connection are on L{StringTransport}s, the
clock is a L{MemoryReactorClock}; each test plays the daemon by feeding its
answers to the daemon connection.  A scoped request is looked up first (the relay's
own C{GET} of the resource, L{dockguard.relay.lookup}); nothing of the
request itself may reach the daemon before that look-up is answered and
judged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import pytest
from twisted.logger import capturedLogs

from dockguard.groups import Group, GroupPolicy
from dockguard.relay import ClientProtocol, Listener, State
from dockguard.relay.lookup import CACHE_SECONDS, LOOKUP_TIMEOUT, MAX_ANSWER, Fetch
from dockguard.relay.states import RESOLVING, TRANSITIONS
from dockguard.scope import OWNER_LABEL, Scope
from dockguard.views import REDACTED
from harness.relayworld import (
    PING,
    PING_OK,
    UPGRADED,
    Client,
    FakeTransport,
    Message,
    World,
    clean_answers,
    daemon_closes,
    decisions,
    everything_the_daemon_saw,
    parse_requests,
    parse_responses,
)

# -- the daemon's resources ----------------------------------------------------------


def full_id(name: str) -> str:
    """A container's full ID (64 hex digits), made up from its name."""
    return hashlib.sha256(name.encode()).hexdigest()


WEB = full_id("web")
DB = full_id("db")
CACHE = full_id("cache")
EXEC_ID = full_id("exec-1")

HEALED = {"autoheal": "true"}


def inspect(ident: str, name: str, labels: dict[str, str] | None = None, **extra: object) -> dict:
    """A container inspect as the daemon gives it (the fields the relay reads, and some)."""
    return {
        "Id": ident,
        "Name": "/" + name,
        "State": {"Running": True},
        "Config": {"Image": "busybox", "Labels": labels or {}, **extra},
    }


def answer(status: int, body: bytes) -> bytes:
    """A daemon answer with a JSON body, framed by its length."""
    reason = {200: b"OK", 201: b"Created", 404: b"Not Found"}.get(status, b"Error")
    return (
        b"HTTP/1.1 %d %s\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % (status, reason, len(body))
        + body
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def ok(value: object, status: int = 200) -> bytes:
    return answer(status, json.dumps(value).encode() + b"\n")


NO_SUCH_WEB = answer(404, b'{"message":"No such container: web"}\n')
STARTED = b"HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n"

# -- policies ----------------------------------------------------------------------------

LABELS = Scope(labels=("autoheal=true",))
NAMES = Scope(names=("web*",))


def group(
    scope: Scope | None = LABELS,
    sections: dict[str, str] | None = None,
    actions: Iterable[str] = (),
    redact: Iterable[str] = (),
    name: str = "g",
) -> Group:
    return Group(
        name=name,
        sections=sections if sections is not None else {"containers": "read", "ping": "read", "events": "read"},
        actions=frozenset(actions),
        scope=scope,
        redact=frozenset(redact),
    )


def scoped_world(*groups: Group, identities: Iterable[str] = ("tester",)) -> World:
    """A relay whose policy gives each of C{identities} the C{groups} (by default, one label-scoped reader)."""
    if not groups:
        groups = (group(),)
    world = World()
    world.relay.policy = GroupPolicy(
        identities={identity: tuple(g.name for g in groups) for identity in identities},
        groups={g.name: g for g in groups},
    )
    return world


WRITER = {"containers": "write", "exec": "write", "ping": "read"}


class Caller(Client):
    """A client connection of C{identity}."""

    def __init__(self, world: World, identity: str = "tester", learn: bool = False) -> None:
        self.proto = ClientProtocol(world.relay, Listener(name="test", identity=identity, learn=learn))
        self.transport = FakeTransport()
        self.proto.makeConnection(self.transport)


# -- what each side saw ------------------------------------------------------------------


def seen(world: World) -> list[tuple[bytes, bytes]]:
    """(method, target) of every request the daemon received, complete or not."""
    return [(r.head.method, r.head.target) for r in everything_the_daemon_saw(world)]


def requests_on(up) -> list[Message]:
    return parse_requests(up.transport.value(), upgraded=False)[0]


def lookup(path: str) -> tuple[bytes, bytes]:
    """The look-up the relay sends for C{path} (no API version, no query)."""
    return (b"GET", path.encode())


def asking(world: World):
    """The daemon connection a look-up is waiting on."""
    [up] = [up for up in world.connections if isinstance(up.owner, Fetch)]
    return up


def one_answer(client: Client, method: bytes = b"GET") -> Message:
    [response] = clean_answers(client, [method])
    return response


def error_of(response: Message) -> str:
    return json.loads(response.body)["message"]


def get(target: bytes, version: bytes = b"1.1") -> bytes:
    return b"GET %s HTTP/%s\r\nHost: docker\r\n\r\n" % (target, version)


def post(target: bytes, body: bytes = b"", method: bytes = b"POST", ctype: bytes = b"application/json") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: docker\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        method,
        target,
        ctype,
        len(body),
        body,
    )


# -- a named resource: looked up, judged, relayed to its full ID ---------------------------


def test_a_scoped_inspect_is_looked_up_then_relayed_to_the_full_id_with_its_query() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json?size=1"))
    assert client.proto.state is RESOLVING
    assert seen(world) == [lookup("/containers/web/json")], "only the look-up goes first"
    assert world.relay.resolver.asked == 1
    assert client.value() == b""

    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    assert seen(world) == [lookup("/containers/web/json"), (b"GET", f"/v1.41/containers/{WEB}/json?size=1".encode())]
    assert client.value() == b""
    assert client.proto.state is State.FORWARDING

    mine = inspect(WEB, "web", HEALED, Env=["A=1"])
    world.up.dataReceived(ok(mine))
    response = one_answer(client)
    assert (response.status, json.loads(response.body)) == (200, mine)
    assert client.proto.state is State.IDLE and not client.transport.disconnecting


def test_the_daemons_answer_to_the_relayed_request_is_the_callers_even_an_error() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    world.up.dataReceived(answer(409, b'{"message":"conflict"}\n'))
    response = one_answer(client)
    assert (response.status, response.body) == (409, b'{"message":"conflict"}\n')


def test_a_container_outside_the_scope_is_answered_as_missing_and_nothing_else_reaches_the_daemon() -> None:
    world = scoped_world()
    client = Caller(world)
    with capturedLogs() as events:
        client.send(get(b"/v1.41/containers/web/json"))
        asking(world).dataReceived(ok(inspect(WEB, "web", {"autoheal": "false"})))
    response = one_answer(client)
    assert (response.status, json.loads(response.body)) == (404, {"message": "No such container: web"})
    assert seen(world) == [lookup("/containers/web/json")]
    [line] = decisions(events)
    assert (line["decision"], line["rule"], line["status"]) == ("deny", "scope", 404)
    assert "outside the scope" in line["reason"] and "label autoheal=true" in line["reason"]
    assert client.proto.state is State.IDLE, "the connection stays usable"


def test_a_container_the_daemon_does_not_know_gets_the_same_404() -> None:
    world = scoped_world()
    client = Caller(world)
    with capturedLogs() as events:
        client.send(get(b"/v1.41/containers/web/json"))
        asking(world).dataReceived(NO_SUCH_WEB)
    response = one_answer(client)
    assert (response.status, json.loads(response.body)) == (404, {"message": "No such container: web"})
    assert seen(world) == [lookup("/containers/web/json")]
    [line] = decisions(events)
    assert (line["decision"], line["rule"]) == ("deny", "scope")


def test_missing_and_out_of_scope_look_alike_to_the_caller() -> None:
    bodies = []
    for daemon_says in (NO_SUCH_WEB, ok(inspect(WEB, "web"))):
        world = scoped_world()
        client = Caller(world)
        client.send(get(b"/v1.41/containers/web/json"))
        asking(world).dataReceived(daemon_says)
        bodies.append(client.value())
    assert bodies[0] == bodies[1]


BAD_LOOKUPS = [
    pytest.param(answer(500, b'{"message":"boom"}'), "answered the look-up with 500", id="500"),
    pytest.param(answer(200, b"<html>not json"), "not JSON", id="not-json"),
    pytest.param(ok(["a", "list"]), "not an object", id="not-an-object"),
    pytest.param(ok({"Name": "/web"}), "no ID or name", id="no-id"),
    pytest.param(b"HTTP/1.1 2000 What\r\n\r\n", "closed the connection", id="garbage-status-line"),
]


@pytest.mark.parametrize(("daemon_says", "why"), BAD_LOOKUPS)
def test_a_look_up_the_relay_cannot_read_gives_502_naming_it(daemon_says: bytes, why: str) -> None:
    world = scoped_world()
    client = Caller(world)
    with capturedLogs() as events:
        client.send(get(b"/v1.41/containers/web/json"))
        asking(world).dataReceived(daemon_says)
    response = one_answer(client)
    assert response.status == 502
    assert error_of(response).startswith("dockguard: cannot look up container web at the Docker daemon: ")
    assert why in error_of(response)
    assert seen(world) == [lookup("/containers/web/json")]
    [line] = decisions(events)
    assert (line["decision"], line["rule"], line["status"]) == ("refuse", "lookup", 502)
    assert client.proto.state is State.IDLE


def test_a_look_up_whose_connection_is_lost_gives_502() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    daemon_closes(asking(world))
    response = one_answer(client)
    assert response.status == 502 and "cannot look up container web" in error_of(response)
    assert "closed the connection" in error_of(response)
    assert seen(world) == [lookup("/containers/web/json")]


def test_a_look_up_answer_larger_than_the_bound_gives_502_and_is_not_read_further() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    up = asking(world)
    up.dataReceived(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (MAX_ANSWER + 10)
    )
    up.dataReceived(b" " * (MAX_ANSWER // 2))
    assert client.value() == b""
    up.dataReceived(b" " * (MAX_ANSWER // 2 + 1))
    response = one_answer(client)
    assert response.status == 502 and f"larger than {MAX_ANSWER} bytes" in error_of(response)
    assert up.transport.disconnecting, "the look-up's connection is dropped, not pooled"
    assert world.pooled() == []
    assert seen(world) == [lookup("/containers/web/json")]


def test_a_look_up_the_daemon_does_not_answer_times_out_with_502() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    up = asking(world)
    world.clock.advance(LOOKUP_TIMEOUT - 0.5)
    assert client.value() == b""
    world.clock.advance(0.5)
    response = one_answer(client)
    assert response.status == 502 and "did not answer within 10 s" in error_of(response)
    assert up.transport.disconnecting
    # A late answer goes nowhere.
    up.dataReceived(ok(inspect(WEB, "web", HEALED)))
    assert seen(world) == [lookup("/containers/web/json")]
    assert len(clean_answers(client, [b"GET"])) == 1


def test_a_client_leaving_while_its_request_is_looked_up_sends_nothing_further() -> None:
    world = scoped_world()
    client = Caller(world)
    assert len(world.relay.connections) == 1
    client.send(get(b"/v1.41/containers/web/json"))
    up = asking(world)
    client.lost()
    assert world.relay.connections == set()
    up.dataReceived(ok(inspect(WEB, "web", HEALED)))
    world.clock.advance(0)
    assert seen(world) == [lookup("/containers/web/json")]
    assert client.value() == b""
    assert world.pooled() == [up], "the look-up's connection goes back to the pool"
    world.clock.advance(LOOKUP_TIMEOUT + 1)
    assert seen(world) == [lookup("/containers/web/json")]


def test_a_client_leaving_before_a_look_up_that_fails_gets_no_answer() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    client.lost()
    world.clock.advance(LOOKUP_TIMEOUT)
    assert client.value() == b""
    assert world.relay.connections == set()


def test_a_volume_in_scope_is_looked_up_and_relayed_by_its_name() -> None:
    world = scoped_world(group(sections={"volumes": "read"}))
    client = Caller(world)
    client.send(get(b"/v1.41/volumes/data"))
    assert seen(world) == [lookup("/volumes/data")]
    asking(world).dataReceived(ok({"Name": "data", "Driver": "local", "Labels": HEALED, "Options": None}))
    assert seen(world)[-1] == (b"GET", b"/v1.41/volumes/data")


def test_a_network_out_of_scope_gets_the_daemons_words_for_a_missing_one() -> None:
    world = scoped_world(group(sections={"networks": "read"}))
    client = Caller(world)
    client.send(get(b"/networks/front"))
    assert seen(world) == [lookup("/networks/front")]
    asking(world).dataReceived(ok({"Id": full_id("front"), "Name": "front", "Labels": {}}))
    response = one_answer(client)
    assert (response.status, json.loads(response.body)) == (404, {"message": "network front not found"})
    assert seen(world) == [lookup("/networks/front")]


def test_any_container_name_is_looked_up_the_daemon_decides_what_it_names() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/-web/json"))
    assert seen(world) == [lookup("/containers/-web/json")]
    asking(world).dataReceived(answer(404, b'{"message":"No such container: -web"}'))
    response = one_answer(client)
    assert (response.status, json.loads(response.body)) == (404, {"message": "No such container: -web"})
    assert seen(world) == [lookup("/containers/-web/json")]


def test_a_commit_whose_container_is_not_a_name_is_missing_without_a_look_up() -> None:
    world = scoped_world(group(sections={"commit": "write"}))
    client = Caller(world)
    client.send(post(b"/v1.41/commit?container=-web", b"{}"))
    response = one_answer(client, b"POST")
    assert (response.status, json.loads(response.body)) == (404, {"message": "No such container: -web"})
    assert world.connections == [] and world.relay.resolver.asked == 0


def test_a_look_up_when_the_daemon_is_down_gives_502() -> None:
    world = scoped_world()
    world.endpoint.fail_next(ConnectionRefusedError("no daemon"))
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    response = one_answer(client)
    assert response.status == 502
    assert error_of(response) == (
        "dockguard: cannot look up container web at the Docker daemon: cannot reach the Docker daemon: no daemon"
    )


def test_a_head_request_is_looked_up_with_a_get_and_relayed_as_a_head() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(b"HEAD /v1.41/containers/web/json HTTP/1.1\r\nHost: docker\r\n\r\n")
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    assert seen(world) == [lookup("/containers/web/json"), (b"HEAD", f"/v1.41/containers/{WEB}/json".encode())]
    world.up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    [response] = clean_answers(client, [b"HEAD"])
    assert (response.status, response.body, response.header(b"content-length")) == (200, b"", b"100")


def test_stdin_sent_while_an_attach_is_looked_up_waits_for_the_upgrade() -> None:
    world = scoped_world(group(sections={"containers": "write"}))
    client = Caller(world)
    client.send(
        b"POST /v1.41/containers/web/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nstdin-1\n"
    )
    up = asking(world)
    up.dataReceived(ok(inspect(WEB, "web", HEALED)))
    requests, rest = parse_requests(up.transport.value())
    assert [r.head.target for r in requests] == [
        b"/containers/web/json",
        f"/v1.41/containers/{WEB}/attach?stream=1&stdin=1".encode(),
    ]
    assert rest == b"", "stdin waits for the daemon to accept the upgrade"
    up.dataReceived(UPGRADED + b"output")
    assert client.value() == UPGRADED + b"output"
    assert parse_requests(up.transport.value())[1] == b"stdin-1\n"


def test_commit_names_its_container_in_the_query_and_is_relayed_to_the_id() -> None:
    world = scoped_world(group(sections={"commit": "write"}))
    client = Caller(world)
    client.send(post(b"/v1.41/commit?pause=1&container=web&comment=c", b"{}"))
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    assert seen(world) == [
        lookup("/containers/web/json"),
        (b"POST", f"/v1.41/commit?pause=1&comment=c&container={WEB}".encode()),
    ]


def test_a_learning_listener_relays_what_the_scope_would_refuse_as_sent() -> None:
    world = scoped_world()
    client = Caller(world, learn=True)
    with capturedLogs() as events:
        client.send(get(b"/v1.41/containers/web/json"))
        asking(world).dataReceived(ok(inspect(WEB, "web")))
        assert seen(world)[-1] == (b"GET", b"/v1.41/containers/web/json")
        world.up.dataReceived(ok(inspect(WEB, "web")))
    [line] = decisions(events)
    assert (line["decision"], line["status"]) == ("would-deny", 200)


# -- the cache ---------------------------------------------------------------------------


def _inspect_web(world: World, client: Client, look_up: bytes | None = None) -> None:
    """C{GET /containers/web/json}, answering a look-up with C{look_up} if one is made, and then the request."""
    before = len(client.value())
    client.send(get(b"/v1.41/containers/web/json"))
    world.clock.advance(0)
    if look_up is not None:
        asking(world).dataReceived(look_up)
    assert seen(world)[-1] == (b"GET", f"/v1.41/containers/{WEB}/json".encode())
    world.up.dataReceived(ok(inspect(WEB, "web", HEALED)))
    [response] = parse_responses(client.value()[before:], [b"GET"])
    assert response.status == 200 and response.complete


def test_a_label_scope_judges_again_from_a_look_up_made_less_than_a_second_ago() -> None:
    world = scoped_world()
    client = Caller(world)
    resolver = world.relay.resolver
    _inspect_web(world, client, ok(inspect(WEB, "web", HEALED)))
    assert resolver.asked == 1
    world.clock.advance(CACHE_SECONDS / 2)
    _inspect_web(world, client)  # no look-up
    assert resolver.asked == 1
    assert [t for _, t in seen(world)].count(b"/containers/web/json") == 1
    world.clock.advance(CACHE_SECONDS / 2)
    _inspect_web(world, client, ok(inspect(WEB, "web", HEALED)))
    assert resolver.asked == 2
    assert [t for _, t in seen(world)].count(b"/containers/web/json") == 2


def test_the_cache_is_shared_by_connections_and_kept_per_name() -> None:
    world = scoped_world()
    first, second = Caller(world), Caller(world)
    _inspect_web(world, first, ok(inspect(WEB, "web", HEALED)))
    _inspect_web(world, second)
    assert world.relay.resolver.asked == 1
    second.send(get(b"/v1.41/containers/%s/json" % WEB[:12].encode()))
    assert seen(world)[-1] == lookup(f"/containers/{WEB[:12]}/json")
    assert world.relay.resolver.asked == 2


def test_a_container_the_daemon_did_not_know_is_looked_up_again() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    asking(world).dataReceived(NO_SUCH_WEB)
    assert one_answer(client).status == 404
    # Created meanwhile: the next request looks it up again.
    _inspect_web(world, client, ok(inspect(WEB, "web", HEALED)))
    assert world.relay.resolver.asked == 2


def test_a_names_scope_judges_by_a_fresh_look_up_not_a_remembered_one() -> None:
    world = scoped_world(group(scope=NAMES))
    client = Caller(world)
    resolver = world.relay.resolver
    client.send(get(b"/v1.41/containers/web/json"))
    asking(world).dataReceived(ok(inspect(WEB, "web")))
    assert seen(world)[-1] == (b"GET", f"/v1.41/containers/{WEB}/json".encode())
    world.up.dataReceived(ok(inspect(WEB, "web")))
    assert one_answer(client).status == 200
    assert resolver.asked == 1, "a look-up just made is fresh: the name is judged from it"

    # Within the second: the remembered look-up is not enough to judge a
    # name (a rename may have happened), so it is looked up again.
    before = len(client.value())
    client.send(get(b"/v1.41/containers/web/json"))
    assert seen(world)[-1] == lookup("/containers/web/json")
    assert resolver.asked == 2
    # Renamed meanwhile: the name no longer matches.
    asking(world).dataReceived(ok(inspect(WEB, "other")))
    [response] = parse_responses(client.value()[before:], [b"GET"])
    assert (response.status, json.loads(response.body)) == (404, {"message": "No such container: web"})
    assert [t for _, t in seen(world)].count(f"/v1.41/containers/{WEB}/json".encode()) == 1


def test_a_label_held_by_a_remembered_look_up_needs_no_fresh_one_even_with_names_in_the_scope() -> None:
    world = scoped_world(group(scope=Scope(names=("db*",), labels=("autoheal=true",))))
    client = Caller(world)
    _inspect_web(world, client, ok(inspect(WEB, "web", HEALED)))
    _inspect_web(world, client)
    assert world.relay.resolver.asked == 1


@pytest.mark.parametrize(
    "forgetting",
    [
        pytest.param(b"DELETE /v1.41/containers/web?force=1 HTTP/1.1\r\nHost: docker\r\n\r\n", id="delete"),
        pytest.param(post(b"/v1.41/containers/web/rename?name=web2"), id="rename"),
    ],
)
def test_delete_and_rename_forget_the_remembered_look_up(forgetting: bytes) -> None:
    world = scoped_world(group(sections=WRITER))
    client = Caller(world)
    resolver = world.relay.resolver
    _inspect_web(world, client, ok(inspect(WEB, "web", HEALED)))
    before = len(client.value())
    client.send(forgetting)
    world.clock.advance(0)
    # Judged from what was remembered, and relayed to the ID judged.
    assert resolver.asked == 1
    method, target = seen(world)[-1]
    assert target.startswith(f"/v1.41/containers/{WEB}".encode())
    assert target.endswith(b"?force=1" if method == b"DELETE" else b"/rename?name=web2")
    world.up.dataReceived(STARTED)
    assert parse_responses(client.value()[before:], [method])[0].status == 204
    # The next request under the old name is looked up again.
    _inspect_web(world, client, ok(inspect(WEB, "web", HEALED)))
    assert resolver.asked == 2


# -- a request with a body, while its resource is looked up -------------------------------


def test_an_upload_is_held_while_its_container_is_looked_up_then_relayed_once() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    archive = b"tar-bytes-" * 100
    head = (
        b"PUT /v1.41/containers/web/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\n"
        b"Content-Type: application/x-tar\r\nContent-Length: %d\r\n\r\n" % len(archive)
    )
    client.send(head + archive[:300])
    up = asking(world)
    assert requests_on(up)[0].head.target == b"/containers/web/json"
    client.send(archive[300:])
    world.clock.advance(0)
    assert seen(world) == [lookup("/containers/web/json")], "no byte of the upload before the look-up is answered"

    up.dataReceived(ok(inspect(WEB, "web", HEALED)))
    world.clock.advance(0)
    [_, relayed] = requests_on(up)
    assert relayed.head.target == f"/v1.41/containers/{WEB}/archive?path=/tmp".encode()
    assert (relayed.body, relayed.complete) == (archive, True)
    up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert one_answer(client, b"PUT").status == 200
    assert requests_on(up)[1].body == archive, "relayed once"


def test_an_upload_to_a_container_out_of_scope_is_dropped_and_never_reaches_the_daemon() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    archive = b"x" * 500
    client.send(
        b"PUT /v1.41/containers/web/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(archive), archive[:100])
    )
    asking(world).dataReceived(ok(inspect(WEB, "web")))
    client.send(archive[100:] + PING)
    world.clock.advance(0)
    world.up.dataReceived(PING_OK)
    responses = clean_answers(client, [b"PUT", b"GET"])
    assert [r.status for r in responses] == [404, 200]
    assert seen(world) == [lookup("/containers/web/json"), (b"GET", b"/_ping")]


def test_pipelined_requests_after_a_looked_up_upload_are_answered_in_order() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    archive = b"y" * 64
    client.send(
        b"PUT /v1.41/containers/web/archive?path=/ HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(archive), archive) + get(b"/v1.41/containers/web/json") + PING
    )
    up = asking(world)
    assert seen(world) == [lookup("/containers/web/json")]
    up.dataReceived(ok(inspect(WEB, "web", HEALED)))
    assert [r.head.target for r in requests_on(up)][1:] == [f"/v1.41/containers/{WEB}/archive?path=/".encode()]
    up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    world.clock.advance(0)
    # The second request is judged from the remembered look-up.
    assert seen(world)[-1] == (b"GET", f"/v1.41/containers/{WEB}/json".encode())
    up.dataReceived(ok(inspect(WEB, "web", HEALED)))
    world.clock.advance(0)
    assert seen(world)[-1] == (b"GET", b"/_ping")
    up.dataReceived(PING_OK)
    responses = clean_answers(client, [b"PUT", b"GET", b"GET"])
    assert [r.status for r in responses] == [200, 200, 200]
    assert json.loads(responses[1].body)["Id"] == WEB and responses[2].body == b"OK"
    assert [t for _, t in seen(world)] == [
        b"/containers/web/json",
        f"/v1.41/containers/{WEB}/archive?path=/".encode(),
        f"/v1.41/containers/{WEB}/json".encode(),
        b"/_ping",
    ]


EXEC_CREATE = b'{"Cmd":["sh"],"AttachStdout":true}'


def test_an_inspected_body_is_judged_after_the_look_up_and_relayed_once_to_the_id() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    request = post(b"/v1.41/containers/web/exec", EXEC_CREATE)
    client.send(request[:-10])
    assert client.proto.state is State.INSPECTING
    assert seen(world) == []
    client.send(request[-10:] + PING)
    assert client.proto.state is RESOLVING
    assert seen(world) == [lookup("/containers/web/json")]
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    world.clock.advance(0)
    [_, relayed] = requests_on(world.up)
    assert relayed.head.target == f"/v1.41/containers/{WEB}/exec".encode()
    assert (relayed.body, relayed.complete) == (EXEC_CREATE, True)
    world.up.dataReceived(ok({"Id": EXEC_ID}, status=201))
    world.clock.advance(0)
    world.up.dataReceived(PING_OK)
    responses = clean_answers(client, [b"POST", b"GET"])
    assert [r.status for r in responses] == [201, 200]
    assert [t for _, t in seen(world)] == [b"/containers/web/json", f"/v1.41/containers/{WEB}/exec".encode(), b"/_ping"]


def test_an_inspected_body_for_a_container_out_of_scope_never_reaches_the_daemon() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    client.send(post(b"/v1.41/containers/web/exec", EXEC_CREATE) + PING)
    asking(world).dataReceived(ok(inspect(WEB, "web")))
    world.clock.advance(0)
    world.up.dataReceived(PING_OK)
    responses = clean_answers(client, [b"POST", b"GET"])
    assert [r.status for r in responses] == [404, 200]
    assert seen(world) == [lookup("/containers/web/json"), (b"GET", b"/_ping")]


@pytest.mark.parametrize("framing", [b"Content-Length: 0\r\n", b""])
def test_a_start_with_an_empty_body_is_looked_up_then_relayed(framing: bytes) -> None:
    world = scoped_world(group(sections={"ping": "read"}, actions={"container.start"}, scope=LABELS))
    client = Caller(world)
    client.send(b"POST /v1.41/containers/web/start HTTP/1.1\r\nHost: docker\r\n%s\r\n" % framing + PING)
    assert seen(world) == [lookup("/containers/web/json")]
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    world.clock.advance(0)
    [_, relayed] = requests_on(world.up)
    assert (relayed.head.target, relayed.body, relayed.complete) == (
        f"/v1.41/containers/{WEB}/start".encode(),
        b"",
        True,
    )
    world.up.dataReceived(STARTED)
    world.clock.advance(0)
    world.up.dataReceived(PING_OK)
    assert [r.status for r in clean_answers(client, [b"POST", b"GET"])] == [204, 200]


# -- exec instances: only their creator uses them -----------------------------------------


def _exec_start(exec_id: str = EXEC_ID) -> bytes:
    body = b'{"Detach":false,"Tty":false}'
    return (
        b"POST /v1.41/exec/%s/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    ) % (exec_id.encode(), len(body), body)


def _create_exec(world: World, client: Client, container: bytes = b"x") -> None:
    before = len(client.value())
    client.send(post(b"/v1.41/containers/%s/exec" % container, EXEC_CREATE))
    world.clock.advance(0)
    assert seen(world)[-1] == (b"POST", b"/v1.41/containers/%s/exec" % container)
    world.up.dataReceived(ok({"Id": EXEC_ID}, status=201))
    [response] = parse_responses(client.value()[before:], [b"POST"])
    assert (response.status, json.loads(response.body)) == (201, {"Id": EXEC_ID})


def test_an_exec_nobody_created_through_dockguard_cannot_be_started() -> None:
    world = scoped_world(group(scope=None, sections=WRITER), identities=("tester", "other"))
    client = Caller(world)
    with capturedLogs() as events:
        client.send(_exec_start())
    response = one_answer(client, b"POST")
    assert (response.status, error_of(response)) == (404, f"No such exec instance: {EXEC_ID}")
    assert world.nothing_reached_daemon() and seen(world) == []
    [line] = decisions(events)
    assert (line["decision"], line["rule"]) == ("deny", "scope")
    assert "no identity through dockguard" in line["reason"]


def test_the_identity_that_created_an_exec_may_start_it_and_no_other() -> None:
    world = scoped_world(group(scope=None, sections=WRITER), identities=("tester", "other"))
    creator = Caller(world)
    _create_exec(world, creator)
    assert world.relay.execOwners.owner(EXEC_ID) == "tester"

    other = Caller(world, "other")
    created = len(seen(world))
    for request in (
        _exec_start(),
        post(b"/v1.41/exec/%s/resize?h=10&w=10" % EXEC_ID.encode()),
        get(b"/v1.41/exec/%s/json" % EXEC_ID.encode()),
    ):
        before = len(other.value())
        other.send(request)
        [response] = parse_responses(other.value()[before:], [request.split(b" ")[0]])
        assert (response.status, error_of(response)) == (404, f"No such exec instance: {EXEC_ID}")
    assert len(seen(world)) == created, "nothing of another identity's exec reaches the daemon"

    creator.send(_exec_start())
    relayed = seen(world)[-1]
    assert relayed == (b"POST", f"/v1.41/exec/{EXEC_ID}/start".encode())
    world.up.dataReceived(UPGRADED + b"output")
    assert creator.value().endswith(UPGRADED + b"output")
    assert creator.proto.hijacked


@pytest.mark.parametrize("status", [200, 404, 500])
def test_an_exec_create_not_answered_201_records_no_owner(status: int) -> None:
    world = scoped_world(group(scope=None, sections=WRITER))
    client = Caller(world)
    client.send(post(b"/v1.41/containers/x/exec", EXEC_CREATE))
    world.up.dataReceived(ok({"Id": EXEC_ID}, status=status))
    assert one_answer(client, b"POST").status == status
    assert world.relay.execOwners.owner(EXEC_ID) is None


def test_an_exec_create_answered_in_chunks_records_its_owner() -> None:
    world = scoped_world(group(scope=None, sections=WRITER))
    client = Caller(world)
    client.send(post(b"/v1.41/containers/x/exec", EXEC_CREATE))
    body = json.dumps({"Id": EXEC_ID}).encode()
    world.up.dataReceived(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk(body[:9])
    )
    world.up.dataReceived(chunk(body[9:]) + b"0\r\n\r\n")
    assert one_answer(client, b"POST").status == 201
    assert world.relay.execOwners.owner(EXEC_ID) == "tester"


def test_under_a_scope_an_exec_is_judged_by_the_container_it_runs_in() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    world.relay.execOwners.record(EXEC_ID, "tester")
    client = Caller(world)
    client.send(_exec_start())
    up = asking(world)
    assert seen(world) == [lookup(f"/exec/{EXEC_ID}/json")]
    up.dataReceived(ok({"ID": EXEC_ID, "ContainerID": WEB, "Running": False}))
    assert seen(world) == [lookup(f"/exec/{EXEC_ID}/json"), lookup(f"/containers/{WEB}/json")]
    assert client.value() == b""
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    [*_, start] = requests_on(up)
    assert (start.head.target, start.body) == (f"/v1.41/exec/{EXEC_ID}/start".encode(), b'{"Detach":false,"Tty":false}')
    assert start.header(b"upgrade") == b"tcp"


def test_under_a_scope_an_exec_in_a_container_out_of_scope_is_missing() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    world.relay.execOwners.record(EXEC_ID, "tester")
    client = Caller(world)
    client.send(_exec_start())
    asking(world).dataReceived(ok({"ID": EXEC_ID, "ContainerID": WEB}))
    asking(world).dataReceived(ok(inspect(WEB, "web")))
    response = one_answer(client, b"POST")
    assert (response.status, error_of(response)) == (404, f"No such exec instance: {EXEC_ID}")
    assert seen(world) == [lookup(f"/exec/{EXEC_ID}/json"), lookup(f"/containers/{WEB}/json")]


def test_under_a_scope_an_exec_the_daemon_forgot_is_missing() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    world.relay.execOwners.record(EXEC_ID, "tester")
    client = Caller(world)
    client.send(_exec_start())
    asking(world).dataReceived(answer(404, b'{"message":"No such exec instance"}'))
    response = one_answer(client, b"POST")
    assert (response.status, error_of(response)) == (404, f"No such exec instance: {EXEC_ID}")
    assert seen(world) == [lookup(f"/exec/{EXEC_ID}/json")]


def test_an_exec_created_under_a_scope_is_looked_up_as_its_container_then_started() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    client.send(post(b"/v1.41/containers/web/exec", EXEC_CREATE))
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    world.up.dataReceived(ok({"Id": EXEC_ID}, status=201))
    assert world.relay.execOwners.owner(EXEC_ID) == "tester"
    before = len(client.value())
    client.send(_exec_start())
    world.clock.advance(0)
    # The exec's container is asked of the daemon, then looked up by its ID.
    asking(world).dataReceived(ok({"ID": EXEC_ID, "ContainerID": WEB}))
    assert seen(world)[-1] == lookup(f"/containers/{WEB}/json")
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    assert seen(world)[-1] == (b"POST", f"/v1.41/exec/{EXEC_ID}/start".encode())
    assert client.value()[before:] == b""
    assert world.relay.resolver.asked == 3
    world.up.dataReceived(UPGRADED)
    assert client.value()[before:] == UPGRADED

    # Within the second, a second start needs no look-up: an exec never
    # moves, and its container was looked up just now.
    again = Caller(world)
    again.send(_exec_start())
    assert seen(world)[-1] == (b"POST", f"/v1.41/exec/{EXEC_ID}/start".encode())
    assert world.relay.resolver.asked == 3


# -- creates: stamped with their owner, and in scope -----------------------------------------


CREATE = b'{"Image":"busybox","Cmd":["true"]}'


def _created_body(world: World) -> dict:
    [request] = [r for r in everything_the_daemon_saw(world) if r.head.target.startswith(b"/v1.41/containers/create")]
    assert request.complete
    assert request.header(b"content-length") == b"%d" % len(request.body)
    return json.loads(request.body)


def test_a_create_under_groups_is_stamped_with_its_owner() -> None:
    world = scoped_world(group(scope=None, sections=WRITER))
    client = Caller(world)
    client.send(post(b"/v1.41/containers/create?name=x", b'{"Image":"busybox","Labels":{"team":"a"}}'))
    assert seen(world) == [(b"POST", b"/v1.41/containers/create?name=x")], "a create needs no look-up"
    assert _created_body(world) == {"Image": "busybox", "Labels": {"team": "a", OWNER_LABEL: "tester"}}
    world.up.dataReceived(ok({"Id": full_id("x"), "Warnings": []}, status=201))
    assert one_answer(client, b"POST").status == 201


def test_a_create_without_labels_gets_them() -> None:
    world = scoped_world(group(scope=None, sections=WRITER))
    client = Caller(world)
    client.send(post(b"/v1.41/containers/create?name=x", CREATE))
    assert _created_body(world)["Labels"] == {OWNER_LABEL: "tester"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"Image": "busybox", "Labels": {OWNER_LABEL: "tester"}}, id="its-own-name"),
        pytest.param({"Image": "busybox", "Labels": {"a": "b", OWNER_LABEL: "someone-else"}}, id="another-name"),
        pytest.param({"Image": "busybox", "Labels": {OWNER_LABEL: ""}}, id="empty"),
        # The daemon reads "labels" as Labels (Go matches keys case-insensitively).
        pytest.param({"Image": "busybox", "labels": {OWNER_LABEL: "someone-else"}}, id="lower-case-key"),
    ],
)
def test_a_create_that_sets_the_owner_label_itself_is_refused_and_nothing_is_relayed(body: dict) -> None:
    world = scoped_world(group(scope=None, sections=WRITER))
    client = Caller(world)
    with capturedLogs() as events:
        client.send(post(b"/v1.41/containers/create?name=x", json.dumps(body).encode()) + PING)
        world.clock.advance(0)
        world.up.dataReceived(PING_OK)
    responses = clean_answers(client, [b"POST", b"GET"])
    assert [r.status for r in responses] == [403, 200]
    assert f"the body sets the label {OWNER_LABEL}, which dockguard sets itself" in error_of(responses[0])
    assert seen(world) == [(b"GET", b"/_ping")]
    [refused, _] = decisions(events)
    assert (refused["decision"], refused["rule"], refused["status"]) == ("deny", "guard owner", 403)


def test_a_create_under_a_labels_scope_must_carry_a_label_the_scope_holds() -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    with capturedLogs() as events:
        client.send(post(b"/v1.41/containers/create?name=x", CREATE))
    response = one_answer(client, b"POST")
    assert response.status == 403 and "(rule: scope;" in error_of(response)
    assert seen(world) == []
    [line] = decisions(events)
    assert (line["decision"], line["rule"], line["status"]) == ("deny", "scope", 403)

    client.send(post(b"/v1.41/containers/create?name=x", b'{"Image":"busybox","Labels":{"autoheal":"true"}}'))
    assert seen(world) == [(b"POST", b"/v1.41/containers/create?name=x")]
    assert _created_body(world)["Labels"] == {"autoheal": "true", OWNER_LABEL: "tester"}


def test_a_create_under_an_owner_scope_is_in_scope_by_its_stamp() -> None:
    world = scoped_world(group(sections=WRITER, scope=Scope(owner=True)))
    client = Caller(world)
    client.send(post(b"/v1.41/containers/create", CREATE))
    assert _created_body(world)["Labels"] == {OWNER_LABEL: "tester"}


@pytest.mark.parametrize(
    "body",
    [
        {"Image": "busybox", "Labels": HEALED, "HostConfig": {"VolumesFrom": ["db"]}},
        {"Image": "busybox", "Labels": HEALED, "HostConfig": {"NetworkMode": "container:db"}},
        {"Image": "busybox", "Labels": HEALED, "HostConfig": {"Links": ["db:db"]}},
    ],
)
def test_a_create_under_a_scope_may_not_reach_into_another_container(body: dict) -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    client.send(post(b"/v1.41/containers/create?name=x", json.dumps(body).encode()))
    response = one_answer(client, b"POST")
    assert response.status == 403 and "names other containers" in error_of(response)
    assert world.nothing_reached_daemon()


@pytest.mark.parametrize("labels", [HEALED, {}], ids=["in-scope", "out-of-scope"])
def test_a_create_mounting_a_named_volume_waits_for_its_look_up(labels: dict[str, str]) -> None:
    world = scoped_world(group(sections=WRITER, scope=LABELS))
    client = Caller(world)
    body = json.dumps({"Image": "busybox", "Labels": HEALED, "HostConfig": {"Binds": ["data:/data"]}}).encode()
    client.send(post(b"/v1.41/containers/create?name=x", body) + PING)
    assert client.proto.state is RESOLVING
    assert seen(world) == [lookup("/volumes/data")], "nothing of the create before the volume is looked up"
    asking(world).dataReceived(ok({"Name": "data", "Driver": "local", "Labels": labels, "Options": {}}))
    world.clock.advance(0)
    if labels:
        assert seen(world)[-1] == (b"POST", b"/v1.41/containers/create?name=x")
        assert _created_body(world)["Labels"] == {"autoheal": "true", OWNER_LABEL: "tester"}
        world.up.dataReceived(ok({"Id": full_id("x"), "Warnings": []}, status=201))
        world.clock.advance(0)
        statuses = [201, 200]
    else:
        statuses = [403, 200]
    world.up.dataReceived(PING_OK)
    responses = clean_answers(client, [b"POST", b"GET"])
    assert [r.status for r in responses] == statuses
    assert seen(world)[-1] == (b"GET", b"/_ping")
    assert len(seen(world)) == (3 if labels else 2)


# -- views: lists, the event stream, redaction ---------------------------------------------------


def _listed(ident: str, name: str, labels: dict[str, str]) -> dict:
    return {"Id": ident, "Names": [f"/{name}"], "Image": "busybox", "Labels": labels, "State": "running"}


LIST = [_listed(WEB, "web", HEALED), _listed(DB, "db", {}), _listed(CACHE, "cache", HEALED)]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_list_keeps_what_the_scope_holds_with_its_new_length(chunked: bool) -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/json?all=1"))
    assert seen(world) == [(b"GET", b"/v1.41/containers/json?all=1")], "a list is not looked up"
    whole = json.dumps(LIST).encode()
    if chunked:
        world.up.dataReceived(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk(whole[:100])
        )
        assert client.value() == b"", "a list is held whole before it is narrowed"
        world.up.dataReceived(chunk(whole[100:]) + b"0\r\n\r\n")
    else:
        world.up.dataReceived(answer(200, whole[:100]).replace(b"Length: 100", b"Length: %d" % len(whole)))
        assert client.value() == b""
        world.up.dataReceived(whole[100:])
    response = one_answer(client)
    assert response.status == 200
    assert json.loads(response.body) == [LIST[0], LIST[2]]
    assert response.header(b"content-length") == b"%d" % len(response.body)
    assert response.header(b"transfer-encoding") is None
    assert (response.header(b"api-version"), response.header(b"content-type")) == (b"1.41", b"application/json")
    assert response.header(b"connection") is None
    # The connection goes on.
    before = len(client.value())
    client.send(PING)
    world.clock.advance(0)
    world.up.dataReceived(PING_OK)
    assert parse_responses(client.value()[before:], [b"GET"])[0].body == b"OK"
    assert world.connections == [world.up]


@pytest.mark.parametrize("status", [400, 500])
def test_a_list_the_daemon_refused_passes_untouched(status: int) -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/json?filters=bad"))
    daemon_says = answer(status, b'{"message":"invalid filter"}\n')
    world.up.dataReceived(daemon_says)
    response = one_answer(client)
    assert (response.status, response.body) == (status, b'{"message":"invalid filter"}\n')
    assert response.header(b"content-length") == b"29"


def test_a_list_for_an_http_1_0_client_is_narrowed_and_the_connection_closes() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/json", version=b"1.0"))
    world.up.dataReceived(ok(LIST))
    raw = client.value()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: %d\r\n" % len(body) in head + b"\r\n"
    assert b"\r\nConnection: close" in head
    assert [item["Id"] for item in json.loads(body)] == [WEB, CACHE]
    assert client.transport.disconnecting


@pytest.mark.parametrize(
    "daemon_says",
    [
        pytest.param(answer(200, b"[not json"), id="not-json"),
        pytest.param(ok({"not": "a list"}), id="not-a-list"),
    ],
)
def test_a_list_that_cannot_be_read_gives_502_and_closes(daemon_says: bytes) -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/json") + PING)
    world.up.dataReceived(daemon_says)
    response = one_answer(client)
    assert response.status == 502 and "cannot narrow the daemon's answer" in error_of(response)
    assert response.header(b"connection") == b"close"
    assert client.transport.disconnecting
    assert client.value().count(b"HTTP/1.1 ") == 1 and b"a list" not in client.value()
    assert seen(world) == [(b"GET", b"/v1.41/containers/json")], "nothing after it is read"


def test_a_list_larger_than_the_bound_gives_502(monkeypatch: pytest.MonkeyPatch) -> None:
    from dockguard.relay import exchange

    monkeypatch.setattr(exchange, "MAX_VIEWED", 1000)
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/json"))
    whole = json.dumps(LIST * 10).encode()
    world.up.dataReceived(answer(200, whole))
    response = one_answer(client)
    assert response.status == 502 and "larger than 1000 bytes" in error_of(response)
    assert client.transport.disconnecting and world.up.transport.disconnecting


def test_a_volume_list_keeps_what_the_scope_holds() -> None:
    world = scoped_world(group(sections={"volumes": "read"}))
    client = Caller(world)
    client.send(get(b"/v1.41/volumes"))
    volumes = {"Volumes": [{"Name": "a", "Labels": HEALED}, {"Name": "b", "Labels": None}], "Warnings": None}
    world.up.dataReceived(ok(volumes))
    response = one_answer(client)
    assert json.loads(response.body) == {"Volumes": [{"Name": "a", "Labels": HEALED}], "Warnings": None}


def _event(ident: str, name: str, labels: dict[str, str], action: str = "start") -> bytes:
    attributes = {"name": name, "image": "busybox", **labels}
    return (
        json.dumps(
            {"Type": "container", "Action": action, "Actor": {"ID": ident, "Attributes": attributes}, "time": 1}
        ).encode()
        + b"\n"
    )


def test_the_event_stream_keeps_the_events_of_what_the_scope_holds_and_stays_open() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/events?since=1"))
    assert seen(world) == [(b"GET", b"/v1.41/events?since=1")]
    up = world.up
    up.dataReceived(
        b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    [started] = client.responses(b"GET")
    assert (started.status, started.body, started.complete) == (200, b"", False)
    assert started.header(b"transfer-encoding") == b"chunked" and started.header(b"content-length") is None

    web, db, cache = _event(WEB, "web", HEALED), _event(DB, "db", {}), _event(CACHE, "cache", HEALED, "die")
    image = (
        json.dumps({"Type": "image", "Action": "pull", "Actor": {"ID": "busybox", "Attributes": {}}}).encode() + b"\n"
    )
    stream = web + db + cache + image
    # The daemon's chunks and reads cut events anywhere.
    up.dataReceived(chunk(stream[:30]))
    assert client.responses(b"GET")[0].body == b""
    up.dataReceived(chunk(stream[30 : len(web) + 5]) + chunk(stream[len(web) + 5 : len(web) + len(db) + 10])[:7])
    assert client.responses(b"GET")[0].body == web
    up.dataReceived(
        chunk(stream[len(web) + 5 : len(web) + len(db) + 10])[7:] + chunk(stream[len(web) + len(db) + 10 :])
    )
    [response] = client.responses(b"GET")
    assert response.body == web + cache + image
    assert not response.complete and not client.transport.disconnecting
    assert client.proto.streaming

    # A quiet stream stays open.
    world.clock.advance(10 * world.relay.timeouts.idle)
    assert not client.transport.disconnecting
    up.dataReceived(b"0\r\n\r\n")
    [response] = client.responses(b"GET")
    assert response.complete and response.body == web + cache + image


def test_an_event_stream_for_an_http_1_0_client_is_filtered_to_the_end_of_the_connection() -> None:
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/events", version=b"1.0"))
    world.up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    world.up.dataReceived(chunk(_event(DB, "db", {}) + _event(WEB, "web", HEALED)))
    head, _, body = client.value().partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head and b"Connection: close" in head
    assert body == _event(WEB, "web", HEALED)
    world.up.dataReceived(b"0\r\n\r\n")
    assert client.transport.disconnecting


def test_an_unscoped_events_stream_passes_untouched() -> None:
    world = scoped_world(group(scope=None))
    client = Caller(world)
    client.send(get(b"/v1.41/events"))
    daemon_says = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(
        _event(DB, "db", {})
    )
    world.up.dataReceived(daemon_says)
    assert client.responses(b"GET")[0].body == _event(DB, "db", {})


def test_an_inspect_hides_the_environments_values_for_a_redacting_group() -> None:
    world = scoped_world(group(scope=None, redact={"env"}))
    client = Caller(world)
    client.send(get(b"/v1.41/containers/x/json"))
    assert seen(world) == [(b"GET", b"/v1.41/containers/x/json")], "no look-up without a scope"
    secret = inspect(WEB, "x", HEALED, Env=["PATH=/bin", "PASSWORD=hunter2", "EMPTY="])
    world.up.dataReceived(ok(secret))
    response = one_answer(client)
    assert response.status == 200
    assert response.header(b"content-length") == b"%d" % len(response.body)
    assert b"hunter2" not in client.value()
    seen_env = json.loads(response.body)["Config"]["Env"]
    assert seen_env == [f"PATH={REDACTED}", f"PASSWORD={REDACTED}", f"EMPTY={REDACTED}"]
    assert json.loads(response.body)["Config"]["Labels"] == HEALED
    # keep-alive goes on
    client.send(PING)
    world.up.dataReceived(PING_OK)
    assert [r.status for r in clean_answers(client, [b"GET", b"GET"])] == [200, 200]


def test_a_redacted_inspect_the_daemon_refused_passes_untouched() -> None:
    world = scoped_world(group(scope=None, redact={"env"}))
    client = Caller(world)
    client.send(get(b"/v1.41/containers/x/json"))
    world.up.dataReceived(answer(404, b'{"message":"No such container: x"}\n'))
    response = one_answer(client)
    assert (response.status, response.body) == (404, b'{"message":"No such container: x"}\n')


def test_a_head_request_on_a_redacted_inspect_is_answered_without_a_body() -> None:
    world = scoped_world(group(scope=None, redact={"env"}))
    client = Caller(world)
    client.send(b"HEAD /v1.41/containers/x/json HTTP/1.1\r\nHost: docker\r\n\r\n")
    world.up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 120\r\n\r\n")
    [response] = clean_answers(client, [b"HEAD"])
    assert (response.status, response.body) == (200, b"")
    client.send(PING)
    world.up.dataReceived(PING_OK)
    assert [r.status for r in clean_answers(client, [b"HEAD", b"GET"])] == [200, 200]


def test_a_scoped_group_that_redacts_hides_the_environment_of_what_it_holds() -> None:
    world = scoped_world(group(redact={"env"}))
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    asking(world).dataReceived(ok(inspect(WEB, "web", HEALED)))
    world.up.dataReceived(ok(inspect(WEB, "web", HEALED, Env=["PASSWORD=hunter2"])))
    response = one_answer(client)
    assert json.loads(response.body)["Config"]["Env"] == [f"PASSWORD={REDACTED}"]
    assert response.header(b"content-length") == b"%d" % len(response.body)


#: Two scoped groups: one holds what is labelled autoheal=true and hides its
#: environment and labels, the other holds db* and hides nothing.
HEALER = group(name="healer", redact={"env", "labels"})
DBA = group(name="dba", scope=Scope(names=("db*",)))


@pytest.mark.parametrize(
    ("name", "labels", "hidden"),
    [
        pytest.param("web", HEALED, True, id="held-by-the-redacting-group-only"),
        pytest.param("db", {}, False, id="held-by-the-other-group-only"),
        pytest.param("db", HEALED, False, id="held-by-both"),
    ],
)
def test_an_inspect_hides_what_the_groups_whose_scope_holds_the_container_hide(
    name: str, labels: dict[str, str], hidden: bool
) -> None:
    """
    Regression: the inspect was narrowed only when every group granting the
    route redacted, so a second scoped group without a redaction let the
    environment of the first group's containers through.
    """
    world = scoped_world(HEALER, DBA)
    client = Caller(world)
    ident = full_id(name)
    client.send(get(b"/v1.41/containers/%s/json" % name.encode()))
    asking(world).dataReceived(ok(inspect(ident, name, labels)))
    world.up.dataReceived(ok(inspect(ident, name, labels, Env=["PASSWORD=hunter2"])))
    response = one_answer(client)
    config = json.loads(response.body)["Config"]
    assert response.status == 200
    if hidden:
        assert b"hunter2" not in client.value()
        assert config["Env"] == [f"PASSWORD={REDACTED}"] and config["Labels"] == {"autoheal": REDACTED}
    else:
        assert config["Env"] == ["PASSWORD=hunter2"] and config["Labels"] == labels


def test_the_decision_line_of_a_narrowed_answer_says_what_the_caller_got() -> None:
    """Regression: an answer that could not be narrowed was logged as the daemon's 200."""
    world = scoped_world()
    client = Caller(world)
    with capturedLogs() as events:
        client.send(get(b"/v1.41/containers/json"))
        world.up.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n")
        world.clock.advance(0.5)
        assert decisions(events) == [], "logged when the caller's answer starts"
        world.up.dataReceived(b"[not json, not json")
    [line] = decisions(events)
    assert (line["decision"], line["status"]) == ("allow", 502)
    assert one_answer(client).status == 502

    world = scoped_world()
    client = Caller(world)
    with capturedLogs() as events:
        client.send(get(b"/v1.41/containers/json"))
        world.up.dataReceived(ok(LIST))
    [line] = decisions(events)
    assert (line["decision"], line["status"]) == ("allow", 200)


# -- the state table --------------------------------------------------------------------------


def test_resolving_is_in_the_state_table_and_moves_only_where_it_says() -> None:
    assert set(TRANSITIONS) == set(State)
    assert RESOLVING in TRANSITIONS[State.HEAD] and RESOLVING in TRANSITIONS[State.INSPECTING]
    assert TRANSITIONS[RESOLVING] == {
        State.CONNECTING,
        State.DRAINING,
        State.LINGERING,
        State.IDLE,
        State.HEAD,
        State.CLOSED,
    }
    for state in State:
        if state not in (State.HEAD, State.INSPECTING):
            assert RESOLVING not in TRANSITIONS[state], state
    world = scoped_world()
    client = Caller(world)
    client.send(get(b"/v1.41/containers/web/json"))
    assert client.proto.state is RESOLVING
    for illegal in (State.FORWARDING, State.SPLICED, State.INSPECTING, State.RESOLVING):
        with pytest.raises(AssertionError, match=f"resolving cannot move to {illegal.value}"):
            client.proto._to(illegal)
    assert client.proto.state is RESOLVING
    client.proto._to(State.CLOSED)
    with pytest.raises(AssertionError, match="closed cannot move to resolving"):
        client.proto._to(RESOLVING)
