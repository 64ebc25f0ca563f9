"""Volume create: its driver, and the options of the C{local} driver (C{mount(2)} as root).

A driver other than C{local} needs C{volume_drivers}; the options of a
C{local} volume are judged by L{judge_local_options<dockguard.guards.mounts.judge_local_options>}
(a bind is judged as a bind source, a device or kernel filesystem needs
C{devices}).
"""

from __future__ import annotations

from dockguard.guards.allowance import Allowance
from dockguard.guards.gojson import GoObject, as_str, as_str_map
from dockguard.guards.mounts import judge_local_options, judge_volume_driver

__all__ = ["judge_volume_create"]


def judge_volume_create(document: GoObject, allowance: Allowance) -> None:
    """The body of C{POST /volumes/create}."""
    driver = as_str(document.get("Driver"), "Driver")
    options = as_str_map(document.get("DriverOpts"), "DriverOpts")
    judge_volume_driver(driver, "Driver", allowance)
    if driver in ("", "local"):
        judge_local_options(options, "DriverOpts", allowance)
