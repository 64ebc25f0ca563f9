"""Reading an L{Allowance<dockguard.guards.allowance.Allowance>} from a C{[groups.NAME.guards]} table.

Every mistake is a L{ConfigError<dockguard.errors.ConfigError>} that names the key
(C{groups.ci.guards.bind_roots}) and, for a misspelt name, the closest
right one. Capability names are normalised as the daemon reads them; bind
roots must be written plainly; C{networks} and C{image_names} patterns are
refused when the daemon could read what they match in two ways (a network
ID prefix, an image reference it would normalise).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from dockguard.errors import ConfigError, did_you_mean
from dockguard.guards.allowance import ANY, CAPABILITIES, GUARD_KEYS, HOST_NAMESPACES, Allowance
from dockguard.guards.confinement import MAYBE_ID, normalise_capability
from dockguard.references import ReferenceRefused, pattern_prefix

__all__ = ["allowance_from_mapping"]


#: The keys that take true or false.
_BOOL_KEYS = frozenset(
    {
        "privileged", "devices", "bind_write", "docker_socket", "join_containers", "unconfined", "sysctls",
        "swarm_secrets", "exec_root", "exec_privileged", "buildkit", "remote_fetch", "cgroup_parent",
    }
)  # fmt: skip


def _strings(source: str, where: str, value: Any) -> Iterator[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(source, where, f'must be a list of strings, e.g. ["x"], not {value!r}')
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
            f"{root!r} is not a normalised path (no '//', '.', '..', NUL or trailing '/'); write it like /srv/app",
        )
    return root


def _check_image_pattern(source: str, where: str, pattern: str) -> str:
    try:
        pattern_prefix(pattern)
    except ReferenceRefused as refused:
        raise ConfigError(
            source, where, f'{refused.reason} (image_names takes repository names such as "ci/app", "ci/*" or "*")'
        ) from None
    return pattern


#: What a swarm network ID (or a prefix of one) can look like.
_MAYBE_NETWORK_ID = re.compile(r"[0-9a-z]*")


def _check_network_pattern(source: str, where: str, pattern: str) -> str:
    """
    A C{networks} pattern: C{"*"}, a name, or a prefix ending in C{*}. The
    daemon looks a network up by ID, then by name, then by ID prefix; local IDs
    are hexadecimal and swarm IDs are made of 0-9 and a-z, so a prefix must hold
    another character (C{ci-*}: every name it matches holds C{-}, and is no
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
    """An L{Allowance} from a C{[groups.NAME.guards]} table, or L{ConfigError}.

    C{key} is the table's dotted name (C{groups.ci.guards}); errors name
    C{f"{key}.{field}"}. Capability names are normalised (upper-case, a
    C{CAP_} prefix removed) and checked against L{CAPABILITIES}.
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
                f"unknown guard {name!r}{did_you_mean(str(name), GUARD_KEYS)} (the guards are: {', '.join(GUARD_KEYS)})",
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
                        f"unknown capability {item!r}{did_you_mean(capability, CAPABILITIES)} "
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
                        f"unknown namespace {item!r}{did_you_mean(item, HOST_NAMESPACES)} "
                        f"(the namespaces are: {', '.join(HOST_NAMESPACES)})",
                    )
                namespaces.add(item)
            values[name] = frozenset(namespaces)
        elif name == "bind_roots":
            values[name] = tuple(dict.fromkeys(_check_root(source, where, r) for r in _strings(source, where, value)))
        elif name == "networks":
            values[name] = tuple(
                dict.fromkeys(_check_network_pattern(source, where, p) for p in _strings(source, where, value))
            )
        elif name == "image_names":
            values[name] = tuple(
                dict.fromkeys(_check_image_pattern(source, where, p) for p in _strings(source, where, value))
            )
        else:  # runtimes, volume_drivers, network_drivers
            names = set()
            for item in _strings(source, where, value):
                if not item or item != item.strip():
                    raise ConfigError(
                        source, where, f'{item!r} is not a name; write names without spaces, or "*" for any'
                    )
                names.add(item)
            values[name] = frozenset(names)
    return Allowance(**values)
