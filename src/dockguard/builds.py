"""Builds: the query of ``POST /build`` and BuildKit's routes, judged against the group's guards.

A build runs containers on the daemon's host with options that come from the
query, not from a body dockguard could judge: moby's ``newImageBuildOptions``
(``api/server/router/build/build_routes.go``) reads them with
``r.FormValue``/``r.Form``, as :mod:`dockguard.queries` does. Under groups
(an allowance is given), :func:`judge_build` refuses what the group's guards
do not allow:

* ``networkmode``: ``host`` needs ``"network"`` in ``host_namespaces`` (the
  daemon grants a build the host network on request), ``container:X`` needs
  ``join_containers``, as ``HostConfig.NetworkMode`` does;
* ``remote``: a URL (http, https or git) the daemon downloads the context
  from, from its own network, needs ``remote_fetch``; ``client-session`` (the
  context comes over BuildKit's session) is not a download;
* ``cgroupparent``: the build's containers in a cgroup of the caller's choice,
  outside the limits the administrator set, needs ``cgroup_parent``;
* ``securityopt``: needs ``unconfined`` (Linux daemons reject it today);
* ``t``: every tag the build writes is judged by ``image_names``
  (:mod:`dockguard.images`);
* ``version=2`` is BuildKit, and so are ``POST /session`` and ``POST /grpc``:
  they need ``buildkit``. BuildKit's Dockerfile, its ``# syntax=`` frontend
  (an image the daemon pulls and runs), its entitlements (``RUN
  --network=host``, which the daemon grants by default, and
  ``--security=insecure`` where enabled), its outputs (any image name) and
  the files it reads from the client all travel inside the HTTP/2 stream of
  ``/session`` or ``/grpc``, which dockguard cannot read. So ``buildkit =
  true`` trusts the caller with all of that, ``image_names`` included.
* a ``multipart/form-data`` body, which ``postBuild`` would read build
  options from, is refused for every route by :mod:`dockguard.meaning`.

``extrahosts`` (``/etc/hosts`` lines inside the build), ``isolation`` (only
``default`` on Linux), resource limits, ``ulimits``, ``buildargs``,
``labels``, ``cachefrom``, ``pull`` and ``platform`` are not guarded: a
``RUN`` step, which a build may always have, can do what they do, and none
reaches the host. See docs/threat-model.md, "What a build can still do".

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import attrs

from dockguard.guards import ALLOWED, Allowance, Verdict, judge_namespace_mode, refusal
from dockguard.images import judge_written_name
from dockguard.queries import Query

__all__ = ["BUILD_ROUTES", "judge_build"]

#: The routes (method, template) :func:`judge_build` judges.
BUILD_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/build"), ("POST", "/session"), ("POST", "/grpc")})

#: The ``remote`` value with which BuildKit's client sends the context over its session.
CLIENT_SESSION = "client-session"

_BUILDKIT_FIX = "set buildkit = true in the group's guards to allow it, or build with DOCKER_BUILDKIT=0"


def judge_build(template: str, query: Query, allowance: Allowance) -> Verdict:
    """The verdict for ``POST template`` (one of :data:`BUILD_ROUTES`) with ``query``."""
    if template in ("/session", "/grpc"):
        if allowance.buildkit:
            return ALLOWED
        return refusal(
            f"(route) {template}",
            "buildkit",
            f"{template} carries a BuildKit build (its Dockerfile, frontend, entitlements and outputs) in a "
            f"stream dockguard cannot read ({_BUILDKIT_FIX})",
        )
    if query.get("version") == "2" and not allowance.buildkit:
        return refusal(
            "(query) version",
            "buildkit",
            "version=2 is a BuildKit build, whose Dockerfile, frontend (# syntax=), entitlements (RUN "
            "--network=host) and outputs travel over /session, which dockguard cannot read "
            f"({_BUILDKIT_FIX})",
        )
    verdict = judge_namespace_mode(query.get("networkmode"), "network", "networkmode", allowance)
    if not verdict.allowed:
        return attrs.evolve(verdict, field="(query) networkmode")
    remote = query.get("remote")
    if remote and remote != CLIENT_SESSION and not allowance.remote_fetch:
        return refusal(
            "(query) remote",
            "remote_fetch",
            f"remote is {remote[:80]!r}: the daemon would download the build context from it, from its own "
            "network, which may reach what the caller cannot (set remote_fetch = true in the group's guards "
            "to allow it, or send the context in the body)",
        )
    cgroup_parent = query.get("cgroupparent")
    if cgroup_parent and not allowance.cgroup_parent:
        return refusal(
            "(query) cgroupparent",
            "cgroup_parent",
            f"cgroupparent is {cgroup_parent[:80]!r}: the build's containers would run in a cgroup of the "
            "caller's choice, outside the limits set for containers (set cgroup_parent = true in the "
            "group's guards to allow it)",
        )
    if query.has("securityopt") and not allowance.unconfined:
        return refusal(
            "(query) securityopt",
            "unconfined",
            "securityopt sets security options for the build's containers: weakened confinement is not "
            "allowed (set unconfined = true in the group's guards to allow it)",
        )
    for tag in query.all("t"):
        if not tag:
            continue  # the daemon skips an empty t
        verdict = judge_written_name("(query) t", tag, "", allowance)
        if not verdict.allowed:
            return verdict
    return ALLOWED
