"""Confinement: privileged, capabilities, namespace modes, another
container's volumes, security options, system paths, devices, sysctls, the
runtime and the cgroup parent.

The pieces of a HostConfig (and of a service's ContainerSpec, and of
Podman's SpecGenerator) that keep a container inside the engine's
isolation, each judged against the
L{Allowance<dockguard.guards.allowance.Allowance>} key that opens it, once
for every body that can ask for it.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from dockguard.guards.allowance import ANY, Allowance
from dockguard.guards.gojson import GoObject, as_list, as_str_list, as_str_map
from dockguard.guards.verdict import Refusal, show, to_allow

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_READONLY_PATHS",
    "MAYBE_ID",
    "judge_capabilities",
    "judge_cgroup_parent",
    "judge_devices",
    "judge_mode",
    "judge_privileged",
    "judge_runtime",
    "judge_security_option",
    "judge_sysctls",
    "judge_system_paths",
    "judge_volumes_from",
    "mode_kind",
    "normalise_capability",
    "refuse_unconfined",
]


#: The capabilities every Docker container has by default (moby oci/caps):
#: adding one of them grants nothing.
DEFAULT_CAPABILITIES: frozenset[str] = frozenset(
    {
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
        "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
        "AUDIT_WRITE",
    }
)  # fmt: skip


def normalise_capability(name: str) -> str:
    """A capability as the daemon reads it: upper-case, one C{CAP_} prefix removed."""
    upper = name.upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def judge_capabilities(names: list[str], field: str, allowance: Allowance) -> None:
    """Added capabilities (C{CapAdd}, C{CapabilityAdd}): Docker's defaults are always allowed."""
    for index, name in enumerate(names):
        capability = normalise_capability(name)
        if capability in DEFAULT_CAPABILITIES and capability.isascii():
            continue
        if "ALL" in allowance.capabilities or capability in allowance.capabilities:
            continue
        shown = show(capability)
        raise Refusal(
            f"{field}[{index}]",
            "capabilities",
            f"{field}[{index}] adds the capability {shown}: it is not allowed "
            f'(add "{shown}" to capabilities in the group\'s guards to allow it)',
        )


def mode_kind(value: str) -> str:
    """C{"host"}, C{"container"} or C{""} for a namespace mode such as C{container:web}."""
    head = value.split(":", 1)[0].lower()
    if head == "host":
        return "host"
    if head == "container" and ":" in value:
        return "container"
    return ""


#: What a local network ID (or a prefix of one) can look like.
MAYBE_ID = re.compile(r"[0-9a-fA-F]+")


def judge_mode(value: str, namespace: str, field: str, allowance: Allowance) -> None:
    """A namespace mode: C{host} needs C{host_namespaces}, C{container:X} C{join_containers}."""
    kind = mode_kind(value)
    _judge_podman_mode(value, namespace, field, allowance)  # Podman (issue 17)
    if namespace == "network" and MAYBE_ID.fullmatch(value) and "network" not in allowance.host_namespaces:
        # The daemon finds a network by ID, then name, then ID prefix: any
        # hexadecimal word may be (a prefix of) the host network's ID.
        raise Refusal(
            field,
            "host_namespaces",
            f"{field} is {show(value)}, which the daemon may read as (a prefix of) a network ID, "
            "and so possibly the host network's: name networks by name (names with a letter "
            'beyond a-f), or add "network" to host_namespaces in the group\'s guards',
        )
    if kind == "host" and namespace not in allowance.host_namespaces:
        raise Refusal(
            field,
            "host_namespaces",
            f"{field} is {show(value)}: sharing the host's {namespace} namespace is not allowed "
            f'(add "{namespace}" to host_namespaces in the group\'s guards to allow it)',
        )
    if kind == "container" and not allowance.join_containers:
        raise Refusal(
            field,
            "join_containers",
            f"{field} is {show(value)}: joining another container's namespace is not allowed "
            f"({to_allow('join_containers = true')})",
        )


def _judge_podman_mode(value: str, namespace: str, field: str, allowance: Allowance) -> None:
    """The modes Podman's compatible API also reads (pkg/specgen/namespaces.go C{ParseNamespace}).

    C{ns:<path>} joins the namespace at a host path (C{ns:/proc/1/ns/pid}
    is the host's: measured), C{pod} a pod's namespaces, and
    C{slirp4netns:<options>} or C{pasta:<options>} can open the host's
    loopback to the container. The Docker daemon rejects them all (or reads a
    network of that name), so they are refused unless their guard is open.
    """
    head, colon, _ = value.partition(":")
    if head.lower() == "ns" and colon and namespace not in allowance.host_namespaces:
        raise Refusal(
            field,
            "host_namespaces",
            f"{field} is {show(value)}: Podman joins the {namespace} namespace at that host path, maybe the "
            f"host's (add \"{namespace}\" to host_namespaces in the group's guards to allow it)",
        )
    if value.lower() == "pod" and not allowance.join_containers:
        raise Refusal(
            field,
            "join_containers",
            f'{field} is "pod": Podman shares the pod\'s namespaces ({to_allow("join_containers = true")})',
        )
    if (
        namespace == "network"
        and head.lower() in ("slirp4netns", "pasta")
        and colon
        and "network" not in allowance.host_namespaces
    ):
        raise Refusal(
            field,
            "host_namespaces",
            f"{field} is {show(value)}: options of Podman's user-mode networking can open the host's "
            'loopback to the container (add "network" to host_namespaces in the group\'s guards to allow it)',
        )


#: Docker's default C{MaskedPaths} and C{ReadonlyPaths}: a list that leaves
#: one out unmasks it.
DEFAULT_MASKED_PATHS = frozenset(
    {
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    }
)  # fmt: skip
DEFAULT_READONLY_PATHS = frozenset({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})

# What Go's strconv.ParseBool reads as true and as false.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def refuse_unconfined(field: str, what: str) -> NoReturn:
    """Refuse C{field}, which C{what} (weakens confinement): C{unconfined} would open it."""
    raise Refusal(field, "unconfined", f"{field} {what} ({to_allow('unconfined = true')})")


def judge_security_option(option: str, field: str, allowance: Allowance) -> None:
    """One C{SecurityOpt}: only the options that keep Docker's confinement pass without C{unconfined}."""
    # moby daemon/daemon_unix.go parseSecurityOpt.
    if option == "no-new-privileges":
        return
    if option == "disable":
        if not allowance.unconfined:
            refuse_unconfined(field, "disables SELinux labelling: weakened confinement is not allowed")
        return
    if "=" in option:
        key, value = option.split("=", 1)
    elif ":" in option:
        key, value = option.split(":", 1)
    else:
        raise Refusal(field, "", f"{field} is {show(option)}, which the daemon would reject; write key=value")
    if key == "no-new-privileges":
        if value in _GO_TRUE:
            return
        if value not in _GO_FALSE:
            raise Refusal(
                field, "", f"{field} is {show(option)}: the value is not a boolean, the daemon would reject it"
            )
    if (key, value) in (("seccomp", "builtin"), ("apparmor", "docker-default")):
        return
    if allowance.unconfined:
        return
    shown = show(option, 60)
    if key == "seccomp":
        what = (
            "turns seccomp off"
            if value == "unconfined"
            else f"sets a custom seccomp profile ({shown}): a profile can allow any system call"
        )
    elif key == "apparmor":
        what = (
            "turns AppArmor off"
            if value == "unconfined"
            else f"selects the AppArmor profile {shown}, which may be permissive"
        )
    elif key == "label":
        what = f"is {shown}: SELinux label options can lift or turn off SELinux separation"
    elif key == "systempaths":
        what = "unmasks /proc and /sys paths (systempaths=unconfined)"
    elif key == "no-new-privileges":
        what = "turns no-new-privileges off"
    else:
        what = f"is {shown}, a security option dockguard does not know; it may weaken confinement"
    refuse_unconfined(field, what + ": weakened confinement is not allowed")


def judge_system_paths(value: Any, field: str, defaults: frozenset[str], allowance: Allowance) -> None:
    """C{MaskedPaths}/C{ReadonlyPaths}: null keeps C{defaults}; a list must hold them all."""
    if value is None:
        return
    paths = as_str_list(value, field)
    missing = defaults - set(paths)
    if missing and not allowance.unconfined:
        refuse_unconfined(
            field,
            f"replaces Docker's defaults and leaves out {', '.join(sorted(missing))}: "
            "unmasking system paths is not allowed",
        )


def judge_devices(obj: GoObject, prefix: str, allowance: Allowance) -> None:
    """C{Devices}, C{DeviceCgroupRules} and C{DeviceRequests} of a HostConfig (or an update)."""
    for name, what in (
        ("Devices", "host devices"),
        ("DeviceCgroupRules", "device cgroup rules"),
        ("DeviceRequests", "device requests (GPUs)"),
    ):
        field = prefix + name
        if as_list(obj.get(name), field) and not allowance.devices:
            raise Refusal(
                field, "devices", f"{field} asks for {what}: devices are not allowed ({to_allow('devices = true')})"
            )


def judge_sysctls(value: Any, field: str, allowance: Allowance) -> None:
    """C{Sysctls} of a container or a service."""
    sysctls = as_str_map(value, field)
    if len(sysctls) and not allowance.sysctls:
        names = ", ".join(show(key) for key, _ in sysctls.pairs[:3])
        raise Refusal(
            field,
            "sysctls",
            f"{field} sets kernel parameters ({names}): sysctls are not allowed ({to_allow('sysctls = true')})",
        )


def judge_privileged(privileged: bool, field: str, allowance: Allowance) -> None:
    """C{Privileged} (Docker), C{privileged} (Podman): every capability and device, no confinement."""
    if privileged and not allowance.privileged:
        raise Refusal(
            field,
            "privileged",
            f"{field} is true: privileged containers are not allowed ({to_allow('privileged = true')})",
        )


def judge_volumes_from(sources: list[str], field: str, allowance: Allowance) -> None:
    """C{VolumesFrom} (Docker), C{volumes_from} (Podman): another container's mounts, and so its host paths."""
    if sources and not allowance.join_containers:
        raise Refusal(
            field,
            "join_containers",
            f"{field} mounts the volumes of {', '.join(show(v) for v in sources[:3])}: using another "
            f"container's volumes is not allowed ({to_allow('join_containers = true')})",
        )


def judge_runtime(runtime: str, field: str, allowance: Allowance, defaults: tuple[str, ...]) -> None:
    """An OCI runtime other than the engine's own C{defaults} (runc; Podman's crun too) needs C{runtimes}."""
    if runtime not in ("", *defaults) and ANY not in allowance.runtimes and runtime not in allowance.runtimes:
        shown = show(runtime)
        raise Refusal(
            field,
            "runtimes",
            f"{field} is {shown}: runtimes other than {' and '.join(defaults)} are not allowed "
            f'(add "{shown}" to runtimes in the group\'s guards to allow it)',
        )


def judge_cgroup_parent(parent: str, field: str, allowance: Allowance) -> None:
    """
    A container's cgroup parent (C{HostConfig.CgroupParent}, Podman's
    C{cgroup_parent}, a build's C{cgroupparent}): a cgroup of the caller's
    choice, outside the limits set for containers.
    """
    if parent and not allowance.cgroup_parent:
        raise Refusal(
            field,
            "cgroup_parent",
            f"{field} is {show(parent)}: the container would run in a cgroup of the caller's choice, outside "
            f"the limits set for containers ({to_allow('cgroup_parent = true')})",
        )
