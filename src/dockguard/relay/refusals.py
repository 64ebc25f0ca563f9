"""
Where a refused request's body goes.  Pure: no Twisted.

Nothing of a refused request reaches the daemon.  What is left of its body
on the client connection is either read and dropped, so the connection
stays in step for the next request, or not read at all, and the connection
closes once the answer is out.  A refused caller costs nothing: the bytes
dropped and the time spent doing so are bounded (C{limits.max_drain_bytes},
C{timeouts.drain}).
"""

from __future__ import annotations

import enum

from dockguard.relay.framing import Head

__all__ = ["Fate", "fate_of_body"]


class Fate(enum.Enum):
    #: The body was read already (or there is none): on to the next request.
    NEXT = "next"
    #: A small body of known length: read and dropped (DRAINING).
    DRAIN = "drain"
    #: Any other body: not read; the answer says Connection: close, and
    #: what the client still sends is dropped unparsed until it closes
    #: (LINGERING), so the answer is not lost to a reset.
    LINGER = "linger"
    #: The client waits for 100 Continue before it sends the body: it will
    #: never send it; close at once.
    CLOSE = "close"


def fate_of_body(head: Head, body_read: bool, drain_bytes: int) -> Fate:
    """What becomes of the body of the refused request C{head}."""
    if body_read:
        return Fate.NEXT
    expects = head.fields.get(b"expect")
    if expects is not None and expects.lower() == b"100-continue":
        return Fate.CLOSE
    if 0 <= head.length <= drain_bytes:
        return Fate.DRAIN
    return Fate.LINGER
