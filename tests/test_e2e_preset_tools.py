"""
End to end: real tools through dockguard with their presets, against the real daemon.

Glances 3.3 (Debian's, docker-py inside) and Prometheus 2.42's ``docker_sd``
(the Go client Traefik and Grafana Alloy share) run here. Each runs through a
Unix listener whose identity has the tool's preset, enforced: the test checks
that the tool gets what it shows (a container it must name), that dockguard
refused nothing, and that every call it made is in the preset's trace
(``tests/traces/<preset>.toml``), so the trace stays what the tool really does.

With ``DOCKGUARD_LEARN_TRACE=1`` in the environment the identity gets a group
in learn mode with no rights instead, and the test prints the calls the tool
made: that is how the ``learn`` parts of those traces were recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import docker
from conftest import BUSYBOX_IMAGE
from dockguard.paths import canonicalise
from dockguard.routes import lookup
from harness.baseimage import CACHE_DIR
from harness.guard import start_with_config
from harness.traces import load_trace, route_key

pytestmark = pytest.mark.e2e

LEARN = os.environ.get("DOCKGUARD_LEARN_TRACE") == "1"


def _guard(tmp_path: Path, dockerd, identity: str, preset: str):
    sock = tmp_path / f"{identity}.sock"
    group = '[groups.learner]\nlearn = true\ndescription = "record a trace"\n' if LEARN else ""
    config = (
        'decision_log = "decisions.jsonl"\n'
        f'[[listeners]]\nurl = "unix://{sock}?identity={identity}"\n'
        f'[identities]\n{identity} = ["{"learner" if LEARN else preset}"]\n{group}'
    )
    guard = start_with_config(tmp_path, dockerd.socket_path, config, wait_for=str(sock))
    return guard, sock, tmp_path / "decisions.jsonl"


def _decisions(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _check_against_trace(preset: str, records: list[dict[str, object]]) -> None:
    calls = sorted({f"{r['method']} {r['path']}" for r in records})
    if LEARN:
        print(f"\n--- {preset}: calls seen in learn mode ---", file=sys.stderr)
        for call in calls:
            print(call, file=sys.stderr)
        return
    refused = [r for r in records if r["decision"] != "allow"]
    assert not refused, refused
    traced = {route_key(call.method, call.path) for call in load_trace(preset).calls}
    for record in records:
        method, target = str(record["method"]), str(record["path"])
        key = route_key(method, target)
        assert key in traced, f"{preset} called {method} {target} ({key}), which its trace does not list"


@pytest.fixture
def running_container(dockerd):
    client = docker.DockerClient(base_url=f"unix://{dockerd.socket_path}")
    name = "dg-preset-" + uuid.uuid4().hex[:8]
    # it stops at once on SIGTERM (a bare sleep as PID 1 would wait for the kill)
    command = ["sh", "-c", "trap 'exit 0' TERM; sleep 120 & wait"]
    container = client.containers.run(BUSYBOX_IMAGE, command, name=name, detach=True, network_mode="none")
    try:
        yield name
    finally:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass  # the tool removed it
        client.close()


@pytest.mark.skipif(shutil.which("glances") is None, reason="glances is not installed (apt-get install glances)")
def test_glances_with_its_preset(tmp_path: Path, dockerd, running_container: str) -> None:
    guard, sock, log = _guard(tmp_path, dockerd, "glances", "glances")
    try:
        done = subprocess.run(
            ["glances", "--stdout", "docker", "--stop-after", "3", "-t", "1", "-C", "/dev/null"],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(tmp_path),
                "DOCKER_HOST": f"unix://{sock}",
                "LANG": "C.UTF-8",
            },
            capture_output=True,
            text=True,
            timeout=90,
            cwd=tmp_path,
        )
    finally:
        guard.stop()
    assert running_container in done.stdout, done.stdout + done.stderr + guard.log()
    _check_against_trace("glances", _decisions(log))


PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1h
scrape_configs:
  - job_name: docker
    docker_sd_configs:
      - host: unix://{sock}
        refresh_interval: 5s
"""


@pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="prometheus is not installed (apt-get install prometheus)"
)
@pytest.mark.parametrize("preset", ["prometheus", "grafana"])
def test_prometheus_docker_sd_with_the_discovery_presets(
    preset: str, tmp_path: Path, dockerd, running_container: str
) -> None:
    from harness.guard import free_port

    guard, sock, log = _guard(tmp_path, dockerd, preset, preset)
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS_CONFIG.format(sock=sock))
    port = free_port()
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    found = ""
    try:
        import urllib.request

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and running_container not in found:
            time.sleep(1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets?state=any", timeout=5) as answer:
                    found = answer.read().decode()
            except OSError:
                continue
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        guard.stop()
    assert running_container in found, found + guard.log()
    _check_against_trace(preset, _decisions(log))


READS = [
    ["version"],
    ["info"],
    ["ps", "-a"],
    ["inspect", "{c}"],
    ["top", "{c}"],
    ["diff", "{c}"],
    ["stats", "--no-stream", "{c}"],
    ["images"],
    ["image", "inspect", BUSYBOX_IMAGE],
    ["image", "history", BUSYBOX_IMAGE],
    ["network", "ls"],
    ["volume", "ls"],
    ["system", "df"],
]


def test_docker_cli_reads_with_readonly_but_not_logs_or_save(
    tmp_path: Path, dockerd, docker_cli, running_container: str
) -> None:
    guard, sock, log = _guard(tmp_path, dockerd, "viewer", "readonly")
    env = {"DOCKER_HOST": f"unix://{sock}"}
    try:
        for args in READS:
            done = docker_cli([a.format(c=running_container) for a in args], env=env)
            assert done.returncode == 0, (args, done.stderr)
        if not LEARN:
            logs = docker_cli(["logs", running_container], env=env)
            assert logs.returncode != 0
            assert b'add action "container.logs"' in logs.stderr, logs.stderr
            save = docker_cli(["save", "-o", str(tmp_path / "image.tar"), BUSYBOX_IMAGE], env=env)
            assert save.returncode != 0
            assert b"image.export" in save.stderr, save.stderr
    finally:
        guard.stop()
    records = _decisions(log)
    if not LEARN:
        records = [r for r in records if "/logs" not in str(r["path"]) and "/get" not in str(r["path"])]
    _check_against_trace("readonly", records)


def test_docker_cli_runs_logs_and_saves_as_admin(tmp_path: Path, dockerd, docker_cli, running_container: str) -> None:
    guard, sock, log = _guard(tmp_path, dockerd, "ops", "admin")
    env = {"DOCKER_HOST": f"unix://{sock}"}
    try:
        ran = docker_cli(["run", "--rm", "--network", "none", BUSYBOX_IMAGE, "echo", "as-admin"], env=env)
        assert ran.stdout == b"as-admin\n", ran.stderr
        assert docker_cli(["logs", running_container], env=env).returncode == 0
        saved = docker_cli(["save", "-o", str(tmp_path / "image.tar"), BUSYBOX_IMAGE], env=env)
        assert saved.returncode == 0, saved.stderr
    finally:
        guard.stop()
    _check_against_trace("admin", _decisions(log))


def _curl_head_ping(sock: Path) -> str:
    done = subprocess.run(
        ["curl", "-sS", "-I", "--max-time", "10", "--unix-socket", str(sock), "http://docker/_ping"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_traefik_head_ping_with_the_preset_and_the_env_recipe(tmp_path: Path, dockerd, guard_factory) -> None:
    """Traefik >= 2.11.31 / 3.6.1 negotiates with HEAD /_ping: what it sees, as curl -I shows it."""
    guard, sock, log = _guard(tmp_path, dockerd, "traefik", "traefik")
    try:
        head = _curl_head_ping(sock)
    finally:
        guard.stop()
    assert head.startswith("HTTP/1.1 200"), head
    assert "api-version:" in head.lower(), head
    if not LEARN:
        assert [(r["decision"], r["rule"]) for r in _decisions(log)] == [("allow", "group traefik: ping=read")]
    env_sock = tmp_path / "traefik-env.sock"
    guard_factory([f"unix://{env_sock}?identity=traefik"], env={"CONTAINERS": "1"}, wait_for=str(env_sock))
    head = _curl_head_ping(env_sock)
    assert head.startswith("HTTP/1.1 200"), head
    assert "api-version:" in head.lower(), head


DOCKERODE_CALLS = Path(__file__).resolve().parent / "tools" / "dockerode_calls.js"


#: Where dockerode is installed for these tests, once (npm), beside the base image's cache.
NODE_CACHE = CACHE_DIR / "node"


def _node_env() -> dict[str, str] | None:
    """
    An environment in which C{node} loads dockerode: as it is, or with
    dockerode installed once into L{NODE_CACHE} (C{npm install}, as the
    machine's notes say npm has it); L{None} when neither works.
    """
    if shutil.which("node") is None:
        return None
    cached = NODE_CACHE / "node_modules"
    as_is, with_cache = dict(os.environ), {**os.environ, "NODE_PATH": str(cached)}

    def loads(env: dict[str, str]) -> bool:
        try:
            found = subprocess.run(["node", "-e", "require('dockerode')"], env=env, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            return False
        return found.returncode == 0

    if loads(as_is):
        return as_is
    if not (cached / "dockerode").exists() and shutil.which("npm") is not None:
        NODE_CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_CACHE), "dockerode@4"],
                capture_output=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            return None
    return with_cache if loads(with_cache) else None


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    env = _node_env()
    if env is None:
        pytest.skip("node with dockerode is needed, and npm could not install it (npm install dockerode)")
    return env


@pytest.mark.parametrize("preset", ["homepage", "wud", "homarr", "uptime-kuma", "beszel"])
def test_dockerode_tools_with_their_presets(
    preset: str, tmp_path: Path, dockerd, running_container: str, node_env: dict[str, str]
) -> None:
    """The calls of Homepage, What's Up Docker and Homarr (through dockerode), Uptime Kuma and Beszel's
    agent (plain HTTP), made as their sources make them."""
    guard, sock, log = _guard(tmp_path, dockerd, preset, preset)
    try:
        done = subprocess.run(
            ["node", str(DOCKERODE_CALLS), preset, running_container],
            env={**node_env, "DOCKER_SOCKET": str(sock)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        guard.stop()
    assert done.returncode == 0 and done.stdout.endswith("done\n"), done.stdout + done.stderr + guard.log()
    assert "403" not in done.stdout, done.stdout
    _check_against_trace(preset, _decisions(log))


def _curl(sock: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--unix-socket", str(sock), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_autoheal_lists_with_its_unencoded_filter_and_restarts(tmp_path: Path, dockerd, running_container: str) -> None:
    """docker-autoheal's curl sends its filter as written ({, ", [ unencoded): the guard reads it as the daemon does."""
    guard, sock, log = _guard(tmp_path, dockerd, "autoheal", "docker-autoheal")
    try:
        listed = _curl(
            sock, "-g", 'http://localhost/containers/json?filters={"health":["unhealthy"],"label":["autoheal=true"]}'
        )
        restarted = _curl(sock, "-f", "-X", "POST", f"http://localhost/containers/{running_container}/restart?t=1")
        refused = _curl(
            sock,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            f"http://localhost/containers/{running_container}/stop",
        )
    finally:
        guard.stop()
    assert listed.returncode == 0 and listed.stdout.strip() == "[]", listed
    assert restarted.returncode == 0, restarted.stderr
    assert refused.stdout == "403", refused
    _check_against_trace("docker-autoheal", [r for r in _decisions(log) if not str(r["path"]).endswith("/stop")])


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_crowdsec_follows_logs_as_long_as_it_likes(tmp_path: Path, dockerd) -> None:
    """CrowdSec holds logs?follow=1 open for the life of the container: the guard keeps relaying it."""
    client = docker.DockerClient(base_url=f"unix://{dockerd.socket_path}")
    name = "dg-crowdsec-" + uuid.uuid4().hex[:8]
    script = "i=0; while true; do i=$((i+1)); echo line-$i; sleep 1; done"
    container = client.containers.run(BUSYBOX_IMAGE, ["sh", "-c", script], name=name, detach=True, network_mode="none")
    guard, sock, log = _guard(tmp_path, dockerd, "crowdsec", "crowdsec")
    try:
        # curl gives up after 6 s (exit 28): the stream was still open then
        followed = _curl(
            sock, "-N", "--max-time", "6", f"http://localhost/v1.41/containers/{name}/logs?follow=1&stdout=1&stderr=1"
        )
    finally:
        guard.stop()
        container.remove(force=True)
        client.close()
    assert followed.returncode == 28, followed
    assert "line-5" in followed.stdout, followed.stdout
    _check_against_trace("crowdsec", _decisions(log))


def test_route_key_reads_a_call_as_the_guard_does() -> None:
    # the key the traces use is the route the guard judges a call as
    path = canonicalise(b"/v1.41/containers/abc/json")
    route = lookup("GET", path).judged_route
    assert route is not None
    assert route_key("GET", "/v1.41/containers/abc/json") == f"{route.method} {route.template}"
