"""
End to end on a single-node Swarm (a daemon of its own, so the session's
daemon stays out of swarm mode): the host network by ID, the join tokens,
and rollbacks to a spec dockguard never judged (security round 3).

Each attack is first shown on the daemon alone, so each test fails on a relay
that lets it through.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from harness.dockerd import PrivateDaemon, api_request, make_busybox_image
from harness.guard import free_port, start_with_config
from harness.rawhttp import Guarded, send

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json"}


def _has_link(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    # Swarm mode makes a docker_gwbridge bridge in the host's network
    # namespace, which the daemon leaves behind: remove it if it is ours.
    gwbridge_before = _has_link("docker_gwbridge")
    daemon = PrivateDaemon(keep_log_to=tmp_path_factory.getbasetemp() / "dockerd-swarm.log")
    daemon.start()
    try:
        make_busybox_image(daemon.socket_path, "busybox:local")
        status, out = api_request(
            daemon.socket_path,
            "POST",
            "/swarm/init",
            json.dumps({"ListenAddr": "127.0.0.1:0", "AdvertiseAddr": "127.0.0.1"}).encode(),
            headers=JSON,
            timeout=60,
        )
        assert status == 200, out
        yield daemon
    finally:
        daemon.stop()
        if not gwbridge_before and _has_link("docker_gwbridge"):
            subprocess.run(["ip", "link", "delete", "docker_gwbridge"], check=False)


@pytest.fixture(scope="module")
def deployer(tmp_path_factory, swarm):
    """services = "write", every guard closed; swarm = "read"."""
    work = tmp_path_factory.mktemp("swarm-guard")
    port = free_port()
    guard = start_with_config(
        work,
        swarm.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=deployer"

[identities]
deployer = ["deploy"]

[groups.deploy]
sections = {{ services = "write", containers = "write", swarm = "read", networks = "read", ping = "read" }}
""",
        wait_for=("127.0.0.1", port),
    )
    g = Guarded(guard, port)
    yield g
    g.assert_clean_log()
    guard.stop()


def host_network_id(daemon) -> str:
    status, out = api_request(daemon.socket_path, "GET", "/networks/host")
    assert status == 200, out
    return json.loads(out)["Id"]


def services(daemon) -> list[dict]:
    status, out = api_request(daemon.socket_path, "GET", "/services")
    assert status == 200, out
    return json.loads(out)


def service_spec(name: str, networks: list[dict] | None = None, top_level: bool = False) -> dict:
    spec: dict = {
        "Name": name,
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox:local", "Command": ["sleep", "600"]}},
    }
    if networks is not None:
        if top_level:
            spec["Networks"] = networks
        else:
            spec["TaskTemplate"]["Networks"] = networks
    return spec


def remove_service(daemon, name: str) -> None:
    api_request(daemon.socket_path, "DELETE", f"/services/{name}")


def test_the_daemon_puts_a_service_on_the_host_network_by_id_prefix(swarm) -> None:
    name = "dg-hostnet-" + uuid.uuid4().hex[:6]
    spec = service_spec(name, [{"Target": host_network_id(swarm)[:4]}])
    status, out = api_request(swarm.socket_path, "POST", "/services/create", json.dumps(spec).encode(), headers=JSON)
    try:
        assert status == 201, out
        inspected = json.loads(api_request(swarm.socket_path, "GET", f"/services/{name}")[1])
        target = inspected["Spec"]["TaskTemplate"]["Networks"][0]["Target"]
        status, out = api_request(swarm.socket_path, "GET", f"/networks/{target}")
        assert status == 200 and json.loads(out)["Name"] == "host", out
    finally:
        remove_service(swarm, name)


SHAPES = {
    "4-character prefix": (lambda hid: [{"Target": hid[:4]}], False),
    "12-character prefix": (lambda hid: [{"Target": hid[:12]}], False),
    "full ID": (lambda hid: [{"Target": hid}], False),
    "upper-case ID": (lambda hid: [{"Target": hid[:12].upper()}], False),
    "deprecated top-level Networks": (lambda hid: [{"Target": hid[:6]}], True),
    "by name": (lambda hid: [{"Target": "host"}], False),
}


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_a_service_cannot_join_the_host_network(deployer, swarm, shape) -> None:
    make_networks, top_level = SHAPES[shape]
    name = "dg-hostnet-" + uuid.uuid4().hex[:6]
    spec = service_spec(name, make_networks(host_network_id(swarm)), top_level)
    try:
        answer = send(deployer, "POST", "/v1.41/services/create", json.dumps(spec).encode(), JSON)
        assert answer.status == 403, answer
        assert "host_namespaces" in answer.json()["message"]
    finally:
        assert name not in {s["Spec"]["Name"] for s in services(swarm)}
        remove_service(swarm, name)


def test_a_container_cannot_join_the_host_network_by_id(deployer, swarm) -> None:
    hid = host_network_id(swarm)
    for body in (
        {"Image": "busybox:local", "HostConfig": {"NetworkMode": hid[:5]}},
        {
            "Image": "busybox:local",
            "HostConfig": {"NetworkMode": "none"},
            "NetworkingConfig": {"EndpointsConfig": {"mynet": {"NetworkID": hid}}},
        },
    ):
        answer = send(deployer, "POST", "/v1.41/containers/create", json.dumps(body).encode(), JSON)
        assert answer.status == 403 and "network ID" in answer.json()["message"], answer


def test_a_plain_service_is_created(deployer, swarm) -> None:
    name = "dg-plain-" + uuid.uuid4().hex[:6]
    try:
        answer = send(deployer, "POST", "/v1.41/services/create", json.dumps(service_spec(name)).encode(), JSON)
        assert answer.status == 201, answer
    finally:
        remove_service(swarm, name)


def test_swarm_read_does_not_hand_out_the_join_tokens(deployer, swarm) -> None:
    status, out = api_request(swarm.socket_path, "GET", "/swarm")
    assert status == 200 and json.loads(out)["JoinTokens"]["Manager"].startswith("SWMTKN-")
    answer = send(deployer, "GET", "/v1.41/swarm")
    assert answer.status == 403 and b"SWMTKN" not in answer.body, answer
    # what docker info shows still works
    assert send(deployer, "GET", "/v1.41/services").status == 200


def test_rollback_to_an_unjudged_spec_is_refused(deployer, swarm) -> None:
    name = "dg-rollback-" + uuid.uuid4().hex[:6]
    # An operator's earlier spec with / bound, then a harmless one, made on the daemon directly.
    bad = service_spec(name)
    bad["TaskTemplate"]["ContainerSpec"]["Mounts"] = [{"Type": "bind", "Source": "/", "Target": "/host"}]
    status, out = api_request(swarm.socket_path, "POST", "/services/create", json.dumps(bad).encode(), headers=JSON)
    assert status == 201, out
    try:
        service = json.loads(api_request(swarm.socket_path, "GET", f"/services/{name}")[1])
        status, out = api_request(
            swarm.socket_path,
            "POST",
            f"/services/{name}/update?version={service['Version']['Index']}",
            json.dumps(service_spec(name)).encode(),
            headers=JSON,
        )
        assert status == 200, out
        service = json.loads(api_request(swarm.socket_path, "GET", f"/services/{name}")[1])
        assert not service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts")
        answer = send(
            deployer,
            "POST",
            f"/v1.41/services/{name}/update?version={service['Version']['Index']}&rollback=previous",
            json.dumps(service_spec(name)).encode(),
            JSON,
        )
        assert answer.status == 403 and "rollback" in answer.json()["message"], answer
        time.sleep(0.2)
        service = json.loads(api_request(swarm.socket_path, "GET", f"/services/{name}")[1])
        assert not service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts"), "the rollback happened"
    finally:
        remove_service(swarm, name)


def test_a_service_cannot_mount_another_services_secret(deployer, swarm) -> None:
    import base64

    secret_name = "dg-secret-" + uuid.uuid4().hex[:6]
    status, out = api_request(
        swarm.socket_path,
        "POST",
        "/secrets/create",
        json.dumps({"Name": secret_name, "Data": base64.b64encode(b"hunter2").decode()}).encode(),
        headers=JSON,
    )
    assert status == 201, out
    secret_id = json.loads(out)["ID"]
    name = "dg-thief-" + uuid.uuid4().hex[:6]
    for field, ref in (
        ("Secrets", {"SecretID": secret_id, "SecretName": secret_name}),
        ("Configs", {"ConfigID": secret_id, "ConfigName": secret_name}),
    ):
        spec = service_spec(name)
        spec["TaskTemplate"]["ContainerSpec"][field] = [
            {**ref, "File": {"Name": "s", "UID": "0", "GID": "0", "Mode": 292}}
        ]
        try:
            answer = send(deployer, "POST", "/v1.41/services/create", json.dumps(spec).encode(), JSON)
            assert answer.status == 403 and "swarm_secrets" in answer.json()["message"], answer
            assert name not in {s["Spec"]["Name"] for s in services(swarm)}
        finally:
            remove_service(swarm, name)
    api_request(swarm.socket_path, "DELETE", f"/secrets/{secret_id}")


def swarm_host_network_id(daemon) -> str:
    """The swarm's own ID for the host network (base 36), as a service made on the daemon shows it."""
    name = "dg-hostref-" + uuid.uuid4().hex[:6]
    status, out = api_request(
        daemon.socket_path,
        "POST",
        "/services/create",
        json.dumps(service_spec(name, [{"Target": "host"}])).encode(),
        headers=JSON,
    )
    assert status == 201, out
    try:
        service = json.loads(api_request(daemon.socket_path, "GET", f"/services/{name}")[1])
        return service["Spec"]["TaskTemplate"]["Networks"][0]["Target"]
    finally:
        remove_service(daemon, name)


def test_a_swarm_id_prefix_of_the_host_network_is_refused(tmp_path_factory, swarm) -> None:
    swarm_id = swarm_host_network_id(swarm)
    assert not all(c in "0123456789abcdef" for c in swarm_id)  # base 36: the hexadecimal rule alone misses it
    # On the daemon alone, a prefix of it puts a service on the host network.
    name = "dg-b36-" + uuid.uuid4().hex[:6]
    status, out = api_request(
        swarm.socket_path,
        "POST",
        "/services/create",
        json.dumps(service_spec(name, [{"Target": swarm_id[:4]}])).encode(),
        headers=JSON,
    )
    try:
        assert status == 201, out
        target = json.loads(api_request(swarm.socket_path, "GET", f"/services/{name}")[1])["Spec"]["TaskTemplate"][
            "Networks"
        ][0]["Target"]
        assert target == swarm_id
    finally:
        remove_service(swarm, name)
    # Through dockguard, a group that may join any network but not the host's is refused.
    work = tmp_path_factory.mktemp("swarm-anynet")
    port = free_port()
    guard = start_with_config(
        work,
        swarm.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=anynet"

[identities]
anynet = ["anynet"]

[groups.anynet]
sections = {{ services = "write", ping = "read" }}
guards = {{ networks = ["*"] }}
""",
        wait_for=("127.0.0.1", port),
    )
    try:
        g = Guarded(guard, port)
        for prefix in (swarm_id[:4], swarm_id[:1], swarm_id):
            name = "dg-b36-" + uuid.uuid4().hex[:6]
            answer = send(
                g, "POST", "/v1.41/services/create", json.dumps(service_spec(name, [{"Target": prefix}])).encode(), JSON
            )
            try:
                assert answer.status == 403 and "host_namespaces" in answer.json()["message"], answer
                assert name not in {s["Spec"]["Name"] for s in services(swarm)}
            finally:
                remove_service(swarm, name)
        g.assert_clean_log()
    finally:
        guard.stop()
