"""
L{dockguard.decisionlog}: the JSON lines of the decision log, written by
the observer and read back with L{read_decisions} (files in C{tmp_path}).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import Logger

from dockguard.decisionlog import DecisionLog, read_decisions
from dockguard.logs import DECISION_FIELDS
from dockguard.metrics import NoMetrics
from dockguard.relay import decisions as decision_lines
from dockguard.relay.decisions import DecisionLine


def decision(**fields: Any) -> dict[str, Any]:
    """A decision event as the relay logs it (see L{DecisionLine})."""
    event: dict[str, Any] = {
        "log_namespace": "dockguard",
        "log_time": 1_700_000_000.123456,
        "log_format": "{line}",
        "line": "allow ops GET /v1.41/containers/json from 127.0.0.1: containers -> 200 in 1.5 ms",
        "answer": 200,
        "identity": "ops",
        "peer": "127.0.0.1",
        "listener": "tcp-main",
        "method": "GET",
        "path": "/v1.41/containers/json",
        "canonical": "/containers/json",
        "section": "containers",
        "decision": "allow",
        "rule": "containers",
        "reason": "",
        "status": 200,
        "latency_ms": 1.5,
    }
    event.update(fields)
    return event


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "decisions.jsonl"


@pytest.fixture
def log(path: Path) -> Iterator[DecisionLog]:
    observer = DecisionLog(path)
    yield observer
    observer.close()


def test_one_json_line_per_decision_with_time_and_the_decision_fields_only(path: Path, log: DecisionLog) -> None:
    log(decision(authorization="Bearer secret", body='{"Image":"x"}'))
    raw = path.read_text(encoding="utf-8")
    assert raw.endswith("\n") and raw.count("\n") == 1
    record = json.loads(raw)
    assert list(record) == ["time", *DECISION_FIELDS]
    assert record["time"] == 1_700_000_000.123
    assert record["status"] == 200 and isinstance(record["status"], int)
    assert record["latency_ms"] == 1.5
    for never in ("line", "answer", "log_format", "log_namespace", "authorization", "body"):
        assert never not in record
    assert "secret" not in raw and "Image" not in raw


def test_missing_fields_are_left_out_and_none_is_null(path: Path, log: DecisionLog) -> None:
    event = decision(identity=None, canonical=None, status=None)
    del event["latency_ms"], event["peer"]
    log(event)
    [record] = read_decisions(path)
    assert record["identity"] is None and record["canonical"] is None and record["status"] is None
    assert "latency_ms" not in record and "peer" not in record


def test_only_dockguard_decision_events_are_written(path: Path, log: DecisionLog) -> None:
    log({"log_namespace": "dockguard", "log_format": "listening on {x}", "x": "tcp"})  # not a decision
    log(decision(log_namespace="twisted.web"))  # someone else's "decision"
    log(decision(log_namespace=None))
    assert path.read_text() == ""
    log(decision())
    assert len(read_decisions(path)) == 1


def test_lines_reach_the_file_at_once_and_a_restart_appends(path: Path) -> None:
    first = DecisionLog(path)
    first(decision(identity="before"))
    assert [r["identity"] for r in read_decisions(path)] == ["before"]  # line-buffered, not closed yet
    first.close()
    second = DecisionLog(path)
    second(decision(identity="after"))
    second.close()
    assert [r["identity"] for r in read_decisions(path)] == ["before", "after"]


def test_without_a_log_time_the_time_is_now(path: Path, log: DecisionLog, monkeypatch: pytest.MonkeyPatch) -> None:
    event = decision()
    del event["log_time"]
    monkeypatch.setattr("dockguard.decisionlog.time.time", lambda: 1234.56789)
    log(event)
    monkeypatch.undo()
    assert read_decisions(path)[0]["time"] == 1234.568


HOSTILE = [
    '/v1.41/containers/json\n{"decision":"allow","identity":"root"}',
    'quote" and \\backslash',
    "\r\x1b[2J\x00\x7f",
    "line\u2028separator\u2029paragraph\x85next",
    "ünïcødé ☃ \U0001f600",
    "\ud800 lone surrogate",
]


@pytest.mark.parametrize(
    "value", HOSTILE, ids=["forged-line", "quotes", "controls", "separators", "unicode", "surrogate"]
)
def test_a_hostile_value_stays_inside_its_line_and_reads_back_unchanged(
    path: Path, log: DecisionLog, value: str
) -> None:
    log(decision(path=value, reason=value, identity=value))
    log(decision(identity="next"))
    raw = path.read_bytes()
    assert raw.isascii()  # no raw control, separator or terminal escape in the file
    assert raw.count(b"\n") == 2
    for line in raw.split(b"\n")[:2]:
        json.loads(line)
    first, second = read_decisions(path)
    assert (first["path"], first["reason"], first["identity"]) == (value, value, value)
    assert second["identity"] == "next"


def test_the_relays_decision_lines_reach_the_log_escaped(
    path: Path, log: DecisionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decision_lines, "_log", Logger(namespace="dockguard", observer=log))
    now = [100.0]
    line = DecisionLine(lambda: now[0], NoMetrics, "tcp-main")
    line.peer = "10.0.0.7"
    line.start()
    now[0] += 0.0025
    line.record(
        "ops",
        b"GET",
        b"/v1.41/containers/json\n\x1b[31m",
        "deny",
        "containers",
        "no\nway",
        "/containers/json",
        "containers",
        403,
    )
    [record] = read_decisions(path)
    assert record["path"] == "/v1.41/containers/json\\n\\x1b[31m"  # escaped by the relay, then JSON-quoted
    assert record["reason"] == "no\\nway"
    assert (record["identity"], record["peer"], record["listener"]) == ("ops", "10.0.0.7", "tcp-main")
    assert (record["decision"], record["status"], record["latency_ms"]) == ("deny", 403, 2.5)
    assert set(record) == {"time", *DECISION_FIELDS}


def test_read_decisions_skips_what_is_not_a_decision_line(path: Path) -> None:
    good = json.dumps({"time": 1.0, "decision": "allow", "identity": "ops"})
    path.write_text(
        "\n".join(
            [
                good,
                "",
                "not json at all",
                "[1, 2]",
                '"decision"',
                "42",
                "null",
                json.dumps({"time": 2.0, "identity": "no decision key"}),
                json.dumps({"time": 3.0, "decision": "deny", "identity": "ci"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert [r["identity"] for r in read_decisions(path)] == ["ops", "ci"]


def test_a_truncated_last_line_is_skipped(path: Path, log: DecisionLog) -> None:
    for name in ("a", "b", "c"):
        log(decision(identity=name))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 20])  # the writer died in the middle of "c"
    assert [r["identity"] for r in read_decisions(path)] == ["a", "b"]


def test_a_copytruncate_rotation_is_followed_without_a_hole(path: Path, log: DecisionLog) -> None:
    # no rotation of its own: logrotate's copytruncate works, as the file
    # is opened for appending (the next line goes at the new end, not after
    # a hole of NUL bytes)
    log(decision(identity="old"))
    rotated = path.with_suffix(".1")
    rotated.write_bytes(path.read_bytes())
    with open(path, "r+b") as f:
        f.truncate(0)
    log(decision(identity="new"))
    assert not path.read_bytes().startswith(b"\0")
    assert [r["identity"] for r in read_decisions(path)] == ["new"]
    assert [r["identity"] for r in read_decisions(rotated)] == ["old"]


def test_the_first_decision_after_a_torn_line_is_not_lost(path: Path) -> None:
    path.write_text(json.dumps({"time": 1.0, "decision": "allow", "identity": "a"}) + "\n" + '{"time":2.0,"ide')
    after = DecisionLog(path)
    after(decision(identity="after-restart"))
    after.close()
    assert [r["identity"] for r in read_decisions(path)] == ["a", "after-restart"]


def test_a_line_that_is_not_utf8_is_skipped(path: Path) -> None:
    good = json.dumps({"time": 1.0, "decision": "allow", "identity": "ops"}).encode()
    path.write_bytes(good + b"\n\xff\xfe garbage \x80\n" + good + b"\n")
    assert len(read_decisions(path)) == 2
