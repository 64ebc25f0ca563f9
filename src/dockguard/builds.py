"""Builds: the query of C{POST /build} and BuildKit's routes, judged against the group's guards.

A build runs containers on the daemon's host with options that come from the
query, not from a body dockguard could judge: moby's C{newImageBuildOptions}
(C{api/server/router/build/build_routes.go}) reads them with
C{r.FormValue}/C{r.Form}, as L{dockguard.queries} does. Under groups
(an allowance is given), L{judge_build} refuses what the group's guards
do not allow:

* C{networkmode}: C{host} needs C{"network"} in C{host_namespaces} (the
  daemon grants a build the host network on request), C{container:X} needs
  C{join_containers}, as C{HostConfig.NetworkMode} does;
* C{remote}: a URL (http, https or git) the daemon downloads the context
  from, from its own network, needs C{remote_fetch}; C{client-session} (the
  context comes over BuildKit's session) is not a download;
* C{cgroupparent}: the build's containers in a cgroup of the caller's choice,
  outside the limits the administrator set, needs C{cgroup_parent};
* C{securityopt}: needs C{unconfined} (Linux daemons reject it today);
* C{t}: every tag the build writes is judged by C{image_names}
  (L{dockguard.images});
* C{version=2} is BuildKit, and so are C{POST /session} and C{POST /grpc}:
  they need C{buildkit}. BuildKit's Dockerfile, its C{# syntax=} frontend
  (an image the daemon pulls and runs), its entitlements (C{RUN
  --network=host}, which the daemon grants by default, and
  C{--security=insecure} where enabled), its outputs (any image name) and
  the files it reads from the client all travel inside the HTTP/2 stream of
  C{/session} or C{/grpc}, which dockguard cannot read. So C{buildkit =
  true} trusts the caller with all of that, C{image_names} included.
* a C{multipart/form-data} body, which C{postBuild} would read build
  options from, is refused for every route by L{dockguard.meaning}.

C{extrahosts} (C{/etc/hosts} lines inside the build), C{isolation} (only
C{default} on Linux), resource limits, C{ulimits}, C{buildargs},
C{labels}, C{cachefrom}, C{pull} and C{platform} are not guarded: a
C{RUN} step, which a build may always have, can do what they do, and none
reaches the host. See docs/threat-model.md, "What a build can still do".

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import attrs

from dockguard.guards import ALLOWED, Allowance, Verdict, judge_namespace_mode, refusal
from dockguard.guards.confinement import judge_cgroup_parent
from dockguard.guards.verdict import Refusal
from dockguard.images import judge_written_name
from dockguard.queries import Query

__all__ = ["BUILD_ROUTES", "judge_build"]

#: The routes (method, template) L{judge_build} judges.
BUILD_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/build"), ("POST", "/session"), ("POST", "/grpc")})

#: The C{remote} value with which BuildKit's client sends the context over its session.
CLIENT_SESSION = "client-session"

_BUILDKIT_FIX = "set buildkit = true in the group's guards to allow it, or build with DOCKER_BUILDKIT=0"


def judge_build(template: str, query: Query, allowance: Allowance) -> Verdict:
    """The verdict for C{POST template} (one of L{BUILD_ROUTES}) with C{query}."""
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
    try:
        # the build's containers in a cgroup of the caller's choice, as a container's CgroupParent
        judge_cgroup_parent(query.get("cgroupparent"), "(query) cgroupparent", allowance)
    except Refusal as refused:
        return refused.verdict()
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
