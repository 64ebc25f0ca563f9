"""
The relay in memory: the fakes, parsers and checks shared by the
protocol-level tests (C{test_relay}, C{test_attacks}, C{test_relay_scope},
C{test_fuzz}, C{test_lookup}).

No sockets and no daemon: the client connection is a L{FakeTransport} (a
L{dockguard.testing.MemoryTransport}), the clock is a L{MemoryReactorClock},
and the pool is the real L{DaemonPool} over a
L{dockguard.testing.MemoryDaemonEndpoint}, whose connections are real
L{UpstreamProtocol}s on their own memory transports.  So a test reads
exactly what would reach the Docker daemon (C{up.transport.value()}) and
plays the daemon by feeding its response bytes to C{up.dataReceived(...)}.

Connection loss is never delivered by the fake transports themselves (a real
reactor delivers it later, not inside C{loseConnection()}); a test that needs
it calls L{Client.lost} or L{daemon_closes}.

What is here:

  - the fakes: L{FakeTransport}, L{daemon_closes}; the daemon's socket path
    L{SOCKET};
  - reading the wire back with h11: L{Message}, L{parse_responses} (what a
    client received), L{parse_requests} and L{daemon_reads} (what the daemon
    received);
  - the relay under test: L{World} (a relay on a memory clock and the real
    pool over a memory daemon: C{world.endpoint}, C{world.connections},
    C{world.up}, C{world.pooled()}) and L{Client} (one connection to it);
  - wire constants: L{PING}, L{PING_OK}, L{JSON_OK}, L{OK}, L{HEAD_OK},
    L{NOT_FOUND}, L{EXEC_BODY}, L{UPGRADED};
  - playing the daemon: L{daemon_answer}, L{answer_everything};
  - checks: L{ping_works} (the connection is still in step),
    L{clean_answers} (complete answers, no traceback),
    L{everything_the_daemon_saw}, L{assert_daemon_saw_only_allowed};
  - L{decisions}: the decision lines among captured log events
    (C{twisted.logger.capturedLogs});
  - L{SHELL}: a group with containers and exec open, exec as root guarded.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.error import ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from dockguard.envpolicy import EnvPolicy
from dockguard.groups import Group
from dockguard.guards import Allowance, inspection_kind, judge
from dockguard.paths import PathRefused, canonicalise
from dockguard.relay import ClientProtocol, DaemonPool, Limits, Listener, Relay, Timeouts
from dockguard.relay import DaemonConnection as UpstreamProtocol
from dockguard.routes import lookup
from dockguard.testing import MemoryDaemonEndpoint, MemoryTransport, hang_up
from harness.http import Message, parse_requests, parse_responses

SOCKET = "/run/test/docker.sock"


# -- fakes ---------------------------------------------------------------------


#: The relay's connections (client and daemon side) are on memory transports.
FakeTransport = MemoryTransport


def daemon_closes(up: UpstreamProtocol) -> None:
    """The daemon closes its end: FIN first, then the connection is gone."""
    hang_up(up)


# -- parsing what each side received ---------------------------------------------


def daemon_reads(data: bytes) -> list[Message]:
    """
    The requests in bytes sent to the daemon, as a strict HTTP/1.1 server
    reads them (a CONNECT answered 404, as dockerd does); the last may be
    incomplete.
    """
    return parse_requests(data, upgraded=False)[0]


# -- the relay under test ---------------------------------------------------------


class Client:
    """One client connection to the relay."""

    def __init__(self, relay: Relay) -> None:
        self.proto = ClientProtocol(relay, Listener(name="test", identity="tester"))
        self.transport = FakeTransport()
        self.proto.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def value(self) -> bytes:
        return self.transport.value()

    def responses(self, *methods: bytes) -> list[Message]:
        return parse_responses(self.value(), list(methods))

    def lost(self) -> None:
        self.proto.connectionLost(Failure(ConnectionLost()))


class World:
    """
    A relay on a memory clock, whose pool is the real L{DaemonPool} over a
    L{MemoryDaemonEndpoint} (C{endpoint}: every daemon connection made, in
    order).
    """

    def __init__(
        self,
        env: dict[str, str] | None = None,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen: one shared default is safe
        maxHeadBytes: int = 256 * 1024,
        limits: Limits | None = None,
    ) -> None:
        self.clock = MemoryReactorClock()
        self.endpoint = MemoryDaemonEndpoint(SOCKET)
        self.pool = DaemonPool(self.endpoint, SOCKET)
        self.relay = Relay(
            reactor=self.clock,
            pool=self.pool,
            policy=EnvPolicy.from_environ(env or {}),
            timeouts=timeouts,
            limits=limits or Limits(head_bytes=maxHeadBytes),
        )

    def client(self) -> Client:
        return Client(self.relay)

    @property
    def connections(self) -> list[UpstreamProtocol]:
        """Every daemon connection made, in order."""
        return self.endpoint.connections  # type: ignore[return-value]

    @property
    def up(self) -> UpstreamProtocol:
        """The daemon connection made last."""
        assert self.connections, "no connection to the daemon was made"
        return self.connections[-1]

    def pooled(self) -> list[UpstreamProtocol]:
        """
        The connections the pool would hand out, in the order it would, as
        the pool itself tells: each is taken, then given back.
        """
        taken: list[UpstreamProtocol] = []
        while (up := self.pool.take()) is not None:
            taken.append(up)
        for up in reversed(taken):
            self.pool.release(up)
        return taken

    def daemon_saw(self, up: UpstreamProtocol | None = None) -> list[Message]:
        requests, rest = parse_requests((up or self.up).transport.value(), upgraded=False)
        assert rest == b""
        return requests

    def nothing_reached_daemon(self) -> bool:
        return all(up.transport.value() == b"" for up in self.connections)


# -- wire constants --------------------------------------------------------------

#: A request every policy allows, and the daemon's answers.
PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
PING_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
JSON_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
HEAD_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

#: The body of a C{docker exec} start, and the daemon's switch to a raw stream.
EXEC_BODY = b'{"Detach":false,"Tty":false}'

UPGRADED = (
    b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
    b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
)


# -- playing the daemon ----------------------------------------------------------


def daemon_answer(request: Message) -> bytes:
    """A small 200 (404 to a CONNECT, as dockerd answers)."""
    if request.head.method == b"CONNECT":
        return NOT_FOUND
    return HEAD_OK if request.head.method == b"HEAD" else OK


def answer_everything(world: World, answered: dict[int, int] | None = None) -> None:
    """
    Play a daemon that answers each complete request with a small 200, until
    nothing moves.  C{answered} (requests answered per daemon connection)
    carries over between calls when given.
    """
    if answered is None:
        answered = {}
    progress = True
    while progress:
        progress = False
        world.clock.advance(0)
        for up in list(world.connections):
            if up.owner is None or up.raw:
                continue
            complete = [r for r in daemon_reads(up.transport.value()) if r.complete]
            done = answered.get(id(up), 0)
            if len(complete) > done:
                answered[id(up)] = done + 1
                up.dataReceived(daemon_answer(complete[done]))
                progress = True


# -- checks ------------------------------------------------------------------------


def ping_works(world: World, client: Client) -> None:
    """A further request on C{client}'s connection is relayed and answered."""
    before = client.value()
    client.send(PING)
    world.clock.advance(0)
    [up] = [u for u in world.connections if getattr(u.owner, "client", None) is client.proto]
    assert world.daemon_saw(up)[-1].head.target == b"/_ping"
    up.dataReceived(PING_OK)
    answer = parse_responses(client.value()[len(before) :], [b"GET"])
    assert [(r.status, r.body, r.complete) for r in answer] == [(200, b"OK", True)]


def clean_answers(client, methods: list[bytes]) -> list[Message]:
    """The client's bytes are complete responses, one per request, none a traceback."""
    assert b"Traceback" not in client.value()
    responses = parse_responses(client.value(), methods)
    assert all(r.complete for r in responses), responses
    return responses


def everything_the_daemon_saw(world: World) -> list[Message]:
    """Every request (complete or not) on every daemon connection, parsed as the daemon would."""
    seen: list[Message] = []
    for up in world.connections:
        seen.extend(daemon_reads(up.transport.value()))
    return seen


def assert_daemon_saw_only_allowed(world: World, identity: str = "tester") -> None:
    """Each request the daemon received is one the policy allows (and its guards, when complete)."""
    for request in everything_the_daemon_saw(world):
        method = request.head.method.decode("ascii")
        try:
            path = canonicalise(request.head.target)
        except PathRefused as e:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"the daemon saw a refused target {request.head.target!r}: {e}") from None
        decision = world.relay.policy.decide(identity, method, path, lookup(method, path))
        assert decision.allowed, f"the daemon saw {method} {path.path}, which is refused: {decision.rule}"
        kind = inspection_kind(method, path) if decision.guard is not None else None
        if kind is not None and request.complete:
            assert judge(kind, request.body, decision.guard).allowed


# -- the log -----------------------------------------------------------------------


def decisions(events: Iterable[dict]) -> list[dict]:
    """The decision lines among log events (e.g. from C{twisted.logger.capturedLogs()})."""
    return [e for e in events if "decision" in e]


# -- policies ------------------------------------------------------------------------

#: Containers and exec writable, nothing else; an exec as root is refused.
SHELL = Group(
    name="shell",
    sections={"containers": "write", "exec": "write"},
    actions=frozenset(),
    guards=Allowance(exec_root=False),
)
