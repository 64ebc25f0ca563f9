"""
End to end, security round 3 (networks): a group that may write networks or
create containers does not thereby get the host's interfaces (macvlan,
ipvlan, a host bridge) or the operator's networks (where an alias takes over
the DNS name of a service such as dockguard itself).

Every effect is judged by the daemon's state (which networks exist with which
driver and parent, which networks a container is on), never by traffic. The
networks these tests create are internal bridges on /28 subnets that
overlap none of the host's routes (checked before each is made), removed at
the end; the macvlan the daemon is shown to accept
has a dummy interface of the test's own as its parent and no container.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import uuid

import pytest

from harness.dockerd import api_request
from harness.guard import free_port, start_with_config
from harness.rawhttp import Guarded, send

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json"}


def _hex() -> str:
    return uuid.uuid4().hex[:8]


def daemon(dockerd, method: str, path: str, body: dict | None = None) -> tuple[int, dict | list | None]:
    status, out = api_request(
        dockerd.socket_path, method, path, json.dumps(body).encode() if body is not None else None, headers=JSON
    )
    return status, (json.loads(out) if out.strip() else None)


def _host_routes() -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes, default route included (read from /proc/net/route)."""
    routes = []
    with open("/proc/net/route") as table:
        next(table)
        for line in table:
            fields = line.split()
            dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
            mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
            gateway = ipaddress.IPv4Address(int(fields[2], 16).to_bytes(4, "little"))
            routes.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
            if int(gateway):
                routes.append(ipaddress.IPv4Network(f"{gateway}/32"))
    return routes


def _free_subnet() -> ipaddress.IPv4Network:
    """A /28 in 172.29.0.0/16 that overlaps none of the host's routes (nor its gateway)."""
    taken = [route for route in _host_routes() if route.prefixlen > 0]
    for candidate in ipaddress.IPv4Network("172.29.0.0/16").subnets(new_prefix=28):
        if not any(route.overlaps(candidate) for route in taken):
            return candidate
    pytest.skip("no /28 in 172.29.0.0/16 is free of the host's routes")


def make_internal_network(dockerd, name: str, through=None) -> str:
    """An internal bridge named ``name`` (on the daemon, or created ``through`` dockguard); its ID.

    Made on the daemon, its subnet is one that overlaps none of the host's
    routes, chosen before the network exists (the host's own network and its
    gateway stay untouched); through dockguard, which refuses a bridge subnet
    of the caller's choice, the daemon picks one (it avoids the host's
    routes). Either is checked again once the daemon made it.
    """
    before = [route for route in _host_routes() if route.prefixlen > 0]
    body: dict = {"Name": name, "Driver": "bridge", "Internal": True, "CheckDuplicate": True}
    if through is None:
        body["IPAM"] = {"Config": [{"Subnet": str(_free_subnet())}]}
        status, out = daemon(dockerd, "POST", "/networks/create", body)
        assert status == 201, out
    else:
        answer = send(through, "POST", "/v1.41/networks/create", json.dumps(body).encode(), JSON)
        assert answer.status == 201, answer
    status, inspected = daemon(dockerd, "GET", f"/networks/{name}")
    assert status == 200, inspected
    for config in inspected["IPAM"]["Config"]:
        subnet = ipaddress.ip_network(config["Subnet"])
        clash = [route for route in before if route.version == subnet.version and route.overlaps(subnet)]
        if clash:
            daemon(dockerd, "DELETE", f"/networks/{name}")
            pytest.fail(f"the daemon gave {name} the subnet {subnet}, which overlaps the host's {clash}")
    return inspected["Id"]


def remove(dockerd, kind: str, name: str) -> None:
    api_request(dockerd.socket_path, "DELETE", f"/{kind}/{name}" + ("?force=1" if kind == "containers" else ""))


def run_on(dockerd, name: str, network: str, start: bool = True) -> None:
    status, out = daemon(
        dockerd,
        "POST",
        f"/containers/create?name={name}",
        {"Image": "busybox:local", "Cmd": ["sleep", "600"], "HostConfig": {"NetworkMode": network}},
    )
    assert status == 201, out
    if start:
        status, out = daemon(dockerd, "POST", f"/containers/{name}/start")
        assert status == 204, out


def networks_of(dockerd, container: str) -> dict:
    status, inspected = daemon(dockerd, "GET", f"/containers/{container}/json")
    assert status == 200, inspected
    return inspected["NetworkSettings"]["Networks"]


def container_exists(dockerd, name: str) -> bool:
    return daemon(dockerd, "GET", f"/containers/{name}/json")[0] == 200


@pytest.fixture(scope="module")
def guards(tmp_path_factory, dockerd):
    """netwriter: networks = "write", every guard closed; ci: containers and networks, networks = ["dg-ci-*"]."""
    writer_port, ci_port = free_port(), free_port()
    guard = start_with_config(
        tmp_path_factory.mktemp("networks"),
        dockerd.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{writer_port}?identity=netwriter"

[[listeners]]
url = "tcp://127.0.0.1:{ci_port}?identity=ci"

[identities]
netwriter = ["netwriter"]
ci = ["ci"]

[groups.netwriter]
description = "writes networks; every guard closed"
sections = {{ networks = "write", ping = "read" }}

[groups.ci]
description = "CI jobs on their own networks"
sections = {{ containers = "write", networks = "write", ping = "read" }}
guards = {{ networks = ["dg-ci-*"] }}
""",
        wait_for=("127.0.0.1", ci_port),
    )
    writer, ci = Guarded(guard, writer_port), Guarded(guard, ci_port)
    yield writer, ci
    writer.assert_clean_log()
    guard.stop()


@pytest.fixture(scope="module")
def operator(dockerd):
    """The operator's internal network, with the operator's dockguard on it (made on the daemon directly)."""
    network, container = "dg-internal-" + _hex(), "dg-op-" + _hex()
    make_internal_network(dockerd, network)
    try:
        status, out = daemon(
            dockerd,
            "POST",
            f"/containers/create?name={container}",
            {
                "Image": "busybox:local",
                "Cmd": ["sleep", "600"],
                "HostConfig": {"NetworkMode": network},
                "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": ["dockguard"]}}},
            },
        )
        assert status == 201, out
        status, out = daemon(dockerd, "POST", f"/containers/{container}/start")
        assert status == 204, out
        yield network, container
    finally:
        remove(dockerd, "containers", container)
        remove(dockerd, "networks", network)


@pytest.fixture(scope="module")
def ci_networks(dockerd):
    """Two networks the ci group may use (made on the daemon directly)."""
    names = ["dg-ci-" + _hex(), "dg-ci-" + _hex()]
    made = []
    try:
        for name in names:
            make_internal_network(dockerd, name)
            made.append(name)
        yield names
    finally:
        for name in made:
            remove(dockerd, "networks", name)


@pytest.fixture
def dummy_parent():
    """An interface of the test's own, down, without an address (a dummy, or one end of a
    veth pair whose other end is the test's too): a macvlan parent that reaches no network."""
    ip = shutil.which("ip") or "/sbin/ip"
    name = "dg" + _hex()
    made = subprocess.run([ip, "link", "add", name, "type", "dummy"], capture_output=True)
    if made.returncode != 0:
        made = subprocess.run(
            [ip, "link", "add", name, "type", "veth", "peer", "name", name + "p"], capture_output=True
        )
    if made.returncode != 0:
        pytest.skip(f"cannot create a dummy or veth interface: {made.stderr.decode().strip()}")
    try:
        yield name
    finally:
        subprocess.run([ip, "link", "delete", name], capture_output=True)


# -- network create: drivers and options that reach the host's interfaces -------------------------


def test_the_daemon_makes_a_macvlan_on_a_host_interface(dockerd, dummy_parent) -> None:
    # The attack, on the daemon alone: any caller with network.create gets a
    # network on a host interface (a container on it would get an address
    # on that interface's LAN). No container joins this one.
    name = "dg-lan-" + _hex()
    status, out = daemon(
        dockerd, "POST", "/networks/create", {"Name": name, "Driver": "macvlan", "Options": {"parent": dummy_parent}}
    )
    try:
        assert status == 201, out
        status, inspected = daemon(dockerd, "GET", f"/networks/{name}")
        assert inspected["Driver"] == "macvlan" and inspected["Options"]["parent"] == dummy_parent
    finally:
        remove(dockerd, "networks", name)


HOST_INTERFACE_CREATES = {
    "macvlan": ({"Driver": "macvlan", "Options": {"parent": "{parent}"}}, "Driver", "network_drivers"),
    "ipvlan": ({"Driver": "ipvlan", "Options": {"parent": "{parent}"}}, "Driver", "network_drivers"),
    "bridge on a host bridge": (
        {"Driver": "bridge", "Options": {"com.docker.network.bridge.name": "dgnobridge0"}},
        "Options.com.docker.network.bridge.name",
        "network_drivers",
    ),
    "config from another network": (
        {"Driver": "macvlan", "ConfigFrom": {"Network": "lan-config"}},
        "Driver",
        "network_drivers",
    ),
    "plain bridge, name not the group's": ({"Driver": "bridge"}, "Name", "networks"),
    "bridge with a subnet of its choice": (
        {"Driver": "bridge", "IPAM": {"Config": [{"Subnet": "{subnet}"}]}},
        "IPAM.Config[0].Subnet",
        "network_drivers",
    ),
}


@pytest.mark.parametrize("shape", HOST_INTERFACE_CREATES, ids=list(HOST_INTERFACE_CREATES))
def test_networks_write_with_closed_guards_makes_no_network(guards, dockerd, shape) -> None:
    writer, _ = guards
    body, field, guard = HOST_INTERFACE_CREATES[shape]
    name = "dg-lan-" + _hex()
    # "lo": the daemon refuses it as a macvlan parent, so nothing reaches a NIC even if this broke
    # (and the bridge named is one no host has: it would be a new one, removed below).
    # A subnet that overlaps none of the host's routes, so nothing changes on the host even if this broke.
    subnet = str(_free_subnet()) if "{subnet}" in json.dumps(body) else ""
    document = json.loads(json.dumps({"Name": name, **body}).replace("{parent}", "lo").replace("{subnet}", subnet))
    try:
        answer = send(writer, "POST", "/v1.41/networks/create", json.dumps(document).encode(), JSON)
        assert answer.status == 403, answer
        message = answer.json()["message"]
        assert f"dockguard refused POST /networks/create for netwriter: {field}" in message
        assert f"rule: guard {guard}" in message
        assert daemon(dockerd, "GET", f"/networks/{name}")[0] == 404
    finally:
        remove(dockerd, "networks", name)


# -- joining networks: create, connect, disconnect -------------------------------------------------


def _joins(operator, ci_networks) -> dict[str, tuple[dict, str]]:
    internal, _ = operator
    mine = ci_networks[0]
    return {
        "NetworkMode with an alias": (
            {
                "HostConfig": {"NetworkMode": internal},
                "NetworkingConfig": {"EndpointsConfig": {internal: {"Aliases": ["dockguard"]}}},
            },
            "HostConfig.NetworkMode",
        ),
        "an endpoint besides the group's network": (
            {
                "HostConfig": {"NetworkMode": mine},
                "NetworkingConfig": {"EndpointsConfig": {mine: {}, internal: {"Aliases": ["dockguard"]}}},
            },
            f"NetworkingConfig.EndpointsConfig.{internal}",
        ),
        "the group's network, NetworkID another's": (
            {
                "HostConfig": {"NetworkMode": mine},
                "NetworkingConfig": {"EndpointsConfig": {mine: {"NetworkID": internal, "Aliases": ["dockguard"]}}},
            },
            f"NetworkingConfig.EndpointsConfig.{mine}.NetworkID",
        ),
        "top-level NetworkMode (old API)": ({"NetworkMode": internal}, "NetworkMode"),
    }


JOIN_SHAPES = [
    "NetworkMode with an alias",
    "an endpoint besides the group's network",
    "the group's network, NetworkID another's",
    "top-level NetworkMode (old API)",
]


@pytest.mark.parametrize("shape", JOIN_SHAPES)
def test_a_container_cannot_join_the_operators_network(guards, dockerd, operator, ci_networks, shape) -> None:
    _, ci = guards
    body, field = _joins(operator, ci_networks)[shape]
    name = "dg-join-" + _hex()
    document = {"Image": "busybox:local", "Cmd": ["sleep", "600"], **body}
    version = "v1.23" if shape.startswith("top-level") else "v1.41"
    try:
        answer = send(ci, "POST", f"/{version}/containers/create?name={name}", json.dumps(document).encode(), JSON)
        assert answer.status == 403, answer
        message = answer.json()["message"]
        assert f"for ci: {field} joins the network {operator[0]}" in message
        assert "rule: guard networks" in message
        assert not container_exists(dockerd, name)
    finally:
        remove(dockerd, "containers", name)


def test_the_daemon_connects_a_running_container_with_an_alias(dockerd, operator, ci_networks) -> None:
    # The attack, on the daemon alone: network.connect puts any container on
    # any network, under the DNS name of the operator's service.
    internal, _ = operator
    name = "dg-conn-" + _hex()
    run_on(dockerd, name, ci_networks[0])
    try:
        status, out = daemon(
            dockerd,
            "POST",
            f"/networks/{internal}/connect",
            {"Container": name, "EndpointConfig": {"Aliases": ["dockguard"]}},
        )
        assert status == 200, out
        assert "dockguard" in networks_of(dockerd, name)[internal]["Aliases"]
    finally:
        remove(dockerd, "containers", name)


def test_connect_and_disconnect_of_the_operators_network_are_refused(guards, dockerd, operator, ci_networks) -> None:
    _, ci = guards
    internal, operators_container = operator
    name = "dg-conn-" + _hex()
    run_on(dockerd, name, ci_networks[0])
    try:
        body = json.dumps({"Container": name, "EndpointConfig": {"Aliases": ["dockguard"]}}).encode()
        answer = send(ci, "POST", f"/v1.41/networks/{internal}/connect", body, JSON)
        assert answer.status == 403, answer
        assert f"connects a container to the network {internal}" in answer.json()["message"]
        assert "rule: guard networks" in answer.json()["message"]
        assert set(networks_of(dockerd, name)) == {ci_networks[0]}
        # leaving: the operator's own container stays on its network
        body = json.dumps({"Container": operators_container, "Force": True}).encode()
        answer = send(ci, "POST", f"/v1.41/networks/{internal}/disconnect", body, JSON)
        assert answer.status == 403, answer
        assert f"disconnects a container from the network {internal}" in answer.json()["message"]
        assert internal in networks_of(dockerd, operators_container)
    finally:
        remove(dockerd, "containers", name)


def test_the_daemon_joins_the_networkid_of_a_connect_at_start(dockerd, operator, ci_networks) -> None:
    # A stopped container keeps the EndpointConfig of a connect as sent, and
    # at start the daemon joins its NetworkID rather than the path's network.
    internal, _ = operator
    name = "dg-conn-" + _hex()
    run_on(dockerd, name, ci_networks[0], start=False)
    try:
        status, out = daemon(
            dockerd,
            "POST",
            f"/networks/{ci_networks[1]}/connect",
            {"Container": name, "EndpointConfig": {"NetworkID": internal, "Aliases": ["dockguard"]}},
        )
        assert status == 200, out
        status, out = daemon(dockerd, "POST", f"/containers/{name}/start")
        assert status == 204, out
        status, inspected = daemon(dockerd, "GET", f"/networks/{internal}")
        assert name in {c["Name"] for c in inspected["Containers"].values()}
    finally:
        remove(dockerd, "containers", name)


def test_a_connect_cannot_name_another_network_in_its_body(guards, dockerd, operator, ci_networks) -> None:
    _, ci = guards
    internal, _ = operator
    name = "dg-conn-" + _hex()
    run_on(dockerd, name, ci_networks[0], start=False)
    try:
        body = json.dumps({"Container": name, "EndpointConfig": {"NetworkID": internal, "Aliases": ["dockguard"]}})
        answer = send(ci, "POST", f"/v1.41/networks/{ci_networks[1]}/connect", body.encode(), JSON)
        assert answer.status == 403, answer
        assert f"EndpointConfig.NetworkID joins the network {internal}" in answer.json()["message"]
        assert set(networks_of(dockerd, name)) == {ci_networks[0]}
    finally:
        remove(dockerd, "containers", name)


def test_the_groups_own_networks_work(guards, dockerd, ci_networks) -> None:
    _, ci = guards
    network, name = "dg-ci-" + _hex(), "dg-mine-" + _hex()
    make_internal_network(dockerd, network, through=ci)
    try:
        body = {
            "Image": "busybox:local",
            "Cmd": ["sleep", "600"],
            "HostConfig": {"NetworkMode": network},
            "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": ["web"]}}},
        }
        answer = send(ci, "POST", f"/v1.41/containers/create?name={name}", json.dumps(body).encode(), JSON)
        assert answer.status == 201, answer
        assert send(ci, "POST", f"/v1.41/containers/{name}/start").status == 204
        connect = json.dumps({"Container": name, "EndpointConfig": {"Aliases": ["web"]}}).encode()
        answer = send(ci, "POST", f"/v1.41/networks/{ci_networks[0]}/connect", connect, JSON)
        assert answer.status == 200, answer
        assert set(networks_of(dockerd, name)) == {network, ci_networks[0]}
        assert "web" in networks_of(dockerd, name)[network]["Aliases"]
        answer = send(
            ci, "POST", f"/v1.41/networks/{ci_networks[0]}/disconnect", json.dumps({"Container": name}).encode(), JSON
        )
        assert answer.status == 200, answer
        assert set(networks_of(dockerd, name)) == {network}
    finally:
        remove(dockerd, "containers", name)
        remove(dockerd, "networks", network)
