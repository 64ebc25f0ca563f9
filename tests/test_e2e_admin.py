"""
The admin listener, the healthcheck command and JSON logs, end to end: a
real ``twistd dockguard`` in front of the private daemon, driven by the docker
CLI, scraped with prometheus_client's own parser.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BUSYBOX_IMAGE, FULL_ACCESS_ENV, clean_cli_env
from harness.guard import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def dockguard_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).with_name("dockguard")
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.1)


@pytest.fixture
def admin_guard(guard_factory):
    port, admin = free_port(), free_port()
    env = dict(FULL_ACCESS_ENV, IMAGES="0")
    guard_factory(
        [f"tcp://127.0.0.1:{port}?identity=local"],
        env=env,
        extra_args=["--admin", f"tcp://127.0.0.1:{admin}"],
        wait_for=("127.0.0.1", admin),
    )
    return admin, {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}


def test_metrics_count_decisions_streams_and_hijacks_after_real_traffic(admin_guard, docker_cli, tmp_path) -> None:
    admin, env = admin_guard
    cli_env = clean_cli_env(tmp_path, env)
    assert docker_cli(["ps"], env=env).returncode == 0
    refused = docker_cli(["images"], env=env)
    assert refused.returncode != 0 and "IMAGES=0" in refused.stderr.decode()

    events = subprocess.Popen(
        ["docker", "events"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    session = subprocess.Popen(
        ["docker", "run", "-i", "--rm", "--network", "none", BUSYBOX_IMAGE, "cat"],
        env=cli_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        live = wait_for(
            lambda: (
                (s := scrape(admin))[("dockguard_hijacked_sessions", ())] >= 1
                and s[("dockguard_open_streams", ())] >= 1
                and s
            )
        )
        assert live[("dockguard_open_connections", ())] >= 2
    finally:
        session.communicate(b"bye\n", timeout=60)
        events.terminate()
        events.wait(10)
    assert session.returncode == 0

    samples = wait_for(lambda: (s := scrape(admin))[("dockguard_hijacked_sessions", ())] == 0 and s)
    allowed = samples[
        ("dockguard_requests_total", (("decision", "allow"), ("identity", "local"), ("section", "containers")))
    ]
    assert allowed >= 4  # ps; create, attach, wait, start... of the run
    assert (
        samples[("dockguard_requests_total", (("decision", "deny"), ("identity", "local"), ("section", "images")))] == 1
    )
    assert samples[("dockguard_request_duration_seconds_count", ())] >= allowed + 1
    assert samples[("dockguard_upstream_errors_total", (("kind", "connect"),))] == 0
    assert samples[("dockguard_reloads_total", (("result", "ok"),))] == 0


def test_the_admin_listener_serves_no_docker_api(admin_guard) -> None:
    admin, _ = admin_guard
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{admin}/v1.41/containers/json", timeout=10)
    assert refused.value.code == 404


def test_healthcheck_says_healthy_while_the_daemon_answers(admin_guard, tmp_path) -> None:
    admin, _ = admin_guard
    healthy = dockguard_cli("healthcheck", "--admin", f"tcp://127.0.0.1:{admin}")
    assert (healthy.returncode, healthy.stdout.strip()) == (0, "healthy")
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/health", timeout=10) as answer:
        assert json.loads(answer.read()) == {"status": "ok"}
    config = tmp_path / "admin.toml"
    config.write_text(f'[admin]\nlisten = "tcp://127.0.0.1:{admin}"\n')
    assert dockguard_cli("healthcheck", "--config", str(config)).returncode == 0


def test_healthcheck_fails_when_the_daemon_is_gone_or_dockguard_is_down(tmp_path) -> None:
    from harness.guard import start_guard

    admin = free_port()
    guard = start_guard(
        tmp_path,
        str(tmp_path / "no-daemon.sock"),
        [f"tcp://127.0.0.1:{free_port()}?identity=local"],
        extra_args=["--admin", f"unix://{tmp_path}/admin.sock"],
        wait_for=str(tmp_path / "admin.sock"),
    )
    try:
        sick = dockguard_cli("healthcheck", "--admin", f"unix://{tmp_path}/admin.sock")
        assert sick.returncode == 1
        assert "cannot reach the Docker daemon at" in sick.stderr and "no-daemon.sock" in sick.stderr
    finally:
        guard.stop()
    down = dockguard_cli("healthcheck", "--admin", f"tcp://127.0.0.1:{admin}")
    assert down.returncode == 1 and "does not answer" in down.stderr
    no_admin = tmp_path / "plain.toml"
    no_admin.write_text("")
    missing = dockguard_cli("healthcheck", "--config", str(no_admin))
    assert missing.returncode == 1 and "[admin] listen" in missing.stderr


def test_json_logs_are_one_parseable_line_each_even_for_a_forged_newline(guard_factory, docker_cli) -> None:
    port = free_port()
    guard = guard_factory(
        [f"tcp://127.0.0.1:{port}?identity=local"],
        env={"CONTAINERS": "1"},
        twistd_args=["--logger", "dockguard.logs.json"],
        wait_for=("127.0.0.1", port),
    )
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
    assert docker_cli(["ps"], env=env).returncode == 0
    forged = "/containers/json%0a2026-11-23T00:00:00+0000%20[dockguard#info]%20allow%20admin"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(f"GET {forged} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert raw.recv(65536).startswith(b"HTTP/1.1 400 ")
    guard.stop()
    records = [json.loads(line) for line in guard.log().splitlines()]  # every line is JSON
    decisions = [r for r in records if "decision" in r]
    ps = [r for r in decisions if r["canonical"] == "/containers/json" and r["decision"] == "allow"]
    assert ps and ps[0]["status"] == 200 and ps[0]["latency_ms"] >= 0 and ps[0]["identity"] == "local"
    [refused] = [r for r in decisions if r["path"] == forged]
    assert refused["decision"] == "refuse" and refused["status"] == 400
    assert not any(r["message"].startswith("allow admin") for r in records)
