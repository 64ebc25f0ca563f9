"""Owner tenancy: who created a container, volume, network or exec instance.

Under groups, dockguard stamps every container, volume and network a caller
creates with the label L{OWNER_LABEL<dockguard.scope.OWNER_LABEL>} naming its
identity (L{stamp}), so that an C{owner} scope can hold it later.  A
body that sets that label itself is refused: nobody can create a resource
in someone else's name, nor disown one.

Exec instances carry no labels: L{ExecOwners} remembers which
identity created each one through dockguard, and only that identity may
start, resize or inspect it (exec IDs are global: one caller could start an
exec another one prepared, with that one's user and privileges).

A create under a scope must create a resource in that scope
(L{created}), and may not name other containers in its body
(L{other_containers}): a scope is not left through C{VolumesFrom},
C{Links} or a C{container:} namespace.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from dockguard.guards.gojson import GoObject, as_list, as_object, as_str, as_str_list, as_str_map, decode, go_fold
from dockguard.guards.verdict import Refusal
from dockguard.queries import parse_query
from dockguard.scope import OWNER_LABEL, Resource

__all__ = ["ExecOwners", "created", "networks_joined", "other_containers", "stamp", "volumes_named"]

#: The namespace fields of a HostConfig that may name a container.
_JOINS = ("NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Cgroup")


def _encode(value: Any) -> str:
    """C{value} (as L{decode<dockguard.guards.gojson.decode>} read it) as JSON text with the same meaning."""
    if isinstance(value, GoObject):
        return "{" + ",".join(json.dumps(key) + ":" + _encode(item) for key, item in value.pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        raise Refusal("", "", "the body has a number too large to read; send valid JSON numbers")
    return json.dumps(value)


def _body(body: bytes) -> GoObject:
    document = decode(body) if body.strip() else GoObject([])
    obj = as_object(document, "the body")
    return obj if obj is not None else GoObject([])


def stamp(body: bytes, identity: str) -> bytes:
    """The create C{body} with its C{Labels} naming C{identity} as the owner.

    Raises L{Refusal<dockguard.guards.verdict.Refusal>} for a body that sets
    the owner label itself, or that cannot be read as the daemon reads it.
    """
    obj = _body(body)
    labels = as_str_map(obj.get("Labels"), "Labels")
    if labels.get(OWNER_LABEL) is not None or any(key == OWNER_LABEL for key, _ in labels.pairs):
        raise Refusal(
            f"Labels.{OWNER_LABEL}",
            "",
            f"the body sets the label {OWNER_LABEL}, which dockguard sets itself to the identity "
            "that creates the resource: remove it",
        )
    owned = GoObject([*labels.pairs, (OWNER_LABEL, identity)])
    pairs: list[tuple[str, Any]] = []
    replaced = False  # at most one key folds to Labels (decode refuses two)
    for key, value in obj.pairs:
        if go_fold(key) == "LABELS":
            pairs.append((key, owned))
            replaced = True
        else:
            pairs.append((key, value))
    if not replaced:
        pairs.append(("Labels", owned))
    return _encode(GoObject(pairs)).encode("utf-8")


def created(kind: str, body: bytes, query: str) -> Resource:
    """What a create of a C{kind} resource would make: its name and labels (no ID yet)."""
    obj = _body(body)
    if kind == "container":
        name = parse_query(query).get("name").lstrip("/")
    else:
        name = as_str(obj.get("Name"), "Name")
    labels = as_str_map(obj.get("Labels"), "Labels")
    # Go stores a null label value as "" (the zero value of a map's string element).
    return Resource(kind, "", name, {key: as_str(value, f"Labels.{key}") for key, value in labels.pairs})


def _host_configs(obj: GoObject) -> Iterator[tuple[str, GoObject]]:
    """The HostConfig of a create body, and its top level, which dockerd <= 24 reads as one too."""
    yield "", obj
    host = as_object(obj.get("HostConfig"), "HostConfig")
    if host is not None:
        yield "HostConfig.", host


def _endpoints(obj: GoObject) -> Iterator[tuple[str, str, GoObject | None]]:
    """(network, field, settings) of each network a create body's NetworkingConfig joins."""
    networking = as_object(obj.get("NetworkingConfig"), "NetworkingConfig")
    endpoints = as_object(networking.get("EndpointsConfig"), "NetworkingConfig.EndpointsConfig") if networking else None
    for network, settings in endpoints.pairs if endpoints is not None else ():
        field = f"NetworkingConfig.EndpointsConfig.{network}"
        yield network, field, as_object(settings, field)


def other_containers(body: bytes) -> list[str]:
    """The fields of a container create body that name another container."""
    obj = _body(body)
    found: list[str] = []
    for prefix, config in _host_configs(obj):
        if as_str_list(config.get("VolumesFrom"), prefix + "VolumesFrom"):
            found.append(prefix + "VolumesFrom")
        if as_str_list(config.get("Links"), prefix + "Links"):
            found.append(prefix + "Links")
        for name in _JOINS:
            if as_str(config.get(name), prefix + name).startswith("container:"):
                found.append(prefix + name)
    for _network, field, endpoint in _endpoints(obj):
        if endpoint is not None and as_str_list(endpoint.get("Links"), f"{field}.Links"):
            found.append(f"{field}.Links")
    return found


def volumes_named(body: bytes) -> list[tuple[str, str]]:
    """(field, name) of every named volume a container create body mounts (C{-v data:/x}, C{--mount})."""
    obj = _body(body)
    found: list[tuple[str, str]] = []
    for prefix, config in _host_configs(obj):
        field = prefix + "Binds"
        for index, spec in enumerate(as_str_list(config.get("Binds"), field)):
            source, colon, _ = spec.partition(":")
            if colon and source and not source.startswith("/"):
                found.append((f"{field}[{index}]", source))
        field = prefix + "Mounts"
        for index, value in enumerate(as_list(config.get("Mounts"), field)):
            mount = as_object(value, f"{field}[{index}]")
            if mount is None or as_str(mount.get("Type"), f"{field}[{index}].Type") != "volume":
                continue
            source = as_str(mount.get("Source"), f"{field}[{index}].Source")
            if source and not source.startswith("/"):
                found.append((f"{field}[{index}].Source", source))
    return found


#: Networks that belong to nobody (and the daemon's own modes).
_NOT_OWNED = frozenset({"", "none", "bridge", "default", "host"})


def networks_joined(body: bytes) -> list[tuple[str, str]]:
    """(field, name) of every user-defined network a container create body joins."""
    obj = _body(body)
    found: list[tuple[str, str]] = []
    for prefix, config in _host_configs(obj):
        mode = as_str(config.get("NetworkMode"), prefix + "NetworkMode")
        if mode not in _NOT_OWNED and not mode.startswith("container:"):
            found.append((prefix + "NetworkMode", mode))
    for name, field, endpoint in _endpoints(obj):
        network_id = as_str(endpoint.get("NetworkID"), f"{field}.NetworkID") if endpoint is not None else ""
        if network_id:
            found.append((f"{field}.NetworkID", network_id))
        if name not in _NOT_OWNED:
            found.append((field, name))
    return found


class ExecOwners:
    """
    The identity that created each exec instance through dockguard.  At most
    C{size} are remembered, the oldest forgotten first (the daemon keeps an
    exec only while its container lives; a forgotten one can no longer be
    started through dockguard, which fails closed).
    """

    def __init__(self, size: int = 65536) -> None:
        self.size = size
        self._owners: dict[str, str] = {}

    def record(self, exec_id: str, identity: str) -> None:
        owners = self._owners
        owners.pop(exec_id, None)
        owners[exec_id] = identity
        if len(owners) > self.size:
            del owners[next(iter(owners))]

    def owner(self, exec_id: str) -> str | None:
        return self._owners.get(exec_id)

    def __len__(self) -> int:
        return len(self._owners)
