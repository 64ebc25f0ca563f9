"""
Log output.  dockguard logs structured C{twisted.logger} events; twistd
prints them as human-readable lines by default, and as JSON lines with::

    twistd -n --logger dockguard.logs.json dockguard ...

Values that come from a request (method, path, reasons quoting a path, a
parser's error) are passed through L{escape} before they reach an event, so
a caller cannot start a new log line or hide one behind terminal escapes,
whatever the output format.
"""

from __future__ import annotations

import json as _json
import sys
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import FileLogObserver, LogEvent, formatEvent, formatEventAsClassicLogText, formatTime

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code < 0xA0 or ch in "\u2028\u2029\u0085"


def escape(value: str) -> str:
    """
    C{value} with every control character (C0, DEL, C1, Unicode line and
    paragraph separators) and backslash written as a backslash escape, so it
    stays inside one log line and cannot carry terminal escape sequences.
    """
    if value.isprintable() and "\\" not in value:
        return value
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _is_control(ch):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


#: The fields of a decision event that go into a JSON line as themselves
#: (a JSON log line, and a line of the decision log, L{dockguard.decisionlog}).
DECISION_FIELDS = (
    "identity",
    "peer",
    "listener",
    "method",
    "path",
    "canonical",
    "section",
    "decision",
    "rule",
    "reason",
    "status",
    "latency_ms",
)


def json_line(event: dict[str, Any]) -> str:
    """One event as one JSON line: time, level, namespace, text, and fields."""
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(event.get("log_time", 0), UTC).isoformat(timespec="milliseconds"),
        "level": level.name if level is not None else "info",
        "namespace": event.get("log_namespace", "-"),
        "message": formatEvent(event),
    }
    failure = event.get("log_failure")
    if failure is not None:
        record["error"] = failure.getErrorMessage()
    if "decision" in event:
        for key in DECISION_FIELDS:
            if key in event:
                record[key] = event[key]
    return _json.dumps(record, separators=(",", ":"), default=str) + "\n"


def json(stream: IO[str] | None = None) -> FileLogObserver:
    """
    A log observer writing JSON lines, for C{twistd --logger
    dockguard.logs.json} (to standard output, or to C{stream}).
    """
    return FileLogObserver(stream if stream is not None else sys.stdout, json_line)


class ClassicText:
    """
    Twisted's classic text line (C{formatEventAsClassicLogText}: C{"{time}
    [{namespace}#{level}] {text}"}), written the same but cheaper, for the
    one line per decision: the time is formatted once per second, and an
    event that carries its text whole (C{log_format} C{"{line}"}, as
    decisions do) is not formatted again.
    """

    def __init__(self) -> None:
        self._second: int | None = None
        self._stamp = "-"

    def time(self, when: float | None) -> str:
        if when is None:
            return "-"
        second = int(when)
        if second != self._second:
            self._second = second
            self._stamp = formatTime(second)
        return self._stamp

    def __call__(self, event: LogEvent) -> str | None:
        line = event.get("line")
        if type(line) is not str or event.get("log_format") != "{line}" or "log_failure" in event:
            return formatEventAsClassicLogText(event, formatTime=self.time)
        system = event.get("log_system")
        if system is None:
            level = event.get("log_level")
            system = f"{event.get('log_namespace', '-')}#{level.name if level is not None else '-'}"
        return f"{self.time(event.get('log_time'))} [{system}] {line}\n".replace("\n", "\n\t", line.count("\n"))


def text(stream: IO[str] | None = None) -> FileLogObserver:
    """
    Classic text lines (see L{ClassicText}), for C{twistd --logger
    dockguard.logs.text}; C{twistd dockguard} uses it by default.
    """
    return FileLogObserver(stream if stream is not None else sys.stdout, ClassicText())
