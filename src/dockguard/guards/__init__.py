"""Escalation guards: judge the request bodies the daemon turns into privileges.

A section switch cannot tell ``docker run alpine echo hi`` from ``docker run
--privileged -v /:/host alpine chroot /host``: both are ``POST
/containers/create``. The guards read the JSON body of the calls that create
or widen privileges (:data:`INSPECTED_KINDS`, found by
:func:`inspection_kind`) and refuse what the caller's :class:`Allowance` (the
``[groups.NAME.guards]`` table, see :func:`allowance_from_mapping`) does not
allow. :func:`judge` returns a :class:`Verdict` whose reason names the field
and the guard that would open it.

Reading the body as the daemon reads it
---------------------------------------

The daemon decodes bodies with Go's ``encoding/json``: object keys match
struct fields case-insensitively (``"hostconfig"`` is ``HostConfig``, and so
are the Unicode spellings Go folds to ASCII: ``ſ`` is ``S``, ``K`` (Kelvin) is
``K``, ``ı`` and ``İ`` are ``I``), the last of duplicate keys wins, unknown
fields are ignored and ``null`` leaves the zero value. A guard that reads a
body differently from the daemon is bypassed, so:

* keys are looked up with Go's folding, and an object with two keys that fold
  to the same name (``"Privileged"`` and ``"privileged"``, or the same key
  twice) is refused anywhere in the body: it has two readings;
* the body must be strict UTF-8 JSON (no BOM, no NaN/Infinity, nothing after
  the value) whose top level is an object; anything else is refused;
* an inspected field of the wrong JSON type (``"Privileged": "true"``) is
  refused: the daemon would reject it, and dockguard does not guess. The one
  exception follows the daemon: ``HostConfig.CapAdd`` is a ``StrSlice``, which
  the daemon accepts as a single string too, so a string is judged as a
  one-element list.
* dockerd up to 24 also decodes HostConfig fields written at the TOP level of
  a create body (a deprecated embedded ``*HostConfig`` in
  ``runconfig.ContainerConfigWrapper``), and uses them when ``HostConfig`` is
  absent. So the top level of a create body is judged as a HostConfig too,
  whether or not ``HostConfig`` is present (field names without a prefix,
  e.g. ``Privileged``).

Decisions (where the daemon leaves a choice, the stricter reading is taken)
--------------------------------------------------------------------------

* Capabilities: names are normalised as the daemon does (upper-case, one
  ``CAP_`` prefix removed). Adding one of Docker's 14 default capabilities
  (:data:`DEFAULT_CAPABILITIES`, e.g. after ``--cap-drop ALL``) grants nothing
  and is always allowed; ``ALL`` needs ``"ALL"`` in ``capabilities``.
* Bind sources: absolute host paths; ``.`` segments are cleaned away, but a
  ``..`` segment, ``//`` and NUL are refused (two readings); a trailing ``/``
  is fine. A source is allowed when it is equal to or under a ``bind_roots``
  entry, compared segment by segment (``/srv`` allows ``/srv/x``, not
  ``/srvx``; ``"/"`` allows any). A ``Binds`` source that does not start with
  ``/`` is a named volume and must be a valid volume name
  (``[a-zA-Z0-9][a-zA-Z0-9_.-]*``).
* The Docker socket: a source that is, is under, or is an ancestor of
  ``/run/docker.sock``, ``/run/docker``, ``/run/containerd``, ``/run/podman``
  or ``/run/user`` (rootless sockets live in ``/run/user/UID``), with
  ``/var/run`` read as ``/run`` (a symlink on Debian), or whose last segment is
  a known socket name (``docker.sock``, ``containerd.sock``, ``podman.sock``,
  ...), needs ``docker_socket = true`` *in addition to* a bind root: so ``/``,
  ``/run``, ``/var`` and ``/var/run`` need it. ``/proc`` (and anything under
  it) is treated the same way: ``/proc/PID/root`` reaches the host's root and
  its socket.
* Propagation (``BindOptions.Propagation``, ``:rshared`` in ``Binds``) is not
  guarded: mounts made inside the container only propagate if the container
  can mount, which needs ``CAP_SYS_ADMIN`` (guarded by ``capabilities`` or
  ``privileged``).
* Mount types: ``bind`` (judged as a bind source), ``volume`` (driver and
  local options judged), ``tmpfs``, ``npipe``, ``cluster``, ``image`` are
  known; any other type (including a wrong case) is refused: the daemon would
  reject it.
* Local volume options (``docker volume create -o``, ``--mount
  volume-opt=...``): the ``local`` driver runs ``mount(2)`` as root on the
  host. With a bind (``o`` has a ``bind``/``rbind`` option, or ``type`` is
  empty, ``none``, ``bind`` or ``rbind``) the ``device`` is judged exactly as
  a bind source. ``tmpfs`` is fine. Network filesystems (``nfs``, ``nfs4``,
  ``cifs``, ``smb3``) are allowed: they mount remote shares, not the host.
  Any other filesystem type (``ext4`` on ``/dev/sda1``, ``overlay`` with host
  ``lowerdir``, ``proc``, ...) exposes host devices or kernel filesystems and
  needs ``devices = true``. Option keys are read case-insensitively.
* Namespaces: the part before the first ``:`` of ``PidMode``, ``IpcMode``,
  ``UTSMode``, ``UsernsMode``, ``CgroupnsMode`` and ``NetworkMode`` is
  compared case-insensitively: ``host`` needs that namespace in
  ``host_namespaces``, ``container`` needs ``join_containers``. Network names
  in ``NetworkingConfig.EndpointsConfig`` (key and ``NetworkID``), Swarm
  ``Networks[].Target`` and a connect's ``EndpointConfig.NetworkID`` are
  judged like ``NetworkMode``. ``Cgroup: "container:X"`` and ``VolumesFrom``
  need ``join_containers``.
* Networks: any other network mode is a network's name, which needs a
  ``networks`` pattern; ``""``, ``none``, ``bridge`` and ``default`` are
  always allowed, compared exactly as the daemon does (``Bridge`` is a name).
  A network create needs a ``networks`` pattern for its ``Name``, and its
  driver in ``network_drivers`` unless it is ``bridge`` or ``overlay`` with
  plain options only (no ``parent``, no host bridge named, no ``ConfigFrom``
  or ``Ingress``); an IPAM driver other than ``default`` needs its name there.
* Security options: ``no-new-privileges`` (true), ``seccomp=builtin`` and
  ``apparmor=docker-default`` are fine. ``seccomp`` with anything else (a
  profile in JSON can allow any system call), ``apparmor`` with any other
  profile (host profiles may be permissive), every ``label`` option (type,
  user, role and level can all lift SELinux separation; ``disable`` turns it
  off), ``systempaths=unconfined``, ``no-new-privileges=false`` and any option
  dockguard does not know need ``unconfined``. Both separators (``=`` and the
  deprecated ``:``) are read as the daemon does.
* ``MaskedPaths``/``ReadonlyPaths``: ``null`` keeps the defaults; a list
  replaces them, and a list that lacks any of Docker's defaults (empty
  included) needs ``unconfined``.
* ``Runtime`` other than ``""``/``runc`` needs its name in ``runtimes``;
  ``VolumeDriver`` and mount/volume drivers other than ``""``/``local`` need
  their name in ``volume_drivers``. ``"*"`` in either set allows any.
* exec: with ``exec_root = false`` the exec's ``User`` must be numeric
  ``UID:GID``, both from 1 to 2147483647 (leading zeros allowed). A UID
  alone is refused: runc runs it in group 0 when the image has no passwd
  entry for it.
  Refused: no user (the exec inherits the container's user, which dockguard
  cannot see), any name (``root``, but also any name the image's
  ``/etc/passwd`` may map to 0), ``0`` in any spelling (``00``), a root
  group, signs and anything else.
* Swarm services: ``ContainerSpec`` mounts, ``CapabilityAdd`` and ``Sysctls``
  as for containers; ``Privileges.SELinuxContext`` (``Disable`` or any
  label), ``Seccomp`` (mode other than default, or a profile) and
  ``AppArmor`` (mode other than default) need ``unconfined``;
  ``NoNewPrivileges`` false is the default and is ignored. A ``PluginSpec``
  or ``Runtime: "plugin"`` installs a managed plugin with the privileges it
  declares and needs ``privileged``. ``Resources.Reservations.
  GenericResources`` (GPUs and the like) needs ``devices``. Services cannot be
  privileged directly.
* Empty bodies: refused for ``container.create``, ``service.create`` and
  ``service.update`` (the daemon needs one); judged as ``{}`` for
  ``container.update``, ``exec.create`` and ``volume.create`` (the daemon
  accepts an empty body there).

Threat model and what is not covered
------------------------------------

* Symlinks on the host are resolved by the daemon and cannot be seen from
  here: a bind root must not contain a symlink (or a directory a caller can
  write a symlink into) that leads outside it.
* Networks are referred to by name: a network reference (``NetworkMode``,
  an ``EndpointsConfig`` key or its ``NetworkID``, a Swarm ``Target``, a
  connect's path) that is a hexadecimal word is refused unless the host
  network is allowed, because the daemon looks networks up by ID and by ID
  prefix too, and the host network's ID is not known here; it also needs a
  ``networks`` pattern that matches it, in practice ``"*"``. Any other
  reference is a name: local IDs are hexadecimal, and a prefix pattern must
  hold a character swarm IDs (``[0-9a-z]``) lack. Who created a network is
  not known here: a pattern reaches every network it matches.
* Only the kinds in :data:`INSPECTED_KINDS` are inspected here (plugin
  bodies: see the section "plugins" below); builds, image-name writes and
  plugin create are judged from their query (:mod:`dockguard.builds`,
  :mod:`dockguard.images`, via :mod:`dockguard.meaning`). Other ways to gain
  privileges are section and action matters: archive writes into a
  container, log-driver options, enabling a plugin someone else installed.
* Fields that a future daemon adds are ignored (as the daemon of today
  ignores them); the guards know the Engine API up to 1.51.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable

from dockguard.errors import ConfigError
from dockguard.paths import CanonicalPath
from dockguard.references import ReferenceRefused, pattern_prefix
from dockguard.routes import lookup
from dockguard.guards.start import judge_start
from dockguard.guards.plugins import PLUGIN_KINDS, judge_plugin
from dockguard.guards.networks import judge_network_connect, judge_network_create
from dockguard.guards.volumes import judge_volume_create
from dockguard.guards.services import judge_service
from dockguard.guards.execs import judge_exec_create
from dockguard.guards.containers import judge_container_create, judge_container_update
from dockguard.guards.mounts import HOST_PATHS, HostPathUnverifiable
from dockguard.guards.networkrefs import (
    PREDEFINED_NETWORKS,
    judge_namespace_mode,
    judge_network_reference,
    network_allowed,
)
from dockguard.guards.confinement import DEFAULT_CAPABILITIES, MAYBE_ID, normalise_capability
from dockguard.guards.allowance import (
    ANY,
    CAPABILITIES,
    CLOSED,
    GUARD_KEYS,
    HOST_NAMESPACES,
    OPEN,
    Allowance,
)
from dockguard.guards.gojson import GoObject, decode, json_type
from dockguard.guards.verdict import ALLOWED, Refusal, Verdict, refusal

__all__ = [
    "CAPABILITIES",
    "CLOSED",
    "DEFAULT_CAPABILITIES",
    "GUARD_KEYS",
    "HOST_NAMESPACES",
    "INSPECTED_KINDS",
    "OPEN",
    "PREDEFINED_NETWORKS",
    "ALLOWED",
    "Allowance",
    "HostPathUnverifiable",
    "Verdict",
    "allowance_from_mapping",
    "inspection_kind",
    "judge_namespace_mode",
    "judge",
    "judge_network_reference",
    "network_allowed",
    "refusal",
]


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
)


def inspection_kind(method: str, path: CanonicalPath) -> str | None:
    """The kind of body :func:`judge` must see for ``method path``, or ``None``.

    The :attr:`~dockguard.routes.Route.inspected` of the route the daemon
    serves; a caller that has the request's :class:`~dockguard.routes.Match`
    reads ``match.inspected`` instead of looking the route up again.
    """
    return lookup(method, path).inspected


# --- reading the body as Go's encoding/json does ------------------------------


_NEEDS_BODY = frozenset({"container.create", "service.create", "service.update", "network.create", "network.connect"})


def _parse(kind: str, body: bytes) -> GoObject:
    if not body:
        if kind in _NEEDS_BODY:
            raise Refusal(
                "", "", f"the {kind} body is empty; the daemon needs a JSON object: send one"
            )
        return GoObject([])
    document = decode(body)
    if not isinstance(document, GoObject):
        raise Refusal(
            "", "", f"the body is a JSON {json_type(document)}, not an object; send a JSON object"
        )
    return document


# --- the pieces: capabilities, paths, mounts, modes, security options --------


# --- the kinds -----------------------------------------------------------------


_JUDGES: dict[str, Callable[[GoObject, Allowance], None]] = {
    "container.create": judge_container_create,
    "container.update": judge_container_update,
    "exec.create": judge_exec_create,
    "service.create": judge_service,
    "service.update": judge_service,
    "volume.create": judge_volume_create,
    "network.create": judge_network_create,
    "network.connect": judge_network_connect,
}


def judge(
    kind: str, body: bytes, allowance: Allowance, host_paths: Callable[[str], str] | None = None
) -> Verdict:
    """Judge the ``body`` of a ``kind`` request (one of :data:`INSPECTED_KINDS`) against ``allowance``.

    ``host_paths`` resolves a host path as the daemon will (the relay passes
    :func:`dockguard.hostpaths.resolve`); every bind source is judged both as
    written and as resolved. Never raises for any body; raises
    :class:`ValueError` for an unknown ``kind`` (a programming error).
    """
    token = HOST_PATHS.set(host_paths)
    try:
        return _judge(kind, body, allowance)
    finally:
        HOST_PATHS.reset(token)


def _judge(kind: str, body: bytes, allowance: Allowance) -> Verdict:
    if kind == "container.start":
        return judge_start(body)
    if kind in PLUGIN_KINDS:
        return judge_plugin(kind, body, allowance)
    try:
        check = _JUDGES[kind]
    except KeyError:
        raise ValueError(f"unknown inspection kind {kind!r}; expected one of {', '.join(INSPECTED_KINDS)}") from None
    try:
        check(_parse(kind, body), allowance)
    except Refusal as refused:
        return refused.verdict()
    return ALLOWED


# --- configuration -------------------------------------------------------------

_BOOL_KEYS = frozenset(
    {
        "privileged", "devices", "bind_write", "docker_socket", "join_containers", "unconfined", "sysctls",
        "swarm_secrets", "exec_root", "exec_privileged", "buildkit", "remote_fetch", "cgroup_parent",
    }
)  # fmt: skip


def _suggest(word: str, choices: Iterable[str]) -> str:
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def _strings(source: str, where: str, value: Any) -> Iterator[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(source, where, f"must be a list of strings, e.g. [\"x\"], not {value!r}")
    for item in value:
        if not isinstance(item, str):
            raise ConfigError(source, where, f"must be a list of strings; {item!r} is not a string")
        yield item


def _check_root(source: str, where: str, root: str) -> str:
    if not root.startswith("/"):
        raise ConfigError(source, where, f"{root!r} is not absolute; bind roots start with '/'")
    segments = root.split("/")[1:]
    if "\x00" in root or (root != "/" and ("" in segments or "." in segments or ".." in segments)):
        raise ConfigError(
            source,
            where,
            f"{root!r} is not a normalised path (no '//', '.', '..', NUL or trailing '/'); "
            "write it like /srv/app",
        )
    return root


def _check_image_pattern(source: str, where: str, pattern: str) -> str:
    try:
        pattern_prefix(pattern)
    except ReferenceRefused as refused:
        raise ConfigError(
            source, where, f"{refused.reason} (image_names takes repository names such as \"ci/app\", \"ci/*\" or \"*\")"
        ) from None
    return pattern


_MAYBE_NETWORK_ID = re.compile(r"[0-9a-z]*")


def _check_network_pattern(source: str, where: str, pattern: str) -> str:
    """
    A ``networks`` pattern: ``"*"``, a name, or a prefix ending in ``*``. The
    daemon looks a network up by ID, then by name, then by ID prefix; local IDs
    are hexadecimal and swarm IDs are made of 0-9 and a-z, so a prefix must hold
    another character (``ci-*``: every name it matches holds ``-``, and is no
    ID), and a name must not be hexadecimal (it would be refused as an ID).
    """
    hint = '(networks takes names such as "ci-net", prefixes such as "ci-*", or "*")'
    if pattern == ANY:
        return pattern
    stem = pattern[:-1] if pattern.endswith("*") else pattern
    if not stem or stem != stem.strip() or "*" in stem:
        raise ConfigError(source, where, f"{pattern!r} is not a network name or prefix {hint}")
    if stem in ("host", "none", "bridge", "default") or stem.startswith("container:"):
        raise ConfigError(
            source,
            where,
            f"{pattern!r} is one of the daemon's own network modes: none, bridge and default are always "
            "allowed, host needs host_namespaces, container:NAME join_containers",
        )
    if pattern.endswith("*") and _MAYBE_NETWORK_ID.fullmatch(stem):
        raise ConfigError(
            source,
            where,
            f"{pattern!r} would also match network IDs, which the daemon looks up by prefix (swarm IDs "
            f"are made of 0-9 and a-z): end the prefix with '-', '_' or '.', e.g. \"{stem}-*\" {hint}",
        )
    if MAYBE_ID.fullmatch(stem):
        raise ConfigError(
            source,
            where,
            f"{pattern!r} is hexadecimal, which the daemon may read as a network ID: name the network with "
            f"a letter beyond a-f {hint}",
        )
    return pattern


def allowance_from_mapping(source: str, key: str, table: Mapping[str, Any]) -> Allowance:
    """An :class:`Allowance` from a ``[groups.NAME.guards]`` table, or :class:`ConfigError`.

    ``key`` is the table's dotted name (``groups.ci.guards``); errors name
    ``f"{key}.{field}"``. Capability names are normalised (upper-case, a
    ``CAP_`` prefix removed) and checked against :data:`CAPABILITIES`.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(source, key, f"must be a table of guards ({', '.join(GUARD_KEYS)})")
    values: dict[str, Any] = {}
    for name, value in table.items():
        where = f"{key}.{name}"
        if name not in GUARD_KEYS:
            raise ConfigError(
                source,
                where,
                f"unknown guard {name!r}{_suggest(str(name), GUARD_KEYS)} (the guards are: {', '.join(GUARD_KEYS)})",
            )
        if name in _BOOL_KEYS:
            if not isinstance(value, bool):
                raise ConfigError(source, where, f"must be true or false, not {value!r}")
            values[name] = value
        elif name == "capabilities":
            capabilities = set()
            for item in _strings(source, where, value):
                capability = normalise_capability(item)
                if capability != "ALL" and capability not in CAPABILITIES:
                    raise ConfigError(
                        source,
                        where,
                        f"unknown capability {item!r}{_suggest(capability, CAPABILITIES)} "
                        "(write names such as NET_ADMIN, or ALL)",
                    )
                capabilities.add(capability)
            values[name] = frozenset(capabilities)
        elif name == "host_namespaces":
            namespaces = set()
            for item in _strings(source, where, value):
                if item not in HOST_NAMESPACES:
                    raise ConfigError(
                        source,
                        where,
                        f"unknown namespace {item!r}{_suggest(item, HOST_NAMESPACES)} "
                        f"(the namespaces are: {', '.join(HOST_NAMESPACES)})",
                    )
                namespaces.add(item)
            values[name] = frozenset(namespaces)
        elif name == "bind_roots":
            values[name] = tuple(dict.fromkeys(_check_root(source, where, r) for r in _strings(source, where, value)))
        elif name == "networks":
            values[name] = tuple(dict.fromkeys(_check_network_pattern(source, where, p) for p in _strings(source, where, value)))
        elif name == "image_names":
            values[name] = tuple(dict.fromkeys(_check_image_pattern(source, where, p) for p in _strings(source, where, value)))
        else:  # runtimes, volume_drivers, network_drivers
            names = set()
            for item in _strings(source, where, value):
                if not item or item != item.strip():
                    raise ConfigError(source, where, f"{item!r} is not a name; write names without spaces, or \"*\" for any")
                names.add(item)
            values[name] = frozenset(names)
    return Allowance(**values)
