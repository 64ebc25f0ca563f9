"""Container start: any body but an empty one is refused, whatever the allowance (see L{judge_start})."""

from __future__ import annotations

from dockguard.guards.verdict import ALLOWED, Verdict

__all__ = ["judge_start"]


def judge_start(body: bytes) -> Verdict:
    """
    Starting a container takes no body.  Daemons up to 24 still apply a
    HostConfig sent here for API versions below 1.24 (C{POST
    /v1.23/containers/ID/start} with C{{"Privileged": true}}), which would
    skip every check on create: any body but an empty one is refused.
    """
    if body.strip() in (b"", b"{}", b"null"):
        return ALLOWED
    return Verdict(
        allowed=False,
        field="(body)",
        guard="",
        reason=(
            "starting a container takes no body; a body here is a HostConfig that old API "
            "versions apply at start, bypassing the checks on create, so it is refused"
        ),
    )
