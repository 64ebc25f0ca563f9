"""The one place that knows the Docker Engine API's routes and sections.

A section is named by the first segment of the canonical path (after the
C{/vX.Y} prefix is removed, see L{dockguard.paths}). The list and the
environment variable names are those of Tecnativa/docker-socket-proxy
(C{haproxy.cfg}: one C{http-request allow} rule per section, each matching
C{^(/v[\\d\\.]+)?/<prefix>}), which linuxserver/docker-socket-proxy keeps.

Unlike those proxies, dockguard matches the first segment exactly and
case-sensitively: the daemon routes case-sensitively, so C{/CONTAINERS/json}
and C{/containersfoo} belong to no section (and the daemon would answer 404).

It also holds L{ROUTES}, every route of the Engine API with everything
dockguard knows about it: its section, its fine action, whether it is a
sensitive read, whether the daemon hijacks the connection, and which kind of
body the escalation guards judge. L{lookup} finds, once per request, the
L{Match}: the route the daemon would serve the request with (see the
comment above L{ROUTES} for how it follows moby's router) and the section
of its first segment. The policy, the meaning checks and the relay all read
that one match.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import attrs

from dockguard.paths import CanonicalPath

__all__ = [
    "LIBPOD",
    "LIBPOD_ROUTES",
    "LIBPOD_SECTIONS",
    "LITERAL_SEGMENTS",
    "ROUTES",
    "SCOPED_RESOURCES",
    "SCOPED_SECTIONS",
    "SCOPE_KINDS",
    "SECTIONS",
    "Match",
    "Route",
    "Section",
    "case_hint",
    "container_action",
    "libpod_section",
    "lookup",
    "placeholder",
    "sample_path",
]


@attrs.frozen
class Section:
    """One top-level section of the Engine API."""

    #: Lowercase name used in messages, e.g. C{"containers"}, C{"ping"}.
    name: str
    #: The environment variable that opens it, e.g. C{"CONTAINERS"}, C{"PING"}.
    env: str
    #: The first path segment that selects it, e.g. C{"containers"}, C{"_ping"}.
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


def container_action(path: CanonicalPath) -> str | None:
    """The action of C{/containers/{id}/{action}} (exactly 3 segments), else C{None}.

    For C{/containers/abc/start} this is C{"start"}; for
    C{/containers/json} or C{/containers/abc/attach/ws} it is C{None}.
    """
    segments = path.segments
    if len(segments) == 3 and segments[0] == "containers":
        return segments[2]
    return None


# ---------------------------------------------------------------------------
# The route table
# ---------------------------------------------------------------------------
#
# Every route the daemon serves for API versions 1.41 to 1.47, read from
# moby's routers (moby/moby api/server/router/*/<name>.go, C{initRoutes} or
# C{NewRouter}):
#
# * checkpoint/checkpoint.go (experimental daemons only);
# * container/container.go (containers, exec, C{/commit});
# * image/image.go; network/network.go; volume/volume.go (C{PUT} since 1.42,
#   for cluster volumes);
# * system/system.go (C{/_ping} GET and HEAD, C{/events}, C{/info},
#   C{/version}, C{/system/df}, C{/auth}; its C{OPTIONS /{anyroute:.*}}
#   CORS route is left out: it serves no data);
# * build/build.go (C{/build}, C{/build/prune}, C{/build/cancel});
# * session/session.go (C{POST /session}); grpc/grpc.go (C{POST /grpc});
# * swarm/cluster.go (swarm, services, nodes, tasks, secrets, configs);
# * plugin/plugin.go; distribution/distribution.go.
#
# How the daemon matches, and how L{lookup} copies it:
#
# * gorilla/mux tries routes in the order they were registered and the first
#   match wins. The daemon registers the checkpoint router *before* the
#   container router ("or the DELETE gets masked", cmd/dockerd), so
#   C{DELETE /containers/a/checkpoints/b} deletes a checkpoint. ROUTES keeps
#   that order.
# * Methods are matched exactly. Only C{/_ping} and
#   C{/containers/{id}/archive} have a HEAD route; HEAD on a GET route is not
#   served (gorilla's C{Methods("GET")} does not match HEAD).
# * Moby declares most names as C{{name:.*}} (C{{id:.+}} for
#   C{GET /networks/{id}}): the regular expression crosses C{/}, so
#   C{/images/library/busybox:latest/json} inspects C{library/busybox:latest}
#   and C{/containers/web/db/archive} reads the archive of the container
#   reachable as C{web/db} (a legacy link name: links are registered in the
#   daemon's name store as C{/web/db}). Such placeholders therefore match one
#   *or more* segments here too, for every router that declares them so -
#   containers and exec as well as images, networks, volumes, plugins and
#   distribution. Matching one segment there would leave
#   C{GET /containers/web/db/archive} without a route, and a section-level
#   "read" would then let a sensitive read through. The swarm routes
#   (C{/services/{id}} and the like) and the checkpoint delete use the plain
#   C{{id}} form, which gorilla matches as one segment (C{[^/]+}).


@attrs.frozen
class Route:
    """One route of the Engine API, as the daemon's router matches it."""

    #: C{"GET"}, C{"HEAD"}, C{"POST"}, C{"PUT"} or C{"DELETE"}.
    method: str
    #: The path without the version prefix, e.g. C{"/containers/{id}/start"}.
    template: str
    #: The L{Section.name} of the first segment, e.g. C{"containers"}.
    section: str
    #: The fine action that grants this route on its own, e.g.
    #: C{"container.start"}; C{None} for a route only its section's level
    #: opens. The plain reads of containers, images, networks, volumes,
    #: services, tasks and nodes have one too (C{"container.list"},
    #: C{"container.inspect"}, ...): a section's "read" opens them all, the
    #: action one alone, so that a preset gives a tool that only lists
    #: containers the list and not every inspect.
    action: str | None
    #: A read that a section-level "read" does not grant: it needs its action
    #: (or the section's "write"). Container archive GET/HEAD (copying files
    #: out), export (the whole filesystem), attach over WebSocket (stdin),
    #: logs of containers, services and tasks (what programs print: tokens,
    #: connection strings), image exports (C{docker save}: every layer, with
    #: whatever secrets were baked in), the swarm's join tokens and its unlock
    #: key.
    sensitive: bool = False
    #: What granting it amounts to, when that is more than its name says,
    #: e.g. C{"equivalent to cluster admin"}; shown by C{dockguard explain}.
    amounts_to: str = ""
    #: Whether the daemon takes over the connection: C{POST
    #: /containers/{id}/attach} and C{POST /exec/{id}/start}. The daemon
    #: (moby C{postContainersAttach} and C{postContainerExecStart}) hijacks
    #: the connection on these routes even without an C{Upgrade} header,
    #: answering C{200} with a raw stream instead of C{101}. C{/session} and
    #: C{/grpc} (which upgrade to h2c only when asked) and the WebSocket
    #: C{GET /containers/{id}/attach/ws} are not hijack routes: those announce
    #: themselves with an C{Upgrade} header.
    hijack: bool = False
    #: The kind of body the escalation guards judge on this route (one of
    #: L{dockguard.guards.INSPECTED_KINDS}, e.g. C{"container.create"}),
    #: or C{None}: the body is relayed uninspected.
    inspected: str | None = None
    #: How a group's scope (L{dockguard.scope}) applies to the route, one of
    #: L{SCOPE_KINDS}: the resource its placeholder names
    #: (C{"container"}, C{"exec"}, C{"volume"}, C{"network"}), the
    #: container its C{container} query parameter names (C{"query"}:
    #: C{/commit}), a list or
    #: stream that is filtered (C{"list"}, C{"events"}), a create whose new
    #: resource is stamped with its owner (C{"create"}), a call that acts on
    #: resources across the board and is refused under a scope
    #: (C{"refused"}), or C{None}: the route touches none of the scoped
    #: resources and a scope does not restrict it.
    scoped: str | None = None


#: The values of L{Route.scoped}.
SCOPE_KINDS = ("container", "exec", "volume", "network", "query", "list", "events", "create", "refused")
#: The resources a scope holds.
SCOPED_RESOURCES = ("container", "volume", "network")
#: The sections of those resources (and of exec instances): under a scope,
#: a route of theirs without a scope kind is refused.
SCOPED_SECTIONS = frozenset({"containers", "exec", "volumes", "networks"})


@attrs.frozen
class _Pattern:
    """The compiled form of a template: literal segments and placeholders."""

    #: Segments before the greedy placeholder (or all of them): a string is a
    #: literal, C{None} a one-segment placeholder.
    head: tuple[str | None, ...]
    #: Whether a placeholder spanning one or more segments follows C{head}.
    greedy: bool
    #: Segments after the greedy placeholder.
    tail: tuple[str | None, ...]

    def matches(self, segments: tuple[str, ...]) -> bool:
        head, tail = self.head, self.tail
        if self.greedy:
            if len(segments) < len(head) + 1 + len(tail):
                return False
            after = segments[len(segments) - len(tail) :] if tail else ()
        else:
            if len(segments) != len(head):
                return False
            after = ()
        for want, got in zip(head, segments):
            if want is not None and want != got:
                return False
        for want, got in zip(tail, after):
            if want is not None and want != got:
                return False
        return True


def _compile(template: str, span: bool) -> _Pattern:
    parts: list[str | None] = [
        None if part.startswith("{") and part.endswith("}") else part for part in template[1:].split("/")
    ]
    if not span:
        return _Pattern(head=tuple(parts), greedy=False, tail=())
    holes = [index for index, part in enumerate(parts) if part is None]
    if len(holes) != 1:
        raise ValueError(f"a spanning template needs exactly one placeholder: {template}")
    index = holes[0]
    return _Pattern(head=tuple(parts[:index]), greedy=True, tail=tuple(parts[index + 1 :]))


_SECTION_BY_PREFIX = {section.prefix: section.name for section in SECTIONS}
_PATTERNS: dict[Route, _Pattern] = {}


_CLUSTER_ADMIN = "equivalent to cluster admin"

#: The scope kind of a route whose first segments are these (C{None}: any).
_NAMED = {"containers": "container", "exec": "exec", "volumes": "volume", "networks": "network"}


def _default_scope(template: str) -> str | None:
    """A route under a scoped section names its resource in its placeholder."""
    parts = template[1:].split("/")
    kind = _NAMED.get(parts[0])
    if kind is None:
        return None
    if len(parts) > 1 and parts[1].startswith("{"):
        return kind
    return None


def _r(
    method: str,
    template: str,
    action: str | None = None,
    *,
    sensitive: bool = False,
    span: bool = True,
    amounts_to: str = "",
    hijack: bool = False,
    inspected: str | None = None,
    scoped: str | None = None,
) -> Route:
    """One route; C{span}: its placeholder is moby's C{{name:.*}} (one or more segments)."""
    first = template[1:].split("/")[0]
    route = Route(
        method=method,
        template=template,
        section=_SECTION_BY_PREFIX[first],
        action=action,
        sensitive=sensitive,
        amounts_to=amounts_to,
        hijack=hijack,
        inspected=inspected,
        scoped=scoped if scoped is not None else _default_scope(template),
    )
    has_placeholder = "{" in template
    _PATTERNS[route] = _compile(template, span and has_placeholder)
    return route


#: Every route of the Engine API (v1.41-v1.47), in the daemon's matching order.
ROUTES: tuple[Route, ...] = (
    # checkpoint/checkpoint.go (registered before the container router)
    _r("GET", "/containers/{id}/checkpoints"),
    _r("POST", "/containers/{id}/checkpoints"),
    _r("DELETE", "/containers/{id}/checkpoints/{checkpoint}", span=False),
    # container/container.go
    _r("HEAD", "/containers/{id}/archive", "container.archive", sensitive=True),
    _r("GET", "/containers/json", "container.list", scoped="list"),
    _r("GET", "/containers/{id}/export", "container.export", sensitive=True),
    _r("GET", "/containers/{id}/changes", "container.changes"),
    _r("GET", "/containers/{id}/json", "container.inspect"),
    _r("GET", "/containers/{id}/top", "container.top"),
    _r("GET", "/containers/{id}/logs", "container.logs", sensitive=True),
    _r("GET", "/containers/{id}/stats", "container.stats"),
    _r("GET", "/containers/{id}/attach/ws", "container.attach", sensitive=True),
    _r("GET", "/exec/{id}/json", "container.exec"),
    _r("GET", "/containers/{id}/archive", "container.archive", sensitive=True),
    _r("POST", "/containers/create", "container.create", inspected="container.create", scoped="create"),
    _r("POST", "/containers/{id}/kill", "container.kill"),
    _r("POST", "/containers/{id}/pause", "container.pause"),
    _r("POST", "/containers/{id}/unpause", "container.unpause"),
    _r("POST", "/containers/{id}/restart", "container.restart"),
    _r("POST", "/containers/{id}/start", "container.start", inspected="container.start"),
    _r("POST", "/containers/{id}/stop", "container.stop"),
    # waiting for a container to stop has no effect of its own; every
    # attached `docker run` does it after starting, so it goes with start
    _r("POST", "/containers/{id}/wait", "container.start"),
    # resizing only changes the TTY size of an attached session: it goes with attach
    _r("POST", "/containers/{id}/resize", "container.attach"),
    _r("POST", "/containers/{id}/attach", "container.attach", hijack=True),
    _r("POST", "/containers/{id}/exec", "container.exec", inspected="exec.create"),
    _r("POST", "/exec/{id}/start", "container.exec", hijack=True),
    _r("POST", "/exec/{id}/resize", "container.exec"),
    _r("POST", "/containers/{id}/rename", "container.rename"),
    _r("POST", "/containers/{id}/update", "container.update", inspected="container.update"),
    _r("POST", "/containers/prune", "container.prune", scoped="refused"),
    _r("POST", "/commit", "image.commit", scoped="query"),
    _r("PUT", "/containers/{id}/archive", "container.archive"),
    # the old `docker cp` (out), still served by daemons up to 20.10 for API < 1.20
    _r("POST", "/containers/{id}/copy", "container.archive"),
    _r("DELETE", "/containers/{id}", "container.delete"),
    # image/image.go
    _r("GET", "/images/json", "image.list"),
    _r("GET", "/images/search", "image.search"),
    _r("GET", "/images/get", "image.export", sensitive=True),
    _r("GET", "/images/{name}/get", "image.export", sensitive=True),
    _r("GET", "/images/{name}/history", "image.history"),
    _r("GET", "/images/{name}/json", "image.inspect"),
    _r("POST", "/images/load", "image.load"),
    _r("POST", "/images/create", "image.pull"),
    _r("POST", "/images/{name}/push", "image.push"),
    _r("POST", "/images/{name}/tag", "image.tag"),
    _r("POST", "/images/prune", "image.prune"),
    _r("DELETE", "/images/{name}", "image.delete"),
    # system/system.go
    _r("GET", "/_ping"),
    _r("HEAD", "/_ping"),
    _r("GET", "/events", scoped="events"),
    _r("GET", "/info"),
    _r("GET", "/version"),
    _r("GET", "/system/df", scoped="refused"),
    _r("POST", "/auth"),
    # volume/volume.go
    _r("GET", "/volumes", "volume.list", scoped="list"),
    _r("GET", "/volumes/{name}", "volume.inspect"),
    _r("POST", "/volumes/create", "volume.create", inspected="volume.create", scoped="create"),
    _r("POST", "/volumes/prune", "volume.prune", scoped="refused"),
    _r("PUT", "/volumes/{name}"),
    _r("DELETE", "/volumes/{name}", "volume.delete"),
    # build/build.go, session/session.go, grpc/grpc.go: BuildKit uses all three
    _r("POST", "/build", "image.build"),
    _r("POST", "/build/prune", "image.build"),
    _r("POST", "/build/cancel", "image.build"),
    _r("POST", "/session", "image.build"),
    # swarm/cluster.go: plain {id}, one segment
    # Swarm and node writes make, join, leave (?force=1 destroys a
    # single-manager cluster), reconfigure (rotate tokens and keys), drain or
    # remove nodes: cluster admin, on every node of the cluster.
    _r("POST", "/swarm/init", amounts_to=_CLUSTER_ADMIN),
    _r("POST", "/swarm/join", amounts_to=_CLUSTER_ADMIN),
    _r("POST", "/swarm/leave", amounts_to=_CLUSTER_ADMIN),
    # the swarm's join tokens: a manager token joins the cluster as a manager
    _r("GET", "/swarm", sensitive=True, amounts_to=_CLUSTER_ADMIN + " (the manager join token)"),
    _r("GET", "/swarm/unlockkey", sensitive=True, amounts_to=_CLUSTER_ADMIN),
    _r("POST", "/swarm/update", amounts_to=_CLUSTER_ADMIN),
    _r("POST", "/swarm/unlock", amounts_to=_CLUSTER_ADMIN),
    _r("GET", "/services", "service.list"),
    _r("GET", "/services/{id}", "service.inspect", span=False),
    _r("POST", "/services/create", inspected="service.create"),
    _r("POST", "/services/{id}/update", span=False, inspected="service.update"),
    _r("DELETE", "/services/{id}", span=False),
    _r("GET", "/services/{id}/logs", "service.logs", sensitive=True, span=False),
    _r("GET", "/nodes", "node.list"),
    _r("GET", "/nodes/{id}", "node.inspect", span=False),
    _r("DELETE", "/nodes/{id}", span=False, amounts_to=_CLUSTER_ADMIN),
    _r("POST", "/nodes/{id}/update", span=False, amounts_to=_CLUSTER_ADMIN),
    _r("GET", "/tasks", "task.list"),
    _r("GET", "/tasks/{id}", "task.inspect", span=False),
    _r("GET", "/tasks/{id}/logs", "task.logs", sensitive=True, span=False),
    _r("GET", "/secrets"),
    _r("POST", "/secrets/create"),
    _r("DELETE", "/secrets/{id}", span=False),
    _r("GET", "/secrets/{id}", span=False),
    _r("POST", "/secrets/{id}/update", span=False),
    _r("GET", "/configs"),
    _r("POST", "/configs/create"),
    _r("DELETE", "/configs/{id}", span=False),
    _r("GET", "/configs/{id}", span=False),
    _r("POST", "/configs/{id}/update", span=False),
    # plugin/plugin.go
    _r("GET", "/plugins"),
    _r("GET", "/plugins/{name}/json"),
    _r("GET", "/plugins/privileges"),
    _r("DELETE", "/plugins/{name}"),
    _r("POST", "/plugins/{name}/enable"),
    _r("POST", "/plugins/{name}/disable"),
    _r("POST", "/plugins/pull", inspected="plugin.pull"),
    _r("POST", "/plugins/{name}/push"),
    _r("POST", "/plugins/{name}/upgrade", inspected="plugin.upgrade"),
    _r("POST", "/plugins/{name}/set", inspected="plugin.set"),
    _r("POST", "/plugins/create"),
    # distribution/distribution.go
    _r("GET", "/distribution/{name}/json"),
    # grpc/grpc.go
    _r("POST", "/grpc", "image.build"),
    # network/network.go
    _r("GET", "/networks", "network.list", scoped="list"),
    _r("GET", "/networks/{id}", "network.inspect"),
    _r("POST", "/networks/create", "network.create", inspected="network.create", scoped="create"),
    _r("POST", "/networks/{id}/connect", "network.connect", inspected="network.connect", scoped="refused"),
    _r("POST", "/networks/{id}/disconnect", "network.connect", scoped="refused"),
    _r("POST", "/networks/prune", "network.prune", scoped="refused"),
    _r("DELETE", "/networks/{id}", "network.delete"),
)


# ---------------------------------------------------------------------------
# libpod: Podman's own API (issue 17)
# ---------------------------------------------------------------------------
#
# Podman serves the routes above (its Docker-compatible API) and its own
# libpod API under C{/libpod/}, read here from Podman 4.3.1's
# C{pkg/api/server/register_*.go} (registration order kept: gorilla/mux takes
# the first match). The differences from moby's router that matter here:
#
# * every libpod route is registered with the version prefix only
#   (C{VersionedPath}), except C{/libpod/_ping}; Podman 4.3 answers 404 for
#   an unversioned C{/libpod/containers/json}. Both forms are judged as the
#   same route (later Podman releases may serve both, never as another route);
# * placeholders are one segment (C{{name}}) unless declared C{{name:.*}},
#   and Podman decodes their escapes; literal segments are matched encoded
#   (C{UseEncodedPath}), see L{dockguard.paths};
# * C{/libpod/manifests} routes depend on the version's first digit
#   (C{/v3.x/} and C{/v4.x/} register different routes): every write there
#   is the one action C{image.manifest} and every read a plain read, so the
#   version cannot change what is judged.
#
# The sections are linuxserver/docker-socket-proxy's C{LIBPOD_*} variables
# (README "Podman / libpod API", haproxy.cfg: C{^(/v[\d\.]+)?/libpod/<name>}),
# one per second segment; C{/libpod/kube/play} and C{/libpod/kube/generate}
# (the newer spellings of C{play/kube} and C{generate/kube}) belong to the
# play and generate sections, and C{/libpod/build} and C{/libpod/commit},
# which linuxserver leaves out (refused), have dockguard's own
# C{LIBPOD_BUILD} and C{LIBPOD_COMMIT}. Section names are C{libpod_<name>}.
#
# Scopes (dockguard.scope) know Docker's bodies and lists only: every libpod
# route that touches containers, pods, volumes, networks or events is
# C{scoped="refused"}, so a scoped group cannot use it.

#: The segment every libpod path starts with (after the version prefix).
LIBPOD = "libpod"
#: What the name of every libpod route's action starts with.
LIBPOD_ACTION_PREFIX = "libpod."


def _libpod_section(name: str, prefix: str | None = None) -> Section:
    return Section(name=f"libpod_{name}", env=f"LIBPOD_{name.upper()}", prefix=f"libpod/{prefix or name}")


#: The libpod sections, by the second segment of their paths.
LIBPOD_SECTIONS: tuple[Section, ...] = (
    _libpod_section("build"),
    _libpod_section("commit"),
    _libpod_section("containers"),
    _libpod_section("events"),
    _libpod_section("exec"),
    _libpod_section("generate"),
    _libpod_section("images"),
    _libpod_section("info"),
    _libpod_section("manifests"),
    _libpod_section("networks"),
    _libpod_section("ping", "_ping"),
    _libpod_section("play"),
    _libpod_section("pods"),
    _libpod_section("secrets"),
    _libpod_section("system"),
    _libpod_section("version"),
    _libpod_section("volumes"),
)

_LIBPOD_BY_SEGMENT: dict[str, Section] = {section.prefix.split("/", 1)[1]: section for section in LIBPOD_SECTIONS}
_LIBPOD_BY_NAME: dict[str, Section] = {section.name: section for section in LIBPOD_SECTIONS}
#: C{/libpod/kube/<x>}: the section of each C{<x>}.
_KUBE_SECTIONS = {"play": "libpod_play", "generate": "libpod_generate"}

_WHOLE_HOST = "equivalent to root on the host unless the group's guards judge it"


def _lp(
    method: str,
    template: str,
    action: str | None = None,
    *,
    section: str | None = None,
    sensitive: bool = False,
    amounts_to: str = "",
    hijack: bool = False,
    inspected: str | None = None,
    scoped: str | None = "refused",
) -> Route:
    """
    One libpod route; placeholders written C{{name:.*}} span segments,
    others are one segment.  Its action is named in the C{libpod.}
    namespace (C{container.start} is C{libpod.container.start} here): an
    action opens one API's routes, so a grant made for a tool that speaks
    Docker's API never reaches Podman's own, nor the reverse.
    """
    if action is not None and not action.startswith(LIBPOD_ACTION_PREFIX):
        action = LIBPOD_ACTION_PREFIX + action
    parts = template[1:].split("/")
    if section is None:
        section = _KUBE_SECTIONS[parts[2]] if parts[1] == "kube" else _LIBPOD_BY_SEGMENT[parts[1]].name
    span = ":.*}" in template
    clean = template.replace(":.*}", "}")
    route = Route(
        method=method,
        template=clean,
        section=section,
        action=action,
        sensitive=sensitive,
        amounts_to=amounts_to,
        hijack=hijack,
        inspected=inspected,
        scoped=scoped,
    )
    _PATTERNS[route] = _compile(clean, span)
    return route


#: Every route of Podman 4.3's libpod API, in its router's matching order.
LIBPOD_ROUTES: tuple[Route, ...] = (
    # register_archive.go
    _lp("GET", "/libpod/containers/{name}/archive", "container.archive", sensitive=True),
    _lp("PUT", "/libpod/containers/{name}/archive", "container.archive"),
    _lp("HEAD", "/libpod/containers/{name}/archive", "container.archive", sensitive=True),
    # register_containers.go
    _lp("POST", "/libpod/containers/create", "container.create", inspected="libpod.container.create"),
    _lp("GET", "/libpod/containers/json"),
    _lp("POST", "/libpod/containers/prune", "container.prune"),
    _lp("GET", "/libpod/containers/showmounted"),
    _lp("DELETE", "/libpod/containers/{name}", "container.delete"),
    _lp("GET", "/libpod/containers/{name}/json"),
    _lp("POST", "/libpod/containers/{name}/kill", "container.kill"),
    # mounts the container's root filesystem on the host and answers its path
    _lp("POST", "/libpod/containers/{name}/mount", "container.mount"),
    _lp("POST", "/libpod/containers/{name}/unmount", "container.mount"),
    _lp("GET", "/libpod/containers/{name}/logs", "container.logs", sensitive=True),
    _lp("POST", "/libpod/containers/{name}/pause", "container.pause"),
    _lp("POST", "/libpod/containers/{name}/restart", "container.restart"),
    _lp("POST", "/libpod/containers/{name}/start", "container.start"),
    _lp("GET", "/libpod/containers/{name}/stats"),
    _lp("GET", "/libpod/containers/stats"),
    _lp("GET", "/libpod/containers/{name}/top"),
    _lp("POST", "/libpod/containers/{name}/unpause", "container.unpause"),
    _lp("POST", "/libpod/containers/{name}/wait", "container.start"),
    _lp("GET", "/libpod/containers/{name}/exists"),
    _lp("POST", "/libpod/containers/{name}/stop", "container.stop"),
    _lp("POST", "/libpod/containers/{name}/attach", "container.attach", hijack=True),
    _lp("POST", "/libpod/containers/{name}/resize", "container.attach"),
    _lp("GET", "/libpod/containers/{name}/export", "container.export", sensitive=True),
    # a checkpoint holds the container's memory; ?export=true hands it out
    _lp(
        "POST",
        "/libpod/containers/{name}/checkpoint",
        "container.checkpoint",
        amounts_to="a copy of the container's memory and filesystem",
    ),
    # ?import=true makes a container from an uploaded checkpoint, whose spec dockguard cannot read
    _lp(
        "POST",
        "/libpod/containers/{name}/restore",
        "container.checkpoint",
        inspected="libpod.unjudged",
        amounts_to=_WHOLE_HOST,
    ),
    _lp("GET", "/libpod/containers/{name}/changes"),
    _lp("POST", "/libpod/containers/{name}/init", "container.start"),
    _lp("POST", "/libpod/containers/{name}/rename", "container.rename"),
    _lp("POST", "/libpod/containers/{name}/update", "container.update", inspected="libpod.container.update"),
    # register_events.go
    _lp("GET", "/libpod/events"),
    # register_exec.go
    _lp("POST", "/libpod/containers/{name}/exec", "container.exec", inspected="exec.create"),
    _lp("POST", "/libpod/exec/{id}/start", "container.exec", hijack=True),
    _lp("POST", "/libpod/exec/{id}/resize", "container.exec"),
    _lp("GET", "/libpod/exec/{id}/json", "container.exec"),
    # register_generate.go (a unit file or kube YAML: the container's whole configuration)
    _lp("GET", "/libpod/generate/{name:.*}/systemd"),
    _lp("GET", "/libpod/generate/kube"),
    # register_healthcheck.go: runs the container's own health check command
    _lp("GET", "/libpod/containers/{name:.*}/healthcheck"),
    # register_images.go
    _lp("POST", "/libpod/images/{name:.*}/push", "image.push", scoped=None),
    _lp("GET", "/libpod/images/{name:.*}/exists", scoped=None),
    _lp("GET", "/libpod/images/{name:.*}/tree", scoped=None),
    _lp("GET", "/libpod/images/{name:.*}/history", scoped=None),
    _lp("GET", "/libpod/images/json", scoped=None),
    _lp("POST", "/libpod/images/load", "image.load", scoped=None),
    _lp("POST", "/libpod/images/import", "image.pull", scoped=None),
    _lp("DELETE", "/libpod/images/remove", "image.delete", scoped=None),
    _lp("DELETE", "/libpod/images/{name:.*}", "image.delete", scoped=None),
    _lp("POST", "/libpod/images/pull", "image.pull", scoped=None),
    _lp("POST", "/libpod/images/prune", "image.prune", scoped=None),
    _lp("GET", "/libpod/images/search", scoped=None),
    _lp("GET", "/libpod/images/{name:.*}/get", "image.export", sensitive=True, scoped=None),
    _lp("GET", "/libpod/images/export", "image.export", sensitive=True, scoped=None),
    _lp("GET", "/libpod/images/{name:.*}/json", scoped=None),
    _lp("POST", "/libpod/images/{name:.*}/tag", "image.tag", scoped=None),
    _lp("POST", "/libpod/commit", "image.commit"),
    _lp("POST", "/libpod/images/{name:.*}/untag", "image.delete", scoped=None),
    _lp("GET", "/libpod/images/{name}/changes", scoped=None),
    _lp("POST", "/libpod/build", "image.build", scoped=None),
    # the service itself connects over SSH to a host the caller names
    _lp(
        "POST",
        "/libpod/images/scp/{name:.*}",
        "image.push",
        scoped=None,
        inspected="libpod.scp",
        amounts_to="the service connects over SSH to a host the caller names",
    ),
    # register_info.go
    _lp("GET", "/libpod/info", scoped=None),
    # register_kube.go: the YAML can describe privileged pods with host paths
    _lp("POST", "/libpod/play/kube", "kube.play", inspected="libpod.kube.play"),
    _lp("POST", "/libpod/kube/play", "kube.play", inspected="libpod.kube.play"),
    _lp("DELETE", "/libpod/play/kube", "kube.play"),
    _lp("DELETE", "/libpod/kube/play", "kube.play"),
    _lp("GET", "/libpod/kube/generate"),
    # register_manifest.go: /v3.x/ and /v4.x/ register different routes, judged alike
    _lp("GET", "/libpod/manifests/{name:.*}/exists", scoped=None),
    _lp("GET", "/libpod/manifests/{name:.*}/json", scoped=None),
    _lp(
        "POST",
        "/libpod/manifests/{name:.*}",
        "image.manifest",
        scoped=None,
        amounts_to="creates, changes and pushes manifest lists (a push reaches a registry)",
    ),
    _lp("PUT", "/libpod/manifests/{name:.*}", "image.manifest", scoped=None),
    _lp("DELETE", "/libpod/manifests/{name:.*}", "image.manifest", scoped=None),
    # register_networks.go
    _lp("DELETE", "/libpod/networks/{name}", "network.delete"),
    _lp("GET", "/libpod/networks/{name}/exists"),
    _lp("GET", "/libpod/networks/json"),
    _lp("GET", "/libpod/networks/{name}/json"),
    _lp("GET", "/libpod/networks/{name}"),
    _lp("POST", "/libpod/networks/create", "network.create", inspected="libpod.network.create"),
    _lp("POST", "/libpod/networks/{name}/connect", "network.connect", inspected="libpod.network.connect"),
    _lp("POST", "/libpod/networks/{name}/disconnect", "network.connect"),
    _lp("POST", "/libpod/networks/prune", "network.prune"),
    # register_ping.go
    _lp("GET", "/libpod/_ping", scoped=None),
    _lp("HEAD", "/libpod/_ping", scoped=None),
    # register_pods.go: pods have their own actions
    _lp("GET", "/libpod/pods/json"),
    _lp("POST", "/libpod/pods/create", "pod.create", inspected="libpod.pod.create"),
    _lp("POST", "/libpod/pods/prune", "pod.prune"),
    _lp("DELETE", "/libpod/pods/{name}", "pod.delete"),
    _lp("GET", "/libpod/pods/{name}/json"),
    _lp("GET", "/libpod/pods/{name}/exists"),
    _lp("POST", "/libpod/pods/{name}/kill", "pod.kill"),
    _lp("POST", "/libpod/pods/{name}/pause", "pod.pause"),
    _lp("POST", "/libpod/pods/{name}/restart", "pod.restart"),
    _lp("POST", "/libpod/pods/{name}/start", "pod.start"),
    _lp("POST", "/libpod/pods/{name}/stop", "pod.stop"),
    _lp("POST", "/libpod/pods/{name}/unpause", "pod.unpause"),
    _lp("GET", "/libpod/pods/{name}/top"),
    _lp("GET", "/libpod/pods/stats"),
    # register_secrets.go
    # Podman's shell secret driver runs commands on the host: dockguard.meaning allows the default driver only
    _lp(
        "POST",
        "/libpod/secrets/create",
        scoped=None,
        amounts_to="root on the host with a driver (shell runs commands): refused unless the guards are all open",
    ),
    _lp("GET", "/libpod/secrets/json", scoped=None),
    _lp("GET", "/libpod/secrets/{name}/json", scoped=None),
    _lp("DELETE", "/libpod/secrets/{name}", scoped=None),
    # register_system.go
    _lp(
        "POST",
        "/libpod/system/prune",
        "system.prune",
        amounts_to="removes every stopped container and pod, unused images and networks (and volumes if asked)",
    ),
    _lp("GET", "/libpod/system/df"),
    # register_version.go
    _lp("GET", "/libpod/version", scoped=None),
    # register_volumes.go
    _lp("POST", "/libpod/volumes/create", "volume.create", inspected="libpod.volume.create"),
    _lp("GET", "/libpod/volumes/{name}/exists"),
    _lp("GET", "/libpod/volumes/json"),
    _lp("POST", "/libpod/volumes/prune", "volume.prune"),
    _lp("GET", "/libpod/volumes/{name}/json"),
    _lp("DELETE", "/libpod/volumes/{name}", "volume.delete"),
)

ROUTES = ROUTES + LIBPOD_ROUTES


def libpod_section(route: Route | None) -> Section | None:
    """The libpod section of a path whose first segment is C{libpod}: its route's.

    A libpod path that is no route of Podman 4.3 is in no section, so it is
    refused whatever is open: a later Podman's routes (and their bodies)
    are not judged until they are in L{LIBPOD_ROUTES}.
    """
    return _LIBPOD_BY_NAME[route.section] if route is not None else None


# ---------------------------------------------------------------------------
# end of libpod
# ---------------------------------------------------------------------------


def _index() -> dict[tuple[str, str], tuple[tuple[Route, _Pattern], ...]]:
    index: dict[tuple[str, str], list[tuple[Route, _Pattern]]] = {}
    for route in ROUTES:
        first = route.template[1:].split("/")[0]
        index.setdefault((route.method, first), []).append((route, _PATTERNS[route]))
    return {key: tuple(value) for key, value in index.items()}


_INDEX = _index()


def _route_of(method: str, segments: tuple[str, ...]) -> Route | None:
    for route, pattern in _INDEX.get((method, segments[0]), ()):
        if pattern.matches(segments):
            return route
    return None


@attrs.frozen
class Match:
    """What L{lookup} found for one request: everything dockguard knows of its route."""

    #: The route the daemon would serve the request with, or C{None}.
    route: Route | None
    #: The section whose prefix is exactly the path's first segment, or C{None}.
    section: Section | None
    #: For a C{HEAD} the daemon routes nowhere (only C{/_ping} and the
    #: container archive have HEAD routes): the C{GET} route of the same
    #: path, which the policies judge it as, so that it stays as sensitive.
    #: C{None} otherwise.
    head_as_get: Route | None = None

    @property
    def section_name(self) -> str:
        """The section's name, or C{"none"} (as the decision log and the metrics write it)."""
        return self.section.name if self.section is not None else "none"

    @property
    def hijack(self) -> bool:
        """Whether the daemon takes over the connection (see L{Route.hijack})."""
        return self.route is not None and self.route.hijack

    @property
    def inspected(self) -> str | None:
        """The kind of body the escalation guards judge (see L{Route.inspected}), or C{None}."""
        return self.route.inspected if self.route is not None else None

    @property
    def judged_route(self) -> Route | None:
        """The route the policies judge the request as: L{route}, else L{head_as_get}."""
        return self.route if self.route is not None else self.head_as_get


_NO_MATCH = Match(route=None, section=None)


def lookup(method: str, path: CanonicalPath) -> Match:
    """The one lookup of C{method path}: its route and its section.

    Methods and segments are compared exactly, as the daemon's router does.
    Placeholders match one segment, or one or more where moby declares them
    C{{name:.*}} (see the comment above L{ROUTES}); when several routes
    match, the one the daemon registers first wins. C{HEAD} finds only the
    two HEAD routes (C{/_ping} and the container archive); for any other
    C{HEAD} the C{GET} route of the path is L{Match.head_as_get}.

    Call it once per request and hand the L{Match} on: the policy, the
    meaning checks and the relay take it rather than looking the route up again.
    """
    segments = path.segments
    if not segments:
        return _NO_MATCH
    route = _route_of(method, segments)
    head_as_get = _route_of("GET", segments) if route is None and method == "HEAD" else None
    if segments[0] == LIBPOD:  # libpod (issue 17): the section is the second segment's
        return Match(route=route, section=libpod_section(route or head_as_get), head_as_get=head_as_get)
    return Match(route=route, section=_BY_PREFIX.get(segments[0]), head_as_get=head_as_get)


def placeholder(route: Route, path: CanonicalPath) -> tuple[int, int]:
    """The segments C{path} gives C{route}'s placeholder: C{segments[start:end]}.

    C{route} must be the route L{lookup} found for C{path}, with one
    placeholder (C{/containers/{id}/json}, C{/volumes/{name}}).
    """
    pattern = _PATTERNS[route]
    if pattern.greedy:
        return len(pattern.head), len(path.segments) - len(pattern.tail)
    index = pattern.head.index(None)
    return index, index + 1


#: The value L{sample_path} puts in every placeholder.
SAMPLE_NAME = "example"


def sample_path(route: Route) -> CanonicalPath:
    """A canonical path that L{lookup} maps to C{route}, e.g. C{/images/example/json}."""
    segments = tuple(SAMPLE_NAME if part.startswith("{") else part for part in route.template[1:].split("/"))
    return CanonicalPath(path="/" + "/".join(segments), segments=segments, version=None, query="")


def case_hint(path: CanonicalPath) -> str:
    """
    A hint for a path whose first segment is a section in the wrong case
    (the daemon routes case-sensitively), else "".
    """
    if path.segments:
        first = path.segments[0].lower()
        for section in SECTIONS:
            if section.prefix == first:
                return f" (paths are case-sensitive: the {section.name} section is /{section.prefix})"
    return ""


# libpod (issue 17): what L{dockguard.paths} refuses to see percent-encoded.
#: Every segment some route (or section) names literally, C{libpod} included.
LITERAL_SEGMENTS: frozenset[str] = frozenset(
    part
    for route in ROUTES
    for part in route.template[1:].split("/")
    if not (part.startswith("{") and part.endswith("}"))
) | frozenset(section.prefix for section in SECTIONS)
