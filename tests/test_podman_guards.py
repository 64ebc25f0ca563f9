"""The escalation guards on Podman's libpod bodies (issue 17): each guard key, with bodies as Podman accepts them."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from dockguard.guards import CLOSED, OPEN, Allowance, judge
from dockguard.guards.libpod import POD_FIELDS, SPEC_FIELDS, fully_open

#: What `podman --remote run --network none --ulimit ... busybox:local true` sends (Podman 4.3.1, trimmed).
PLAIN_SPEC: dict[str, Any] = {
    "name": "web",
    "image": "busybox:local",
    "command": ["true"],
    "netns": {"nsmode": "none"},
    "r_limits": [{"type": "nproc", "soft": 1000, "hard": 1000}],
    "manage_password": True,
    "umask": "0022",
    "use_image_hosts": False,
    "init_container_type": "",
    "cap_drop": ["ALL"],
    "labels": {"app": "web"},
}


def spec_verdict(allowance: Allowance = CLOSED, **fields: Any):
    return judge("libpod.container.create", json.dumps({**PLAIN_SPEC, **fields}).encode(), allowance)


def refused_by(verdict) -> str:
    assert not verdict.allowed, "allowed"
    return verdict.guard


def test_a_plain_spec_passes() -> None:
    assert spec_verdict().allowed


@pytest.mark.parametrize(
    ("fields", "guard", "opened"),
    [
        ({"privileged": True}, "privileged", {"privileged": True}),
        ({"Privileged": True}, "privileged", {"privileged": True}),  # encoding/json folds the key
        ({"env_host": True}, "privileged", {"privileged": True}),
        ({"cap_add": ["SYS_ADMIN"]}, "capabilities", {"capabilities": {"SYS_ADMIN"}}),
        ({"cap_add": ["CAP_NET_ADMIN"]}, "capabilities", {"capabilities": {"ALL"}}),
        ({"devices": [{"path": "/dev/sda"}]}, "devices", {"devices": True}),
        ({"device_cgroup_rule": [{"allow": True, "access": "rwm"}]}, "devices", {"devices": True}),
        ({"devices_from": ["other"]}, "devices", {"devices": True}),
        ({"host_device_list": [{"path": "/dev/kvm"}]}, "devices", {"devices": True}),
        ({"resource_limits": {"devices": [{"allow": True, "access": "rwm"}]}}, "devices", {"devices": True}),
        (
            {"mounts": [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind"]}]},
            "docker_socket",
            {"bind_roots": ("/",), "bind_write": True, "docker_socket": True},
        ),
        (
            {"mounts": [{"destination": "/h", "type": "", "source": "/srv/data", "options": ["bind", "ro"]}]},
            "bind_roots",
            {"bind_roots": ("/srv",)},
        ),
        (
            {"mounts": [{"destination": "/h", "type": "bind", "source": "/srv/data"}]},
            "bind_roots",
            {"bind_roots": ("/srv",), "bind_write": True},
        ),
        (
            {"mounts": [{"destination": "/s", "type": "bind", "source": "/run/podman/podman.sock", "options": ["ro"]}]},
            "docker_socket",
            {"bind_roots": ("/run",), "docker_socket": True},
        ),
        ({"mounts": [{"destination": "/sys", "type": "sysfs", "source": "sysfs"}]}, "devices", {"devices": True}),
        ({"overlay_volumes": [{"destination": "/o", "source": "/etc"}]}, "bind_roots", {"bind_roots": ("/etc",)}),
        (
            {"overlay_volumes": [{"destination": "/o", "source": "/srv/lower", "options": ["upperdir=/etc/x", "workdir=/etc/y"]}]},
            "bind_roots",
            {"bind_roots": ("/srv", "/etc"), "bind_write": True},
        ),
        ({"sdnotifyMode": "container"}, "docker_socket", {"docker_socket": True}),
        ({"rootfs": "/srv/root"}, "bind_roots", {"bind_roots": ("/srv",), "bind_write": True}),
        ({"init_path": "/usr/bin/evil"}, "bind_roots", {"bind_roots": ("/usr",)}),
        ({"conmon_pid_file": "/etc/cron.d/x"}, "bind_roots", {"bind_roots": ("/etc",), "bind_write": True}),
        ({"log_configuration": {"driver": "k8s-file", "path": "/etc/profile.d/x.sh"}}, "bind_roots", {"bind_roots": ("/etc",), "bind_write": True}),
        ({"volumes_from": ["db"]}, "join_containers", {"join_containers": True}),
        (
            {"volumes": [{"Name": "data", "Dest": "/data", "IsAnonymous": True}]},
            "bind_roots",
            {"bind_roots": ("/",), "bind_write": True, "docker_socket": True},
        ),
        ({"pod": "infra-host"}, "join_containers", {"join_containers": True}),
        ({"pidns": {"nsmode": "host"}}, "host_namespaces", {"host_namespaces": {"pid"}}),
        ({"netns": {"nsmode": "host"}}, "host_namespaces", {"host_namespaces": {"network"}}),
        ({"ipcns": {"nsmode": "host"}}, "host_namespaces", {"host_namespaces": {"ipc"}}),
        ({"utsns": {"nsmode": "host"}}, "host_namespaces", {"host_namespaces": {"uts"}}),
        ({"userns": {"nsmode": "host"}}, "host_namespaces", {"host_namespaces": {"userns"}}),
        ({"cgroupns": {"nsmode": "host"}}, "host_namespaces", {"host_namespaces": {"cgroupns"}}),
        ({"netns": {"nsmode": "path", "value": "/proc/1/ns/net"}}, "host_namespaces", {"host_namespaces": {"network"}}),
        ({"pidns": {"NSMode": "host"}}, "host_namespaces", {"host_namespaces": {"pid"}}),
        ({"netns": {"nsmode": "slirp4netns", "value": "allow_host_loopback=true"}}, "host_namespaces", {"host_namespaces": {"network"}}),
        ({"pidns": {"nsmode": "container", "value": "db"}}, "join_containers", {"join_containers": True}),
        ({"network_options": {"slirp4netns": ["allow_host_loopback=true"]}}, "host_namespaces", {"host_namespaces": {"network"}}),
        ({"Networks": {"prod-db": {}}}, "networks", {"networks": ("prod-*",)}),
        ({"cni_networks": ["prod-db"]}, "networks", {"networks": ("*",)}),
        ({"sysctl": {"net.ipv4.ip_forward": "1"}}, "sysctls", {"sysctls": True}),
        ({"oci_runtime": "kata"}, "runtimes", {"runtimes": {"kata"}}),
        ({"cgroup_parent": "/"}, "cgroup_parent", {"cgroup_parent": True}),
        ({"unified": {"memory.max": "max"}}, "cgroup_parent", {"cgroup_parent": True}),
        ({"seccomp_policy": "image"}, "unconfined", {"unconfined": True}),
        ({"seccomp_profile_path": "unconfined"}, "unconfined", {"unconfined": True}),
        ({"selinux_opts": ["disable"]}, "unconfined", {"unconfined": True}),
        ({"apparmor_profile": "unconfined"}, "unconfined", {"unconfined": True}),
        ({"unmask": ["ALL"]}, "unconfined", {"unconfined": True}),
        ({"rootfs_propagation": "rshared"}, "unconfined", {"unconfined": True}),
        ({"annotations": {"run.oci.keep_original_groups": "1"}}, "unconfined", {"unconfined": True}),
    ],
)  # fmt: skip
def test_each_guard_key(fields: dict[str, Any], guard: str, opened: dict[str, Any]) -> None:
    assert refused_by(spec_verdict(**fields)) == guard
    assert spec_verdict(Allowance(**opened), **fields).allowed
    assert spec_verdict(OPEN, **fields).allowed


def test_binds_are_read_only_unless_bind_write() -> None:
    rw = {"mounts": [{"destination": "/h", "type": "bind", "source": "/srv/data"}]}
    assert refused_by(spec_verdict(Allowance(bind_roots=("/srv",)), **rw)) == "bind_write"
    ro = {"mounts": [{"destination": "/h", "type": "bind", "source": "/srv/data", "options": ["ro"]}]}
    assert spec_verdict(Allowance(bind_roots=("/srv",)), **ro).allowed


@pytest.mark.parametrize(
    "fields",
    [
        {"cap_add": ["NET_RAW", "MKNOD"]},  # Docker's defaults, which Podman leaves out
        {"netns": {"nsmode": "slirp4netns"}},
        {"userns": {"nsmode": "keep-id"}},
        {"mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}]},
        {"volumes": [{"Name": "", "Dest": "/data", "IsAnonymous": True}]},
        {"image_volumes": [{"Source": "busybox:local", "Destination": "/img"}]},
        {"seccomp_policy": "default"},
        {"annotations": {"com.example.team": "web"}},
        {"Networks": {"bridge": {}}},
        {"oci_runtime": "crun"},
        {"no_new_privileges": True, "read_only_filesystem": True},
    ],
)
def test_what_closed_guards_let_through(fields: dict[str, Any]) -> None:
    assert spec_verdict(**fields).allowed


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"image": "x", "privileged": true, "PRIVILEGED": false}', "two readings"),
        (b'{"image": "x", "future_field": true}', "not a field of Podman 4.3's SpecGenerator"),
        (b'{"image": "x", "privileged": "true"}', "must be true or false"),
        (b'{"image": "x", "pidns": {"nsmode": "sibling"}}', "does not know"),
        (b"[]", "not an object"),
        (b"", "empty"),
        (b'{"image": "x"} {"privileged": true}', "not valid JSON"),
    ],
)
def test_unknown_or_ambiguous_is_refused(body: bytes, says: str) -> None:
    verdict = judge("libpod.container.create", body, OPEN if says == "does not know" else CLOSED)
    assert not verdict.allowed
    assert says in verdict.reason


def test_every_field_is_named_once() -> None:
    assert len(SPEC_FIELDS) == 113 and "NETWORKS" in SPEC_FIELDS and "PRIVILEGED" in SPEC_FIELDS
    assert "INFRA_CONMON_PID_FILE" in POD_FIELDS


# --- pods -------------------------------------------------------------------------------


def pod_verdict(allowance: Allowance = CLOSED, **fields: Any):
    return judge("libpod.pod.create", json.dumps({"name": "p1", **fields}).encode(), allowance)


@pytest.mark.parametrize(
    ("fields", "guard"),
    [
        ({"pidns": {"nsmode": "host"}}, "host_namespaces"),
        ({"netns": {"nsmode": "host"}}, "host_namespaces"),
        ({"utsns": {"nsmode": "host"}}, "host_namespaces"),
        ({"userns": {"nsmode": "host"}}, "host_namespaces"),
        ({"pod_devices": ["/dev/sda"]}, "devices"),
        ({"mounts": [{"destination": "/h", "type": "bind", "source": "/srv"}]}, "bind_roots"),
        ({"volumes_from": ["db"]}, "join_containers"),
        ({"sysctl": {"kernel.msgmax": "1"}}, "sysctls"),
        ({"security_opt": ["seccomp=unconfined"]}, "unconfined"),
        ({"security_opt": ["label=disable"]}, "unconfined"),
        ({"infra_conmon_pid_file": "/etc/x"}, "bind_roots"),
        ({"cgroup_parent": "/"}, "cgroup_parent"),
        ({"network_options": {"slirp4netns": ["allow_host_loopback=true"]}}, "host_namespaces"),
        ({"Networks": {"prod": {}}}, "networks"),
        ({"infra_container_spec": {"privileged": True}}, ""),  # json:"-": Podman ignores it, dockguard refuses it
    ],
)
def test_pod_guards(fields: dict[str, Any], guard: str) -> None:
    assert refused_by(pod_verdict(**fields)) == guard
    if guard:
        assert pod_verdict(OPEN, **fields).allowed


def test_a_plain_pod_passes() -> None:
    assert pod_verdict(shared_namespaces=["ipc", "net", "uts"], no_infra=False, infra_image="").allowed


# --- volumes, networks, updates ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "guard"),
    [
        ({"Name": "v", "Options": {"type": "none", "o": "bind", "device": "/etc"}}, "bind_roots"),
        ({"Name": "v", "Options": {"TYPE": "none", "O": "bind", "DEVICE": "/etc"}}, "bind_roots"),  # Podman lowercases
        ({"Name": "v", "Options": {"type": "ext4", "device": "/dev/sda1"}}, "devices"),
        ({"Name": "v", "Driver": "rexray"}, "volume_drivers"),
        ({"Name": "v", "Mystery": 1}, ""),
    ],
)
def test_volume_create(body: dict[str, Any], guard: str) -> None:
    assert refused_by(judge("libpod.volume.create", json.dumps(body).encode(), CLOSED)) == guard
    assert judge("libpod.volume.create", b'{"Name": "v", "Labels": {"a": "b"}}', CLOSED).allowed


@pytest.mark.parametrize(
    ("body", "guard"),
    [
        ({"name": "prod"}, "networks"),
        ({"name": "ci-1", "driver": "macvlan", "network_interface": "eth0"}, "network_drivers"),
        ({"name": "ci-1", "network_interface": "br0"}, "network_drivers"),
        ({"name": "ci-1", "options": {"com.docker.network.bridge.name": "br0"}}, "network_drivers"),
        ({"name": "ci-1", "ipam_options": {"driver": "dhcp"}}, "network_drivers"),
    ],
)
def test_network_create(body: dict[str, Any], guard: str) -> None:
    ci = Allowance(networks=("ci-*",))
    assert refused_by(judge("libpod.network.create", json.dumps(body).encode(), ci)) == guard
    assert judge(
        "libpod.network.create", b'{"name": "ci-1", "driver": "bridge", "options": {"mtu": "1400"}}', ci
    ).allowed


def test_update_judges_devices_and_cgroup_files() -> None:
    assert (
        refused_by(judge("libpod.container.update", b'{"devices": [{"allow": true, "access": "rwm"}]}', CLOSED))
        == "devices"
    )
    assert refused_by(judge("libpod.container.update", b'{"unified": {"io.max": "x"}}', CLOSED)) == "cgroup_parent"
    assert judge("libpod.container.update", b'{"memory": {"limit": 1000000}}', CLOSED).allowed


# --- what dockguard cannot read: kube YAML, restored checkpoints ------------------------------

KUBE = b"""apiVersion: v1
kind: Pod
metadata: {name: evil}
spec:
  hostPID: true
  containers:
  - name: c
    image: busybox:local
    securityContext: {privileged: true}
    volumeMounts: [{name: root, mountPath: /host}]
  volumes: [{name: root, hostPath: {path: /}}]
"""


@pytest.mark.parametrize("kind", ["libpod.kube.play", "libpod.unjudged", "libpod.scp"])
def test_unreadable_bodies_need_every_guard_open(kind: str) -> None:
    almost = attrs.evolve(OPEN, cgroup_parent=False)
    for allowance in (CLOSED, almost, Allowance(privileged=True, bind_roots=("/",), bind_write=True)):
        assert refused_by(judge(kind, KUBE, allowance)) == "privileged"
    assert judge(kind, KUBE, OPEN).allowed
    assert fully_open(OPEN.merge(CLOSED)) and not fully_open(almost)


# --- bind modes and options Podman acts on ------------------------------------------------


@pytest.mark.parametrize(
    ("binds", "allowance", "guard"),
    [
        (["/srv/data:/data:ro,U"], Allowance(bind_roots=("/srv",)), "bind_write"),
        (["/srv/data:/data:O"], Allowance(bind_roots=("/srv",)), "bind_write"),
        (["/srv/data:/data:ro,dev"], Allowance(bind_roots=("/srv",)), "bind_write"),
        (["data:/data:U"], CLOSED, "bind_write"),
        (["/srv/data:/data:ro,Z"], Allowance(bind_roots=("/srv",)), None),
        (["/srv/data:/data:ro,rslave,nocopy"], Allowance(bind_roots=("/srv",)), None),
        (["/srv/data:/data:U"], OPEN, None),
    ],
)
def test_docker_binds_with_modes_podman_acts_on(binds: list[str], allowance: Allowance, guard: str | None) -> None:
    """Through Podman's compatible API: Podman chowns the host directory for :U, moby rejects it."""
    body = json.dumps({"Image": "busybox", "HostConfig": {"Binds": binds}}).encode()
    verdict = judge("container.create", body, allowance)
    assert verdict.allowed is (guard is None), verdict
    if guard is not None:
        assert verdict.guard == guard


@pytest.mark.parametrize(
    ("options", "guard", "opened"),
    [
        (["ro", "U"], "bind_write", {"bind_write": True}),
        (["ro", "dev"], "devices", {"devices": True}),
        (["ro", "suid"], "unconfined", {"unconfined": True}),
        (["ro", "weird"], "", None),
    ],
)
def test_libpod_bind_options(options: list[str], guard: str, opened: dict[str, Any] | None) -> None:
    mounts = [{"destination": "/d", "type": "bind", "source": "/srv/data", "options": options}]
    roots = Allowance(bind_roots=("/srv",))
    assert refused_by(spec_verdict(roots, mounts=mounts)) == guard
    if opened is not None:
        assert spec_verdict(attrs.evolve(roots, **opened), mounts=mounts).allowed
    assert spec_verdict(roots, mounts=[{**mounts[0], "options": ["ro", "nosuid", "nodev", "rbind"]}]).allowed


@pytest.mark.parametrize(
    ("field", "value", "guard", "opened"),
    [
        ("PidMode", "ns:/proc/1/ns/pid", "host_namespaces", {"host_namespaces": {"pid"}}),
        ("IpcMode", "ns:/proc/1/ns/ipc", "host_namespaces", {"host_namespaces": {"ipc"}}),
        ("UsernsMode", "ns:/proc/1/ns/user", "host_namespaces", {"host_namespaces": {"userns"}}),
        ("NetworkMode", "ns:/proc/1/ns/net", "host_namespaces", {"host_namespaces": {"network"}, "networks": ("*",)}),
        ("NetworkMode", "slirp4netns:allow_host_loopback=true", "host_namespaces", {"host_namespaces": {"network"}, "networks": ("*",)}),
        ("PidMode", "pod", "join_containers", {"join_containers": True}),
    ],
)  # fmt: skip
def test_docker_namespace_modes_podman_reads(field: str, value: str, guard: str, opened: dict[str, Any]) -> None:
    """Through Podman's compatible API, HostConfig modes are read by specgen.ParseNamespace (ns:/path joins it)."""
    body = json.dumps({"Image": "busybox", "HostConfig": {field: value}}).encode()
    refused = judge("container.create", body, Allowance(networks=("*",)))
    assert not refused.allowed and refused.guard == guard, refused
    assert judge("container.create", body, Allowance(**opened)).allowed


def test_plain_user_mode_networking_passes() -> None:
    body = json.dumps({"Image": "busybox", "HostConfig": {"NetworkMode": "slirp4netns"}}).encode()
    assert judge("container.create", body, Allowance(networks=("*",))).allowed


@pytest.mark.parametrize("key", ["path", "PATH", "Path"])
def test_docker_log_path_podman_writes(key: str) -> None:
    """Through Podman's compatible API, LogConfig.Config.path is the host file the logs go to."""
    body = json.dumps(
        {"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "k8s-file", "Config": {key: "/etc/cron.d/x"}}}}
    ).encode()
    assert refused_by(judge("container.create", body, CLOSED)) == "bind_roots"
    assert refused_by(judge("container.create", body, Allowance(bind_roots=("/etc",)))) == "bind_write"
    assert judge("container.create", body, Allowance(bind_roots=("/etc",), bind_write=True)).allowed
    plain = json.dumps(
        {"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}}}}
    )
    assert judge("container.create", plain.encode(), CLOSED).allowed
    sneaky = {"Image": "busybox", "HostConfig": {"LogConfig": {"Config": {"path=/etc/cron.d/x": "y"}}}}
    assert not judge("container.create", json.dumps(sneaky).encode(), CLOSED).allowed


def test_overlay_upper_and_work_dirs_are_host_directories_written() -> None:
    overlay = {"destination": "/o", "source": "/srv/lower", "options": ["upperdir=/etc/x", "workdir=/etc/y"]}
    assert refused_by(spec_verdict(Allowance(bind_roots=("/srv",)), overlay_volumes=[overlay])) == "bind_roots"
    assert refused_by(spec_verdict(Allowance(bind_roots=("/srv", "/etc")), overlay_volumes=[overlay])) == "bind_write"
    assert spec_verdict(Allowance(bind_roots=("/srv",)), overlay_volumes=[{**overlay, "options": []}]).allowed


@pytest.mark.parametrize(
    "mount",
    [
        {"Type": "bind", "Source": "/srv/data", "Target": "/d,source=/", "ReadOnly": True},
        {"Type": "bind", "Source": "/srv/data,source=/", "Target": "/d", "ReadOnly": True},
        {"Type": "bind", "Source": "/srv/data", "Target": "/d", "ReadOnly": True, "Consistency": "x,U"},
        {"Type": "bind", "Source": "/srv/data", "Target": "/d", "ReadOnly": True, "BindOptions": {"Propagation": "rprivate,rw"}},
    ],
)  # fmt: skip
def test_docker_mount_fields_podman_joins_with_commas(mount: dict[str, Any]) -> None:
    """Podman writes a Mounts entry as type=...,source=...,target=... and parses it again: the last source wins."""
    body = json.dumps({"Image": "busybox", "HostConfig": {"Mounts": [mount]}}).encode()
    verdict = judge("container.create", body, Allowance(bind_roots=("/srv",)))
    assert not verdict.allowed and "','" in verdict.reason, verdict
    plain = {"Type": "bind", "Source": "/srv/data", "Target": "/d", "ReadOnly": True}
    assert judge(
        "container.create", json.dumps({"HostConfig": {"Mounts": [plain]}}).encode(), Allowance(bind_roots=("/srv",))
    ).allowed


def test_docker_container_id_file_podman_writes() -> None:
    body = json.dumps({"Image": "busybox", "HostConfig": {"ContainerIDFile": "/etc/sudoers.d/x"}}).encode()
    assert refused_by(judge("container.create", body, CLOSED)) == "bind_roots"
    assert judge("container.create", body, Allowance(bind_roots=("/etc",), bind_write=True)).allowed


@pytest.mark.parametrize("key", ["/:/host", "/srv/data:/d:ro", "data:/d"])
def test_docker_config_volumes_podman_reads_as_binds(key: str) -> None:
    """Podman passes Config.Volumes keys to its -v parser: {"/:/host": {}} binds the host's / (measured)."""
    body = json.dumps({"Image": "busybox", "Volumes": {key: {}}}).encode()
    verdict = judge("container.create", body, OPEN)
    assert not verdict.allowed and "Volumes" in verdict.field
    assert judge(
        "container.create", json.dumps({"Image": "busybox", "Volumes": {"/data": {}}}).encode(), CLOSED
    ).allowed
