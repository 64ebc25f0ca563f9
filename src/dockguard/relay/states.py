"""
The states of a client connection, and every move between them.

A connection is always in one L{State}; L{TRANSITIONS} is the whole list of
moves, and every move goes through C{ClientProtocol._to}.  A request's life:

    IDLE ─bytes─▶ HEAD ─head read, judged (verdict)─┬─▶ CONNECTING ─▶ FORWARDING ─▶ IDLE
                                                    ├─▶ INSPECTING (body read whole, judged) ─▶ CONNECTING
                                                    ├─▶ RESOLVING (scope: the resource looked up) ─▶ CONNECTING
                                                    └─▶ refused: DRAINING (small body dropped) ─▶ IDLE
                                                                 LINGERING (answer out, closing)
    FORWARDING ─daemon hijacks─▶ SPLICED (raw bytes both ways until either side ends)
    any ─▶ CLOSED

Where does a refused request's body go?  L{dockguard.relay.refusals}: a
small one is read and dropped (DRAINING), a large or unknown one is not read
at all (LINGERING, then the connection closes).  Nothing of a refused request
ever reaches the daemon: a daemon connection is only asked for in
CONNECTING.
"""

from __future__ import annotations

import enum

__all__ = [
    "CLOSED",
    "CONNECTING",
    "DRAINING",
    "FORWARDING",
    "HEAD",
    "IDLE",
    "INSPECTING",
    "LINGERING",
    "READS_BODY",
    "RESOLVING",
    "SPLICED",
    "TRANSITIONS",
    "State",
]


class State(enum.Enum):
    IDLE = "idle"  # between requests, on the idle clock
    HEAD = "head"  # a request head is arriving, on the header clock
    INSPECTING = "inspecting"  # reading a body whole to judge it
    RESOLVING = "resolving"  # looking up the resource the request names (scope)
    CONNECTING = "connecting"  # allowed: waiting for a daemon connection
    FORWARDING = "forwarding"  # the request and its answer are relayed
    DRAINING = "draining"  # refused: the rest of a small body is dropped
    LINGERING = "lingering"  # refused: the answer is out, closing
    SPLICED = "spliced"  # hijacked: raw bytes both ways
    CLOSED = "closed"

    # Members are singletons: identity is equality, so the identity hash
    # (C, not Enum's Python-level one) serves the transition table.
    __hash__ = object.__hash__


IDLE, HEAD, INSPECTING, RESOLVING, CONNECTING = (
    State.IDLE,
    State.HEAD,
    State.INSPECTING,
    State.RESOLVING,
    State.CONNECTING,
)
FORWARDING, DRAINING, LINGERING, SPLICED, CLOSED = (
    State.FORWARDING,
    State.DRAINING,
    State.LINGERING,
    State.SPLICED,
    State.CLOSED,
)

#: Every move a connection may make.  (A refusal answered at once goes
#: straight back to IDLE, or to DRAINING/LINGERING.)
TRANSITIONS: dict[State, frozenset[State]] = {
    IDLE: frozenset({HEAD, CLOSED}),
    HEAD: frozenset({INSPECTING, RESOLVING, CONNECTING, DRAINING, LINGERING, IDLE, HEAD, CLOSED}),
    INSPECTING: frozenset({RESOLVING, CONNECTING, DRAINING, LINGERING, IDLE, HEAD, CLOSED}),
    RESOLVING: frozenset({CONNECTING, DRAINING, LINGERING, IDLE, HEAD, CLOSED}),
    CONNECTING: frozenset({FORWARDING, DRAINING, LINGERING, IDLE, HEAD, CLOSED}),
    FORWARDING: frozenset({IDLE, HEAD, SPLICED, CONNECTING, DRAINING, LINGERING, CLOSED}),
    DRAINING: frozenset({IDLE, HEAD, CLOSED}),
    LINGERING: frozenset({CLOSED}),
    SPLICED: frozenset({CLOSED}),
    CLOSED: frozenset({CLOSED}),
}

#: The states in which a request body is being read (and where it goes).
READS_BODY = frozenset({INSPECTING, FORWARDING, DRAINING})
