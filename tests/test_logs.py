"""
Log output: escaping of request values and the JSON lines format.
"""

from __future__ import annotations

import io
import json

import pytest
from twisted.logger import Logger

from dockguard.logs import escape, json as json_observer, json_line


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("/containers/json", "/containers/json"),
        ("/a\nb", "/a\\nb"),
        ("/a\r\nFAKE LINE", "/a\\r\\nFAKE LINE"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("tab\there", "tab\\there"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("back\\slash", "back\\\\slash"),
        ("ünïcode", "ünïcode"),
    ],
)
def test_escape_keeps_a_value_on_one_plain_line(raw: str, shown: str) -> None:
    assert escape(raw) == shown
    assert escape(raw).isprintable()


def test_a_forged_line_cannot_be_told_apart_from_its_escape() -> None:
    # The backslash is escaped too, so "\\n" written literally and a real
    # newline never render the same.
    assert escape("a\\nb") != escape("a\nb")


def _event(**fields: object) -> dict:
    captured: list[dict] = []
    log = Logger(namespace="dockguard", observer=captured.append)
    log.info("{decision} {identity} {path}", **fields)
    return captured[0]


def test_a_decision_event_is_one_json_line_with_its_fields() -> None:
    event = _event(
        decision="deny",
        identity="watcher",
        peer="10.0.0.2:5000",
        listener="tls://0.0.0.0:2376",
        method="POST",
        path="/v1.47/containers/create",
        canonical="/containers/create",
        section="containers",
        rule="guard privileged",
        reason="HostConfig.Privileged is true",
        status=403,
        latency_ms=0.2,
        secret_body="never",
    )
    line = json_line(event)
    assert line.endswith("\n") and line.count("\n") == 1
    record = json.loads(line)
    assert record["level"] == "info"
    assert record["namespace"] == "dockguard"
    assert record["message"] == "deny watcher /v1.47/containers/create"
    assert record["status"] == 403 and record["latency_ms"] == 0.2
    assert record["rule"] == "guard privileged"
    assert "secret_body" not in record
    assert record["time"].endswith("+00:00")


def test_a_newline_that_reached_an_event_still_makes_one_json_line() -> None:
    line = json_line(_event(decision="allow", identity="x", path="/a\n2026 [dockguard#info] allow admin"))
    assert line.count("\n") == 1
    assert json.loads(line)["path"].startswith("/a\n")


def test_the_observer_for_twistd_writes_json_lines() -> None:
    stream = io.StringIO()
    observer = json_observer(stream)
    log = Logger(namespace="dockguard", observer=observer)
    log.warn("reload failed: {error}", error="bad key")
    [record] = [json.loads(l) for l in stream.getvalue().splitlines()]
    assert record["level"] == "warn" and record["message"] == "reload failed: bad key"
