"""
One line per decision: who asked for what, which rule decided, what the
answer was and how long it took.

A refusal is logged at once with its status.  A request that is relayed is
logged when its answer starts (or never will), so its line carries the
daemon's status and the latency.  The line is built once; observers that
want text format only C{"{line}"}, those that want fields (the decision
log for C{dockguard suggest}, JSON) read them from the event.  Every value
that comes from the request is escaped (L{dockguard.logs.escape}).
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from dockguard.logs import escape
from dockguard.metrics import Metrics

__all__ = ["DecisionLine"]

_log = Logger(namespace="dockguard")


class DecisionLine:
    """The decision lines of one client connection."""

    def __init__(self, clock: Callable[[], float], metrics: Callable[[], Metrics], listener: str) -> None:
        self._clock = clock
        self._metrics = metrics
        self.listener = listener
        self.peer = "?"
        self._started = 0.0
        self._pending: dict[str, object] | None = None

    def start(self) -> None:
        """A request begins: its latency counts from now."""
        self._started = self._clock()

    def record(
        self,
        identity: str | None,
        method: bytes,
        target: bytes,
        word: str,
        rule: str,
        reason: str,
        canonical: str | None,
        section: str,
        status: int | None,
    ) -> None:
        """
        One decision: logged now with C{status}, or, when C{status} is
        L{None}, once L{answered} says how the daemon answered.
        """
        fields: dict[str, object] = {
            "canonical": escape(canonical) if canonical is not None else None,
            "decision": word,
            "identity": identity,
            "method": escape(method.decode("ascii", "replace")),
            "path": escape(target.decode("ascii", "replace")),
            "peer": self.peer,
            "listener": self.listener,
            "section": section,
            "rule": escape(rule),
            "reason": escape(reason),
        }
        if status is None:
            self._pending = fields
        else:
            self._emit(fields, status)

    def answered(self, status: int | None) -> None:
        """The relayed request's answer started (C{None}: it never will)."""
        fields, self._pending = self._pending, None
        if fields is not None:
            self._emit(fields, status)

    def _emit(self, fields: dict[str, object], status: int | None) -> None:
        seconds = max(0.0, self._clock() - self._started)
        latency = round(seconds * 1000, 3)
        answer = status if status is not None else "no answer"
        line = (
            f"{fields['decision']} {fields['identity']} {fields['method']} {fields['path']} from "
            f"{fields['peer']}: {fields['rule']} -> {answer} in {latency} ms"
        )
        _log.info("{line}", line=line, status=status, answer=answer, latency_ms=latency, **fields)
        self._metrics().decided(str(fields["identity"]), str(fields["section"]), str(fields["decision"]), seconds)
