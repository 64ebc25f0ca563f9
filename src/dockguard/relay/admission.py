"""
Who gets a connection at all: the counts of open client connections (all
of them, per peer address, per budget) and the turn-away log.  No Twisted.

Budgets keep floods out of room meant for callers who proved who they are:
plain-TCP connections may take half of C{limits.max_connections}, TLS
connections still in their handshake an eighth; the rest is only for Unix
socket callers and TLS callers with a valid certificate.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable

from twisted.logger import Logger

from dockguard.metrics import Metrics
from dockguard.relay.settings import Limits

__all__ = ["Admission", "peer_key", "format_peer"]

_log = Logger(namespace="dockguard")

#: The budgets a connection counts in until it has proved who it is.
PLAIN, HANDSHAKE = "plain", "handshake"


class Admission:
    """The connection counts of one relay, and why one is turned away."""

    def __init__(self, clock: Callable[[], float], metrics: Callable[[], Metrics]) -> None:
        self._clock = clock
        self._metrics = metrics
        #: The client connections open now, and how many per peer address.
        self.connections: set[Hashable] = set()
        self.perPeer: dict[str, int] = {}
        #: Connections open now per budget (PLAIN, HANDSHAKE).
        self.perBudget: dict[str, int] = {}
        #: Connections turned away since the last warning about it, and when
        #: that warning was (a flood must not flood the log too).
        self.turnedAway = 0
        self.lastTurnedAwayWarning = float("-inf")

    def refusal(self, limits: Limits, key: str | None, budget: str | None) -> tuple[str, str] | None:
        """
        Why a new connection from peer C{key} in C{budget} is not admitted
        (the limit's name and a sentence), or L{None}.
        """
        if len(self.connections) >= limits.connections:
            return "max_connections", f"{limits.connections} connections are open (limits.max_connections)"
        if budget == PLAIN and self.perBudget.get(budget, 0) >= limits.plainBudget:
            return (
                "max_plain_connections",
                f"{limits.plainBudget} plain-TCP connections are open (limits.max_plain_connections)",
            )
        if budget == HANDSHAKE and self.perBudget.get(budget, 0) >= limits.handshakeBudget:
            return (
                "max_tls_handshakes",
                f"{limits.handshakeBudget} TLS handshakes are under way (limits.max_tls_handshakes)",
            )
        if key is not None and self.perPeer.get(key, 0) >= limits.connections_per_peer:
            return (
                "max_connections_per_peer",
                f"{limits.connections_per_peer} connections from {key} are open (limits.max_connections_per_peer)",
            )
        return None

    def admit(self, connection: Hashable, key: str | None) -> None:
        self.connections.add(connection)
        if key is not None:
            self.perPeer[key] = self.perPeer.get(key, 0) + 1

    def leave(self, connection: Hashable, key: str | None) -> None:
        self.connections.discard(connection)
        if key is not None and key in self.perPeer:
            left = self.perPeer.pop(key) - 1
            if left:
                self.perPeer[key] = left

    def move(self, old: str | None, new: str | None) -> None:
        """A connection leaves budget C{old} for C{new} (either may be None)."""
        counts = self.perBudget
        if old is not None:
            left = counts.pop(old, 1) - 1
            if left:
                counts[old] = left
        if new is not None:
            counts[new] = counts.get(new, 0) + 1

    def turnAway(self, kind: str, reason: str, peer: str, listener: str) -> None:
        """
        Count (and now and then log) a connection refused before any
        request; C{kind} is C{allow-list} or the limit's name.
        """
        self._metrics().connectionRefused(kind)
        self.turnedAway += 1
        now = self._clock()
        if now - self.lastTurnedAwayWarning >= 10:
            _log.warn(
                "refused {count} connection(s) in the last {seconds:.0f} s, the latest from {peer} "
                "on {listener}: {reason}",
                count=self.turnedAway,
                seconds=min(now - self.lastTurnedAwayWarning, 10),
                peer=peer,
                listener=listener,
                reason=reason,
            )
            self.turnedAway = 0
            self.lastTurnedAwayWarning = now


def peer_key(peer: object) -> str | None:
    """
    What connections are counted per peer by: the IP address, or for IPv6
    its /64 (one host gets a whole /64); None for Unix socket callers.
    """
    host = getattr(peer, "host", None)
    if not isinstance(host, str):
        return None
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


def format_peer(peer: object) -> str:
    host = getattr(peer, "host", None)
    port = getattr(peer, "port", None)
    if host is not None:
        return f"{host}:{port}"
    name = getattr(peer, "name", None)
    return f"unix:{name.decode() if isinstance(name, bytes) else name or ''}"
