"""Swarm service create and update: the task template's container spec, plugin spec and networks.

C{ContainerSpec} mounts, C{CapabilityAdd} and C{Sysctls} are judged as for
containers; its C{Privileges} (SELinux, seccomp, AppArmor) need
C{unconfined}, its secrets and configs C{swarm_secrets}. A plugin service
(C{PluginSpec}, C{Runtime: "plugin"}) needs C{privileged}; generic
resources (GPUs) need C{devices}. Services cannot be privileged directly.
"""

from __future__ import annotations

import re
from typing import Any

from dockguard.guards.allowance import Allowance
from dockguard.guards.confinement import judge_capabilities, judge_sysctls, refuse_unconfined
from dockguard.guards.gojson import GoObject, as_bool, as_list, as_object, as_str, as_str_list
from dockguard.guards.mounts import judge_mount
from dockguard.guards.networkrefs import PREDEFINED_NETWORKS, judge_network_ref
from dockguard.guards.verdict import Refusal, show, to_allow

__all__ = ["judge_service"]


#: What a swarm network ID (or a prefix of one) can look like: the manager
#: finds a service's network by ID, then name, then ID *prefix*, and swarm IDs
#: are base 36, so "p" may be the swarm's host network.
_MAYBE_SWARM_ID = re.compile(r"[0-9A-Za-z]+")


def _judge_networks(value: Any, field: str, allowance: Allowance) -> None:
    """A service's network attachments (C{Networks}, C{TaskTemplate.Networks})."""
    for index, attachment in enumerate(as_list(value, field)):
        item = f"{field}[{index}]"
        obj = as_object(attachment, item)
        if obj is not None:
            target = as_str(obj.get("Target"), f"{item}.Target")
            judge_network_ref(target, f"{item}.Target", allowance)
            if (
                _MAYBE_SWARM_ID.fullmatch(target)
                and "network" not in allowance.host_namespaces
                and target not in PREDEFINED_NETWORKS
                and target not in allowance.networks
            ):
                raise Refusal(
                    f"{item}.Target",
                    "host_namespaces",
                    f"{item}.Target is {show(target)}, which the swarm may read as a prefix of a network ID "
                    "(the swarm's host network's included): name the network with a character other than "
                    'letters and digits (ci-net), list it exactly in networks, or add "network" to '
                    "host_namespaces in the group's guards",
                )


def _judge_privileges(privileges: GoObject, prefix: str, allowance: Allowance) -> None:
    """C{ContainerSpec.Privileges}: anything but the default confinement needs C{unconfined}."""
    if allowance.unconfined:
        return
    field = prefix + "SELinuxContext"
    selinux = as_object(privileges.get("SELinuxContext"), field)
    if selinux is not None:
        if as_bool(selinux.get("Disable"), f"{field}.Disable"):
            refuse_unconfined(f"{field}.Disable", "is true: turning SELinux labelling off is not allowed")
        for name in ("User", "Role", "Type", "Level"):
            if as_str(selinux.get(name), f"{field}.{name}"):
                refuse_unconfined(f"{field}.{name}", "is set: SELinux label options can lift SELinux separation")
    field = prefix + "Seccomp"
    seccomp = as_object(privileges.get("Seccomp"), field)
    if seccomp is not None:
        mode = as_str(seccomp.get("Mode"), f"{field}.Mode")
        if mode not in ("", "default"):
            refuse_unconfined(f"{field}.Mode", f"is {show(mode)}: seccomp other than the default is not allowed")
        if as_str(seccomp.get("Profile"), f"{field}.Profile"):
            refuse_unconfined(f"{field}.Profile", "is set: a custom seccomp profile can allow any system call")
    field = prefix + "AppArmor"
    apparmor = as_object(privileges.get("AppArmor"), field)
    if apparmor is not None:
        mode = as_str(apparmor.get("Mode"), f"{field}.Mode")
        if mode not in ("", "default"):
            refuse_unconfined(f"{field}.Mode", f"is {show(mode)}: AppArmor other than the default is not allowed")


def _judge_container_spec(spec: GoObject, prefix: str, allowance: Allowance) -> None:
    """C{TaskTemplate.ContainerSpec}."""
    field = prefix + "Mounts"
    for index, mount in enumerate(as_list(spec.get("Mounts"), field)):
        judge_mount(mount, f"{field}[{index}]", allowance)
    field = prefix + "Privileges"
    privileges = as_object(spec.get("Privileges"), field)
    if privileges is not None:
        _judge_privileges(privileges, field + ".", allowance)
    field = prefix + "CapabilityAdd"
    judge_capabilities(as_str_list(spec.get("CapabilityAdd"), field), field, allowance)
    judge_sysctls(spec.get("Sysctls"), prefix + "Sysctls", allowance)
    for name in ("Secrets", "Configs"):
        field = prefix + name
        if as_list(spec.get(name), field) and not allowance.swarm_secrets:
            raise Refusal(
                field,
                "swarm_secrets",
                f"{field} mounts Swarm {name.lower()} into the service, whose logs would then show them "
                f"(they are named by ID, so any could be chosen) ({to_allow('swarm_secrets = true')})",
            )


def judge_service(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /services/create} and C{/services/{id}/update}."""
    template = as_object(document.get("TaskTemplate"), "TaskTemplate")
    if template is not None:
        spec = as_object(template.get("ContainerSpec"), "TaskTemplate.ContainerSpec")
        if spec is not None:
            _judge_container_spec(spec, "TaskTemplate.ContainerSpec.", allowance)
        runtime = as_str(template.get("Runtime"), "TaskTemplate.Runtime")
        plugin = template.get("PluginSpec")
        if runtime.lower() not in ("", "container", "attachment", "plugin"):
            raise Refusal(
                "TaskTemplate.Runtime",
                "",
                f"TaskTemplate.Runtime is {show(runtime)}, which the daemon does not know; it would reject it",
            )
        if (plugin is not None or runtime.lower() == "plugin") and not allowance.privileged:
            field = "TaskTemplate.PluginSpec" if plugin is not None else "TaskTemplate.Runtime"
            raise Refusal(
                field,
                "privileged",
                f"{field} makes a plugin service, which installs a managed plugin with the privileges it "
                f"declares on every node ({to_allow('privileged = true')})",
            )
        _judge_networks(template.get("Networks"), "TaskTemplate.Networks", allowance)
        resources = as_object(template.get("Resources"), "TaskTemplate.Resources")
        if resources is not None:
            field = "TaskTemplate.Resources.Reservations"
            reservations = as_object(resources.get("Reservations"), field)
            if reservations is not None:
                field += ".GenericResources"
                if as_list(reservations.get("GenericResources"), field) and not allowance.devices:
                    raise Refusal(
                        field,
                        "devices",
                        f"{field} reserves generic resources (GPUs and the like): devices are not "
                        f"allowed ({to_allow('devices = true')})",
                    )
    _judge_networks(document.get("Networks"), "Networks", allowance)
