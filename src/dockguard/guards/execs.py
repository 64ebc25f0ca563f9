"""Exec create: C{Privileged} needs C{exec_privileged}, and exec as root C{exec_root}.

With C{exec_root = false} the exec's C{User} must be C{UID:GID}, both from 1 to
2147483647 (leading zeros allowed). No user (the exec inherits the
container's, which dockguard cannot see), a name (the image's
C{/etc/passwd} may map any name to 0), a UID alone (runc runs it in group 0
when the image has no passwd entry for it), C{0} in any spelling and a root
group are refused.
"""

from __future__ import annotations

import re

from dockguard.guards.allowance import Allowance
from dockguard.guards.gojson import GoObject, as_bool, as_str
from dockguard.guards.verdict import Refusal, show, to_allow

__all__ = ["judge_exec_create"]


_UID = re.compile(r"[0-9]{1,20}")
_MAX_ID = 2**31 - 1


def _judge_exec_user(user: str, present: bool, allowance: Allowance) -> None:
    if allowance.exec_root:
        return
    fix = "pass a numeric non-root user, e.g. --user 1000:1000 (or set exec_root = true in the group's guards)"
    if not present or user == "":
        raise Refusal(
            "User",
            "exec_root",
            f"User is not set: the exec would run as the container's user, which dockguard cannot see; {fix}",
        )
    parts = user.split(":")
    if len(parts) == 1 and _UID.fullmatch(user):
        raise Refusal(
            "User",
            "exec_root",
            f"User is {show(user)} without a group: the exec would run in group 0 (root) when the "
            f"image has no passwd entry for it; {fix}",
        )
    if len(parts) > 2 or not all(_UID.fullmatch(part) for part in parts):
        raise Refusal(
            "User",
            "exec_root",
            f"User is {show(user)}: only numeric UID or UID:GID can be checked (a name may map to root "
            f"in the image's /etc/passwd); {fix}",
        )
    if any(not 1 <= int(part) <= _MAX_ID for part in parts):
        raise Refusal(
            "User",
            "exec_root",
            f"User is {show(user)}, which is root (or a root group, or out of range): exec as root is not allowed; {fix}",
        )


def judge_exec_create(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /containers/{id}/exec}."""
    if as_bool(document.get("Privileged"), "Privileged") and not allowance.exec_privileged:
        raise Refusal(
            "Privileged",
            "exec_privileged",
            f"Privileged is true: privileged exec is not allowed ({to_allow('exec_privileged = true')})",
        )
    raw_user = document.get("User")
    user = as_str(raw_user, "User")
    _judge_exec_user(user, raw_user is not None, allowance)
