"""
End to end: one dockguard, several identities with different groups on one
mutual-TLS listener, and the learn → suggest → enforce loop, against the
real daemon with the docker CLI.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import BUSYBOX_IMAGE, tls_client_env, tls_listener
from harness.guard import free_port

pytestmark = pytest.mark.e2e


def config_text(pki, port: int, groups: str) -> str:
    return f"""
decision_log = "decisions.jsonl"

{tls_listener(pki, port)}
{groups}
"""


def start_with_config(guard_factory, tmp_path: Path, text: str, port: int):
    path = tmp_path / "dockguard.toml"
    path.write_text(text)
    return guard_factory([], extra_args=["--config", str(path)], wait_for=("127.0.0.1", port))


def dockguard_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockguard.cli", *args], capture_output=True, text=True)


def test_two_identities_on_one_listener_get_different_rights(guard_factory, tmp_path, pki, docker_cli) -> None:
    port = free_port()
    guard = start_with_config(
        guard_factory,
        tmp_path,
        config_text(
            pki,
            port,
            """
[identities]
ops = ["admin"]
watcher = ["readonly"]
""",
        ),
        port,
    )
    ops = tls_client_env(pki, port, "ops")
    watcher = tls_client_env(pki, port, "watcher")
    stranger = tls_client_env(pki, port, "stranger")

    out = docker_cli(["run", "--rm", "--network", "none", BUSYBOX_IMAGE, "echo", "as-ops"], env=ops)
    assert out.stdout == b"as-ops\n", out.stderr
    assert docker_cli(["ps"], env=watcher).returncode == 0
    refused = docker_cli(["run", "--rm", "--network", "none", BUSYBOX_IMAGE, "true"], env=watcher)
    assert refused.returncode != 0
    err = refused.stderr.decode()
    assert "dockguard refused POST /containers/create for watcher" in err
    assert "readonly" in err
    unknown = docker_cli(["ps"], env=stranger)
    assert "for stranger" in unknown.stderr.decode() and "unknown identity" in unknown.stderr.decode()
    assert "watcher" in guard.log() and "readonly" in guard.log()


WORKLOAD = [
    ["ps", "-a"],
    ["run", "-d", "--name", "{c}", "--network", "none", BUSYBOX_IMAGE, "sleep", "60"],
    ["logs", "{c}"],
    ["stop", "-t", "1", "{c}"],
    ["start", "{c}"],
    ["rm", "-f", "{c}"],
]


def run_workload(docker_cli, env) -> list[subprocess.CompletedProcess[bytes]]:
    c = "dg-learn-" + uuid.uuid4().hex[:8]
    return [docker_cli([a.format(c=c) for a in args], env=env) for args in WORKLOAD]


def test_learn_then_suggest_then_enforce(guard_factory, tmp_path, pki, docker_cli) -> None:
    port = free_port()
    learn_dir = tmp_path / "learn"
    learn_dir.mkdir()
    guard = start_with_config(
        guard_factory,
        learn_dir,
        config_text(
            pki,
            port,
            """
[identities]
tool = ["learner"]

[groups.learner]
description = "nothing allowed yet: learn what the tool needs"
learn = true
""",
        ),
        port,
    )
    env = tls_client_env(pki, port, "tool")
    results = run_workload(docker_cli, env)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert "would-deny tool POST" in guard.log()
    guard.stop()

    suggested = dockguard_cmd("suggest", str(learn_dir / "decisions.jsonl"), "--identity", "tool")
    assert suggested.returncode == 0, suggested.stderr
    assert '[groups."learned-tool"]' in suggested.stdout

    enforce_dir = tmp_path / "enforce"
    enforce_dir.mkdir()
    port = free_port()
    start_with_config(guard_factory, enforce_dir, config_text(pki, port, suggested.stdout), port)
    env = tls_client_env(pki, port, "tool")
    results = run_workload(docker_cli, env)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    # what the workload never did stays closed
    for outside in (["volume", "create"], ["images"], ["network", "ls"]):
        refused = docker_cli(outside, env=env)
        assert refused.returncode != 0
        assert b"dockguard refused" in refused.stderr


def test_explain_lists_routes_and_one_request(tmp_path, pki) -> None:
    port = free_port()
    path = tmp_path / "dockguard.toml"
    path.write_text(
        config_text(
            pki,
            port,
            """
[identities]
watcher = ["readonly"]
""",
        )
    )
    table = dockguard_cmd("explain", "watcher", "--config", str(path))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any(line.split()[:3] == ["allow", "GET", "/containers/json"] for line in lines)
    assert any(line.split()[:3] == ["deny", "POST", "/containers/create"] for line in lines)
    one = dockguard_cmd("explain", "watcher", "POST", "/v1.41/containers/abc/start", "--config", str(path))
    assert one.returncode == 1
    assert one.stdout.startswith("deny watcher POST /v1.41/containers/abc/start")
    assert "rule:" in one.stdout
