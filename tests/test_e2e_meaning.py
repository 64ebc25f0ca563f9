"""
End to end, security round 2: what a request *means* to the daemon, whatever
policy allowed its route (``dockguard.meaning``), and linuxserver's gates on
every route that hands out what they name.

Each attack is shown by its effect on the real daemon: the same bytes sent to
the daemon's own socket do what dockguard refuses (so each test would fail on
a relay that let them through).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from harness.dockerd import api_request
from harness.rawhttp import inspect, send, start_guarded

pytestmark = pytest.mark.e2e

SECRET = "the-meaning-secret-log-line"


@pytest.fixture(scope="module")
def starter(tmp_path_factory, dockerd):
    """The Homepage/Dozzle recipe of docs/permissions.md: containers readable, ALLOW_START=1, POST=0."""
    g = start_guarded(tmp_path_factory, dockerd, "starter", {"CONTAINERS": "1", "ALLOW_START": "1", "POST": "0"})
    yield g
    g.assert_clean_log()
    g.guard.stop()


@pytest.fixture(scope="module")
def gated_writer(tmp_path_factory, dockerd):
    """Containers and services writable (POST=1), with the logs and archive gates closed."""
    g = start_guarded(
        tmp_path_factory,
        dockerd,
        "gated-writer",
        {"CONTAINERS": "1", "SERVICES": "1", "TASKS": "1", "POST": "1", "ALLOW_LOGS": "0", "ALLOW_ARCHIVE": "0"},
    )
    yield g
    g.assert_clean_log()
    g.guard.stop()


def _create(dockerd, cmd: list[str]) -> str:
    name = "dg-meaning-" + uuid.uuid4().hex[:8]
    body = {"Image": "busybox:local", "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}}
    status, out = api_request(
        dockerd.socket_path,
        "POST",
        f"/containers/create?name={name}",
        json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, out
    return name


@pytest.fixture
def idle(dockerd):
    name = _create(dockerd, ["sleep", "600"])
    yield name
    api_request(dockerd.socket_path, "DELETE", f"/containers/{name}?force=1")


@pytest.fixture(scope="module")
def talker(dockerd):
    """A running container that printed a secret to its log."""
    name = _create(dockerd, ["sh", "-c", f"echo {SECRET}; exec sleep 600"])
    status, out = api_request(dockerd.socket_path, "POST", f"/containers/{name}/start")
    assert status == 204, out
    deadline = time.monotonic() + 10
    while SECRET.encode() not in api_request(dockerd.socket_path, "GET", f"/containers/{name}/logs?stdout=1")[1]:
        assert time.monotonic() < deadline, "the container never logged"
        time.sleep(0.05)
    yield name
    api_request(dockerd.socket_path, "DELETE", f"/containers/{name}?force=1")


ROOT_ON_START = json.dumps({"Binds": ["/:/host"], "PidMode": "host"}).encode()


def test_the_daemon_applies_a_hostconfig_sent_to_start(dockerd, idle) -> None:
    # The attack, shown on the daemon alone: API 1.23 applies the body at start.
    status, out = api_request(
        dockerd.socket_path,
        "POST",
        f"/v1.23/containers/{idle}/start",
        ROOT_ON_START,
        headers={"Content-Type": "application/json"},
    )
    assert status == 204, out
    host_config = inspect(dockerd, idle)["HostConfig"]
    assert host_config["Binds"] == ["/:/host"] and host_config["PidMode"] == "host"


START_SHAPES = {
    "v1.23 json": ("/v1.23/containers/{}/start", {"Content-Type": "application/json"}, False),
    "v1.12 json": ("/v1.12/containers/{}/start", {"Content-Type": "application/json"}, False),
    "v1.23 chunked": ("/v1.23/containers/{}/start", {"Content-Type": "application/json"}, True),
    "v1.23 no content type": ("/v1.23/containers/{}/start", {}, False),
    "unversioned": ("/containers/{}/start", {"Content-Type": "application/json"}, False),
}


@pytest.mark.parametrize("shape", START_SHAPES, ids=list(START_SHAPES))
def test_allow_start_does_not_carry_a_hostconfig(starter, dockerd, idle, shape) -> None:
    target, headers, chunked = START_SHAPES[shape]
    answer = send(starter, "POST", target.format(idle), ROOT_ON_START, headers, chunked)
    state = inspect(dockerd, idle)
    assert answer.status == 403, answer
    assert "starting a container takes no body" in answer.json()["message"]
    assert state["State"]["Running"] is False
    assert not state["HostConfig"]["Binds"] and state["HostConfig"]["PidMode"] != "host"


def test_allow_start_still_starts_a_container(starter, dockerd, idle) -> None:
    for body in (b"", b"{}"):
        answer = send(starter, "POST", f"/v1.23/containers/{idle}/start", body, {"Content-Type": "application/json"})
        assert answer.status in (204, 304), answer
    assert inspect(dockerd, idle)["State"]["Running"] is True


def test_allow_start_does_not_restore_a_checkpoint_from_the_host(starter, dockerd, idle) -> None:
    answer = send(starter, "POST", f"/v1.41/containers/{idle}/start?checkpoint=c1&checkpoint-dir=/etc")
    assert answer.status == 403 and "checkpoint" in answer.json()["message"], answer
    assert inspect(dockerd, idle)["State"]["Running"] is False


def test_a_query_with_two_readings_is_refused(starter, dockerd, idle) -> None:
    answer = send(starter, "POST", f"/v1.41/containers/{idle}/start?detachKeys=a;checkpoint=c1")
    assert answer.status == 403 and "';'" in answer.json()["message"], answer


# -- linuxserver's gates: every route that hands out what they name -------------------------------


def test_the_daemon_hands_logs_out_through_attach(dockerd, talker) -> None:
    status, out = api_request(dockerd.socket_path, "POST", f"/v1.41/containers/{talker}/attach?logs=1&stdout=1")
    assert SECRET.encode() in out


LOG_LEAKS = {
    "attach/ws logs=1": ("GET", "/v1.41/containers/{}/attach/ws?logs=1&stream=0"),
    "attach/ws unversioned": ("GET", "/containers/{}/attach/ws?logs=true&stream=0"),
    "attach/ws logs=%31": ("GET", "/v1.41/containers/{}/attach/ws?%6cogs=%31&stream=0"),
    "attach logs=1": ("POST", "/v1.41/containers/{}/attach?logs=1&stdout=1"),
    "attach logs=yes": ("POST", "/v1.41/containers/{}/attach?stdout=1&logs=yes"),
}


@pytest.mark.parametrize("leak", LOG_LEAKS, ids=list(LOG_LEAKS))
def test_allow_logs_0_closes_logs_through_attach(gated_writer, talker, leak) -> None:
    method, target = LOG_LEAKS[leak]
    answer = send(gated_writer, method, target.format(talker))
    assert answer.status == 403, answer
    assert "ALLOW_LOGS=0" in answer.json()["message"]
    assert SECRET.encode() not in answer.body


def test_attach_without_logs_stays_open(gated_writer, talker) -> None:
    answer = send(gated_writer, "GET", f"/v1.41/containers/{talker}/attach/ws?logs=0&stream=0")
    assert answer.status != 403, answer


def test_a_form_body_cannot_smuggle_query_parameters(gated_writer, dockerd, talker) -> None:
    # The daemon reads a form body into the same parameters as the query.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, out = api_request(
        dockerd.socket_path, "POST", f"/v1.41/containers/{talker}/attach?stdout=1", b"logs=1", headers=form
    )
    assert SECRET.encode() in out, (status, out)
    answer = send(gated_writer, "POST", f"/v1.41/containers/{talker}/attach?stdout=1", b"logs=1", form)
    assert answer.status == 403 and "x-www-form-urlencoded" in answer.json()["message"], answer
    assert SECRET.encode() not in answer.body


def test_allow_archive_0_closes_the_old_copy_route(gated_writer, dockerd, talker) -> None:
    body = json.dumps({"Resource": "/etc/hostname"}).encode()
    # The daemon still serves it for API versions below 1.20.
    status, out = api_request(
        dockerd.socket_path,
        "POST",
        f"/v1.19/containers/{talker}/copy",
        body,
        headers={"Content-Type": "application/json"},
    )
    assert status == 200 and out, (status, out[:200])
    answer = send(gated_writer, "POST", f"/v1.19/containers/{talker}/copy", body, {"Content-Type": "application/json"})
    assert answer.status == 403 and "ALLOW_ARCHIVE=0" in answer.json()["message"], answer


@pytest.mark.parametrize("route", ["services", "tasks"])
def test_allow_logs_0_closes_service_and_task_logs(gated_writer, route) -> None:
    answer = send(gated_writer, "GET", f"/v1.41/{route}/anything/logs?stdout=1")
    assert answer.status == 403 and "ALLOW_LOGS=0" in answer.json()["message"], answer
