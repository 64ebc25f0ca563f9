"""Network references: the networks a request creates, joins or leaves, by name.

C{none}, C{bridge} and C{default} (L{PREDEFINED_NETWORKS}) are always
allowed; any other name needs a C{networks} pattern (L{network_allowed}).
A reference is judged as a namespace mode first (C{host}, C{container:X},
and a hexadecimal word, which the daemon may read as a network ID: see
L{judge_mode<dockguard.guards.confinement.judge_mode>}). L{judge_namespace_mode}
and L{judge_network_reference} judge references made outside a body (a
build's C{networkmode}, the C{{id}} of C{/networks/{id}/connect}).
"""

from __future__ import annotations

from dockguard.guards.allowance import ANY, Allowance
from dockguard.guards.confinement import judge_mode
from dockguard.guards.verdict import ALLOWED, Refusal, Verdict, show

__all__ = [
    "PREDEFINED_NETWORKS",
    "judge_namespace_mode",
    "judge_network_name",
    "judge_network_ref",
    "judge_network_reference",
    "network_allowed",
]


#: Networks every container may use, compared exactly as the daemon does
#: (C{NetworkMode} C{""} and C{default} are the daemon's default, the bridge).
PREDEFINED_NETWORKS: frozenset[str] = frozenset({"", "none", "bridge", "default"})


def network_allowed(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether the network C{name} matches one of C{patterns} (C{"ci-net"}, C{"ci-*"}, C{"*"})."""
    for pattern in patterns:
        if pattern == ANY or pattern == name or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return True
    return False


def judge_network_name(name: str, field: str, allowance: Allowance, what: str) -> None:
    """A network by name (C{what} it does there: C{"joins"}, C{"creates"}, ...): a C{networks} pattern."""
    if name in PREDEFINED_NETWORKS or network_allowed(name, allowance.networks):
        return
    if allowance.networks:
        rule = f"the group may use only the networks {', '.join(allowance.networks)} (networks)"
    else:
        rule = (
            "the group may use only none, bridge and default (add the name, or a prefix such as "
            '"ci-*", to networks in the group\'s guards to allow it)'
        )
    if what == "creates":
        why = "a name others' containers or compose may expect to be theirs, and join"
    else:
        why = "which may be another's: a container there reaches its services and, with an alias, takes over their DNS names"
    raise Refusal(field, "networks", f"{field} {what} the network {show(name)}, {why}; {rule}")


def judge_network_ref(value: str, field: str, allowance: Allowance, what: str = "joins") -> None:
    """A network a container or service joins (or leaves): by mode, then by name."""
    judge_mode(value, "network", field, allowance)
    # The daemon's own modes are exact: "host" and "container:X"; "HOST" is a network's name.
    if value == "host" or (value.startswith("container:") and value != "container:"):
        return
    judge_network_name(value, field, allowance, what)


def judge_namespace_mode(value: str, namespace: str, field: str, allowance: Allowance) -> Verdict:
    """A namespace mode outside a body (a build's C{networkmode}), judged as C{HostConfig.NetworkMode} is."""
    try:
        if namespace == "network":
            judge_network_ref(value, field, allowance)
        else:
            judge_mode(value, namespace, field, allowance)
    except Refusal as refused:
        return refused.verdict()
    return ALLOWED


def judge_network_reference(value: str, field: str, what: str, allowance: Allowance) -> Verdict:
    """A network named outside a body (the C{{id}} of C{/networks/{id}/connect}), judged as C{NetworkMode} is."""
    try:
        judge_network_ref(value, field, allowance, what)
    except Refusal as refused:
        return refused.verdict()
    return ALLOWED
