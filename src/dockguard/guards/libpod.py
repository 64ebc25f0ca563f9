"""Podman's libpod bodies: a container's SpecGenerator, a pod's spec, volumes, networks, updates, kube YAML.

Podman 4.3's libpod handlers decode these bodies with Go's C{encoding/json}
(C{pkg/api/handlers/libpod}: C{json.NewDecoder(r.Body).Decode}), so they
are read as for Docker (L{gojson<dockguard.guards.gojson>}: keys folded as Go
folds them, two spellings of one key refused, a wrong JSON type refused).
They are judged with the same guard keys as Docker's bodies, field by field
(docs/podman.md lists which field needs which key). Where Docker's guards
know a body's every field by its meaning, these know a SpecGenerator by its
names: a key that is not a field of Podman 4.3's C{SpecGenerator} (or of the
pod spec, volume or network body) is refused, since a later Podman may give
it a meaning dockguard would not judge.

What dockguard cannot read as Podman reads it is refused unless the group's
guards are fully open (every key of L{OPEN<dockguard.guards.allowance.OPEN>}):
C{play kube} YAML (Podman's YAML reader, with its own case and key rules,
anchors and multi-document streams) and a container restored from an uploaded
checkpoint (its spec travels inside a tar).

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockguard.guards.allowance import ANY, OPEN, Allowance
from dockguard.guards.confinement import (
    judge_capabilities,
    judge_cgroup_parent,
    judge_privileged,
    judge_runtime,
    judge_security_option,
    judge_sysctls,
    judge_volumes_from,
    refuse_unconfined,
)
from dockguard.guards.gojson import GoObject, as_bool, as_list, as_object, as_str, as_str_list, as_str_map, go_fold
from dockguard.guards.mounts import judge_host_path, judge_local_options, judge_volume_driver, judge_written_path
from dockguard.guards.networkrefs import judge_network_name
from dockguard.guards.verdict import Refusal, show, to_allow

__all__ = [
    "LIBPOD_JSON_KINDS",
    "LIBPOD_RAW_KINDS",
    "fully_open",
    "judge_libpod_raw",
    "judge_network_create",
    "judge_pod_create",
    "judge_spec_generator",
    "judge_update",
    "judge_volume_create",
]


def fully_open(allowance: Allowance) -> bool:
    """Whether C{allowance} opens every guard (a union with L{OPEN} adds nothing)."""
    return allowance.merge(OPEN) == allowance


def _known(names: str) -> frozenset[str]:
    return frozenset(go_fold(name) for name in names.split())


#: Every field of Podman 4.3.1's SpecGenerator (pkg/specgen/specgen.go), as encoding/json names them.
SPEC_FIELDS = _known(
    # ContainerBasicConfig
    "name pod entrypoint command env_host httpproxy env terminal stdin labels annotations stop_signal "
    "stop_timeout timeout log_configuration conmon_pid_file raw_image_name image_os image_arch "
    "image_variant restart_policy restart_tries oci_runtime systemd sdnotifyMode namespace pidns utsns "
    "hostname hostusers sysctl remove containerCreateCommand timezone dependencyContainers secret_env "
    "init_container_type personality envmerge unsetenv unsetenvall manage_password passwd_entry "
    # ContainerStorageConfig
    "image rootfs rootfs_overlay image_volume_mode volumes_from init init_path mounts volumes "
    "overlay_volumes image_volumes devices device_cgroup_rule devices_from host_device_list ipcns "
    "shm_size work_dir create_working_dir storage_opts rootfs_propagation secrets volatile "
    "chroot_directories "
    # ContainerSecurityConfig
    "privileged user groups cap_add cap_drop selinux_opts apparmor_profile seccomp_policy "
    "seccomp_profile_path no_new_privileges userns idmappings read_only_filesystem umask procfs_opts "
    "mask unmask "
    # ContainerCgroupConfig, ContainerNetworkConfig (Networks has no tag), ContainerResourceConfig,
    # ContainerHealthCheckConfig
    "cgroupns cgroups_mode cgroup_parent netns portmappings publish_image_ports expose Networks "
    "cni_networks use_image_resolve_conf dns_server dns_search dns_option use_image_hosts hostadd "
    "network_options resource_limits r_limits oom_score_adj weightDevice throttleReadBpsDevice "
    "throttleWriteBpsDevice throttleReadIOPSDevice throttleWriteIOPSDevice unified cpu_period cpu_quota "
    "healthconfig health_check_on_failure_action"
)

#: Every field of Podman 4.3.1's PodSpecGenerator (pkg/specgen/podspecgen.go).
POD_FIELDS = _known(
    "name hostname exit_policy labels no_infra infra_conmon_pid_file infra_command infra_image "
    "infra_name shared_namespaces share_parent pod_create_command pidns userns utsns pod_devices sysctl "
    "netns portmappings Networks cni_networks no_manage_resolv_conf dns_server dns_search dns_option "
    "no_manage_hosts hostadd network_options mounts volumes overlay_volumes image_volumes volumes_from "
    "shm_size cgroup_parent serviceContainerID resource_limits cpu_period cpu_quota "
    "throttleReadBpsDevice security_opt idmappings"
)

#: The namespace fields of a spec, and the namespace each names (as HOST_NAMESPACES spells it).
_NAMESPACES = (
    ("pidns", "pid"),
    ("utsns", "uts"),
    ("ipcns", "ipc"),
    ("userns", "userns"),
    ("cgroupns", "cgroupns"),
    ("netns", "network"),
)
#: Namespace modes that keep the container in namespaces of its own (pkg/specgen/namespaces.go).
_OWN_MODES = frozenset(
    {"", "default", "private", "shareable", "none", "bridge", "slirp4netns", "pasta", "keep-id", "no-map", "auto"}
)
#: Annotation prefixes runtimes, hooks and Podman act on.
_ACTIVE_ANNOTATIONS = (
    "run.oci.",
    "io.containers.",
    "io.podman.",
    "org.systemd.",
    "io.kubernetes.",
    "org.opencontainers.",
)
#: OCI mount types that mount nothing of the host's.
_PLAIN_MOUNTS = frozenset({"tmpfs", "ramfs", "devpts", "image", "mqueue"})
#: Host path mount types (glob: every host path a pattern matches).
_BIND_MOUNTS = frozenset({"bind", "rbind", "glob"})


def _unknown(document: GoObject, known: frozenset[str], what: str, prefix: str) -> None:
    for key, _ in document.pairs:
        if go_fold(key) not in known:
            raise Refusal(
                prefix + key,
                "",
                f"{prefix}{key} is not a field of Podman 4.3's {what}: dockguard refuses fields it does not "
                "know, since Podman may act on them; remove it",
            )


def _judge_namespace(value: Any, namespace: str, field: str, allowance: Allowance) -> None:
    ns = as_object(value, field)
    if ns is None:
        return
    mode = as_str(ns.get("nsmode"), f"{field}.nsmode")
    value = as_str(ns.get("value"), f"{field}.value")
    if mode in ("slirp4netns", "pasta") and value and "network" not in allowance.host_namespaces:
        raise Refusal(
            f"{field}.value",
            "host_namespaces",
            f"{field} passes options to {mode}, which can open the host's loopback to the container "
            '(add "network" to host_namespaces in the group\'s guards to allow it)',
        )
    if mode in _OWN_MODES:
        return
    if mode in ("host", "path"):
        if namespace in allowance.host_namespaces:
            return
        what = "the host's" if mode == "host" else f"the namespace at the host path {show(value)}, maybe the host's"
        raise Refusal(
            f"{field}.nsmode",
            "host_namespaces",
            f"{field} is {show(mode)}: sharing {what} {namespace} namespace is not allowed "
            f'(add "{namespace}" to host_namespaces in the group\'s guards to allow it)',
        )
    if mode in ("container", "pod"):
        if allowance.join_containers:
            return
        raise Refusal(
            f"{field}.nsmode",
            "join_containers",
            f"{field} is {show(mode)}: joining another container's or pod's namespace is not allowed "
            f"({to_allow('join_containers = true')})",
        )
    raise Refusal(f"{field}.nsmode", "", f"{field}.nsmode is {show(mode)}, a namespace mode dockguard does not know")


def _judge_mounts(value: Any, field: str, allowance: Allowance) -> None:
    for index, item in enumerate(as_list(value, field)):
        where = f"{field}[{index}]"
        mount = as_object(item, where)
        if mount is None:
            continue
        kind = as_str(mount.get("type"), f"{where}.type")
        source = as_str(mount.get("source"), f"{where}.source")
        options = as_str_list(mount.get("options"), f"{where}.options")
        if kind in _BIND_MOUNTS or {"bind", "rbind"} & set(options):
            _judge_bind_options(options, f"{where}.options", allowance)
            if kind == "glob" and not fully_open(allowance):
                raise Refusal(
                    f"{where}.type",
                    "bind_roots",
                    f"{where} mounts every host path the pattern {show(source)} matches: dockguard does not "
                    "expand patterns, so glob mounts need the group's guards fully open",
                )
            judge_host_path(source, f"{where}.source", allowance, read_only="ro" in options)
        elif kind not in _PLAIN_MOUNTS and not allowance.devices:
            raise Refusal(
                f"{where}.type",
                "devices",
                f"{where} mounts a {show(kind)} filesystem: mounting kernel filesystems or devices is device "
                f"access ({to_allow('devices = true')})",
            )


#: Bind options that change nothing on the host nor lift the container's confinement.
_PLAIN_BIND_OPTIONS = frozenset(
    {"bind", "rbind", "ro", "rw", "z", "Z", "private", "rprivate", "slave", "rslave", "shared", "rshared",
     "unbindable", "runbindable", "noexec", "exec", "nosuid", "nodev", "nocopy", "copy", "idmap"}
)  # fmt: skip
#: Bind options Podman acts on, and the guard key each needs.
_BIND_OPTION_GUARDS = {
    "U": ("bind_write", "chowns the host directory to the container's user"),
    "dev": ("devices", "makes device nodes in the host directory usable"),
    "suid": ("unconfined", "honours setuid files of the host directory"),
}


def _judge_bind_options(options: list[str], field: str, allowance: Allowance) -> None:
    for option in options:
        if option in _PLAIN_BIND_OPTIONS:
            continue
        guard, what = _BIND_OPTION_GUARDS.get(option, ("", "is a bind option dockguard does not know"))
        if guard and getattr(allowance, guard):
            continue
        raise Refusal(
            field,
            guard,
            f"{field} has {show(option)}, which {what}" + (f" ({to_allow(guard + ' = true')})" if guard else ""),
        )


def _judge_storage(spec: GoObject, prefix: str, allowance: Allowance) -> None:
    """Mounts, volumes, overlay volumes, volumes_from: the storage fields shared by containers and pods."""
    _judge_mounts(spec.get("mounts"), prefix + "mounts", allowance)
    for index, item in enumerate(as_list(spec.get("overlay_volumes"), prefix + "overlay_volumes")):
        where = f"{prefix}overlay_volumes[{index}]"
        overlay = as_object(item, where)
        if overlay is not None:
            # the host directory is the lower layer: read, never written
            judge_host_path(
                as_str(overlay.get("source"), f"{where}.source"), f"{where}.source", allowance, read_only=True
            )
            # ... unless upperdir= and workdir= name host directories the writes go to
            for option in as_str_list(overlay.get("options"), f"{where}.options"):
                key, equals, value = option.partition("=")
                if equals and key.lower() in ("upperdir", "workdir"):
                    judge_written_path(value, f"{where}.options", allowance)
    for index, item in enumerate(as_list(spec.get("volumes"), prefix + "volumes")):
        where = f"{prefix}volumes[{index}]"
        volume = as_object(item, where)
        if volume is not None:
            name = as_str(volume.get("Name"), f"{where}.Name")
            if name.startswith("/"):
                judge_host_path(
                    name, f"{where}.Name", allowance, read_only="ro" in as_str_list(volume.get("Options"), where)
                )
            elif name:  # even IsAnonymous: Podman reuses a volume of that name if one exists
                _judge_named_volume(name, f"{where}.Name", allowance)
    field = prefix + "volumes_from"
    judge_volumes_from(as_str_list(spec.get("volumes_from"), field), field, allowance)


def _judge_named_volume(name: str, field: str, allowance: Allowance) -> None:
    """A named volume in a libpod body: dockguard does not look it up (it does for Docker's bodies).

    An existing volume may bind any host path its creator chose, so only a
    group that may bind any host path read-write, sockets included, may mount
    one by name here; others mount it through the Docker-compatible API.
    """
    if "/" in allowance.bind_roots and allowance.bind_write and allowance.docker_socket:
        return
    raise Refusal(
        field,
        "bind_roots",
        f"{field} mounts the named volume {show(name)}, which dockguard does not look up in a libpod body "
        "(a volume can bind any host path): mount it through the Docker-compatible API "
        '(-v with DOCKER_HOST), where it is judged, or give the group bind_roots = ["/"], bind_write '
        "and docker_socket",
    )


def _judge_network(spec: GoObject, prefix: str, allowance: Allowance) -> None:
    networks = as_object(spec.get("Networks"), prefix + "Networks")
    for name, _ in networks.pairs if networks is not None else ():
        judge_network_name(name, f"{prefix}Networks.{name}", allowance, "joins")
    for index, name in enumerate(as_str_list(spec.get("cni_networks"), prefix + "cni_networks")):
        judge_network_name(name, f"{prefix}cni_networks[{index}]", allowance, "joins")
    field = prefix + "network_options"
    options = as_object(spec.get("network_options"), field)
    if options is not None and len(options) and "network" not in allowance.host_namespaces:
        raise Refusal(
            field,
            "host_namespaces",
            f"{field} passes options to the network backend (slirp4netns allow_host_loopback=true reaches "
            'the host\'s loopback services): not allowed unless "network" is in host_namespaces',
        )


def _judge_resources(value: Any, field: str, allowance: Allowance) -> None:
    """A spec.LinuxResources: its device cgroup rules, and raw cgroup files."""
    resources = as_object(value, field)
    if resources is None:
        return
    if as_list(resources.get("devices"), f"{field}.devices") and not allowance.devices:
        raise Refusal(
            f"{field}.devices",
            "devices",
            f"{field}.devices changes the device cgroup: devices are not allowed ({to_allow('devices = true')})",
        )
    _judge_unified(resources.get("unified"), f"{field}.unified", allowance)


def _judge_unified(value: Any, field: str, allowance: Allowance) -> None:
    if len(as_str_map(value, field)) and not allowance.cgroup_parent:
        raise Refusal(
            field,
            "cgroup_parent",
            f"{field} writes cgroup files of the caller's choice ({to_allow('cgroup_parent = true')})",
        )


def _judge_written_file(value: Any, field: str, allowance: Allowance) -> None:
    """A host file the service writes (a PID file, a log file): a read-write bind, as for Docker."""
    judge_written_path(as_str(value, field), field, allowance)


def judge_spec_generator(spec: GoObject, allowance: Allowance, prefix: str = "") -> None:
    """The body of C{POST /libpod/containers/create}: Podman 4.3's SpecGenerator."""
    _unknown(spec, SPEC_FIELDS, "SpecGenerator", prefix)
    field = prefix + "privileged"
    judge_privileged(as_bool(spec.get("privileged"), field), field, allowance)
    field = prefix + "env_host"
    if as_bool(spec.get("env_host"), field) and not allowance.privileged:
        raise Refusal(
            field,
            "privileged",
            f"{field} is true: it copies the Podman service's own environment into the container "
            f"({to_allow('privileged = true')})",
        )
    judge_capabilities(as_str_list(spec.get("cap_add"), prefix + "cap_add"), prefix + "cap_add", allowance)
    for name in ("devices", "device_cgroup_rule", "devices_from", "host_device_list"):
        field = prefix + name
        if as_list(spec.get(name), field) and not allowance.devices:
            raise Refusal(
                field,
                "devices",
                f"{field} asks for host devices: devices are not allowed ({to_allow('devices = true')})",
            )
    _judge_storage(spec, prefix, allowance)
    for name, path_kind in (("rootfs", "writes"), ("init_path", "mounts")):
        field = prefix + name
        path = as_str(spec.get(name), field)
        if path:
            # rootfs: a host directory the container runs in, read-write; init_path: a host binary bound in
            judge_host_path(path, field, allowance, path_kind, read_only=name == "init_path")
    _judge_written_file(spec.get("conmon_pid_file"), prefix + "conmon_pid_file", allowance)
    field = prefix + "sdnotifyMode"
    if as_str(spec.get("sdnotifyMode"), field) == "container" and not allowance.docker_socket:
        raise Refusal(
            field,
            "docker_socket",
            f'{field} is "container": Podman binds the service\'s systemd notify socket into the container '
            f"({to_allow('docker_socket = true')})",
        )
    log = as_object(spec.get("log_configuration"), prefix + "log_configuration")
    if log is not None:
        _judge_written_file(log.get("path"), prefix + "log_configuration.path", allowance)
    for name, namespace in _NAMESPACES:
        _judge_namespace(spec.get(name), namespace, prefix + name, allowance)
    field = prefix + "pod"
    if as_str(spec.get("pod"), field) and not allowance.join_containers:
        raise Refusal(
            field,
            "join_containers",
            f"{field} joins a pod, whose namespaces (maybe the host's) it shares: not allowed "
            f"({to_allow('join_containers = true')})",
        )
    _judge_network(spec, prefix, allowance)
    judge_sysctls(spec.get("sysctl"), prefix + "sysctl", allowance)
    _judge_resources(spec.get("resource_limits"), prefix + "resource_limits", allowance)
    _judge_unified(spec.get("unified"), prefix + "unified", allowance)
    field = prefix + "cgroup_parent"
    judge_cgroup_parent(as_str(spec.get("cgroup_parent"), field), field, allowance)
    field = prefix + "oci_runtime"
    judge_runtime(as_str(spec.get("oci_runtime"), field), field, allowance, ("runc", "crun"))
    _judge_confinement(spec, prefix, allowance)


def _judge_confinement(spec: GoObject, prefix: str, allowance: Allowance) -> None:
    if allowance.unconfined:
        return
    field = prefix + "seccomp_policy"
    if as_str(spec.get("seccomp_policy"), field) not in ("", "default"):
        refuse_unconfined(field, "takes the seccomp profile from the image, which may allow any system call")
    field = prefix + "seccomp_profile_path"
    if as_str(spec.get("seccomp_profile_path"), field):
        refuse_unconfined(field, "sets a seccomp profile (or unconfined): a profile can allow any system call")
    field = prefix + "apparmor_profile"
    if as_str(spec.get("apparmor_profile"), field):
        refuse_unconfined(field, "selects an AppArmor profile (or unconfined), which may be permissive")
    field = prefix + "selinux_opts"
    if as_str_list(spec.get("selinux_opts"), field):
        refuse_unconfined(field, "sets SELinux label options, which can lift or turn off SELinux separation")
    field = prefix + "unmask"
    if as_str_list(spec.get("unmask"), field):
        refuse_unconfined(field, "unmasks /proc and /sys paths")
    field = prefix + "rootfs_propagation"
    if as_str(spec.get("rootfs_propagation"), field) not in ("", "private", "rprivate", "slave", "rslave"):
        refuse_unconfined(field, "shares mounts between the container and the host")
    annotations = as_str_map(spec.get("annotations"), prefix + "annotations")
    for key, _ in annotations.pairs:
        if key.lower().startswith(_ACTIVE_ANNOTATIONS):
            refuse_unconfined(f"{prefix}annotations.{key}", "is an annotation the runtime, its hooks or Podman act on")


def judge_pod_create(pod: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /libpod/pods/create}: a PodSpecGenerator, and the infra container's spec in it."""
    _unknown(pod, POD_FIELDS, "PodSpecGenerator", "")
    for name in ("pidns", "userns", "utsns", "netns"):
        namespace = dict(_NAMESPACES)[name]
        _judge_namespace(pod.get(name), namespace, name, allowance)
    if as_list(pod.get("pod_devices"), "pod_devices") and not allowance.devices:
        raise Refusal("pod_devices", "devices", f"pod_devices asks for host devices ({to_allow('devices = true')})")
    _judge_storage(pod, "", allowance)
    _judge_network(pod, "", allowance)
    judge_sysctls(pod.get("sysctl"), "sysctl", allowance)
    _judge_resources(pod.get("resource_limits"), "resource_limits", allowance)
    _judge_written_file(pod.get("infra_conmon_pid_file"), "infra_conmon_pid_file", allowance)
    judge_cgroup_parent(as_str(pod.get("cgroup_parent"), "cgroup_parent"), "cgroup_parent", allowance)
    for index, option in enumerate(as_str_list(pod.get("security_opt"), "security_opt")):
        judge_security_option(option, f"security_opt[{index}]", allowance)


def judge_volume_create(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /libpod/volumes/create} (entities.VolumeCreateOptions)."""
    _unknown(document, _known("Name Driver Label Labels Options IgnoreIfExists"), "VolumeCreateOptions", "")
    driver = as_str(document.get("Driver"), "Driver")
    judge_volume_driver(driver, "Driver", allowance)
    options = as_str_map(document.get("Options"), "Options")
    if driver in ("", "local"):
        # Podman's local driver reads the option names in any case (strings.ToLower)
        folded = GoObject([(key.lower(), value) for key, value in options.pairs])
        judge_local_options(folded, "Options", allowance)


#: What a bridge network may set without network_drivers (netavark's bridge options).
_BRIDGE_OPTIONS = frozenset({"mtu", "isolate", "metric", "vlan"})


def judge_network_create(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /libpod/networks/create} (netavark's types.Network)."""
    _unknown(
        document,
        _known(
            "name id driver network_interface created subnets ipv6_enabled internal dns_enabled "
            "options ipam_options labels network_dns_servers"
        ),
        "Network",
        "",
    )
    judge_network_name(as_str(document.get("name"), "name"), "name", allowance, "creates")
    driver = as_str(document.get("driver"), "driver")
    if ANY in allowance.network_drivers or (driver and driver in allowance.network_drivers):
        return
    if driver not in ("", "bridge"):
        raise Refusal(
            "driver",
            "network_drivers",
            f"driver is {show(driver)}: network drivers other than bridge are not allowed "
            f'(add "{show(driver)}" to network_drivers in the group\'s guards to allow it)',
        )
    if as_str(document.get("network_interface"), "network_interface"):
        raise Refusal(
            "network_interface",
            "network_drivers",
            "network_interface names a host interface for the bridge (an existing host bridge joins the "
            "host's network): add \"bridge\" to network_drivers in the group's guards to allow it",
        )
    for key, _ in as_str_map(document.get("options"), "options").pairs:
        if key not in _BRIDGE_OPTIONS:
            raise Refusal(
                f"options.{key}",
                "network_drivers",
                f'options.{key} is a bridge option dockguard does not know: add "bridge" to network_drivers '
                "in the group's guards to allow it",
            )
    ipam = as_str_map(document.get("ipam_options"), "ipam_options")
    driver_name = as_str(ipam.get("driver"), "ipam_options.driver")
    if driver_name not in ("", "host-local", "none"):
        raise Refusal(
            "ipam_options.driver",
            "network_drivers",
            f"ipam_options.driver is {show(driver_name)}: add it to network_drivers to allow it",
        )


def judge_network_connect(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /libpod/networks/{name}/connect}: the network is judged from the path (dockguard.meaning)."""


def judge_update(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /libpod/containers/{name}/update}: a spec.LinuxResources."""
    _judge_resources(document, "", allowance)


#: Kinds whose body is a JSON object, and their judge.
LIBPOD_JSON_KINDS: dict[str, Callable[[GoObject, Allowance], None]] = {
    "libpod.container.create": judge_spec_generator,
    "libpod.container.update": judge_update,
    "libpod.pod.create": judge_pod_create,
    "libpod.volume.create": judge_volume_create,
    "libpod.network.create": judge_network_create,
    "libpod.network.connect": judge_network_connect,
}

#: Kinds whose body dockguard does not read as Podman does: refused unless the guards are fully open.
LIBPOD_RAW_KINDS: dict[str, str] = {
    "libpod.kube.play": (
        "the body is Kubernetes YAML, which can describe privileged pods with host paths and host "
        "namespaces; dockguard does not read YAML the way Podman does"
    ),
    "libpod.scp": (
        "the service copies the image over SSH to a host the caller names, or into another user's storage on this host"
    ),
    "libpod.unjudged": (
        "the container is restored from a checkpoint whose spec dockguard does not read "
        "(an uploaded archive, or what the container was created with)"
    ),
}


def judge_libpod_raw(kind: str, allowance: Allowance) -> None:
    """A body of L{LIBPOD_RAW_KINDS}: allowed only when every guard is open."""
    if not fully_open(allowance):
        raise Refusal(
            "(body)",
            "privileged",
            f"{LIBPOD_RAW_KINDS[kind]}: allowed only to a group whose guards are all open "
            "(every key of the admin preset's guards; docs/podman.md)",
        )
