"""Checks that keep a request's meaning intact, whatever policy allowed its route.

A policy decides *which call* a request is (C{POST /containers/{id}/start})
and whether the caller may make it. Some requests carry, besides the route,
something that changes what the call does: a HostConfig in the body of a
start (applied by daemons up to 24 for API versions below 1.24), a form body
the daemon reads as query parameters, a query with two readings. A switch such
as C{ALLOW_START=1} or an action such as C{container.start} grants the call
as the documentation describes it, not whatever those extras make of it.

So L{check_request} and L{body_kind} run for every allowed request,
under environment variables as under groups, and the relay cannot skip them:

* a query the daemon could read two ways is refused (L{dockguard.queries});
* a non-empty body sent as C{application/x-www-form-urlencoded} or
  C{multipart/…} is refused: Go's C{ParseForm} reads a form body into the
  same C{r.Form} the handlers read their query parameters from (C{POST
  /containers/X/attach} with the body C{logs=1} returns the logs), and
  C{FormValue} in a handler that did not call C{ParseForm} (C{postBuild})
  parses a multipart body too, so the parameters dockguard judges would not
  be the ones the daemon uses. The Engine API never takes form bodies;
* two C{Content-Type} fields are refused (Go reads the first, others the last);
* C{POST /containers/{id}/start} is always inspected (L{body_kind}): its
  body must be empty, C{{}} or C{null}; its C{checkpoint} and
  C{checkpoint-dir} parameters (restore a container from files on the host,
  experimental daemons) need C{privileged} in the group's guards and are
  refused under environment variables.

Under groups (C{allowance} is not C{None}) the escalation guards also judge
the bodies of the routes marked L{inspected<dockguard.routes.Route.inspected>}, and
the queries of the calls whose meaning is in their query: builds and
BuildKit's routes (L{dockguard.builds}), the calls that write image names
(L{dockguard.images}), the network named in the path of C{POST
/networks/{id}/connect} and C{/disconnect} (the C{networks} guard),
C{POST /plugins/create} (which installs a plugin
with whatever privileges its archive declares and needs C{privileged}), and
C{POST /services/{id}/update?rollback=previous} (which restores a spec
dockguard never judged, and needs C{privileged} too). Under environment
variables a service update may carry any spec anyway, so a rollback adds
nothing.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from dockguard.builds import BUILD_ROUTES, judge_build
from dockguard.guards import ALLOWED, Allowance, Verdict, judge_network_reference, refusal
from dockguard.guards.gojson import go_fold  # libpod (issue 17)
from dockguard.guards.libpod import fully_open  # libpod (issue 17)
from dockguard.images import IMAGE_WRITE_ROUTES, judge_image_write, judge_written_name
from dockguard.paths import CanonicalPath
from dockguard.queries import Query, QueryRefused, parse_query
from dockguard.references import ANY  # libpod (issue 17)
from dockguard.routes import Match

__all__ = ["ALWAYS_INSPECTED", "check_request", "body_kind"]

#: Body kinds judged whatever policy allowed the route.
ALWAYS_INSPECTED: frozenset[str] = frozenset({"container.start"})

_FORM = b"application/x-www-form-urlencoded"

#: The routes whose path names a network a container joins or leaves.
_NETWORK_PATH_ROUTES = {
    ("POST", "/networks/{id}/connect"): "connects a container to",
    ("POST", "/networks/{id}/disconnect"): "disconnects a container from",
}


def check_request(
    method: str,
    path: CanonicalPath,
    content_types: list[bytes],
    has_body: bool,
    allowance: Allowance | None,
    match: Match,
) -> Verdict:
    """Whether an allowed C{method path} keeps its meaning; a refusal says why.

    C{content_types} holds every C{Content-Type} value of the request,
    C{has_body} whether it announces a body (C{Transfer-Encoding} or a
    non-zero C{Content-Length}); C{allowance} is the group's guards, or
    C{None} under environment variables; C{match} is
    C{dockguard.routes.lookup(method, path)}, the request's one lookup.
    """
    try:
        query = parse_query(path.query)
    except QueryRefused as refused:
        return refusal("(query)", "", refused.reason)
    folded = _podman_query(query)  # libpod (issue 17)
    if folded is not None:
        return folded
    if len(content_types) > 1:
        return refusal(
            "(Content-Type)",
            "",
            "the request has several Content-Type fields, which readers pick differently: send one",
        )
    if content_types and has_body:
        media = content_types[0].split(b";", 1)[0].strip().lower()
        if media == _FORM or media.startswith(b"multipart/"):
            return refusal(
                "(Content-Type)",
                "",
                f"the body is sent as {media.decode('ascii', 'replace')}, which the daemon reads as "
                "parameters besides the query, parameters dockguard would not judge; the Engine API takes "
                "JSON or a tar archive: send Content-Type: application/json (curl -d sets the form type "
                "unless told otherwise) or application/x-tar",
            )
    route = match.route
    if route is None:
        return ALLOWED
    key = (route.method, route.template)
    if key == ("POST", "/containers/{id}/start"):
        return _check_start(query, allowance)
    if key == ("POST", "/services/{id}/update") and query.get("rollback") == "previous":
        if allowance is not None and not allowance.privileged:
            return refusal(
                "(query) rollback",
                "privileged",
                "rollback=previous puts back the service's previous spec, which dockguard never judged "
                "(it may bind the host's / or add capabilities): send the spec to roll back to as the "
                "body of an update instead, or set privileged = true in the group's guards",
            )
    if key in _PODMAN_BUILD_ROUTES:  # libpod (issue 17): Podman's own build options, whatever the policy
        verdict = _judge_podman_build(query, allowance)
        if not verdict.allowed:
            return verdict
    if key == ("POST", "/libpod/secrets/create"):  # libpod (issue 17): whatever the policy
        secret = _judge_secret_driver(query, allowance)
        if not secret.allowed:
            return secret
    if allowance is None:
        return ALLOWED
    if key in _LIBPOD_IMAGE_WRITES:  # libpod (issue 17): the image names libpod writes
        return _judge_libpod_image_write(key, query, allowance)
    if key == ("POST", "/libpod/build"):  # libpod (issue 17): as Docker's /build
        return judge_build("/build", query, allowance)
    if key in BUILD_ROUTES:
        return judge_build(route.template, query, allowance)
    if key in IMAGE_WRITE_ROUTES:
        return judge_image_write(route.template, query, allowance)
    if key in _LIBPOD_NETWORK_PATH_ROUTES:  # libpod (issue 17): /libpod/networks/{name}/connect
        return judge_network_reference(path.segments[2], "(path) network", _LIBPOD_NETWORK_PATH_ROUTES[key], allowance)
    if key in _NETWORK_PATH_ROUTES:
        # moby's /networks/{id:.*}/connect: the name may span segments.
        name = "/".join(path.segments[1:-1])
        return judge_network_reference(name, "(path) network", _NETWORK_PATH_ROUTES[key], allowance)
    if key == ("POST", "/plugins/create") and not allowance.privileged:
        return refusal(
            "(body)",
            "privileged",
            "creating a plugin installs it from an archive whose config declares its own privileges "
            "(host mounts, devices, capabilities, host network), which no one accepts and dockguard "
            "does not read (set privileged = true in the group's guards to allow it)",
        )
    return ALLOWED


# --- libpod (issue 17) -------------------------------------------------------------
#
# Podman decodes most queries with gorilla/schema, which matches a parameter
# to a field case-insensitively (strings.EqualFold): C{?NetworkMode=host}
# is C{networkmode} there. So a query key that folds to a parameter
# dockguard reads, spelled otherwise, is refused (for every upstream: the
# Docker daemon ignores such keys). gorilla/schema also reads the *last*
# value of a repeated parameter, Go's C{Form.Get} the first: a parameter
# dockguard reads may be repeated only with one value (C{t}, a list to
# both, excepted). Podman's build handler (the same for
# C{/build} and C{/libpod/build}) also takes options that reach the host
# (C{addcaps}, C{devices}, C{nsoptions}, C{secrets} read from host paths,
# C{rusagelogfile} written to one, C{cppflags}, ...): they are refused
# under environment variables (the daemon ignores them; BUILD=1 grants a
# build, not host files), and under groups unless the guards are fully open.

#: The query parameters dockguard reads anywhere, as it spells them.
_READ_PARAMETERS = frozenset(
    {
        "cgroupparent", "checkpoint", "checkpoint-dir", "container", "filters", "fromImage", "fromSrc",
        "logs", "name", "networkmode", "remote", "repo", "rollback", "securityopt", "t", "tag", "version",
        # libpod's, as Podman's own client spells them
        "driver", "driveropts", "reference", "url",
    }
)  # fmt: skip
_READ_FOLDED = {go_fold(name): name for name in _READ_PARAMETERS}
#: The parameters that may repeat: C{t} (a list to both), and C{container} (every
#: value is replaced by the one judged when a scope applies, see dockguard.relay).
_LIST_PARAMETERS = frozenset({"t", "container"})

#: Podman's build options that Docker's build does not have and that reach the host.
_PODMAN_BUILD_OPTIONS = frozenset(
    {
        "addcaps", "additionalbuildcontexts", "apparmor", "cppflags", "devices", "idmappingoptions",
        "labelopts", "nsoptions", "rusagelogfile", "seccomp", "secrets", "unsetenv", "volume",
    }
)  # fmt: skip
_PODMAN_BUILD_ROUTES = frozenset({("POST", "/build"), ("POST", "/libpod/build")})
_LIBPOD_NETWORK_PATH_ROUTES = {
    ("POST", "/libpod/networks/{name}/connect"): "connects a container to",
    ("POST", "/libpod/networks/{name}/disconnect"): "disconnects a container from",
}


#: libpod routes that write image names, and the Docker route each is judged as (C{None}: below).
_LIBPOD_IMAGE_WRITES: dict[tuple[str, str], str | None] = {
    ("POST", "/libpod/images/load"): "/images/load",
    ("POST", "/libpod/images/{name}/tag"): "/images/{name}/tag",
    ("POST", "/libpod/commit"): "/commit",
    ("POST", "/libpod/images/import"): None,
    ("POST", "/libpod/manifests/{name}"): None,
    ("PUT", "/libpod/manifests/{name}"): None,
    ("DELETE", "/libpod/manifests/{name}"): None,
}


def _judge_libpod_image_write(key: tuple[str, str], query: Query, allowance: Allowance) -> Verdict:
    docker = _LIBPOD_IMAGE_WRITES[key]
    if docker is not None:
        return judge_image_write(docker, query, allowance)
    if key[1] == "/libpod/images/import":
        # gorilla/schema reads URL and reference in any case
        values = {go_fold(key): query.get(key) for key in query.values}
        url = values.get("URL", "")
        if url and not allowance.remote_fetch:
            return refusal(
                "(query) url",
                "remote_fetch",
                f"url is {url[:80]!r}: Podman would download it (from its own network, which may reach what "
                "the caller cannot) (set remote_fetch = true in the group's guards to allow it)",
            )
        reference = values.get("REFERENCE", "")
        return judge_written_name("(query) reference", reference, "", allowance) if reference else ALLOWED
    if ANY in allowance.image_names:
        return ALLOWED
    return refusal(
        "(path) manifest",
        "image_names",
        "manifest lists are written under names dockguard does not judge here (Podman's /v3.x/ and /v4.x/ "
        'routes differ): it needs "*" in image_names',
    )


def _judge_secret_driver(query: Query, allowance: Allowance | None) -> Verdict:
    """C{/libpod/secrets/create}: a driver or driver options, which run commands or write files on the host."""
    values = {go_fold(key): query.get(key) for key in query.values}
    driver = values.get("DRIVER", "")
    options = values.get("DRIVEROPTS", "")
    if (driver in ("", "file") and not options) or (allowance is not None and fully_open(allowance)):
        return ALLOWED
    return refusal(
        "(query) driver",
        "privileged",
        f"the secret driver {driver!r} with options {options[:80]!r}: Podman's shell driver runs the "
        "caller's commands on the host and the file driver writes where the caller says; only the default "
        "driver without options is allowed (refused under environment variables; under groups allowed "
        "only to a group whose guards are all open)",
    )


def _podman_query(query: Query) -> Verdict | None:
    """A refusal for query keys Podman reads otherwise than dockguard, else C{None}."""
    # (podman --remote itself sends detachKeys and detachkeys: two spellings of a
    # parameter dockguard does not read are let through)
    for key, values in query.values.items():
        wanted = _READ_FOLDED.get(go_fold(key))
        if wanted is not None and wanted not in _LIST_PARAMETERS and len(set(values)) > 1:
            return refusal(
                f"(query) {key}",
                "",
                f"the query gives {key!r} several values: the Docker daemon reads the first, Podman "
                "(gorilla/schema) the last; send it once",
            )
        if wanted is not None and wanted != key:
            return refusal(
                f"(query) {key}",
                "",
                f"the query parameter {key!r} is {wanted!r} to Podman (it matches names "
                f"case-insensitively) but not to the Docker daemon: spell it {wanted!r}",
            )
    return None


def _judge_podman_build(query: Query, allowance: Allowance | None) -> Verdict:
    extra = sorted(key for key in query.values if key.lower() in _PODMAN_BUILD_OPTIONS)
    if extra and (allowance is None or not fully_open(allowance)):
        return refusal(
            f"(query) {extra[0]}",
            "privileged",
            f"{', '.join(extra)}: Podman's own build options (capabilities, devices, namespaces, host "
            "files read or written) are refused under environment variables, and allowed only to a group "
            "whose guards are all open",
        )
    return ALLOWED


# --- end of libpod -----------------------------------------------------------------


def _check_start(query: Query, allowance: Allowance | None) -> Verdict:
    for name in ("checkpoint", "checkpoint-dir"):
        if query.get(name) and (allowance is None or not allowance.privileged):
            return refusal(
                f"(query) {name}",
                "privileged",
                f"{name} restores the container from a checkpoint"
                + (" in a directory on the host" if name == "checkpoint-dir" else "")
                + ", which is not the start that was allowed (set privileged = true in the "
                "group's guards to allow it)",
            )
    return ALLOWED


def body_kind(match: Match, allowance: Allowance | None) -> str | None:
    """The kind of body to read whole and judge before relaying, or C{None}.

    C{match} is the request's lookup (its route's
    L{inspected<dockguard.routes.Route.inspected>}). Under environment variables
    (C{allowance} is C{None}) only L{ALWAYS_INSPECTED} kinds are judged.
    """
    kind = match.inspected
    if kind is None or (allowance is None and kind not in ALWAYS_INSPECTED):
        return None
    return kind
