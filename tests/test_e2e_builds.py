"""
End to end: builds, tag writes and plugin installs under groups whose guards
are closed.  Each refusal is checked on the daemon too: no image, tag or
plugin appears.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid

import pytest

import docker
from conftest import BUSYBOX_IMAGE, tls_client_env, tls_listener
from harness.dockerd import api_request
from harness.guard import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, dockerd, pki):
    from harness.guard import start_with_config

    work = tmp_path_factory.mktemp("builds")
    port = free_port()
    guard = start_with_config(
        work,
        dockerd.socket_path,
        f"""
{tls_listener(pki, port)}
[identities]
imager = ["imager"]
ci = ["ci"]

[groups.imager]
description = "builds, tags and installs plugins; no guard opened"
sections = {{ images = "write", plugins = "write", containers = "read", ping = "read", version = "read" }}
actions = ["image.build"]  # /build, and BuildKit's /session and /grpc

[groups.ci]
extends = ["imager"]
guards = {{ image_names = ["ci/*"] }}
""",
        wait_for=("127.0.0.1", port),
    )
    yield port, guard
    guard.stop()


def sdk_for(pki, port: int, identity: str) -> docker.DockerClient:
    cert_dir = pki.client(identity)
    tls = docker.tls.TLSConfig(
        client_cert=(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem")),
        ca_cert=str(cert_dir / "ca.pem"),
        verify=True,
    )
    return docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, timeout=60)


@pytest.fixture
def clients(guarded, pki, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    port, _ = guarded
    made = {name: sdk_for(pki, port, name) for name in ("imager", "ci")}
    yield port, made
    for client in made.values():
        client.close()


def daemon_json(dockerd, path: str):
    status, body = api_request(dockerd.socket_path, "GET", path)
    assert status == 200, body
    return json.loads(body)


def image_ids(dockerd) -> set[str]:
    return {image["Id"] for image in daemon_json(dockerd, "/images/json?all=1")}


def tags(dockerd) -> set[str]:
    return {tag for image in daemon_json(dockerd, "/images/json") for tag in image.get("RepoTags") or ()}


def context_tar(dockerfile: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


BUILD_CONTEXT = context_tar(f"FROM {BUSYBOX_IMAGE}\nRUN echo {uuid.uuid4().hex} > /stamp\n")


def post(client: docker.DockerClient, port: int, path: str, **kwargs):
    headers = kwargs.pop("headers", {})
    return client.api.post(f"https://127.0.0.1:{port}/v1.41{path}", headers=headers, **kwargs)


def test_host_network_build_is_refused_and_builds_nothing(clients, dockerd) -> None:
    port, sdk = clients
    before = image_ids(dockerd)
    response = post(
        sdk["ci"],
        port,
        "/build?networkmode=host&t=ci/hostnet&rm=1",
        data=BUILD_CONTEXT,
        headers={"Content-Type": "application/x-tar"},
    )
    assert response.status_code == 403
    message = response.json()["message"]
    assert "(query)" not in message  # the reason reads as a sentence
    assert "networkmode is host: sharing the host's network namespace is not allowed" in message
    assert "rule: guard host_namespaces;" in message
    assert image_ids(dockerd) == before
    # the same group builds with the network off, and writes the ci/ tag it may write
    response = post(
        sdk["ci"],
        port,
        "/build?networkmode=none&t=ci/built:1&rm=1",
        data=BUILD_CONTEXT,
        headers={"Content-Type": "application/x-tar"},
    )
    assert response.status_code == 200, response.text
    assert "Successfully tagged ci/built:1" in response.text
    try:
        assert "ci/built:1" in tags(dockerd)
    finally:
        api_request(dockerd.socket_path, "DELETE", "/images/ci/built:1?force=1")


def test_build_tagging_victim_is_refused(clients, dockerd) -> None:
    port, sdk = clients
    before = image_ids(dockerd)
    response = post(
        sdk["ci"],
        port,
        "/build?networkmode=none&t=victim:latest",
        data=BUILD_CONTEXT,
        headers={"Content-Type": "application/x-tar"},
    )
    assert response.status_code == 403
    assert "docker.io/library/victim" in response.json()["message"]
    assert "rule: guard image_names;" in response.json()["message"]
    assert image_ids(dockerd) == before


def test_legacy_cli_build_with_host_network_is_refused(guarded, pki, docker_cli, tmp_path, dockerd) -> None:
    port, _ = guarded
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_IMAGE}\nRUN true\n")
    env = {**tls_client_env(pki, port, "ci"), "DOCKER_BUILDKIT": "0"}
    before = image_ids(dockerd)
    result = docker_cli(["build", "--network", "host", "-t", "ci/cli", str(ctx)], env=env, timeout=120)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "dockguard refused POST /build for ci" in err and "host_namespaces" in err
    assert image_ids(dockerd) == before


def test_buildkit_needs_its_guard(guarded, pki, docker_cli, tmp_path, dockerd) -> None:
    """The 20.10 CLI's BuildKit opens /session, which dockguard cannot read: refused without buildkit."""
    port, guard = guarded
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_IMAGE}\nRUN true\n")
    env = {**tls_client_env(pki, port, "ci"), "DOCKER_BUILDKIT": "1"}
    before = image_ids(dockerd)
    result = docker_cli(
        ["build", "--network", "none", "-t", "ci/bk", str(ctx)], env=env, binary="/usr/bin/docker", timeout=120
    )
    assert result.returncode != 0
    # The CLI opens /session and posts the build at once; whichever refusal
    # it reads first is what it shows: the upgrade's bare status, or the
    # build's message naming the rule.  The log names the rule for both.
    err = result.stderr.decode()
    assert "received 403" in err or ("dockguard refused POST /build for ci" in err and "guard buildkit" in err), err
    denied = [
        line
        for line in guard.log().splitlines()
        if "deny ci POST /session" in line or ("deny ci POST /" in line and "version=2" in line)
    ]
    assert denied and all("guard buildkit" in line for line in denied), denied
    assert image_ids(dockerd) == before


@pytest.mark.parametrize("identity", ["imager", "ci"])
def test_tagging_over_victim_is_refused(clients, dockerd, identity) -> None:
    port, sdk = clients
    before = tags(dockerd)
    assert "victim:latest" not in before
    response = post(sdk[identity], port, f"/images/{BUSYBOX_IMAGE}/tag?repo=victim&tag=latest")
    assert response.status_code == 403
    message = response.json()["message"]
    assert "docker.io/library/victim" in message and "rule: guard image_names;" in message
    assert tags(dockerd) == before


def test_tagging_into_the_allowed_names(clients, dockerd) -> None:
    port, sdk = clients
    refused = post(sdk["imager"], port, f"/images/{BUSYBOX_IMAGE}/tag?repo=ci/x&tag=latest")
    assert refused.status_code == 403 and "may write no image names" in refused.json()["message"]
    assert "ci/x:latest" not in tags(dockerd)
    allowed = post(sdk["ci"], port, f"/images/{BUSYBOX_IMAGE}/tag?repo=ci/x&tag=latest")
    assert allowed.status_code == 201, allowed.text
    try:
        assert "ci/x:latest" in tags(dockerd)
        # the SDK's own call, every spelling of the name judged the same
        sdk["ci"].images.get(BUSYBOX_IMAGE).tag("docker.io/ci/y", "2")
        assert "ci/y:2" in tags(dockerd)
        with pytest.raises(docker.errors.APIError) as caught:
            sdk["ci"].images.get(BUSYBOX_IMAGE).tag("index.docker.io/library/victim")
        assert caught.value.status_code == 403
    finally:
        for tag in ("ci/x:latest", "ci/y:2"):
            api_request(dockerd.socket_path, "DELETE", f"/images/{tag}")
    assert "victim:latest" not in tags(dockerd)


def test_load_is_refused_without_every_name(clients, dockerd) -> None:
    port, sdk = clients
    before = tags(dockerd)
    response = post(
        sdk["ci"], port, "/images/load?quiet=1", data=b"\0" * 1024, headers={"Content-Type": "application/x-tar"}
    )
    assert response.status_code == 403
    assert 'needs "*" in image_names' in response.json()["message"]
    assert tags(dockerd) == before


def test_plugin_pull_with_privileges_is_refused_before_any_pull(clients, dockerd, guarded) -> None:
    port, sdk = clients
    _, guard = guarded
    assert daemon_json(dockerd, "/plugins") == []
    privileges = [
        {"Name": "network", "Description": "", "Value": ["host"]},
        {"Name": "capabilities", "Description": "", "Value": ["CAP_SYS_ADMIN"]},
    ]
    response = post(sdk["ci"], port, "/plugins/pull?remote=vieux/sshfs:latest&name=sshfs", json=privileges)
    assert response.status_code == 403
    message = response.json()["message"]
    assert "network, capabilities" in message and "rule: guard privileged" in message
    assert "deny ci POST /v1.41/plugins/pull" in guard.log()
    assert daemon_json(dockerd, "/plugins") == []
    create = post(
        sdk["ci"], port, "/plugins/create?name=mine", data=b"\0" * 1024, headers={"Content-Type": "application/x-tar"}
    )
    assert create.status_code == 403 and "rule: guard privileged;" in create.json()["message"]
    assert daemon_json(dockerd, "/plugins") == []
