"""
End to end: escalation guards.  A group with container write access but no
guards opened can run plain containers, and cannot take the host: every
classic escape is refused with a message naming the field and the rule, by
the docker CLI, the Mounts API form and docker-py alike.
"""

from __future__ import annotations

import os
import uuid

import pytest

import docker
from conftest import BUSYBOX_IMAGE, tls_client_env, tls_listener
from harness.guard import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def allowed_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("allowed")
    (root / "data").mkdir()
    (root / "data" / "hello.txt").write_text("from an allowed root\n")
    return root


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, dockerd, pki, allowed_root):
    from harness.guard import start_with_config

    work = tmp_path_factory.mktemp("guards")
    port = free_port()
    guard = start_with_config(
        work,
        dockerd.socket_path,
        f"""
{tls_listener(pki, port)}
[limits]
max_inspected_body = 65536

[identities]
builder = ["runner"]
deployer = ["deploy"]
shell = ["nonroot-exec"]
planter = ["plant"]

[groups.runner]
description = "creates and runs containers; no guard opened"
sections = {{ containers = "write", images = "read", ping = "read", version = "read" }}

[groups.deploy]
extends = ["runner"]
guards = {{ bind_roots = ["{allowed_root}"] }}

[groups.plant]
extends = ["runner"]
sections = {{ volumes = "write" }}
guards = {{ bind_roots = ["{allowed_root}"], bind_write = true }}

[groups.nonroot-exec]
extends = ["runner"]
sections = {{ exec = "write" }}
guards = {{ exec_root = false }}
""",
        wait_for=("127.0.0.1", port),
    )
    yield port, guard
    guard.stop()


def run(docker_cli, env, *args):
    return docker_cli(["run", "--rm", "--network", "none", *args], env=env, timeout=60)


def test_plain_run_passes(guarded, pki, docker_cli) -> None:
    port, _ = guarded
    out = run(docker_cli, tls_client_env(pki, port, "builder"), BUSYBOX_IMAGE, "echo", "plain")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"plain\n"


ESCAPES = [
    (["--privileged"], "HostConfig.Privileged"),
    (["-v", "/:/host"], "HostConfig.Binds[0]"),
    (["-v", "/var/run/docker.sock:/var/run/docker.sock"], "HostConfig.Binds[0]"),
    (["--mount", "type=bind,src=/etc,dst=/host-etc"], "HostConfig.Mounts[0]"),
    (["--pid", "host"], "HostConfig.PidMode"),
    (["--ipc", "host"], "HostConfig.IpcMode"),
    (["--uts", "host"], "HostConfig.UTSMode"),
    (["--userns", "host"], "HostConfig.UsernsMode"),
    (["--cap-add", "SYS_ADMIN"], "HostConfig.CapAdd"),
    (["--device", "/dev/null:/dev/xnull"], "HostConfig.Devices"),
    (["--security-opt", "seccomp=unconfined"], "HostConfig.SecurityOpt"),
    (["--security-opt", "apparmor=unconfined"], "HostConfig.SecurityOpt"),
    (["--sysctl", "net.ipv4.ip_forward=1"], "HostConfig.Sysctls"),
    (["--cgroup-parent", "dockguard-escape"], "HostConfig.CgroupParent"),
]


@pytest.mark.parametrize("flags, field", ESCAPES, ids=[" ".join(f) for f, _ in ESCAPES])
def test_escapes_are_refused_with_field_and_rule(guarded, pki, docker_cli, flags, field) -> None:
    port, _ = guarded
    result = run(docker_cli, tls_client_env(pki, port, "builder"), *flags, BUSYBOX_IMAGE, "true")
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "Error response from daemon: dockguard refused POST /containers/create for builder" in err
    assert field in err
    assert "rule: guard" in err


def test_bind_under_an_allowed_root_passes_and_outside_is_refused(guarded, pki, docker_cli, allowed_root) -> None:
    port, _ = guarded
    env = tls_client_env(pki, port, "deployer")
    ok = run(docker_cli, env, "-v", f"{allowed_root}/data:/data:ro", BUSYBOX_IMAGE, "cat", "/data/hello.txt")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == b"from an allowed root\n"
    outside = run(docker_cli, env, "-v", f"{allowed_root.parent}:/up", BUSYBOX_IMAGE, "true")
    assert "HostConfig.Binds[0]" in outside.stderr.decode()
    escape = run(docker_cli, env, "-v", f"{allowed_root}/data/../..:/up", BUSYBOX_IMAGE, "true")
    assert escape.returncode != 0 and b"dockguard refused" in escape.stderr


def test_exec_as_root_is_refused_where_the_group_asks_for_non_root(guarded, pki, docker_cli, dockerd) -> None:
    port, _ = guarded
    env = tls_client_env(pki, port, "shell")
    c = "dg-guard-" + uuid.uuid4().hex[:8]
    assert (
        docker_cli(
            ["run", "-d", "--name", c, "--network", "none", "--user", "nobody", BUSYBOX_IMAGE, "sleep", "60"], env=env
        ).returncode
        == 0
    )
    try:
        # numeric UID:GID only: a name could map to uid 0 in the image's /etc/passwd
        as_nobody = docker_cli(["exec", "-u", "65534:65534", c, "sh", "-c", "id -u; id -g"], env=env)
        assert as_nobody.stdout == b"65534\n65534\n", as_nobody.stderr
        # a UID alone runs in group 0 where the image has no passwd entry for it
        direct = docker_cli(["exec", "-u", "1000", c, "id", "-g"], env={"DOCKER_HOST": dockerd.url})
        assert direct.stdout == b"0\n", direct.stderr
        uid_only = docker_cli(["exec", "-u", "1000", c, "id", "-g"], env=env)
        assert uid_only.returncode != 0 and b"without a group" in uid_only.stderr, uid_only
        by_name = docker_cli(["exec", "-u", "nobody", c, "id", "-u"], env=env)
        assert by_name.returncode != 0 and b"dockguard refused" in by_name.stderr
        as_root = docker_cli(["exec", "-u", "0", c, "id"], env=env)
        assert as_root.returncode != 0
        assert "dockguard refused POST /containers/" in as_root.stderr.decode()
        assert "User" in as_root.stderr.decode()
    finally:
        docker_cli(["rm", "-f", c], env=env)


def test_oversized_inspected_body_gets_413(guarded, pki, docker_cli) -> None:
    port, guard = guarded
    env = tls_client_env(pki, port, "builder")
    result = run(docker_cli, env, "--label", "big=" + "x" * 70000, BUSYBOX_IMAGE, "true")
    assert result.returncode != 0
    assert "may be at most 65536 bytes" in result.stderr.decode()
    assert "refuse builder POST /v1." in guard.log() and "limits.max_inspected_body" in guard.log()


@pytest.fixture
def sdk(guarded, pki, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    port, _ = guarded
    cert_dir = pki.client("builder")
    tls = docker.tls.TLSConfig(
        client_cert=(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem")),
        ca_cert=str(cert_dir / "ca.pem"),
        verify=True,
    )
    client = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, timeout=60)
    yield client
    client.close()


def test_docker_py_is_guarded_the_same_way(sdk) -> None:
    assert sdk.containers.run(BUSYBOX_IMAGE, ["echo", "sdk"], network_mode="none", remove=True) == b"sdk\n"
    for kwargs, field in (
        ({"privileged": True}, "HostConfig.Privileged"),
        ({"volumes": {"/": {"bind": "/host", "mode": "rw"}}}, "HostConfig.Binds[0]"),
        ({"mounts": [docker.types.Mount("/host", "/", type="bind")]}, "HostConfig.Mounts[0]"),
        ({"pid_mode": "host"}, "HostConfig.PidMode"),
        ({"cap_add": ["SYS_ADMIN"]}, "HostConfig.CapAdd"),
    ):
        with pytest.raises(docker.errors.APIError) as refused:
            sdk.containers.run(BUSYBOX_IMAGE, ["true"], network_mode="none", remove=True, **kwargs)
        assert refused.value.status_code == 403
        assert field in refused.value.explanation


def test_old_api_start_with_a_host_config_is_refused(sdk, guarded) -> None:
    """
    dockerd up to 24 applies a HostConfig sent to start on API < 1.24: that
    would skip every check on create, so a body on start is refused.
    """
    port, _ = guarded
    container = sdk.containers.create(BUSYBOX_IMAGE, ["true"], network_mode="none")
    try:
        response = sdk.api.post(
            f"https://127.0.0.1:{port}/v1.23/containers/{container.id}/start",
            json={"Privileged": True, "Binds": ["/:/host"]},
        )
        assert response.status_code == 403
        assert "takes no body" in response.json()["message"]
        container.reload()
        assert container.status == "created"
        plain = sdk.api.post(f"https://127.0.0.1:{port}/v1.41/containers/{container.id}/start")
        assert plain.status_code == 204
    finally:
        container.remove(force=True)


def test_binds_from_a_root_are_read_only_unless_the_group_allows_writes(guarded, pki, docker_cli, allowed_root):
    port, _ = guarded
    rw = run(
        docker_cli, tls_client_env(pki, port, "deployer"), "-v", f"{allowed_root}/data:/data", BUSYBOX_IMAGE, "true"
    )
    assert rw.returncode != 0 and b"bind_write" in rw.stderr, rw.stderr
    mount = run(
        docker_cli,
        tls_client_env(pki, port, "deployer"),
        "--mount",
        f"type=bind,src={allowed_root}/data,dst=/data",
        BUSYBOX_IMAGE,
        "true",
    )
    assert mount.returncode != 0 and b"bind_write" in mount.stderr, mount.stderr


def test_a_link_planted_in_a_bind_root_does_not_reach_the_host(guarded, pki, docker_cli, dockerd, allowed_root):
    """Issue 12 class 2: plant ``esc -> /`` through a writable bind, then bind ``root/…/esc``."""
    port, _ = guarded
    env = tls_client_env(pki, port, "planter")
    plot = allowed_root / ("plot-" + uuid.uuid4().hex[:6])
    plot.mkdir()
    holder = "dg-plant-" + uuid.uuid4().hex[:8]
    assert (
        docker_cli(
            ["run", "-d", "--name", holder, "--network", "none", "-v", f"{plot}:/plot", BUSYBOX_IMAGE, "sleep", "600"],
            env=env,
        ).returncode
        == 0
    )
    try:
        # The link is written through dockguard, with docker cp (PUT /containers/{id}/archive).
        link_dir = plot.parent / (plot.name + "-src")
        link_dir.mkdir()
        (link_dir / "esc").symlink_to("/")
        cp = docker_cli(["cp", "-a", f"{link_dir}/esc", f"{holder}:/plot/esc"], env=env)
        assert cp.returncode == 0, cp.stderr
        assert os.readlink(plot / "esc") == "/"
        # On the daemon alone, binding root/…/esc gives the host's /.
        direct = docker_cli(
            ["run", "--rm", "--network", "none", "-v", f"{plot}/esc:/h:ro", BUSYBOX_IMAGE, "cat", "/h/etc/os-release"],
            env={"DOCKER_HOST": dockerd.url},
        )
        assert b"Debian" in direct.stdout, direct.stderr
        for source in (f"{plot}/esc", f"{plot}/esc/etc", f"{plot}/esc/dg-new-dir"):
            refused = run(docker_cli, env, "-v", f"{source}:/h:ro", BUSYBOX_IMAGE, "ls", "/h")
            assert refused.returncode != 0 and b"which the host resolves to" in refused.stderr, refused.stderr
        assert not os.path.exists("/dg-new-dir")
        volume = docker_cli(
            [
                "volume",
                "create",
                "-o",
                "type=none",
                "-o",
                "o=bind,ro",
                "-o",
                f"device={plot}/esc",
                "dg-plant-" + uuid.uuid4().hex[:6],
            ],
            env=env,
        )
        assert volume.returncode != 0 and b"which the host resolves to" in volume.stderr, volume.stderr
        # the plain bind of the plot still works
        ok = run(docker_cli, env, "-v", f"{plot}:/p:ro", BUSYBOX_IMAGE, "true")
        assert ok.returncode == 0, ok.stderr
    finally:
        docker_cli(["rm", "-f", holder], env=env)
