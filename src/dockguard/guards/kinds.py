"""The inspected kinds: which requests have their body judged, and L{judge}, which judges one.

L{judge} reads the body as the daemon will (L{gojson<dockguard.guards.gojson>})
and hands it to the module of its kind: L{containers<dockguard.guards.containers>},
L{execs<dockguard.guards.execs>}, L{services<dockguard.guards.services>},
L{volumes<dockguard.guards.volumes>}, L{networks<dockguard.guards.networks>},
L{plugins<dockguard.guards.plugins>} (JSON arrays) and
L{start<dockguard.guards.start>} (no body at all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dockguard.guards.allowance import Allowance
from dockguard.guards.containers import judge_container_create, judge_container_update
from dockguard.guards.execs import judge_exec_create
from dockguard.guards.gojson import GoObject, decode, json_type
from dockguard.guards.libpod import LIBPOD_JSON_KINDS, LIBPOD_RAW_KINDS, judge_libpod_raw
from dockguard.guards.mounts import HOST_PATHS, judge_local_options, judge_volume_driver
from dockguard.guards.networks import judge_network_connect, judge_network_create
from dockguard.guards.plugins import PLUGIN_KINDS, judge_plugin
from dockguard.guards.services import judge_service
from dockguard.guards.start import judge_start
from dockguard.guards.verdict import ALLOWED, Refusal, Verdict
from dockguard.guards.volumes import judge_volume_create
from dockguard.paths import CanonicalPath
from dockguard.routes import lookup

__all__ = ["INSPECTED_KINDS", "inspection_kind", "judge", "judge_volume_in_use"]


#: The request kinds whose bodies are judged.
INSPECTED_KINDS: tuple[str, ...] = (
    "container.create",
    "container.update",
    "exec.create",
    "service.create",
    "service.update",
    "volume.create",
    "container.start",
    "plugin.pull",
    "plugin.upgrade",
    "plugin.set",
    "network.create",
    "network.connect",
    # libpod (issue 17): dockguard.guards.libpod
    *LIBPOD_JSON_KINDS,
    *LIBPOD_RAW_KINDS,
)


def inspection_kind(method: str, path: CanonicalPath) -> str | None:
    """The kind of body L{judge} must see for C{method path}, or C{None}.

    The L{inspected<dockguard.routes.Route.inspected>} of the route the daemon
    serves; a caller that has the request's L{Match<dockguard.routes.Match>}
    reads C{match.inspected} instead of looking the route up again.
    """
    return lookup(method, path).inspected


#: The kinds whose empty body the daemon rejects (the others read it as C{{}}).
_NEEDS_BODY = frozenset({"container.create", "service.create", "service.update", "network.create", "network.connect"})
_NEEDS_BODY |= {"libpod.container.create", "libpod.pod.create", "libpod.network.create"}  # libpod (issue 17)


def _parse(kind: str, body: bytes) -> GoObject:
    """The body of a kind whose body is an object; an empty one is C{{}} where the daemon accepts that."""
    if not body:
        if kind in _NEEDS_BODY:
            raise Refusal("", "", f"the {kind} body is empty; the daemon needs a JSON object: send one")
        return GoObject([])
    document = decode(body)
    if not isinstance(document, GoObject):
        raise Refusal("", "", f"the body is a JSON {json_type(document)}, not an object; send a JSON object")
    return document


#: The kinds whose body is a JSON object, and the function that judges each.
_JUDGES: dict[str, Callable[[GoObject, Allowance], None]] = {
    "container.create": judge_container_create,
    "container.update": judge_container_update,
    "exec.create": judge_exec_create,
    "service.create": judge_service,
    "service.update": judge_service,
    "volume.create": judge_volume_create,
    "network.create": judge_network_create,
    "network.connect": judge_network_connect,
    **LIBPOD_JSON_KINDS,  # libpod (issue 17)
}


def judge(kind: str, body: bytes, allowance: Allowance, host_paths: Callable[[str], str] | None = None) -> Verdict:
    """Judge the C{body} of a C{kind} request (one of L{INSPECTED_KINDS}) against C{allowance}.

    C{host_paths} resolves a host path as the daemon will (the relay passes
    L{dockguard.hostpaths.resolve}); every bind source is judged both as
    written and as resolved. Never raises for any body; raises
    L{ValueError} for an unknown C{kind} (a programming error).
    """
    token = HOST_PATHS.set(host_paths)
    try:
        return _judge(kind, body, allowance)
    finally:
        HOST_PATHS.reset(token)


def _judge(kind: str, body: bytes, allowance: Allowance) -> Verdict:
    """L{judge}, once the host's reading of paths is set."""
    if kind == "container.start":
        return judge_start(body)
    if kind in PLUGIN_KINDS:
        return judge_plugin(kind, body, allowance)
    if kind in LIBPOD_RAW_KINDS:  # libpod (issue 17): kube YAML, restored checkpoints
        try:
            judge_libpod_raw(kind, allowance)
        except Refusal as refused:
            return refused.verdict()
        return ALLOWED
    try:
        check = _JUDGES[kind]
    except KeyError:
        raise ValueError(f"unknown inspection kind {kind!r}; expected one of {', '.join(INSPECTED_KINDS)}") from None
    try:
        check(_parse(kind, body), allowance)
    except Refusal as refused:
        return refused.verdict()
    return ALLOWED


def judge_volume_in_use(
    driver: str,
    options: Mapping[str, str],
    field: str,
    allowance: Allowance,
    host_paths: Callable[[str], str] | None = None,
) -> Verdict:
    """
    A named volume that exists, mounted by a container create: judged as if
    the caller created it now (its driver, and a C{local} volume's options:
    a bind volume an administrator made reaches the host path it binds).
    """
    token = HOST_PATHS.set(host_paths)
    try:
        judge_volume_driver(driver, field, allowance)
        if driver in ("", "local"):
            judge_local_options(GoObject(list(options.items())), field, allowance)
    except Refusal as refused:
        return refused.verdict()
    finally:
        HOST_PATHS.reset(token)
    return ALLOWED
