"""Plugin pull, upgrade and set: the privileges a managed plugin is given.

A managed plugin is a container the daemon runs as root with what its
config declares: host network, host PID/IPC, host mounts, devices,
capabilities. The daemon grants those on C{POST /plugins/pull} and
C{/plugins/{name}/upgrade} when the body (the privileges the client
accepts, C{types.PluginPrivileges}) lists exactly what the plugin
declares, so a non-empty list is a request for privileges: it needs
C{privileged}; C{[]} or C{null} installs a plugin that declares none.
C{POST /plugins/{name}/set} takes C{["NAME[.FIELD]=VALUE", ...]}
(moby plugin/v2/settable.go: the field is after the last C{.} of NAME):
C{.value} sets an environment variable or the args; C{.source} a mount's
host path and C{.path} a device; without a field the daemon picks the one
field the setting declares, which may be a mount source or a device path.
So anything but an explicit C{NAME.value=} needs C{privileged}.
C{/plugins/create} (a tar with its own config) is judged in
L{dockguard.meaning}: its body is not read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockguard.guards.allowance import Allowance
from dockguard.guards.gojson import as_list, as_object, as_str, as_str_list, decode
from dockguard.guards.verdict import ALLOWED, Refusal, Verdict, show, to_allow

__all__ = ["PLUGIN_KINDS", "judge_plugin"]


def _judge_plugin_privileges(document: Any, allowance: Allowance) -> None:
    """The privileges a pull or an upgrade accepts: any at all need C{privileged}."""
    items = as_list(document, "(body)")
    names = []
    for index, item in enumerate(items):
        obj = as_object(item, f"[{index}]")
        names.append(as_str(obj.get("Name"), f"[{index}].Name") if obj is not None else "")
    if items and not allowance.privileged:
        shown = ", ".join(show(name) for name in names[:5] if name) or "privileges"
        raise Refusal(
            "[0]",
            "privileged",
            f"the body accepts the plugin's privileges ({shown}): a plugin runs as root on the host with "
            f"them, as a privileged container would ({to_allow('privileged = true')})",
        )


def _judge_plugin_set(document: Any, allowance: Allowance) -> None:
    """A plugin's settings: anything but C{NAME.value=} needs C{privileged}."""
    for index, setting in enumerate(as_str_list(document, "(body)")):
        name = setting.split("=", 1)[0]
        dot = name.rfind(".")
        field = name[dot + 1 :] if dot > 0 else ""
        if field == "value" or allowance.privileged:
            continue
        what = (
            f"sets the field {show(field)}, which is a mount's host path (source) or a device (path)"
            if field
            else "names no field, so the daemon picks the one the plugin declares, which may be a mount's host "
            "path or a device; write NAME.value=... for environment variables and args"
        )
        raise Refusal(
            f"[{index}]",
            "privileged",
            f"[{index}] {show(setting)} {what}: that widens what a plugin running as root reaches "
            f"({to_allow('privileged = true')})",
        )


_PLUGIN_JUDGES: dict[str, Callable[[Any, Allowance], None]] = {
    "plugin.pull": _judge_plugin_privileges,
    "plugin.upgrade": _judge_plugin_privileges,
    "plugin.set": _judge_plugin_set,
}

#: The plugin kinds of L{INSPECTED_KINDS<dockguard.guards.INSPECTED_KINDS>}: their bodies are JSON arrays.
PLUGIN_KINDS = frozenset(_PLUGIN_JUDGES)


def judge_plugin(kind: str, body: bytes, allowance: Allowance) -> Verdict:
    """Plugin bodies are JSON arrays; the daemon rejects an empty one."""
    try:
        if not body.strip():
            raise Refusal("", "", f"the {kind} body is empty; the daemon needs a JSON array: send one ([] for none)")
        _PLUGIN_JUDGES[kind](decode(body), allowance)
    except Refusal as refused:
        return refused.verdict()
    return ALLOWED
