"""The one place that knows the Docker Engine API's top-level sections.

A section is named by the first segment of the canonical path (after the
``/vX.Y`` prefix is removed, see :mod:`dockguard.paths`). The list and the
environment variable names are those of Tecnativa/docker-socket-proxy
(``haproxy.cfg``: one ``http-request allow`` rule per section, each matching
``^(/v[\\d\\.]+)?/<prefix>``), which linuxserver/docker-socket-proxy keeps.

Unlike those proxies, dockguard matches the first segment exactly and
case-sensitively: the daemon routes case-sensitively, so ``/CONTAINERS/json``
and ``/containersfoo`` belong to no section (and the daemon would answer 404).

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import attrs

from dockguard.paths import CanonicalPath

__all__ = [
    "SECTIONS",
    "Section",
    "container_action",
    "is_hijack_route",
    "section_of",
]


@attrs.frozen
class Section:
    """One top-level section of the Engine API."""

    #: Lowercase name used in messages, e.g. ``"containers"``, ``"ping"``.
    name: str
    #: The environment variable that opens it, e.g. ``"CONTAINERS"``, ``"PING"``.
    env: str
    #: The first path segment that selects it, e.g. ``"containers"``, ``"_ping"``.
    prefix: str


def _section(name: str, prefix: str | None = None) -> Section:
    return Section(name=name, env=name.upper(), prefix=name if prefix is None else prefix)


#: Every top-level section of the Engine API, in alphabetical order.
SECTIONS: tuple[Section, ...] = (
    _section("auth"),
    _section("build"),
    _section("commit"),
    _section("configs"),
    _section("containers"),
    _section("distribution"),
    _section("events"),
    _section("exec"),
    _section("grpc"),
    _section("images"),
    _section("info"),
    _section("networks"),
    _section("nodes"),
    _section("ping", "_ping"),
    _section("plugins"),
    _section("secrets"),
    _section("services"),
    _section("session"),
    _section("swarm"),
    _section("system"),
    _section("tasks"),
    _section("version"),
    _section("volumes"),
)

_BY_PREFIX: dict[str, Section] = {section.prefix: section for section in SECTIONS}


def section_of(path: CanonicalPath) -> Section | None:
    """The section whose prefix is exactly the path's first segment, or ``None``."""
    if not path.segments:
        return None
    return _BY_PREFIX.get(path.segments[0])


def container_action(path: CanonicalPath) -> str | None:
    """The action of ``/containers/{id}/{action}`` (exactly 3 segments), else ``None``.

    For ``/containers/abc/start`` this is ``"start"``; for
    ``/containers/json`` or ``/containers/abc/attach/ws`` it is ``None``.
    """
    segments = path.segments
    if len(segments) == 3 and segments[0] == "containers":
        return segments[2]
    return None


def is_hijack_route(method: str, path: CanonicalPath) -> bool:
    """Whether the daemon takes over the connection for this request.

    True for ``POST /containers/{id}/attach`` and ``POST /exec/{id}/start``:
    the daemon (moby ``postContainersAttach`` and ``postContainerExecStart``)
    hijacks the connection on these routes even without an ``Upgrade`` header,
    answering ``200`` with a raw stream instead of ``101``. The method is
    compared exactly, as the daemon's router does. ``/session`` and ``/grpc``
    (which upgrade to h2c only when asked) and the WebSocket
    ``GET /containers/{id}/attach/ws`` are not covered here: those announce
    themselves with an ``Upgrade`` header.
    """
    if method != "POST":
        return False
    segments = path.segments
    if len(segments) != 3:
        return False
    return (segments[0] == "containers" and segments[2] == "attach") or (
        segments[0] == "exec" and segments[2] == "start"
    )
