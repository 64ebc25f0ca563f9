"""
End to end, security round 3: loopback is not an identity.

A build's ``ADD http://127.0.0.1:PORT/...`` is fetched by the daemon from the
host's network namespace, so a caller allowed to build reaches every loopback
TCP listener of dockguard as that listener's fixed identity. The test shows
the attack where the operator accepted it (``trust_host=1``), and that
dockguard refuses to start with such a listener otherwise.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
import uuid

import pytest

from conftest import BUSYBOX_IMAGE
from harness.dockerd import api_request
from harness.guard import free_port, start_with_config, twistd_command

pytestmark = pytest.mark.e2e


def config(ops_port: int, ci_socket: str, trust: bool) -> str:
    trust_line = "&trust_host=1" if trust else ""
    return f"""
[[listeners]]
url = "tcp://127.0.0.1:{ops_port}?identity=ops{trust_line}"

[[listeners]]
url = "unix://{ci_socket}?identity=ci"

[identities]
ops = ["admin"]
ci = ["builder"]

[groups.builder]
sections = {{ ping = "read" }}
actions = ["image.build"]
guards = {{ image_names = ["dg-leak-*"] }}
"""


def context_tar(dockerfile: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_loopback_admin_listener_beside_a_builder_is_refused_at_start(tmp_path, dockerd) -> None:
    ops_port = free_port()
    path = tmp_path / "dockguard.toml"
    path.write_text(config(ops_port, str(tmp_path / "ci.sock"), trust=False))
    result = subprocess.run(
        [*twistd_command(), "-n", "--pidfile=", "dockguard", "--upstream", dockerd.socket_path, "--config", str(path)],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
    )
    out = (result.stdout + result.stderr).decode()
    assert result.returncode != 0, out
    assert "listeners[0]" in out and "'ci' can reach it from the host's network namespace" in out, out
    assert "trust_host=1" in out and "Traceback" not in out


def test_what_trust_host_accepts_a_build_reads_as_the_loopback_identity(tmp_path, dockerd) -> None:
    ops_port = free_port()
    ci_socket = str(tmp_path / "ci.sock")
    guard = start_with_config(
        tmp_path, dockerd.socket_path, config(ops_port, ci_socket, trust=True), wait_for=("127.0.0.1", ops_port)
    )
    tag = "dg-leak-" + uuid.uuid4().hex[:8]
    deadline = time.monotonic() + 10
    while not os.path.exists(ci_socket):  # listeners start one after another
        assert time.monotonic() < deadline, "the ci listener did not start"
        time.sleep(0.05)
    try:
        # ci alone may not list containers ...
        status, _ = api_request(ci_socket, "GET", "/v1.41/containers/json")
        assert status == 403
        # ... but its build fetches the list through the loopback listener, as ops.
        dockerfile = f"FROM {BUSYBOX_IMAGE}\nADD http://127.0.0.1:{ops_port}/v1.41/info /leak.json\n"
        status, out = api_request(
            ci_socket,
            "POST",
            f"/v1.41/build?t={tag}&networkmode=none&rm=1",
            context_tar(dockerfile),
            headers={"Content-Type": "application/x-tar"},
        )
        assert status == 200 and b"Successfully tagged" in out, out[-2000:]
        assert "allow ops GET /v1.41/info" in guard.log()
        run = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", tag, "cat", "/leak.json"],
            env={"DOCKER_HOST": dockerd.url, "PATH": "/usr/bin:/bin:/usr/local/bin"},
            capture_output=True,
            timeout=60,
        )
        assert "ServerVersion" in json.loads(run.stdout), run.stderr
    finally:
        guard.stop()
        api_request(dockerd.socket_path, "DELETE", f"/images/{tag}?force=1")
