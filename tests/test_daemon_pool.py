"""
The real L{DaemonPool} over a daemon in memory (L{MemoryDaemonEndpoint}):
what a user of the pool sees when it takes, connects, releases, discards and
closes connections.
"""

from __future__ import annotations

import pytest
from twisted.internet.address import UNIXAddress
from twisted.internet.error import ConnectError, ConnectionLost
from twisted.python.failure import Failure

from dockguard.relay import DaemonConnection, DaemonPool
from dockguard.relay.daemon import ResponseHead
from dockguard.testing import MemoryDaemonEndpoint, MemoryTransport

PATH = "/run/test/docker.sock"
PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
PING_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"


class Owner:
    """An exchange that records what its daemon connection reports."""

    def __init__(self) -> None:
        self.heads: list[ResponseHead] = []
        self.body = b""
        self.ended = False
        self.lost: list[Failure | None] = []

    def responseHead(self, head: ResponseHead) -> None:
        self.heads.append(head)

    def responseBody(self, data: bytes) -> None:
        self.body += data

    def responseEnd(self) -> None:
        self.ended = True

    def daemonRaw(self, data: bytes) -> None:
        self.body += data

    def daemonLost(self, reason: Failure | None) -> None:
        self.lost.append(reason)


def a_pool(maxIdle: int = 128) -> tuple[DaemonPool, MemoryDaemonEndpoint]:
    endpoint = MemoryDaemonEndpoint(PATH)
    return DaemonPool(endpoint, PATH, maxIdle=maxIdle), endpoint


def connected(pool: DaemonPool) -> DaemonConnection:
    got: list[DaemonConnection] = []
    pool.connect().addCallback(got.append)
    [conn] = got
    return conn


def exchange(conn: DaemonConnection, answer: bytes = PING_OK) -> Owner:
    """One request on C{conn}, answered with C{answer}."""
    owner = Owner()
    conn.request(owner, b"GET", PING)
    conn.dataReceived(answer)
    return owner


def pooled(pool: DaemonPool) -> DaemonConnection:
    """A new connection that carried one clean exchange and was given back."""
    conn = connected(pool)
    assert exchange(conn).ended
    conn.release()
    return conn


def transport(conn: DaemonConnection) -> MemoryTransport:
    assert isinstance(conn.transport, MemoryTransport)
    return conn.transport


# -- take and connect -----------------------------------------------------------------


def test_an_empty_pool_has_nothing_to_take() -> None:
    pool, endpoint = a_pool()
    assert pool.take() is None
    assert pool.idleCount == 0 and endpoint.connections == []


def test_connect_makes_a_daemon_connection_of_this_pool() -> None:
    pool, endpoint = a_pool()
    conn = connected(pool)
    assert isinstance(conn, DaemonConnection)
    assert endpoint.connections == [conn] and endpoint.last is conn
    assert conn.pool is pool and conn.alive and not conn.reused
    assert conn.transport is endpoint.transport(conn)
    assert transport(conn).getPeer() == UNIXAddress(PATH)
    assert pool.address == PATH


def test_what_a_connection_sends_reaches_the_daemon_and_its_answer_the_owner() -> None:
    pool, endpoint = a_pool()
    conn = connected(pool)
    owner = Owner()
    conn.request(owner, b"GET", PING)
    assert endpoint.sent() == PING
    endpoint.respond(PING_OK)
    assert [h.status for h in owner.heads] == [200] and owner.body == b"OK" and owner.ended


def test_each_connect_is_a_new_connection() -> None:
    pool, endpoint = a_pool()
    first, second = connected(pool), connected(pool)
    assert first is not second
    assert endpoint.connections == [first, second]


def test_a_failed_connect_fails_with_the_daemons_error_and_the_next_succeeds() -> None:
    pool, endpoint = a_pool()
    endpoint.fail_next(ConnectError("No such file or directory"))
    failures: list[Failure] = []
    pool.connect().addErrback(failures.append)
    [failure] = failures
    assert failure.check(ConnectError) and "No such file or directory" in str(failure.value)
    assert endpoint.connections == []
    conn = connected(pool)
    assert endpoint.connections == [conn]


def test_fail_next_counts_its_connects() -> None:
    pool, endpoint = a_pool()
    endpoint.fail_next(ConnectionRefusedError("no daemon"), count=2)
    failures: list[Failure] = []
    for _ in range(2):
        pool.connect().addErrback(failures.append)
    assert len(failures) == 2
    assert connected(pool).alive


# -- release ----------------------------------------------------------------------------


def test_a_released_reusable_connection_is_handed_out_again() -> None:
    pool, endpoint = a_pool()
    conn = pooled(pool)
    assert conn.owner is None and conn.reused
    assert not transport(conn).disconnecting
    assert pool.idleCount == 1
    assert pool.take() is conn
    assert pool.take() is None, "handed out once"
    # It carries the next exchange.
    assert exchange(conn).body == b"OK"
    assert endpoint.connections == [conn]


def test_the_connection_released_last_is_taken_first() -> None:
    pool, _ = a_pool()
    first, second = connected(pool), connected(pool)
    exchange(first)
    exchange(second)
    first.release()
    second.release()
    assert [pool.take(), pool.take(), pool.take()] == [second, first, None]


def test_the_pool_keeps_at_most_max_idle_connections_and_closes_the_rest() -> None:
    pool, _ = a_pool(maxIdle=2)
    conns = [connected(pool) for _ in range(3)]
    for conn in conns:
        exchange(conn)
        conn.release()
    assert pool.idleCount == 2
    assert [transport(c).disconnecting for c in conns] == [False, False, True]
    assert {pool.take(), pool.take()} == set(conns[:2]) and pool.take() is None


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nOK", id="connection-close"),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK", id="http-1.0"),
        pytest.param(PING_OK + b"HTTP/1.1 200 OK\r\n", id="bytes-after-the-response"),
    ],
)
def test_a_released_connection_that_is_ending_is_closed_not_kept(answer: bytes) -> None:
    pool, _ = a_pool()
    conn = connected(pool)
    assert exchange(conn, answer).ended
    conn.release()
    assert transport(conn).disconnecting
    assert pool.idleCount == 0 and pool.take() is None


def test_a_connection_released_mid_response_is_closed_not_kept() -> None:
    pool, _ = a_pool()
    conn = connected(pool)
    owner = exchange(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert not owner.ended
    conn.release()
    assert transport(conn).disconnecting
    assert pool.take() is None


def test_a_released_connection_that_is_gone_is_not_kept() -> None:
    pool, endpoint = a_pool()
    conn = connected(pool)
    exchange(conn)
    conn.connectionLost(Failure(ConnectionLost()))
    conn.release()
    assert not conn.alive
    assert pool.idleCount == 0 and pool.take() is None
    assert not transport(conn).disconnecting, "nothing is asked of a transport that is gone"
    assert endpoint.connections == [conn]


def test_a_connection_released_twice_is_handed_out_once() -> None:
    pool, _ = a_pool()
    conn = pooled(pool)
    conn.release()
    assert pool.take() is conn
    assert pool.take() is None, "one connection, one exchange at a time"


def test_a_connection_released_twice_into_a_full_pool_stays_open() -> None:
    pool, _ = a_pool(maxIdle=1)
    conn = pooled(pool)
    conn.release()
    assert not transport(conn).disconnecting
    assert pool.take() is conn


# -- the daemon closing idle connections -------------------------------------------------


def test_a_connection_the_daemon_half_closed_while_idle_is_not_handed_out() -> None:
    pool, _ = a_pool()
    conn = pooled(pool)
    conn.readConnectionLost()  # FIN: connectionLost comes later
    assert transport(conn).disconnecting
    assert pool.take() is None


def test_a_connection_the_daemon_closed_while_idle_leaves_the_pool() -> None:
    pool, endpoint = a_pool()
    conn = pooled(pool)
    endpoint.hang_up(conn)
    assert not conn.alive
    assert pool.idleCount == 0 and pool.take() is None


def test_a_connection_the_daemon_spoke_on_unasked_is_not_handed_out() -> None:
    pool, endpoint = a_pool()
    conn = pooled(pool)
    endpoint.respond(b"HTTP/1.1 200 OK\r\n", conn)
    assert transport(conn).disconnected, "out of step: aborted"
    assert pool.take() is None


def test_only_the_live_connections_are_handed_out() -> None:
    pool, endpoint = a_pool()
    first, second, third = pooled(pool), pooled(pool), pooled(pool)
    endpoint.hang_up(second)
    third.readConnectionLost()
    assert [pool.take(), pool.take()] == [first, None]


# -- closeIdle and discard ---------------------------------------------------------------------


def test_close_idle_closes_every_idle_connection_and_only_those() -> None:
    pool, _ = a_pool()
    idle = [pooled(pool), pooled(pool)]
    busy = connected(pool)
    busy.request(Owner(), b"GET", PING)
    pool.closeIdle()
    assert all(transport(c).disconnecting for c in idle)
    assert not transport(busy).disconnecting
    assert pool.idleCount == 0 and pool.take() is None
    # The connections go when the reactor says so; the pool has forgotten them.
    for conn in idle:
        conn.connectionLost(Failure(ConnectionLost()))
    assert pool.idleCount == 0


def test_discard_forgets_an_idle_connection() -> None:
    pool, _ = a_pool()
    kept, dropped = pooled(pool), pooled(pool)
    pool.discard(dropped)
    assert pool.idleCount == 1
    assert [pool.take(), pool.take()] == [kept, None]


def test_discard_of_a_connection_the_pool_does_not_hold_is_harmless() -> None:
    pool, _ = a_pool()
    kept = pooled(pool)
    busy = connected(pool)
    pool.discard(busy)
    assert pool.idleCount == 1 and pool.take() is kept


def test_a_connection_lost_while_busy_is_not_handed_out_later() -> None:
    pool, _ = a_pool()
    conn = connected(pool)
    owner = Owner()
    conn.request(owner, b"GET", PING)
    conn.connectionLost(Failure(ConnectionLost()))
    assert len(owner.lost) == 1 and owner.lost[0] is not None and owner.lost[0].check(ConnectionLost)
    conn.release()
    assert pool.take() is None


# -- the endpoint itself ----------------------------------------------------------------------


def test_the_endpoint_knows_only_its_own_connections() -> None:
    endpoint = MemoryDaemonEndpoint()
    with pytest.raises(LookupError):
        endpoint.last  # noqa: B018 - the property is what is tested
    with pytest.raises(LookupError):
        endpoint.sent(DaemonConnection())
