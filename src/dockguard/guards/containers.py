"""Container create and update: the HostConfig, and the networks a new container joins.

dockerd up to 24 also decodes HostConfig fields written at the top level of
a create body (a deprecated embedded C{*HostConfig} in
C{runconfig.ContainerConfigWrapper}) and uses them when C{HostConfig} is
absent, so the top level of a create body is judged as a HostConfig too,
whether or not C{HostConfig} is present (fields named without a prefix,
e.g. C{Privileged}). An update is judged for its device fields only.
"""

from __future__ import annotations

from dockguard.guards.allowance import Allowance
from dockguard.guards.confinement import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    judge_capabilities,
    judge_cgroup_parent,
    judge_devices,
    judge_mode,
    judge_privileged,
    judge_runtime,
    judge_security_option,
    judge_sysctls,
    judge_system_paths,
    judge_volumes_from,
    mode_kind,
)
from dockguard.guards.gojson import GoObject, as_bool, as_list, as_object, as_str, as_str_list, as_str_map
from dockguard.guards.mounts import judge_bind_spec, judge_mount, judge_volume_driver, judge_written_path
from dockguard.guards.networkrefs import judge_network_ref
from dockguard.guards.verdict import Refusal, show

__all__ = ["judge_container_create", "judge_container_update"]


#: The namespace modes of a HostConfig, and the namespace each shares.
_NAMESPACE_FIELDS = (
    ("PidMode", "pid"),
    ("IpcMode", "ipc"),
    ("UTSMode", "uts"),
    ("UsernsMode", "userns"),
    ("CgroupnsMode", "cgroupns"),
    ("NetworkMode", "network"),
)


def _judge_host_config(hc: GoObject, prefix: str, allowance: Allowance) -> None:
    """A HostConfig (C{prefix} C{"HostConfig."}), or the top level of a create body (C{""})."""
    field = prefix + "Privileged"
    judge_privileged(as_bool(hc.get("Privileged"), field), field, allowance)
    field = prefix + "CapAdd"
    judge_capabilities(as_str_list(hc.get("CapAdd"), field, strslice=True), field, allowance)
    judge_devices(hc, prefix, allowance)
    field = prefix + "Binds"
    for index, spec in enumerate(as_str_list(hc.get("Binds"), field)):
        judge_bind_spec(spec, f"{field}[{index}]", allowance)
    field = prefix + "Mounts"
    for index, mount in enumerate(as_list(hc.get("Mounts"), field)):
        judge_mount(mount, f"{field}[{index}]", allowance)
    field = prefix + "VolumeDriver"
    judge_volume_driver(as_str(hc.get("VolumeDriver"), field), field, allowance)
    for name, namespace in _NAMESPACE_FIELDS:
        field = prefix + name
        if namespace == "network":
            judge_network_ref(as_str(hc.get(name), field), field, allowance)
        else:
            judge_mode(as_str(hc.get(name), field), namespace, field, allowance)
    field = prefix + "Cgroup"
    cgroup = as_str(hc.get("Cgroup"), field)
    if mode_kind(cgroup) == "container":  # only "container:X" is a valid CgroupSpec
        judge_mode(cgroup, "cgroup", field, allowance)
    field = prefix + "VolumesFrom"
    judge_volumes_from(as_str_list(hc.get("VolumesFrom"), field), field, allowance)
    field = prefix + "CgroupParent"
    judge_cgroup_parent(as_str(hc.get("CgroupParent"), field), field, allowance)
    field = prefix + "SecurityOpt"
    for index, option in enumerate(as_str_list(hc.get("SecurityOpt"), field)):
        judge_security_option(option, f"{field}[{index}]", allowance)
    judge_system_paths(hc.get("MaskedPaths"), prefix + "MaskedPaths", DEFAULT_MASKED_PATHS, allowance)
    judge_system_paths(hc.get("ReadonlyPaths"), prefix + "ReadonlyPaths", DEFAULT_READONLY_PATHS, allowance)
    judge_sysctls(hc.get("Sysctls"), prefix + "Sysctls", allowance)
    _judge_log_path(hc, prefix, allowance)  # Podman (issue 17)
    # Podman (issue 17): it writes the container's ID to this host file (moby leaves it to the client)
    field = prefix + "ContainerIDFile"
    judge_written_path(as_str(hc.get("ContainerIDFile"), field), field, allowance)
    field = prefix + "Runtime"
    judge_runtime(as_str(hc.get("Runtime"), field), field, allowance, ("runc",))


def _judge_config_volumes(document: GoObject) -> None:
    """Podman (issue 17): C{Volumes} keys are container paths to moby, C{-v} specs to Podman.

    Podman's compatible API passes each key of the create body's C{Volumes}
    to its C{-v} parser, so C{{"/:/host": {}}} binds the host's C{/}
    read-write (measured); moby makes an anonymous volume at that path. A
    key with a ':' has two readings and is refused.
    """
    volumes = as_object(document.get("Volumes"), "Volumes")
    for path, _ in volumes.pairs if volumes is not None else ():
        if ":" in path:
            raise Refusal(
                f"Volumes.{path}",
                "",
                f"Volumes has the key {show(path)}: the Docker daemon reads a container path, Podman a "
                "-v host:container spec (a bind of the host): put binds in HostConfig.Binds",
            )


def _judge_log_path(hc: GoObject, prefix: str, allowance: Allowance) -> None:
    """Podman (issue 17): a C{path} log option (any case) is a host file Podman writes the logs to.

    Its compatible API passes C{LogConfig.Config} to its own parser
    (pkg/specgenutil C{strings.ToLower(key) == "path"}); moby rejects the option.
    """
    field = prefix + "LogConfig"
    log_config = as_object(hc.get("LogConfig"), field)
    if log_config is None:
        return
    options = as_str_map(log_config.get("Config"), f"{field}.Config")
    for key, value in options.pairs:
        if "=" in key:  # Podman joins key=value and splits at the first '='
            raise Refusal(
                f"{field}.Config.{key}",
                "",
                f"{field}.Config has the key {show(key)}, with a '=': Podman reads another option: remove it",
            )
        if key.lower() == "path":
            judge_written_path(value, f"{field}.Config.{key}", allowance)


def judge_container_create(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /containers/create}."""
    _judge_config_volumes(document)  # Podman (issue 17)
    host_config = as_object(document.get("HostConfig"), "HostConfig")
    if host_config is not None:
        _judge_host_config(host_config, "HostConfig.", allowance)
    # dockerd <= 24 also reads HostConfig fields at the top level (see the module docstring).
    _judge_host_config(document, "", allowance)
    networking = as_object(document.get("NetworkingConfig"), "NetworkingConfig")
    if networking is not None:
        field = "NetworkingConfig.EndpointsConfig"
        endpoints = as_object(networking.get("EndpointsConfig"), field)
        references: list[tuple[str, str]] = []
        for name, settings in endpoints.pairs if endpoints is not None else ():
            endpoint = as_object(settings, f"{field}.{name}")
            references.append((name, f"{field}.{name}"))
            if endpoint is not None:
                # dockerd prefers NetworkID over the key for user networks (getNetworkID).
                network_id = as_str(endpoint.get("NetworkID"), f"{field}.{name}.NetworkID")
                if network_id:
                    references.append((network_id, f"{field}.{name}.NetworkID"))
        for reference, where in references:  # an ID's refusal names the ID, before any name's
            judge_mode(reference, "network", where, allowance)
        for reference, where in references:
            judge_network_ref(reference, where, allowance)


def judge_container_update(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /containers/{id}/update}: its device fields."""
    judge_devices(document, "", allowance)
