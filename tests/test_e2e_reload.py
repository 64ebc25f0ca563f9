"""
End to end: certificates made with `dockguard certs`, used unchanged by the
docker CLI; revocation; and SIGHUP reloads that keep live streams, apply the
new policy to new requests, and keep the old one when the new file is bad.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUSYBOX_IMAGE
from harness.guard import free_port
from harness.rawhttp import certs, wait_for_log

pytestmark = pytest.mark.e2e


def test_issue_revoke_and_reload(tmp_path, guard_factory, docker_cli) -> None:
    pki = tmp_path / "pki"
    certs("init", str(pki))
    certs("server", str(pki), "--name", "127.0.0.1", "--dns", "localhost", "--days", "20")
    certs("client", str(pki), "alice")
    certs("client", str(pki), "carol", "--days", "10")
    certs("client", str(pki), "bob")
    port = free_port()
    config = tmp_path / "dockguard.toml"
    config.write_text(f"""
[[listeners]]
url = "tls://127.0.0.1:{port}?cert={pki}/server-cert.pem&key={pki}/server-key.pem&client_ca={pki}/ca.pem&crl={pki}/crl.pem"

[identities]
alice = ["readonly"]
bob = ["readonly"]
carol = ["readonly"]
""")
    guard = guard_factory([], extra_args=["--config", str(config)], wait_for=("127.0.0.1", port))

    def env(name: str) -> dict[str, str]:
        return {
            "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(pki / "clients" / name),
        }

    assert docker_cli(["ps"], env=env("alice")).returncode == 0
    assert docker_cli(["ps"], env=env("bob")).returncode == 0
    # certificates about to expire are named in the log: the server's at start,
    # a client's when it connects
    assert "expires in 19 days" in guard.log() or "expires in 20 days" in guard.log()
    assert docker_cli(["ps"], env=env("carol")).returncode == 0
    wait_for_log(guard, "the client certificate of carol")
    certs("revoke", str(pki), "alice")
    os.kill(guard.pid, signal.SIGHUP)
    wait_for_log(guard, "reloaded")
    refused = docker_cli(["ps"], env=env("alice"))
    assert refused.returncode != 0
    assert b"dockguard refused" not in refused.stderr  # refused in the handshake, before HTTP
    assert docker_cli(["ps"], env=env("bob")).returncode == 0


def open_stream(port: int, target: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
    s.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def test_reload_keeps_streams_and_applies_the_new_policy(tmp_path, guard_factory, docker_cli) -> None:
    port = free_port()
    config = tmp_path / "dockguard.toml"
    listener = f'[[listeners]]\nurl = "tcp://127.0.0.1:{port}?identity=ops"\n'
    config.write_text(listener + '[identities]\nops = ["admin"]\n')
    guard = guard_factory([], extra_args=["--config", str(config)], wait_for=("127.0.0.1", port))
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
    talker = "dg-reload-" + os.urandom(4).hex()
    assert (
        docker_cli(
            [
                "run",
                "-d",
                "--name",
                talker,
                "--network",
                "none",
                BUSYBOX_IMAGE,
                "sh",
                "-c",
                "while true; do echo tick; sleep 0.2; done",
            ],
            env=env,
        ).returncode
        == 0
    )
    # a hijacked exec session (stdin and output), open across the reload
    import http.client
    import json as _json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "POST",
        f"/containers/{talker}/exec",
        body=_json.dumps({"Cmd": ["cat"], "AttachStdin": True, "AttachStdout": True, "Tty": True}),
        headers={"Content-Type": "application/json"},
    )
    exec_id = _json.loads(conn.getresponse().read())["Id"]
    shell = socket.create_connection(("127.0.0.1", port))
    body = b'{"Detach":false,"Tty":true}'
    shell.sendall(
        b"POST /exec/" + exec_id.encode() + b"/start HTTP/1.1\r\nHost: docker\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    shell.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        head += shell.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    streams = [open_stream(port, "/events") for _ in range(25)]
    streams += [open_stream(port, f"/containers/{talker}/logs?follow=1&stdout=1&tail=0") for _ in range(25)]
    try:
        # a policy without containers: new requests are refused...
        config.write_text(
            listener + '[identities]\nops = ["narrow"]\n'
            '[groups.narrow]\nsections = { events = "read", ping = "read" }\n'
        )
        os.kill(guard.pid, signal.SIGHUP)
        wait_for_log(guard, "reloaded")
        refused = docker_cli(["ps"], env=env)
        assert b"dockguard refused GET /containers/json for ops" in refused.stderr
        # ...while all 50 streams opened before keep flowing
        trigger = "dg-event-" + os.urandom(4).hex()
        direct = {"DOCKER_HOST": f"unix://{guard_factory.daemon_socket}"}
        assert (
            docker_cli(
                ["run", "--rm", "--name", trigger, "--network", "none", BUSYBOX_IMAGE, "true"], env=direct
            ).returncode
            == 0
        )
        for s in streams:
            data = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and b"tick" not in data and trigger.encode() not in data:
                data += s.recv(65536)
            assert b"tick" in data or trigger.encode() in data, data[:200]

        shell.sendall(b"still-here\n")
        echoed = b""
        deadline = time.monotonic() + 10
        while b"still-here" not in echoed and time.monotonic() < deadline:
            echoed += shell.recv(4096)
        assert b"still-here" in echoed
        shell.close()

        # a broken file: the reload fails, the running policy stays
        config.write_text(listener + '[identities]\nops = ["no-such-group"]\n')
        os.kill(guard.pid, signal.SIGHUP)
        wait_for_log(guard, "reload failed, the running configuration stays")
        assert "no-such-group" in guard.log()
        assert b"dockguard refused GET /containers/json" in docker_cli(["ps"], env=env).stderr
    finally:
        for s in streams:
            s.close()
        subprocess.run(
            ["docker", "-H", f"unix://{guard_factory.daemon_socket}", "rm", "-f", talker], capture_output=True
        )
