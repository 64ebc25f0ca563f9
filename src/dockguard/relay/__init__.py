"""
The relay: what stands between a caller and the Docker daemon.

Each module holds one part of a request's life:

  - L{settings}: timeouts, limits and listeners (each default once);
  - L{admission}: which connections are accepted at all;
  - L{framing}: where a request begins and ends (llhttp, strict), and the
    framing of what is sent on;
  - L{verdict}: refuse, inspect or forward, from the head alone (pure);
  - L{refusals}: where a refused request's body goes (pure);
  - L{decisions}: one line per decision;
  - L{states}: a client connection's states and every move between them;
  - L{judging}: after the verdict, the look-ups and bodies judged (L{Judge});
  - L{client}: the client connection, a state machine, and the L{Relay};
  - L{exchange}: one allowed request relayed to the daemon, and its answer;
  - L{lookup}, L{scoping}: a scope's look-ups at the daemon and what they do;
  - L{daemon}: connections to the daemon and their pool;
  - L{splice}: flow control, and the raw splice after a hijack.
"""

from dockguard.relay.client import EVENTS_PER_TURN, ClientFactory, ClientProtocol, Relay, State
from dockguard.relay.daemon import DaemonConnection, DaemonPool
from dockguard.relay.settings import Limits, Listener, Timeouts

__all__ = [
    "EVENTS_PER_TURN",
    "ClientFactory",
    "ClientProtocol",
    "DaemonConnection",
    "DaemonPool",
    "Limits",
    "Listener",
    "Relay",
    "State",
    "Timeouts",
]
