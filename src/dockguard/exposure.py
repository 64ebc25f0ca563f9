"""Loopback is not an identity: which callers can become a TCP listener's fixed identity.

A C{tcp://…?identity=NAME} listener names every caller that connects to it
C{NAME}. On C{127.0.0.1} that is every process in the host's network
namespace, and some callers can put code or fetches there:

* a build (C{image.build}): the classic builder's C{ADD http://…} is
  fetched by the daemon itself, from the host's network namespace, whatever
  the build's C{networkmode}; BuildKit's C{RUN --network=host} too;
* a container or service on the host network (C{host_namespaces} with
  C{network}, and C{containers}/C{services} create);
* a download the daemon makes for the caller (C{remote_fetch}: build
  C{remote=}, import C{fromSrc=});
* a plugin (C{privileged}: plugins may run on the host network).

Such a caller reaches every loopback TCP listener, and a non-loopback one on
the host's own addresses. If the listener's identity can do what the caller
cannot, the caller gains it: a build read another container's files as the
admin identity through C{ADD http://127.0.0.1:2375/containers/X/archive}.

L{exposures} finds, for per-identity groups, each fixed-identity TCP
listener whose identity has rights some *reaching* identity lacks. The caller
of this module refuses to start when those rights go beyond reading, unless
the listener says C{trust_host=1} (every process of the host's network
namespace may be that identity), and warns otherwise. The fix is a Unix
socket (file permissions decide who connects) or a TLS listener (a
certificate decides). Under environment variables every caller has the same
rights, so no one gains anything this way.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from dockguard.groups import GroupPolicy
from dockguard.guards import CLOSED, Allowance
from dockguard.policy import READ_METHODS, explain
from dockguard.routes import Route

__all__ = ["Exposure", "exposures", "host_network_reach"]


@attrs.frozen
class Exposure:
    """A listener whose fixed identity callers of the host's network namespace can become."""

    #: Index of the listener in the configuration, and its name (C{tcp://127.0.0.1:2375}).
    index: int
    listener: str
    #: The listener's fixed identity.
    identity: str
    #: An identity that can reach the host's network namespace, and how.
    reacher: str
    how: str
    #: Whether the listener's identity can do more than read what the reacher cannot.
    writes: bool
    #: A few of the calls the listener's identity may make that the reacher may not.
    gained: tuple[str, ...]

    def sentence(self) -> str:
        kind = "writes" if self.writes else "reads"
        return (
            f"listener {self.listener} names every caller {self.identity!r}, and {self.reacher!r} can reach it "
            f"from the host's network namespace ({self.how}): {self.reacher} would gain {self.identity}'s "
            f"{kind} ({', '.join(self.gained)}); use a unix:// or tls:// listener for {self.identity}, or set "
            "trust_host=1 on the listener if every process on the host may be "
            f"{self.identity}"
        )


def _allowed(policy: GroupPolicy, identity: str) -> dict[Route, bool]:
    """The routes C{identity} may call, each with whether it is more than a read."""
    return {
        route: route.method not in READ_METHODS or route.sensitive
        for route, decision in explain(policy, identity)
        if decision.allowed
    }


def _allowance(policy: GroupPolicy, identity: str) -> Allowance:
    merged = CLOSED
    for name in policy.identities.get(identity, ()):
        merged = merged.merge(policy.groups[name].guards)
    return merged


def host_network_reach(policy: GroupPolicy, identity: str) -> str | None:
    """How C{identity} can get code or a fetch into the host's network namespace, or C{None}."""
    allowed = {(route.method, route.template) for route in _allowed(policy, identity)}
    guards = _allowance(policy, identity)
    if ("POST", "/build") in allowed:
        return "a build's ADD URL is fetched by the daemon on the host's network"
    if "network" in guards.host_namespaces and (
        ("POST", "/containers/create") in allowed or ("POST", "/services/create") in allowed
    ):
        return "containers or services on the host network"
    if guards.remote_fetch and ("POST", "/images/create") in allowed:
        return "downloads the daemon makes for it (remote_fetch)"
    if guards.privileged and ("POST", "/plugins/pull") in allowed:
        return "plugins, which may use the host network"
    return None


def exposures(listeners: Iterable[object], policy: GroupPolicy) -> list[Exposure]:
    """Every fixed-identity TCP listener whose identity a reaching identity would gain rights through.

    C{listeners} are L{ListenerConfig<dockguard.listeners.ListenerConfig>} objects; those
    with C{trust_host} set are skipped.
    """
    reachers = {
        name: how for name in sorted(policy.identities) if (how := host_network_reach(policy, name)) is not None
    }
    found: list[Exposure] = []
    for index, listener in enumerate(listeners):
        identity = getattr(listener, "identity", None)
        if getattr(listener, "kind", None) != "tcp" or identity is None or getattr(listener, "trust_host", False):
            continue
        mine = _allowed(policy, identity)
        mine_guards = _allowance(policy, identity)
        for reacher, how in reachers.items():
            if reacher == identity:
                continue
            theirs = _allowed(policy, reacher)
            gained = sorted((route for route in mine if route not in theirs), key=lambda route: not mine[route])
            wider_guards = _allowance(policy, reacher).merge(mine_guards) != _allowance(policy, reacher)
            if not gained and not wider_guards:
                continue
            writes = any(mine[route] for route in gained) or (wider_guards and any(mine.values()))
            shown = tuple(f"{route.method} {route.template}" for route in gained[:3]) or ("wider guards",)
            found.append(Exposure(index, listener.name, identity, reacher, how, writes, shown))  # type: ignore[attr-defined]  # listeners are duck-typed here (config or a test double)
            break
    return found
