"""
Log output: escaping of request values and the JSON lines format.
"""

from __future__ import annotations

import io
import json

import pytest
from twisted.logger import Logger

from dockguard.logs import escape, json_line
from dockguard.logs import json as json_observer


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
    [record] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["level"] == "warn" and record["message"] == "reload failed: bad key"


# -- the classic text lines, cheaper -----------------------------------------------


def _classic_events() -> list[dict]:
    from twisted.logger import LogLevel

    now = 1764662400.25
    return [
        dict(
            log_format="{line}",
            line="allow bench GET /_ping from 1.2.3.4:5: PING=1 -> 200 in 0.3 ms",
            log_time=now,
            log_namespace="dockguard",
            log_level=LogLevel.info,
        ),
        dict(
            log_format="{line}",
            line="two\nlines",
            log_time=now + 0.5,
            log_namespace="dockguard",
            log_level=LogLevel.info,
        ),
        dict(
            log_format="refused {count} connection(s)",
            count=3,
            log_time=now + 1,
            log_namespace="dockguard",
            log_level=LogLevel.warn,
        ),
        dict(log_format="{line}", line="from a system", log_time=now, log_system="tcp#1"),
        dict(log_format="{line}", line=42, log_time=now, log_namespace="x", log_level=LogLevel.info),
        dict(log_format="no time {x}", x=1),
        dict(log_format="{line}", line="no namespace", log_time=now),
        dict(),
    ]


@pytest.mark.parametrize("event", _classic_events())
def test_classic_text_writes_what_twisted_writes(event: dict) -> None:
    from twisted.logger import formatEventAsClassicLogText

    from dockguard.logs import ClassicText

    assert ClassicText()(dict(event)) == formatEventAsClassicLogText(dict(event))


def test_classic_text_formats_the_time_again_each_second() -> None:
    from twisted.logger import formatEventAsClassicLogText

    from dockguard.logs import ClassicText

    text = ClassicText()
    for when in (100.1, 100.9, 101.0, 99.5, 101.7):
        event = dict(log_format="{line}", line="x", log_time=when, log_namespace="n")
        assert text(dict(event)) == formatEventAsClassicLogText(dict(event))


@pytest.mark.parametrize(
    ("args", "installed"),
    [
        (["-n"], True),
        (["-n", "--logfile=-"], True),
        (["-n", "--logger", "dockguard.logs.json"], False),
        (["-n", "--syslog"], False),
    ],
)
def test_twistd_dockguard_logs_with_classic_text_unless_told_otherwise(args: list[str], installed: bool) -> None:
    from twisted.logger import FileLogObserver
    from twisted.scripts.twistd import ServerOptions

    from dockguard.logs import ClassicText
    from dockguard.tap import text_observer

    options = ServerOptions()
    options.parseOptions([*args, "--pidfile=", "dockguard", "--upstream", "/nonexistent.sock"])
    observer = text_observer(options.subOptions.parent)
    if installed:
        assert isinstance(observer, FileLogObserver) and isinstance(observer.formatEvent, ClassicText)
    else:
        assert observer is None
