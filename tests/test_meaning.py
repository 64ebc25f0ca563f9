"""dockguard.meaning and dockguard.queries: what holds whatever policy allowed the route."""

from __future__ import annotations

import pytest

from dockguard.envpolicy import EnvPolicy
from dockguard.guards import CLOSED, Allowance
from dockguard.meaning import body_kind, check_request
from dockguard.paths import canonicalise
from dockguard.queries import QueryRefused, bool_value, parse_query
from dockguard.routes import lookup

JSON = [b"application/json"]
CI_NETS = Allowance(networks=("ci-*",))
FORM = [b"application/x-www-form-urlencoded"]


def check(method: str, target: str, types=(), has_body=False, allowance=None):
    path = canonicalise(target.encode())
    return check_request(method, path, list(types), has_body, allowance, lookup(method, path))


CASES = [
    # (method, target, content types, has body, allowance, allowed, words in the reason)
    ("POST", "/v1.41/containers/x/start", (), False, None, True, ""),
    ("POST", "/v1.41/containers/x/start?detachKeys=ctrl-a", (), False, None, True, ""),
    ("POST", "/v1.41/containers/x/start?checkpoint=c1", (), False, None, False, "checkpoint"),
    ("POST", "/v1.41/containers/x/start?checkpoint-dir=/etc", (), False, None, False, "on the host"),
    ("POST", "/v1.41/containers/x/start?checkpoint-dir=%2Fetc", (), False, CLOSED, False, "privileged"),
    ("POST", "/v1.41/containers/x/start?checkpoint=c1", (), False, Allowance(privileged=True), True, ""),
    ("POST", "/v1.41/containers/x/start?checkpoint=", (), False, None, True, ""),
    ("POST", "/v1.41/containers/web/alias/start?checkpoint=c1", (), False, None, False, "checkpoint"),
    ("GET", "/v1.41/containers/json?all=1;x=2", (), False, None, False, "';'"),
    ("GET", "/v1.41/containers/json?all=%zz", (), False, None, False, "percent-escape"),
    ("POST", "/v1.41/containers/x/attach?stdout=1", FORM, True, None, False, "x-www-form-urlencoded"),
    (
        "POST",
        "/v1.41/containers/x/attach?stdout=1",
        [b"Application/X-WWW-Form-Urlencoded; charset=utf-8"],
        True,
        CLOSED,
        False,
        "x-www-form-urlencoded",
    ),
    ("POST", "/v1.41/containers/x/attach?stdout=1", FORM, False, None, True, ""),
    ("POST", "/v1.41/build", [b"multipart/form-data; boundary=x"], True, None, False, "multipart/form-data"),
    ("POST", "/v1.41/containers/x/start", [b"Multipart/Mixed"], True, None, False, "multipart/mixed"),
    ("POST", "/v1.41/containers/create", JSON, True, CLOSED, True, ""),
    ("POST", "/v1.41/containers/create", JSON + FORM, True, CLOSED, False, "several Content-Type"),
    # the network a container joins or leaves is in the path
    (
        "POST",
        "/v1.41/networks/internal/connect",
        JSON,
        True,
        CLOSED,
        False,
        "connects a container to the network internal",
    ),
    ("POST", "/v1.41/networks/internal/disconnect", JSON, True, CI_NETS, False, "disconnects a container from"),
    ("POST", "/v1.41/networks/ci-a/connect", JSON, True, CI_NETS, True, ""),
    ("POST", "/v1.41/networks/ci-a/disconnect", JSON, True, CI_NETS, True, ""),
    ("POST", "/v1.41/networks/ci-a/b/connect", JSON, True, CI_NETS, True, ""),
    ("POST", "/v1.41/networks/x/ci-a/connect", JSON, True, CI_NETS, False, "the network x/ci-a"),
    ("POST", "/v1.41/networks/bridge/connect", JSON, True, CLOSED, True, ""),
    ("POST", "/v1.41/networks/host/connect", JSON, True, CI_NETS, False, "host_namespaces"),
    ("POST", "/v1.41/networks/6692bede/connect", JSON, True, Allowance(networks=("*",)), False, "network ID"),
    ("POST", "/v1.41/networks/internal/connect", JSON, True, Allowance(networks=("*",)), True, ""),
    ("POST", "/v1.41/networks/internal/connect", JSON, True, None, True, ""),
    ("POST", "/v1.41/networks/ci-a", JSON, True, CLOSED, True, ""),
]


@pytest.mark.parametrize(("method", "target", "types", "has_body", "allowance", "allowed", "words"), CASES)
def test_check_request(method, target, types, has_body, allowance, allowed, words) -> None:
    verdict = check(method, target, types, has_body, allowance)
    assert verdict.allowed is allowed, verdict
    assert words in verdict.reason


@pytest.mark.parametrize(
    ("method", "target", "allowance", "kind"),
    [
        ("POST", "/v1.23/containers/x/start", None, "container.start"),
        ("POST", "/containers/web/alias/start", None, "container.start"),
        ("POST", "/v1.41/containers/x/start", CLOSED, "container.start"),
        ("POST", "/v1.41/containers/create", None, None),
        ("POST", "/v1.41/containers/create", CLOSED, "container.create"),
        ("POST", "/v1.41/containers/x/exec", None, None),
        ("POST", "/v1.41/containers/x/stop", None, None),
        ("GET", "/v1.41/containers/x/start", None, None),
        ("POST", "/v1.41/networks/create", CLOSED, "network.create"),
        ("POST", "/v1.41/networks/create", None, None),
        ("POST", "/v1.41/networks/x/connect", CLOSED, "network.connect"),
        ("POST", "/v1.41/networks/x/disconnect", CLOSED, None),
    ],
)
def test_body_kind(method, target, allowance, kind) -> None:
    assert body_kind(lookup(method, canonicalise(target.encode())), allowance) == kind


def test_queries_read_as_go_reads_them() -> None:
    query = parse_query("a=1&a=2&b=x+y&%6cogs=%31&empty&=v")
    assert query.get("a") == "1" and query.all("a") == ("1", "2")
    assert query.get("b") == "x y"
    assert query.true("logs")
    assert query.has("empty") and query.get("empty") == ""
    assert query.get("missing") == "" and not query.true("missing")
    assert query.get("A") == ""  # keys are case-sensitive


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "anything", " 1 ", "TRUE"])
def test_bool_value_true(value: str) -> None:
    assert bool_value(value)


@pytest.mark.parametrize("value", ["", "0", "no", "false", "none", "FALSE", " no "])
def test_bool_value_false(value: str) -> None:
    assert not bool_value(value)


@pytest.mark.parametrize("raw", ["a=1;b=2", "a=%", "a=%4", "a=%g1"])
def test_queries_with_two_readings_are_refused(raw: str) -> None:
    with pytest.raises(QueryRefused):
        parse_query(raw)


GATED = EnvPolicy.from_environ(
    {"CONTAINERS": "1", "SERVICES": "1", "TASKS": "1", "POST": "1", "ALLOW_LOGS": "0", "ALLOW_ARCHIVE": "0"}
)

GATE_CASES = [
    ("GET", "/v1.41/containers/x/logs?stdout=1", "ALLOW_LOGS=0"),
    ("GET", "/v1.41/containers/x/attach/ws?logs=1&stream=0", "ALLOW_LOGS=0"),
    ("GET", "/containers/x/attach/ws?logs=True", "ALLOW_LOGS=0"),
    ("GET", "/containers/x/attach/ws?%6Cogs=1", "ALLOW_LOGS=0"),
    ("GET", "/containers/x/attach/ws?logs=1;x", "ALLOW_LOGS=0"),
    ("POST", "/v1.41/containers/x/attach?stream=1&logs=1", "ALLOW_LOGS=0"),
    ("POST", "/v1.41/containers/web/alias/attach?logs=1", "ALLOW_LOGS=0"),
    ("GET", "/v1.41/services/s/logs?stdout=1", "ALLOW_LOGS=0"),
    ("GET", "/v1.41/tasks/t/logs?stdout=1", "ALLOW_LOGS=0"),
    ("POST", "/v1.19/containers/x/copy", "ALLOW_ARCHIVE=0"),
    ("PUT", "/v1.41/containers/x/archive?path=/", "ALLOW_ARCHIVE=0"),
    ("HEAD", "/v1.41/containers/x/archive?path=/", "ALLOW_ARCHIVE=0"),
]


@pytest.mark.parametrize(("method", "target", "rule"), GATE_CASES)
def test_closed_gates_close_every_route_that_yields_what_they_name(method, target, rule) -> None:
    path = canonicalise(target.encode())
    decision = GATED.decide("t", method, path, lookup(method, path))
    assert not decision.allowed and decision.rule == rule, decision


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/v1.41/containers/x/attach/ws?logs=0&stream=1"),
        ("GET", "/v1.41/containers/x/attach/ws?stream=1"),
        ("POST", "/v1.41/containers/x/attach?stream=1&stdout=1&logs=false"),
        ("GET", "/v1.41/services/s"),
    ],
)
def test_routes_that_do_not_yield_logs_stay_open(method, target) -> None:
    path = canonicalise(target.encode())
    assert GATED.decide("t", method, path, lookup(method, path)).allowed
