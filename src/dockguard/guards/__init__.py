"""Escalation guards: judge the request bodies the daemon turns into privileges.

A section switch cannot tell ``docker run alpine echo hi`` from ``docker run
--privileged -v /:/host alpine chroot /host``: both are ``POST
/containers/create``. The guards read the JSON body of the calls that create
or widen privileges (:data:`INSPECTED_KINDS`, found by
:func:`inspection_kind`) as the daemon decodes it, and refuse what the
caller's :class:`Allowance` (the ``[groups.NAME.guards]`` table, see
:func:`allowance_from_mapping`) does not allow. :func:`judge` returns a
:class:`Verdict` whose reason names the field and the guard that would open
it.

What is judged, how a body is read, the decisions taken where the daemon
leaves a choice, and what the guards do not cover: docs/guards.md. The
modules:

* :mod:`~dockguard.guards.kinds`: the inspected kinds and :func:`judge`;
* :mod:`~dockguard.guards.verdict`: :class:`Verdict`, and the ``Refusal`` a guard raises;
* :mod:`~dockguard.guards.gojson`: a body read as Go's ``encoding/json`` reads it;
* :mod:`~dockguard.guards.allowance`: :class:`Allowance`, its keys, :data:`CLOSED` and :data:`OPEN`;
* :mod:`~dockguard.guards.configuration`: an :class:`Allowance` from a configuration table;
* :mod:`~dockguard.guards.mounts`: host paths, binds, mounts, volume drivers and options;
* :mod:`~dockguard.guards.confinement`: capabilities, namespaces, security options, devices, sysctls;
* :mod:`~dockguard.guards.networkrefs`: the networks a request names;
* one module per kind or family: :mod:`~dockguard.guards.containers`,
  :mod:`~dockguard.guards.execs`, :mod:`~dockguard.guards.services`,
  :mod:`~dockguard.guards.volumes`, :mod:`~dockguard.guards.networks`,
  :mod:`~dockguard.guards.plugins`, :mod:`~dockguard.guards.start`.

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
