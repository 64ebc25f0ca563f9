"""
End to end, against the real daemon: groups with a scope (issue 14).

Two identities that each see and manage only their own containers; a
label-scoped "restart only" group like Autoheal's; an exec created by one
identity and started by another; a rename between dockguard's look-up and
the daemon's action; inspect output without the environment's values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import BUSYBOX_IMAGE, clean_cli_env, tls_client_env, tls_listener
from harness.guard import free_port, start_guard

pytestmark = pytest.mark.e2e

GROUPS = """
[identities]
alice = ["tenant"]
bob = ["tenant"]
healer = ["autoheal"]
viewer = ["viewer"]

[groups.tenant]
sections = { ping = "read", version = "read", containers = "write", exec = "write", events = "read", images = "read", volumes = "write", networks = "write" }
scope = { owner = true }
guards = { networks = ["na-*"] }

[groups.autoheal]
sections = { ping = "read", version = "read", containers = "read" }
actions = ["container.restart"]
scope = { labels = ["autoheal=true"] }

[groups.viewer]
sections = { ping = "read", version = "read", containers = "read" }
redact = ["env"]
"""


def _start(guard_factory, tmp_path: Path, pki, groups: str = GROUPS, upstream: str | None = None):
    port = free_port()
    config = tmp_path / "dockguard.toml"
    config.write_text(f'decision_log = "decisions.jsonl"\n\n{tls_listener(pki, port)}\n{groups}')
    if upstream is None:
        guard = guard_factory([], extra_args=["--config", str(config)], wait_for=("127.0.0.1", port))
    else:
        guard = start_guard(tmp_path, upstream, [], extra_args=["--config", str(config)], wait_for=("127.0.0.1", port))
    return guard, port


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _admin(dockerd, docker_cli, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """The docker CLI on the daemon itself, as its administrator; whatever comes of it (clean-ups)."""
    return docker_cli(args, env={"DOCKER_HOST": f"unix://{dockerd.socket_path}"})


def _direct(dockerd, docker_cli, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """The docker CLI on the daemon itself, as its administrator: it must succeed."""
    result = _admin(dockerd, docker_cli, args)
    assert result.returncode == 0, result.stderr
    return result


def test_two_identities_each_see_and_manage_only_their_own_containers(
    guard_factory, tmp_path, pki, docker_cli, dockerd
):
    guard, port = _start(guard_factory, tmp_path, pki)
    alice, bob = tls_client_env(pki, port, "alice"), tls_client_env(pki, port, "bob")
    mine, theirs = _name("alice"), _name("bob")
    since = str(int(time.time()) - 1)
    try:
        for env, name in ((alice, mine), (bob, theirs)):
            run = docker_cli(
                [
                    "run",
                    "-d",
                    "--name",
                    name,
                    "--network",
                    "none",
                    BUSYBOX_IMAGE,
                    "sh",
                    "-c",
                    f"echo hello-{name}; sleep 60",
                ],
                env=env,
            )
            assert run.returncode == 0, run.stderr
        # dockguard stamped the owner
        labels = _direct(dockerd, docker_cli, ["inspect", "-f", "{{json .Config.Labels}}", mine]).stdout
        assert json.loads(labels) == {"dockguard.owner": "alice"}

        listed = docker_cli(["ps", "-a", "--format", "{{.Names}}"], env=alice)
        assert listed.returncode == 0, listed.stderr
        names = listed.stdout.decode().split()
        assert mine in names and theirs not in names
        # the caller's own filters still apply
        filtered = docker_cli(["ps", "-a", "--filter", f"name={theirs}", "--format", "{{.Names}}"], env=alice)
        assert filtered.stdout.decode().split() == []

        assert b"hello-" + mine.encode() in docker_cli(["logs", mine], env=alice).stdout
        exec_ok = docker_cli(["exec", mine, "echo", "inside"], env=alice)
        assert exec_ok.stdout == b"inside\n", exec_ok.stderr

        # Bob's container does not exist for Alice: the daemon's own answer.
        for args in (
            ["logs", theirs],
            ["exec", theirs, "true"],
            ["rm", theirs],
            ["container", "inspect", theirs],
            ["stop", theirs],
        ):
            refused = docker_cli(args, env=alice)
            assert refused.returncode != 0, args
            assert (
                f"No such container: {theirs}".lower() in refused.stderr.decode().lower()
                or "no such object" in refused.stderr.decode().lower()
            ), refused.stderr
        # `rm -f` of what does not exist succeeds, as on the daemon, and removes nothing
        assert b"No such container" in docker_cli(["rm", "-f", theirs], env=alice).stderr
        assert _direct(dockerd, docker_cli, ["inspect", "-f", "{{.State.Running}}", theirs]).stdout == b"true\n"
        # ... even by its full ID, or an ID prefix
        full = _direct(dockerd, docker_cli, ["inspect", "-f", "{{.Id}}", theirs]).stdout.decode().strip()
        for ref in (full, full[:12]):
            refused = docker_cli(["logs", ref], env=alice)
            assert refused.returncode != 0 and b"No such container" in refused.stderr
        # ... and what the owner label says cannot be forged
        forged = docker_cli(
            ["run", "--rm", "--label", "dockguard.owner=bob", "--network", "none", BUSYBOX_IMAGE, "true"], env=alice
        )
        assert forged.returncode != 0 and b"dockguard.owner" in forged.stderr

        until = str(int(time.time()) + 1)
        time.sleep(1.2)
        events = docker_cli(
            ["events", "--since", since, "--until", until, "--format", "{{.Actor.Attributes.name}}"], env=alice
        )
        assert events.returncode == 0, events.stderr
        seen = set(events.stdout.decode().split())
        assert mine in seen and theirs not in seen

        removed = docker_cli(["rm", "-f", mine], env=alice)
        assert removed.returncode == 0, removed.stderr
        assert docker_cli(["rm", "-f", theirs], env=bob).returncode == 0
        records = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
        denied = [r for r in records if r["rule"] == "scope" and r["decision"] == "deny"]
        assert denied and all(r["identity"] == "alice" and r["status"] == 404 for r in denied)
        assert any(theirs in r["reason"] and "outside the scope" in r["reason"] for r in denied)
    finally:
        for name in (mine, theirs):
            _admin(dockerd, docker_cli, ["rm", "-f", name])


def test_a_label_scoped_restart_only_group_restarts_only_what_is_labelled(
    guard_factory, tmp_path, pki, docker_cli, dockerd
):
    guard, port = _start(guard_factory, tmp_path, pki)
    healer = tls_client_env(pki, port, "healer")
    labelled, other = _name("heal"), _name("keep")
    try:
        _direct(
            dockerd,
            docker_cli,
            [
                "run",
                "-d",
                "--name",
                labelled,
                "--label",
                "autoheal=true",
                "--network",
                "none",
                BUSYBOX_IMAGE,
                "sleep",
                "60",
            ],
        )
        _direct(dockerd, docker_cli, ["run", "-d", "--name", other, "--network", "none", BUSYBOX_IMAGE, "sleep", "60"])
        started = _direct(dockerd, docker_cli, ["inspect", "-f", "{{.State.StartedAt}}", other]).stdout

        listed = docker_cli(["ps", "--format", "{{.Names}}"], env=healer).stdout.decode().split()
        assert labelled in listed and other not in listed
        assert docker_cli(["restart", "-t", "0", labelled], env=healer).returncode == 0
        refused = docker_cli(["restart", "-t", "0", other], env=healer)
        assert refused.returncode != 0 and b"No such container" in refused.stderr
        assert _direct(dockerd, docker_cli, ["inspect", "-f", "{{.State.StartedAt}}", other]).stdout == started
        # restart is all it may do, even in scope
        stop = docker_cli(["stop", "-t", "0", labelled], env=healer)
        assert stop.returncode != 0 and b"dockguard refused" in stop.stderr
    finally:
        for name in (labelled, other):
            _admin(dockerd, docker_cli, ["rm", "-f", name])


def _api(port: int, pki, who: str, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    """One request over mutual TLS as ``who``, with curl."""
    certs = pki.client(who)
    args = [
        "curl",
        "-sS",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--cacert",
        str(certs / "ca.pem"),
        "--cert",
        str(certs / "cert.pem"),
        "--key",
        str(certs / "key.pem"),
        "-X",
        method,
        f"https://127.0.0.1:{port}{path}",
    ]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, timeout=60, env={"PATH": os.environ["PATH"]})
    text, _, code = out.stdout.rpartition(b"\n")
    return int(code or 0), text


def test_an_exec_created_by_one_identity_cannot_be_started_by_another(
    guard_factory, tmp_path, pki, docker_cli, dockerd
):
    groups = (
        GROUPS.replace('bob = ["tenant"]', 'bob = ["shared"]')
        + """
[groups.shared]
sections = { ping = "read", containers = "write", exec = "write" }
"""
    )
    guard, port = _start(guard_factory, tmp_path, pki, groups)
    name = _name("exec")
    try:
        run = docker_cli(
            ["run", "-d", "--name", name, "--network", "none", BUSYBOX_IMAGE, "sleep", "60"],
            env=tls_client_env(pki, port, "alice"),
        )
        assert run.returncode == 0, run.stderr
        status, body = _api(
            port, pki, "alice", "POST", f"/v1.41/containers/{name}/exec", {"Cmd": ["touch", "/tmp/ran"]}
        )
        assert status == 201, body
        exec_id = json.loads(body)["Id"]
        # bob may exec anywhere, but not start alice's exec instance
        status, body = _api(port, pki, "bob", "POST", f"/v1.41/exec/{exec_id}/start", {"Detach": True})
        assert status == 404 and b"No such exec instance" in body
        status, _ = _api(port, pki, "bob", "GET", f"/v1.41/exec/{exec_id}/json")
        assert status == 404
        assert (
            _direct(dockerd, docker_cli, ["exec", name, "sh", "-c", "test -e /tmp/ran || echo absent"]).stdout
            == b"absent\n"
        )
        status, body = _api(port, pki, "alice", "POST", f"/v1.41/exec/{exec_id}/start", {"Detach": True})
        assert status == 200, body
        time.sleep(0.5)
        assert (
            _direct(dockerd, docker_cli, ["exec", name, "sh", "-c", "test -e /tmp/ran && echo ran"]).stdout == b"ran\n"
        )
    finally:
        _admin(dockerd, docker_cli, ["rm", "-f", name])


def test_inspect_without_the_environment_still_prints(guard_factory, tmp_path, pki, docker_cli, dockerd):
    guard, port = _start(guard_factory, tmp_path, pki)
    name = _name("env")
    try:
        _direct(
            dockerd,
            docker_cli,
            [
                "run",
                "-d",
                "--name",
                name,
                "-e",
                "DB_PASSWORD=hunter2",
                "--network",
                "none",
                BUSYBOX_IMAGE,
                "sleep",
                "60",
            ],
        )
        shown = docker_cli(["inspect", name], env=tls_client_env(pki, port, "viewer"))
        assert shown.returncode == 0, shown.stderr
        assert b"hunter2" not in shown.stdout
        env = json.loads(shown.stdout)[0]["Config"]["Env"]
        assert "DB_PASSWORD=<redacted by dockguard>" in env
        assert (
            name
            in docker_cli(["ps", "--format", "{{.Names}}"], env=tls_client_env(pki, port, "viewer")).stdout.decode()
        )
    finally:
        _admin(dockerd, docker_cli, ["rm", "-f", name])


def _sdk(pki, port: int, who: str):
    import docker

    certs = pki.client(who)
    tls = docker.tls.TLSConfig(
        client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")), ca_cert=str(certs / "ca.pem"), verify=True
    )
    return docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, timeout=60)


def test_docker_py_tenants_own_their_containers_volumes_and_networks(
    guard_factory, tmp_path, pki, docker_cli, dockerd, monkeypatch
):
    import docker

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)  # requests #3829
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    guard, port = _start(guard_factory, tmp_path, pki)
    alice, bob = _sdk(pki, port, "alice"), _sdk(pki, port, "bob")
    tag = uuid.uuid4().hex[:8]
    made = []
    try:
        mine = alice.containers.run(BUSYBOX_IMAGE, ["sleep", "60"], detach=True, network_mode="none", name=f"a-{tag}")
        theirs = bob.containers.run(BUSYBOX_IMAGE, ["sleep", "60"], detach=True, network_mode="none", name=f"b-{tag}")
        made += [mine.id, theirs.id]
        assert [c.id for c in alice.containers.list(all=True)] == [mine.id]
        with pytest.raises(docker.errors.NotFound):
            alice.containers.get(theirs.id)
        assert mine.exec_run(["echo", "hi"]).output == b"hi\n"

        volume = alice.volumes.create(f"va-{tag}")
        assert volume.attrs["Labels"] == {"dockguard.owner": "alice"}
        other = bob.volumes.create(f"vb-{tag}")
        assert [v.name for v in alice.volumes.list()] == [volume.name]
        with pytest.raises(docker.errors.NotFound):
            alice.volumes.get(other.name)
        with pytest.raises(docker.errors.APIError):
            alice.volumes.prune()  # acts on every volume: refused under a scope

        net = alice.networks.create(f"na-{tag}", driver="bridge", internal=True)
        assert net.attrs["Labels"] == {"dockguard.owner": "alice"}
        assert net.id in [n.id for n in alice.networks.list()]
        with pytest.raises(docker.errors.NotFound):
            bob.networks.get(net.id)
        with pytest.raises(docker.errors.NotFound):
            bob.networks.get(net.id[:12])
        net.remove()
        volume.remove()
        other.remove()
        mine.remove(force=True)
        theirs.remove(force=True)
    finally:
        alice.close()
        bob.close()
        for ident in made:
            _admin(dockerd, docker_cli, ["rm", "-f", ident])
        for vol in (f"va-{tag}", f"vb-{tag}"):
            _admin(dockerd, docker_cli, ["volume", "rm", "-f", vol])
        _admin(dockerd, docker_cli, ["network", "rm", f"na-{tag}"])


def test_named_volumes_are_looked_up_before_a_container_mounts_them(guard_factory, tmp_path, pki, docker_cli, dockerd):
    groups = (
        GROUPS
        + """
[groups.runner]
sections = { ping = "read", version = "read", containers = "write" }
"""
    )
    groups = groups.replace('viewer = ["viewer"]', 'viewer = ["viewer"]\nrunner = ["runner"]')
    guard, port = _start(guard_factory, tmp_path, pki, groups)
    tag = uuid.uuid4().hex[:8]
    hostetc, bobs, alices = f"etc-{tag}", f"vb-{tag}", f"va-{tag}"
    try:
        # An administrator's bind volume: on the daemon alone it shows the host's /etc.
        _direct(
            dockerd, docker_cli, ["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/etc", hostetc]
        )
        host_file = Path("/etc/debian_version").read_bytes()
        direct = _direct(
            dockerd,
            docker_cli,
            ["run", "--rm", "-v", f"{hostetc}:/x:ro", "--network", "none", BUSYBOX_IMAGE, "cat", "/x/debian_version"],
        )
        assert direct.stdout == host_file
        refused = docker_cli(
            ["run", "--rm", "-v", f"{hostetc}:/x:ro", "--network", "none", BUSYBOX_IMAGE, "cat", "/x/debian_version"],
            env=tls_client_env(pki, port, "runner"),
        )
        assert refused.returncode != 0 and refused.stdout == b""
        assert hostetc.encode() in refused.stderr and b"/etc" in refused.stderr, refused.stderr
        # ... and the same through --mount
        mount = docker_cli(
            [
                "run",
                "--rm",
                "--mount",
                f"type=volume,source={hostetc},target=/x,readonly",
                "--network",
                "none",
                BUSYBOX_IMAGE,
                "true",
            ],
            env=tls_client_env(pki, port, "runner"),
        )
        assert mount.returncode != 0 and b"dockguard refused" in mount.stderr
        # a plain named volume is fine, made now or before
        fresh = docker_cli(
            ["run", "--rm", "-v", f"new-{tag}:/x", "--network", "none", BUSYBOX_IMAGE, "true"],
            env=tls_client_env(pki, port, "runner"),
        )
        assert fresh.returncode == 0, fresh.stderr

        # Under an owner scope: only the caller's own volumes.
        alice, bob = tls_client_env(pki, port, "alice"), tls_client_env(pki, port, "bob")
        assert docker_cli(["volume", "create", bobs], env=bob).returncode == 0
        assert docker_cli(["volume", "create", alices], env=alice).returncode == 0
        theirs = docker_cli(["run", "--rm", "-v", f"{bobs}:/x", "--network", "none", BUSYBOX_IMAGE, "true"], env=alice)
        assert theirs.returncode != 0 and b"does not exist or is outside the scope" in theirs.stderr
        missing = docker_cli(
            ["run", "--rm", "-v", f"missing-{tag}:/x", "--network", "none", BUSYBOX_IMAGE, "true"], env=alice
        )
        assert missing.returncode != 0 and b"does not exist or is outside the scope" in missing.stderr
        own = docker_cli(["run", "--rm", "-v", f"{alices}:/x", "--network", "none", BUSYBOX_IMAGE, "true"], env=alice)
        assert own.returncode == 0, own.stderr
    finally:
        for volume in (hostetc, bobs, alices, f"new-{tag}", f"missing-{tag}"):
            _admin(dockerd, docker_cli, ["volume", "rm", "-f", volume])


def test_a_ci_runner_with_an_owner_scope_runs_a_compose_project(guard_factory, tmp_path, pki, docker_cli, dockerd):
    """docker-compose 1.29 (docker-py underneath) as a CI runner whose scope is what it created."""
    guard, port = _start(
        guard_factory,
        tmp_path,
        pki,
        GROUPS.replace('images = "read", volumes', 'images = "read", info = "read", volumes'),
    )
    project = f"ci{uuid.uuid4().hex[:8]}"
    (tmp_path / "compose.yaml").write_text(f"""
version: "3"
services:
  web:
    image: {BUSYBOX_IMAGE}
    command: ["sleep", "60"]
    network_mode: none
    volumes: ["data:/data"]
volumes:
  data: {{}}
""")
    env = {**clean_cli_env(tmp_path), **tls_client_env(pki, port, "alice")}
    env.pop("REQUESTS_CA_BUNDLE", None)
    other = _name("bob")
    compose = ["docker-compose", "-p", project, "-f", str(tmp_path / "compose.yaml")]
    try:
        assert (
            docker_cli(
                ["run", "-d", "--name", other, "--network", "none", BUSYBOX_IMAGE, "sleep", "60"],
                env=tls_client_env(pki, port, "bob"),
            ).returncode
            == 0
        )
        up = subprocess.run([*compose, "up", "-d"], env=env, capture_output=True, timeout=120)
        assert up.returncode == 0, up.stderr
        ps = subprocess.run([*compose, "ps", "-q"], env=env, capture_output=True, timeout=60)
        assert ps.returncode == 0 and len(ps.stdout.split()) == 1, ps.stderr
        owner = _direct(dockerd, docker_cli, ["volume", "inspect", "-f", "{{json .Labels}}", f"{project}_data"]).stdout
        assert json.loads(owner)["dockguard.owner"] == "alice"
        down = subprocess.run([*compose, "down", "-v"], env=env, capture_output=True, timeout=120)
        assert down.returncode == 0, down.stderr
        left = _direct(
            dockerd, docker_cli, ["ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"]
        ).stdout
        assert left == b""
        # bob's container was never alice's to see or touch
        assert _direct(dockerd, docker_cli, ["inspect", "-f", "{{.State.Running}}", other]).stdout == b"true\n"
    finally:
        subprocess.run(
            [*compose, "down", "-v"],
            env={**env, "DOCKER_HOST": f"unix://{dockerd.socket_path}", "DOCKER_TLS_VERIFY": ""},
            capture_output=True,
            timeout=120,
        )
        _admin(dockerd, docker_cli, ["rm", "-f", other])


def test_a_name_scoped_container_cannot_be_renamed_out_of_its_scope(guard_factory, tmp_path, pki, docker_cli, dockerd):
    groups = (
        GROUPS.replace('viewer = ["viewer"]', 'viewer = ["viewer"]\nweb = ["web"]')
        + """
[groups.web]
sections = { ping = "read", version = "read", containers = "read" }
actions = ["container.rename"]
scope = { names = ["web-*"] }
"""
    )
    guard, port = _start(guard_factory, tmp_path, pki, groups)
    env = tls_client_env(pki, port, "web")
    tag = uuid.uuid4().hex[:6]
    first, second = f"web-{tag}", f"web-{tag}-b"
    try:
        _direct(dockerd, docker_cli, ["create", "--name", first, "--network", "none", BUSYBOX_IMAGE, "true"])
        assert docker_cli(["rename", first, second], env=env).returncode == 0
        out = docker_cli(["rename", second, f"db-{tag}"], env=env)
        assert out.returncode != 0 and b"out of the scope" in out.stderr, out.stderr
        assert _direct(dockerd, docker_cli, ["inspect", "-f", "{{.Name}}", second]).stdout == f"/{second}\n".encode()
    finally:
        for name in (first, second, f"db-{tag}"):
            _admin(dockerd, docker_cli, ["rm", "-f", name])


# -- the rename race -----------------------------------------------------------

SHIM = r"""
import os, socket, subprocess, sys, threading
listen, daemon, trigger, script = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4]
done = threading.Event()
server = socket.socket(socket.AF_UNIX); server.bind(listen); server.listen(64)
def pipe(src, dst, watch):
    armed = False
    while True:
        data = src.recv(65536)
        if not data:
            try: dst.shutdown(socket.SHUT_WR)
            except OSError: pass
            return
        if watch == "up" and trigger in data:
            state["armed"] = True
        if watch == "down" and state.get("armed") and not done.is_set():
            # the daemon answered dockguard's look-up: before dockguard reads
            # it, another client renames and swaps the containers
            subprocess.run(["sh", "-c", script], check=True)
            done.set()
        dst.sendall(data)
state = {}
while True:
    client, _ = server.accept()
    up = socket.socket(socket.AF_UNIX); up.connect(daemon)
    threading.Thread(target=pipe, args=(client, up, "up"), daemon=True).start()
    threading.Thread(target=pipe, args=(up, client, "down"), daemon=True).start()
"""


def test_a_rename_between_look_up_and_action_does_not_reach_outside_the_scope(tmp_path, pki, docker_cli, dockerd):
    groups = """
[identities]
healer = ["autoheal"]

[groups.autoheal]
sections = { ping = "read", version = "read", containers = "read" }
actions = ["container.stop"]
scope = { labels = ["autoheal=true"] }
"""
    inside, outside = _name("in"), _name("out")
    sock = str(dockerd.socket_path)
    admin = f"docker -H unix://{sock}"
    swap = f"{admin} rename {inside} {inside}-moved && {admin} rename {outside} {inside}"
    shim_path = tmp_path / "shim.sock"
    (tmp_path / "shim.py").write_text(SHIM)
    shim = subprocess.Popen(
        [sys.executable, str(tmp_path / "shim.py"), str(shim_path), sock, f"GET /containers/{inside}/json ", swap],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    guard = None
    try:
        for _ in range(100):
            if shim_path.exists():
                break
            time.sleep(0.05)
        _direct(
            dockerd,
            docker_cli,
            [
                "run",
                "-d",
                "--name",
                inside,
                "--label",
                "autoheal=true",
                "--network",
                "none",
                BUSYBOX_IMAGE,
                "sleep",
                "60",
            ],
        )
        _direct(
            dockerd, docker_cli, ["run", "-d", "--name", outside, "--network", "none", BUSYBOX_IMAGE, "sleep", "60"]
        )
        inside_id = _direct(dockerd, docker_cli, ["inspect", "-f", "{{.Id}}", inside]).stdout.decode().strip()
        outside_id = _direct(dockerd, docker_cli, ["inspect", "-f", "{{.Id}}", outside]).stdout.decode().strip()
        guard, port = _start(None, tmp_path, pki, groups, upstream=str(shim_path))
        stopped = docker_cli(["stop", "-t", "0", inside], env=tls_client_env(pki, port, "healer"))
        assert stopped.returncode == 0, stopped.stderr + guard.log().encode()
        # the swap happened: the name now belongs to the unlabelled container ...
        now = _direct(dockerd, docker_cli, ["inspect", "-f", "{{.Id}}", inside]).stdout.decode().strip()
        assert now == outside_id
        # ... which still runs: the stop went to the container that was judged
        running = {
            ident: _direct(dockerd, docker_cli, ["inspect", "-f", "{{.State.Running}}", ident]).stdout.strip()
            for ident in (inside_id, outside_id)
        }
        assert running == {inside_id: b"false", outside_id: b"true"}
    finally:
        if guard is not None:
            guard.stop()
        shim.kill()
        for ident in (inside, outside, f"{inside}-moved"):
            docker_cli(["rm", "-f", ident], env={"DOCKER_HOST": f"unix://{sock}"})
