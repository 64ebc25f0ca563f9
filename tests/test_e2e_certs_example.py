"""
The newcomer's path in certs-example/README.md, run as written: make a CA,
a server certificate and two client directories, start dockguard on them,
and use the docker CLI with DOCKER_CERT_PATH unchanged.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from harness.guard import free_port

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).parent.parent / "certs-example" / "make-certs.sh"


def test_make_certs_then_docker_cli_through_mutual_tls(tmp_path, guard_factory, docker_cli) -> None:
    pki = tmp_path / "pki"
    import sys

    env = {**os.environ, "DOCKGUARD": f"{sys.executable} -m dockguard.cli"}
    made = subprocess.run(
        [str(SCRIPT), str(pki), "traefik", "portainer", "--", "127.0.0.1"], capture_output=True, text=True, env=env
    )
    assert made.returncode == 0, made.stderr
    assert "DOCKER_CERT_PATH=" in made.stdout
    assert stat.S_IMODE(os.stat(pki / "traefik" / "key.pem").st_mode) == 0o600
    again = subprocess.run([str(SCRIPT), str(pki), "x"], capture_output=True, text=True, env=env)
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr

    port = free_port()
    guard_factory(
        [f"tls://127.0.0.1:{port}?cert={pki}/server-cert.pem&key={pki}/server-key.pem&client_ca={pki}/ca.pem"],
        env={"CONTAINERS": "1"},
        wait_for=("127.0.0.1", port),
    )
    for client in ("traefik", "portainer"):
        env = {
            "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(pki / client),
        }
        assert docker_cli(["ps"], env=env).returncode == 0
        refused = docker_cli(["images"], env=env)
        assert f"dockguard refused GET /images/json for {client}" in refused.stderr.decode()
