"""Host paths and mounts: binds, mounts, volume drivers and local volume options.

A host path is allowed when it is equal to or under a C{bind_roots} entry,
compared segment by segment; one that reaches a container-engine socket (or
C{/proc}) needs C{docker_socket} too, and binds are read-only unless
C{bind_write}. A path with two readings (C{..}, C{//}, NUL) is refused.
While L{judge<dockguard.guards.judge>} runs, L{HOST_PATHS} holds how the
host resolves a path (L{dockguard.hostpaths.resolve}), and each source
is judged both as written and as resolved.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from typing import Any

from dockguard.guards.allowance import ANY, Allowance
from dockguard.guards.gojson import GoObject, as_bool, as_object, as_str, as_str_map
from dockguard.guards.verdict import Refusal, show, to_allow

__all__ = [
    "judge_host_path",
    "HOST_PATHS",
    "HostPathUnverifiable",
    "judge_bind_spec",
    "judge_local_options",
    "judge_mount",
    "judge_volume_driver",
    "judge_written_path",
]


#: Paths whose bind mount reaches a container-engine socket ("/var/run" is read as "/run").
_SOCKET_PATHS = ("/run/docker.sock", "/run/docker", "/run/containerd", "/run/podman", "/run/user", "/proc")
#: Last segments that are a container-engine socket, wherever they are.
_SOCKET_NAMES = frozenset(
    {"docker.sock", "containerd.sock", "containerd.sock.ttrpc", "podman.sock", "dockershim.sock", "cri-dockerd.sock"}
)
#: A named volume, as the daemon's local driver accepts it.
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def _touches_socket(path: str) -> bool:
    spellings = {path}
    if _under(path, "/var/run"):
        spellings.add("/run" + path[len("/var/run") :])
    if path in ("/var", "/var/run"):
        return True
    for spelling in spellings:
        for target in _SOCKET_PATHS:
            if _under(spelling, target) or _under(target, spelling):
                return True
    return path.rsplit("/", 1)[-1] in _SOCKET_NAMES


def _clean_host_path(source: str, field: str) -> str:
    """The cleaned absolute host path, or a refusal when it has two readings."""
    if not source.startswith("/"):
        raise Refusal(
            field,
            "",
            f"{field} is {show(source)}, not an absolute host path: bind sources must start with '/'",
        )
    if "\x00" in source:
        raise Refusal(field, "", f"{field} contains a NUL character; remove it")
    segments = source[1:].split("/")
    if segments and segments[-1] == "" and len(segments) > 1:
        segments.pop()  # one trailing slash
    if segments == [""]:
        segments = []
    if "" in segments:
        raise Refusal(
            field,
            "",
            f"{field} is {show(source)}, which contains '//': dockguard refuses paths with two "
            "readings; write the path with single slashes",
        )
    if ".." in segments:
        raise Refusal(
            field,
            "",
            f"{field} is {show(source)}, which contains '..': dockguard refuses paths with two "
            "readings; write the resolved path",
        )
    return "/" + "/".join(segment for segment in segments if segment != ".")


class HostPathUnverifiable(Exception):
    """A host path dockguard cannot resolve; C{reason} completes "the source …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: How the host reads a path: the resolved absolute path (symlinks followed),
#: or L{HostPathUnverifiable}. Set only while L{judge<dockguard.guards.judge>} runs.
HOST_PATHS: contextvars.ContextVar[Callable[[str], str] | None] = contextvars.ContextVar(
    "dockguard_host_paths", default=None
)


def judge_host_path(
    source: str, field: str, allowance: Allowance, what: str = "mounts", *, read_only: bool = False
) -> None:
    """A host path a bind (C{what}) reaches: as written, writable or not, then as the host resolves it."""
    path = _clean_host_path(source, field)
    _judge_resolved(path, field, allowance, what)
    if not read_only and not allowance.bind_write:
        raise Refusal(
            field,
            "bind_write",
            f"{field} {what} {show(path)} from the host read-write: binds from the host must be read-only "
            "(add :ro, or ReadOnly: true), since a writable bind lets the container plant symlinks the "
            "daemon follows later (set bind_write = true in the group's guards to allow it)",
        )
    resolve = HOST_PATHS.get()
    if resolve is None or ("/" in allowance.bind_roots and allowance.docker_socket):
        return
    try:
        real = resolve(path)
    except HostPathUnverifiable as unverifiable:
        raise Refusal(field, "bind_roots", f"{field} {what} {show(path)} from the host, which {unverifiable.reason}")
    if real != path:
        _judge_resolved(real, field, allowance, f"{what} {show(path)}, which the host resolves to")


def _judge_resolved(path: str, field: str, allowance: Allowance, what: str) -> None:
    """A clean host path against C{docker_socket} and C{bind_roots}."""
    shown = show(path)
    under = any(_under(path, root) for root in allowance.bind_roots)
    if _touches_socket(path) and not allowance.docker_socket:
        extra = "" if under else " and add a bind_roots entry that covers it"
        raise Refusal(
            field,
            "docker_socket",
            f"{field} {what} {shown} from the host, which is or contains a container-engine socket "
            f"(or /proc): that gives full control of the host (set docker_socket = true{extra} in "
            "the group's guards to allow it)",
        )
    if not under:
        if allowance.bind_roots:
            roots = ", ".join(allowance.bind_roots)
            rule = f"bind mounts are allowed only under {roots} (bind_roots)"
        else:
            rule = "bind mounts from the host are not allowed (add a directory to bind_roots in the group's guards to allow it)"
        raise Refusal(field, "bind_roots", f"{field} {what} {shown} from the host: {rule}")


def judge_written_path(value: str, field: str, allowance: Allowance) -> None:
    """A host file the engine writes for the caller (Podman's log and PID files): a read-write bind."""
    if value:
        judge_host_path(value, field, allowance, "writes")


def judge_bind_spec(spec: str, field: str, allowance: Allowance) -> None:
    """One C{Binds} entry, C{SOURCE:TARGET[:MODES]}: a host path or a volume name."""
    # moby volume/mounts/linux_parser.go: strings.SplitN(raw, ":", 4).
    parts = spec.split(":", 3)
    if parts[0] == "":
        raise Refusal(field, "", f"{field} is {show(spec)}, which has no source: the daemon would reject it")
    if len(parts) == 4:
        raise Refusal(field, "", f"{field} is {show(spec)}, which has too many ':' parts: the daemon would reject it")
    if len(parts) == 1:
        return  # an anonymous volume at that container path
    source = parts[0]
    if len(parts) == 3:
        _judge_bind_modes(spec, parts[2].split(","), field, allowance)
    if source.startswith("/"):
        modes = parts[2].split(",") if len(parts) == 3 else []
        judge_host_path(source, field, allowance, read_only="ro" in modes)
    elif not _VOLUME_NAME.fullmatch(source):
        raise Refusal(
            field,
            "",
            f"{field} has the source {show(source)}, which is neither an absolute host path nor a "
            "volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*); use one of those",
        )


#: The modes moby's Linux parser accepts on a bind (volume/mounts/linux_parser.go): read-write,
#: SELinux label, propagation, nocopy, consistency.
_MOBY_BIND_MODES = frozenset(
    {"ro", "rw", "z", "Z", "private", "rprivate", "slave", "rslave", "shared", "rshared", "nocopy",
     "consistent", "cached", "delegated"}
)  # fmt: skip


def _judge_bind_modes(spec: str, modes: list[str], field: str, allowance: Allowance) -> None:
    """A bind's modes: moby rejects any other, Podman acts on more (C{U} chowns the host directory)."""
    unknown = [mode for mode in modes if mode not in _MOBY_BIND_MODES]
    if unknown and not (allowance.bind_write and allowance.devices and allowance.unconfined):
        raise Refusal(
            field,
            "bind_write",
            f"{field} is {show(spec)}, with the mode {show(unknown[0])}, which the Docker daemon rejects and "
            "Podman acts on (U chowns the host directory, dev and suid open device nodes and setuid files, "
            "O overlays it): allowed only with bind_write, devices and unconfined in the group's guards",
        )


def judge_volume_driver(name: str, field: str, allowance: Allowance) -> None:
    """A volume driver other than C{local} needs C{volume_drivers}."""
    if name in ("", "local") or ANY in allowance.volume_drivers or name in allowance.volume_drivers:
        return
    shown = show(name)
    raise Refusal(
        field,
        "volume_drivers",
        f"{field} uses the volume driver {shown}: volume drivers other than local are not allowed "
        f'(add "{shown}" to volume_drivers in the group\'s guards to allow it)',
    )


#: Local volume types that bind a host path (C{device}).
_BIND_TYPES = frozenset({"", "none", "bind", "rbind"})
#: Local volume types that mount a remote share, not the host.
_NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3"})


def judge_local_options(options: GoObject, field: str, allowance: Allowance) -> None:
    """Options of the local driver, which runs mount(2) on the host as root."""
    fs_type = as_str(options.get("type"), f"{field}.type")
    device = as_str(options.get("device"), f"{field}.device")
    mount_options = as_str(options.get("o"), f"{field}.o")
    if not device:
        return  # nothing from the host is mounted (the daemon rejects type/o without device)
    tokens = {token.strip().lower() for token in mount_options.split(",")}
    if tokens & {"bind", "rbind"} or fs_type.lower() in _BIND_TYPES:
        judge_host_path(device, f"{field}.device", allowance, "binds", read_only="ro" in tokens)
        return
    if fs_type.lower() == "tmpfs" or fs_type.lower() in _NETWORK_FILESYSTEMS:
        return
    if allowance.devices:
        return
    raise Refusal(
        f"{field}.type",
        "devices",
        f"{field} mounts {show(device)} with filesystem type {show(fs_type)} on the host: mounting host "
        f"devices or kernel filesystems is device access ({to_allow('devices = true')})",
    )


#: The mount types the daemon knows (any other is refused, as the daemon would).
_MOUNT_TYPES = frozenset({"bind", "volume", "tmpfs", "npipe", "cluster", "image"})


def _refuse_mount_separators(mount: GoObject, field: str) -> None:
    """A ',' in a mount's fields: Podman's compatible API joins them into one C{--mount} string.

    Podman 4.3 (pkg/api/handlers/compat/containers_create.go) writes
    C{type=…,source=…,target=…,consistency=…,bind-propagation=…} and parses
    it again, keeping the last C{source}: a Target of C{/d,source=/} binds
    the host's C{/} (measured). No field may hold the separator.
    """
    values = [("Type", mount.get("Type")), ("Source", mount.get("Source")), ("Target", mount.get("Target"))]
    values.append(("Consistency", mount.get("Consistency")))
    bind_options = as_object(mount.get("BindOptions"), f"{field}.BindOptions")
    if bind_options is not None:
        values.append(("BindOptions.Propagation", bind_options.get("Propagation")))
    for name, value in values:
        text = as_str(value, f"{field}.{name}")
        if "," in text:
            raise Refusal(
                f"{field}.{name}",
                "",
                f"{field}.{name} is {show(text)}, which holds a ','; Podman joins a mount's fields with ',' "
                "and reads them again, so the mount has two readings: remove it",
            )


def judge_mount(value: Any, field: str, allowance: Allowance) -> None:
    """One C{Mounts} entry of a HostConfig or a service's ContainerSpec."""
    mount = as_object(value, field)
    if mount is None:
        return
    mount_type = as_str(mount.get("Type"), f"{field}.Type")
    source = as_str(mount.get("Source"), f"{field}.Source")
    if mount_type not in _MOUNT_TYPES:
        raise Refusal(
            f"{field}.Type",
            "",
            f"{field}.Type is {show(mount_type)}, which is not a mount type the daemon knows "
            "(bind, volume, tmpfs, npipe, cluster, image); the daemon would reject it",
        )
    _refuse_mount_separators(mount, field)  # Podman (issue 17)
    read_only = as_bool(mount.get("ReadOnly"), f"{field}.ReadOnly")
    if mount_type == "bind":
        judge_host_path(source, f"{field}.Source", allowance, read_only=read_only)
        return
    if mount_type != "volume":
        return
    if source.startswith("/"):
        judge_host_path(source, f"{field}.Source", allowance, read_only=read_only)
    volume_options = as_object(mount.get("VolumeOptions"), f"{field}.VolumeOptions")
    if volume_options is None:
        return
    prefix = f"{field}.VolumeOptions.DriverConfig"
    driver_config = as_object(volume_options.get("DriverConfig"), prefix)
    if driver_config is None:
        return
    driver = as_str(driver_config.get("Name"), f"{prefix}.Name")
    options = as_str_map(driver_config.get("Options"), f"{prefix}.Options")
    judge_volume_driver(driver, f"{prefix}.Name", allowance)
    if driver in ("", "local"):
        judge_local_options(options, f"{prefix}.Options", allowance)
