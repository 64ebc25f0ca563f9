"""
The decision log: one JSON line per decision, for `dockguard suggest` and
for anyone who wants to audit what each identity did.  It is a
C{twisted.logger} observer of dockguard's own decision events; it never
writes a request body or a header, only the fields of
L{dockguard.logs.DECISION_FIELDS}.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

from twisted.logger import ILogObserver
from zope.interface import implementer

from dockguard.logs import DECISION_FIELDS


@implementer(ILogObserver)
class DecisionLog:
    """Appends decision events to a file as JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = open(path, "a", buffering=1, encoding="utf-8")
        if _torn(path):
            # A line cut short (dockguard died writing it) is ended, so the
            # next decision starts a line of its own and is not lost.
            self._file.write("\n")

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_namespace") != "dockguard" or "decision" not in event:
            return
        record = {"time": round(event.get("log_time", time.time()), 3)}
        record.update({key: event[key] for key in DECISION_FIELDS if key in event})
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()


def _torn(path: Path) -> bool:
    """Whether the file at C{path} ends inside a line."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return False
        f.seek(-1, 2)
        return f.read(1) != b"\n"


def read_decisions(path: Path) -> list[dict[str, Any]]:
    """Every decision line of a log file; lines that are not JSON (or not UTF-8) are skipped."""
    records = []
    with open(path, "rb") as lines:
        for line in lines:
            try:
                record = json.loads(line.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError is a ValueError
                continue
            if isinstance(record, dict) and "decision" in record:
                records.append(record)
    return records
