"""Escalation guards: judge the request bodies the daemon turns into privileges.

A section switch cannot tell C{docker run alpine echo hi} from C{docker run
--privileged -v /:/host alpine chroot /host}: both are C{POST
/containers/create}. The guards read the JSON body of the calls that create
or widen privileges (L{INSPECTED_KINDS}, found by
L{inspection_kind}) as the daemon decodes it, and refuse what the
caller's L{Allowance} (the C{[groups.NAME.guards]} table, see
L{allowance_from_mapping}) does not allow. L{judge} returns a
L{Verdict} whose reason names the field and the guard that would open
it.

What is judged, how a body is read, the decisions taken where the daemon
leaves a choice, and what the guards do not cover: docs/guards.md. The
modules:

* L{kinds<dockguard.guards.kinds>}: the inspected kinds and L{judge};
* L{verdict<dockguard.guards.verdict>}: L{Verdict}, and the C{Refusal} a guard raises;
* L{gojson<dockguard.guards.gojson>}: a body read as Go's C{encoding/json} reads it;
* L{allowance<dockguard.guards.allowance>}: L{Allowance}, its keys, L{CLOSED} and L{OPEN};
* L{configuration<dockguard.guards.configuration>}: an L{Allowance} from a configuration table;
* L{mounts<dockguard.guards.mounts>}: host paths, binds, mounts, volume drivers and options;
* L{confinement<dockguard.guards.confinement>}: capabilities, namespaces, security options, devices, sysctls;
* L{networkrefs<dockguard.guards.networkrefs>}: the networks a request names;
* one module per kind or family: L{containers<dockguard.guards.containers>},
  L{execs<dockguard.guards.execs>}, L{services<dockguard.guards.services>},
  L{volumes<dockguard.guards.volumes>}, L{networks<dockguard.guards.networks>},
  L{plugins<dockguard.guards.plugins>}, L{start<dockguard.guards.start>}.

This package has no I/O and no Twisted import.
"""

from __future__ import annotations

from dockguard.guards.allowance import CAPABILITIES, CLOSED, GUARD_KEYS, HOST_NAMESPACES, OPEN, Allowance
from dockguard.guards.configuration import allowance_from_mapping
from dockguard.guards.confinement import DEFAULT_CAPABILITIES
from dockguard.guards.kinds import INSPECTED_KINDS, inspection_kind, judge, judge_volume_in_use
from dockguard.guards.mounts import HostPathUnverifiable
from dockguard.guards.networkrefs import (
    PREDEFINED_NETWORKS,
    judge_namespace_mode,
    judge_network_reference,
    network_allowed,
)
from dockguard.guards.verdict import ALLOWED, Verdict, refusal

__all__ = [
    "ALLOWED",
    "CAPABILITIES",
    "CLOSED",
    "DEFAULT_CAPABILITIES",
    "GUARD_KEYS",
    "HOST_NAMESPACES",
    "INSPECTED_KINDS",
    "OPEN",
    "PREDEFINED_NETWORKS",
    "Allowance",
    "HostPathUnverifiable",
    "Verdict",
    "allowance_from_mapping",
    "inspection_kind",
    "judge",
    "judge_volume_in_use",
    "judge_namespace_mode",
    "judge_network_reference",
    "network_allowed",
    "refusal",
]
