"""
What the relay is told at start (and on reload): its clocks, its bounds and
the listener each connection came in on.  Each default is written here once;
the configuration file's keys fill these classes (L{dockguard.config}).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs


def _admit_all(peer: object) -> bool:
    return True


@attrs.frozen
class Timeouts:
    """
    @ivar header: seconds a client has to finish a request head once it
        started one (slow-loris guard; also bounds the TLS handshake).
    @ivar idle: seconds an idle keep-alive connection is kept open.
    @ivar drain: seconds a refused request's body is read and dropped
        before the connection is closed anyway.
    """

    header: float = 30.0
    idle: float = 120.0
    drain: float = 5.0


@attrs.frozen
class Limits:
    """
    Bounds on what one caller can make dockguard hold.

    @ivar head_bytes: largest request head (line and headers), 431 above.
    @ivar headers: most header fields in one request, 431 above.
    @ivar inspected_body: largest body the escalation guards read before
        judging it, 413 above.
    @ivar connections: client connections open at once, all listeners.
    @ivar connections_per_peer: client connections open at once from one
        network address (an IPv6 /64 counts as one address; Unix socket
        callers are not counted per peer).
    @ivar plain_connections: plain-TCP connections open at once, all
        listeners (default: half of C{connections}).
    @ivar tls_handshakes: TLS connections open at once whose handshake has
        not completed (default: an eighth of C{connections}).  What the two
        leave of C{connections} is only for Unix socket callers and TLS
        callers with a valid certificate: network floods cannot take it.
    @ivar drain_bytes: most body bytes of a refused request read and
        dropped to keep the connection; above, it closes after the answer.
    """

    head_bytes: int = 256 * 1024
    headers: int = 100
    inspected_body: int = 1024 * 1024
    connections: int = 2048
    connections_per_peer: int = 128
    plain_connections: int | None = None
    tls_handshakes: int | None = None
    drain_bytes: int = 64 * 1024

    @property
    def plainBudget(self) -> int:
        if self.plain_connections is not None:
            return self.plain_connections
        return max(1, self.connections // 2)

    @property
    def handshakeBudget(self) -> int:
        if self.tls_handshakes is not None:
            return self.tls_handshakes
        return max(1, self.connections // 8)


@attrs.frozen
class Listener:
    """
    What the relay needs to know about the listener a connection came in on.

    @ivar name: for logs, e.g. C{"tls://0.0.0.0:2376"}.
    @ivar identity: the fixed identity of every caller, or L{None} when the
        identity comes from the client certificate.
    @ivar admit: decides from the peer address whether a connection is
        accepted at all (source network allow-list).
    @ivar learn: learn mode: what would be denied is relayed and logged.
    """

    name: str
    identity: str | None
    admit: Callable[[object], bool] = _admit_all
    learn: bool = False

    @property
    def tls(self) -> bool:
        return self.identity is None
