"""The allowance model: what a group may ask for in the bodies the guards judge.

An L{Allowance} is a group's C{[groups.NAME.guards]} table
(L{GUARD_KEYS}, read by L{dockguard.guards.configuration.allowance_from_mapping}),
every guard closed by default (L{CLOSED}) or every one open (L{OPEN});
L{Allowance.merge} is the union of several groups'.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = ["ANY", "CAPABILITIES", "CLOSED", "GUARD_KEYS", "HOST_NAMESPACES", "OPEN", "Allowance"]


#: Every Linux capability (names without C{CAP_}), as the daemon knows them.
CAPABILITIES: frozenset[str] = frozenset(
    {
        "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF",
        "CHECKPOINT_RESTORE", "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER",
        "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE",
        "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
        "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
        "SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE",
        "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE",
        "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
    }
)  # fmt: skip

#: The host namespaces a group can be allowed to share.
HOST_NAMESPACES: tuple[str, ...] = ("pid", "ipc", "uts", "userns", "cgroupns", "network")

#: In a set or list of names (C{runtimes}, C{networks}, ...), allows any.
ANY = "*"


def _frozenset(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Allowance:
    """What a group may ask for in the bodies the guards judge; everything off by default."""

    #: C{HostConfig.Privileged}.
    privileged: bool = False
    #: Capabilities beyond Docker's defaults, upper-case without C{CAP_}; C{"ALL"} allows any.
    capabilities: frozenset[str] = attrs.field(default=frozenset(), converter=_frozenset)
    #: C{Devices}, C{DeviceCgroupRules}, C{DeviceRequests} (GPUs), generic
    #: resources, and local volumes that mount a device or kernel filesystem.
    devices: bool = False
    #: Host directories under which bind mounts are allowed; C{"/"} allows any.
    bind_roots: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: Read-write binds from the host (and local volumes that bind without C{ro});
    #: off: every bind must be read-only, so no container can plant symlinks in a bind root.
    bind_write: bool = False
    #: Binding the Docker/containerd socket or a directory that contains it.
    docker_socket: bool = False
    #: Host namespaces a container may share: subset of L{HOST_NAMESPACES}.
    host_namespaces: frozenset[str] = attrs.field(default=frozenset(), converter=_frozenset)
    #: C{container:<id>} modes, C{VolumesFrom}.
    join_containers: bool = False
    #: Weakened confinement: seccomp/AppArmor/SELinux options, system paths,
    #: C{no-new-privileges=false}.
    unconfined: bool = False
    #: C{Sysctls}.
    sysctls: bool = False
    #: Runtimes other than the default (C{""}, C{runc}); C{"*"} allows any.
    runtimes: frozenset[str] = attrs.field(default=frozenset(), converter=_frozenset)
    #: Volume drivers other than C{local}; C{"*"} allows any.
    volume_drivers: frozenset[str] = attrs.field(default=frozenset(), converter=_frozenset)
    #: Network drivers other than C{bridge} and C{overlay} (C{macvlan}, C{ipvlan}, plugins,
    #: and IPAM drivers other than the default); a driver named here may also take any
    #: option, C{ConfigFrom} and C{Ingress}; C{"*"} allows any
    #: (see L{judge_network_create<dockguard.guards.networks.judge_network_create>}).
    network_drivers: frozenset[str] = attrs.field(default=frozenset(), converter=_frozenset)
    #: The user-defined networks a request may create, join or leave, by name: C{"ci-net"}, or
    #: C{"ci-*"} for every name that starts with C{ci-}; C{"*"} allows any. C{none},
    #: C{bridge} and C{default} are always allowed
    #: (see L{judge_network_name<dockguard.guards.networkrefs.judge_network_name>}).
    networks: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: Swarm secrets and configs mounted into services (referenced by ID: any of them).
    swarm_secrets: bool = False
    #: Exec as root (or as the container's user); false means exec needs a numeric non-root C{User}.
    exec_root: bool = True
    #: C{Privileged} in an exec.
    exec_privileged: bool = False
    #: Repositories a request may write a tag to (C{build?t=}, C{/images/{name}/tag},
    #: C{/commit}, an import): names such as C{"ci/app"}, or C{"ci/*"} for every name
    #: that starts with C{ci/}; C{"*"} allows any, and is needed for C{/images/load}
    #: (see L{dockguard.images}).
    image_names: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: BuildKit: C{/build?version=2}, C{/session} and C{/grpc} (see L{dockguard.builds}).
    buildkit: bool = False
    #: URLs the daemon downloads for the caller: a build's C{remote=}, an import's C{fromSrc=}.
    remote_fetch: bool = False
    #: A build's C{cgroupparent}: its containers in a cgroup of the caller's choice.
    cgroup_parent: bool = False

    def merge(self, other: Allowance) -> Allowance:
        """The union: what either allows."""
        roots = tuple(dict.fromkeys(self.bind_roots + other.bind_roots))
        return Allowance(
            privileged=self.privileged or other.privileged,
            capabilities=self.capabilities | other.capabilities,
            devices=self.devices or other.devices,
            bind_roots=roots,
            bind_write=self.bind_write or other.bind_write,
            docker_socket=self.docker_socket or other.docker_socket,
            host_namespaces=self.host_namespaces | other.host_namespaces,
            join_containers=self.join_containers or other.join_containers,
            unconfined=self.unconfined or other.unconfined,
            sysctls=self.sysctls or other.sysctls,
            runtimes=self.runtimes | other.runtimes,
            volume_drivers=self.volume_drivers | other.volume_drivers,
            network_drivers=self.network_drivers | other.network_drivers,
            networks=tuple(dict.fromkeys(self.networks + other.networks)),
            swarm_secrets=self.swarm_secrets or other.swarm_secrets,
            exec_root=self.exec_root or other.exec_root,
            exec_privileged=self.exec_privileged or other.exec_privileged,
            image_names=tuple(dict.fromkeys(self.image_names + other.image_names)),
            buildkit=self.buildkit or other.buildkit,
            remote_fetch=self.remote_fetch or other.remote_fetch,
            cgroup_parent=self.cgroup_parent or other.cgroup_parent,
        )

    def describe(self) -> str:
        """One line for logs and C{explain}, e.g. C{guards: privileged; bind mounts under /srv}."""
        parts: list[str] = []
        if self.privileged:
            parts.append("privileged")
        if self.capabilities:
            parts.append("capabilities " + ", ".join(sorted(self.capabilities)))
        if self.devices:
            parts.append("devices")
        if self.bind_roots:
            parts.append(
                ("read-write" if self.bind_write else "read-only") + " bind mounts under " + ", ".join(self.bind_roots)
            )
        if self.docker_socket:
            parts.append("docker socket")
        if self.host_namespaces:
            ordered = [ns for ns in HOST_NAMESPACES if ns in self.host_namespaces]
            parts.append("host namespaces " + ", ".join(ordered))
        if self.join_containers:
            parts.append("join containers")
        if self.unconfined:
            parts.append("unconfined")
        if self.sysctls:
            parts.append("sysctls")
        if self.runtimes:
            parts.append("runtimes " + ", ".join(sorted(self.runtimes)))
        if self.volume_drivers:
            parts.append("volume drivers " + ", ".join(sorted(self.volume_drivers)))
        if self.network_drivers:
            parts.append("network drivers " + ", ".join(sorted(self.network_drivers)))
        if self.networks:
            parts.append("networks " + ", ".join(self.networks))
        if self.swarm_secrets:
            parts.append("swarm secrets")
        if self.exec_privileged:
            parts.append("privileged exec")
        if self.image_names:
            parts.append("writes images " + ", ".join(self.image_names))
        if self.buildkit:
            parts.append("buildkit")
        if self.remote_fetch:
            parts.append("remote fetch")
        if self.cgroup_parent:
            parts.append("cgroup parent")
        parts.append("exec as root" if self.exec_root else "exec as non-root only")
        if len(parts) == 1:
            return "guards: no escalations allowed; " + parts[0]
        return "guards: " + "; ".join(parts)


#: The default: nothing beyond a plain container (exec as root allowed).
CLOSED = Allowance()


#: Everything allowed (an administrator).
OPEN = Allowance(
    privileged=True,
    capabilities=frozenset({"ALL"}),
    devices=True,
    bind_roots=("/",),
    bind_write=True,
    docker_socket=True,
    host_namespaces=frozenset(HOST_NAMESPACES),
    join_containers=True,
    unconfined=True,
    sysctls=True,
    runtimes=frozenset({ANY}),
    volume_drivers=frozenset({ANY}),
    network_drivers=frozenset({ANY}),
    networks=(ANY,),
    swarm_secrets=True,
    exec_root=True,
    exec_privileged=True,
    image_names=(ANY,),
    buildkit=True,
    remote_fetch=True,
    cgroup_parent=True,
)


#: The keys of a C{[groups.NAME.guards]} table.
GUARD_KEYS: tuple[str, ...] = tuple(field.name for field in attrs.fields(Allowance))
