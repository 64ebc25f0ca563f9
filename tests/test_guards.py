"""Escalation guards: request bodies -> verdicts, allowances from configuration."""

from __future__ import annotations

import copy
import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockguard.errors import ConfigError
from dockguard.guards import (
    CLOSED,
    GUARD_KEYS,
    HOST_NAMESPACES,
    INSPECTED_KINDS,
    OPEN,
    Allowance,
    Verdict,
    allowance_from_mapping,
    inspection_kind,
    judge,
)
from dockguard.paths import canonicalise

# --- a realistic body: what the docker CLI 28 sends for `docker run alpine echo hi`


def cli_run(**host: Any) -> dict[str, Any]:
    """The create body of ``docker run alpine echo hi`` with HostConfig fields replaced."""
    body: dict[str, Any] = {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": None,
        "Cmd": ["echo", "hi"],
        "Image": "alpine",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": {},
        "HostConfig": {
            "Binds": None,
            "ContainerIDFile": "",
            "LogConfig": {"Type": "", "Config": {}},
            "NetworkMode": "bridge",
            "PortBindings": {},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": False,
            "VolumeDriver": "",
            "VolumesFrom": None,
            "ConsoleSize": [50, 200],
            "CapAdd": None,
            "CapDrop": None,
            "CgroupnsMode": "",
            "Dns": [],
            "DnsOptions": [],
            "DnsSearch": [],
            "ExtraHosts": None,
            "GroupAdd": None,
            "IpcMode": "",
            "Cgroup": "",
            "Links": None,
            "OomScoreAdj": 0,
            "PidMode": "",
            "Privileged": False,
            "PublishAllPorts": False,
            "ReadonlyRootfs": False,
            "SecurityOpt": None,
            "UTSMode": "",
            "UsernsMode": "",
            "ShmSize": 0,
            "Isolation": "",
            "CpuShares": 0,
            "Memory": 0,
            "NanoCpus": 0,
            "CgroupParent": "",
            "BlkioWeight": 0,
            "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": [],
            "BlkioDeviceWriteBps": [],
            "BlkioDeviceReadIOps": [],
            "BlkioDeviceWriteIOps": [],
            "CpuPeriod": 0,
            "CpuQuota": 0,
            "CpuRealtimePeriod": 0,
            "CpuRealtimeRuntime": 0,
            "CpusetCpus": "",
            "CpusetMems": "",
            "Devices": [],
            "DeviceCgroupRules": None,
            "DeviceRequests": None,
            "MemoryReservation": 0,
            "MemorySwap": 0,
            "MemorySwappiness": None,
            "OomKillDisable": None,
            "PidsLimit": None,
            "Ulimits": [],
            "CpuCount": 0,
            "CpuPercent": 0,
            "IOMaximumIOps": 0,
            "IOMaximumBandwidth": 0,
            "MaskedPaths": None,
            "ReadonlyPaths": None,
        },
        "NetworkingConfig": {
            "EndpointsConfig": {
                "bridge": {
                    "IPAMConfig": None,
                    "Links": None,
                    "Aliases": None,
                    "MacAddress": "",
                    "DriverOpts": None,
                    "GwPriority": 0,
                    "NetworkID": "",
                    "EndpointID": "",
                    "Gateway": "",
                    "IPAddress": "",
                    "IPPrefixLen": 0,
                    "IPv6Gateway": "",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "DNSNames": None,
                }
            }
        },
    }
    body["HostConfig"].update(host)
    return body


def run(**host: Any) -> bytes:
    return json.dumps(cli_run(**host)).encode()


def network(name: str, **host: Any) -> bytes:
    """`docker run --network NAME`: the CLI sets NetworkMode and one endpoint named NAME."""
    body = cli_run(NetworkMode=name, **host)
    endpoints = body["NetworkingConfig"]["EndpointsConfig"]
    endpoints[name] = endpoints.pop("bridge")
    return json.dumps(body).encode()


#: A group that may join the networks whose names start with ci-.
CI_NETS = Allowance(networks=("ci-*",))


def raw(text: str) -> bytes:
    return text.encode("utf-8")


def volume_mount(driver: str = "", **options: str) -> dict[str, Any]:
    config: dict[str, Any] = {"Name": driver}
    if options:
        config["Options"] = options
    return {"Type": "volume", "Source": "v", "Target": "/data", "VolumeOptions": {"DriverConfig": config}}


SRV = Allowance(bind_roots=("/srv",), bind_write=True)
ROOT_BINDS = Allowance(bind_roots=("/",), bind_write=True)
SOCKET_ONLY = Allowance(docker_socket=True)
UNCONFINED_PROFILE = json.dumps({"defaultAction": "SCMP_ACT_ALLOW"})

# (id, body, allowance, allowed, field, guard)
CREATE_CASES: list[tuple[str, bytes, Allowance, bool, str, str]] = [
    ("plain docker run", run(), CLOSED, True, "", ""),
    ("-v data:/data (named volume)", run(Binds=["data:/data"]), CLOSED, True, "", ""),
    ("-v /data (anonymous volume)", run(Binds=["/data"]), CLOSED, True, "", ""),
    ("--privileged", run(Privileged=True), CLOSED, False, "HostConfig.Privileged", "privileged"),
    ("--privileged allowed", run(Privileged=True), Allowance(privileged=True), True, "", ""),
    ("-v /:/host", run(Binds=["/:/host"]), CLOSED, False, "HostConfig.Binds[0]", "docker_socket"),
    ("-v /:/host with root '/'", run(Binds=["/:/host"]), ROOT_BINDS, False, "HostConfig.Binds[0]", "docker_socket"),
    ("-v /etc:/x without roots", run(Binds=["/etc:/x"]), CLOSED, False, "HostConfig.Binds[0]", "bind_roots"),
    ("-v /etc:/x with root '/'", run(Binds=["/etc:/x"]), ROOT_BINDS, True, "", ""),
    (
        "-v docker.sock",
        run(Binds=["/var/run/docker.sock:/var/run/docker.sock"]),
        ROOT_BINDS,
        False,
        "HostConfig.Binds[0]",
        "docker_socket",
    ),
    (
        "-v /run/docker.sock",
        run(Binds=["/run/docker.sock:/s"]),
        ROOT_BINDS,
        False,
        "HostConfig.Binds[0]",
        "docker_socket",
    ),
    ("-v /var/run", run(Binds=["/var/run:/r"]), ROOT_BINDS, False, "HostConfig.Binds[0]", "docker_socket"),
    ("-v /var", run(Binds=["/var:/v"]), ROOT_BINDS, False, "HostConfig.Binds[0]", "docker_socket"),
    ("-v /run", run(Binds=["/run:/r"]), ROOT_BINDS, False, "HostConfig.Binds[0]", "docker_socket"),
    ("-v /run/docker/", run(Binds=["/run/docker/:/r"]), ROOT_BINDS, False, "HostConfig.Binds[0]", "docker_socket"),
    (
        "-v containerd.sock",
        run(Binds=["/run/containerd/containerd.sock:/c"]),
        ROOT_BINDS,
        False,
        "HostConfig.Binds[0]",
        "docker_socket",
    ),
    (
        "-v /var/run/containerd",
        run(Binds=["/var/run/containerd:/c"]),
        ROOT_BINDS,
        False,
        "HostConfig.Binds[0]",
        "docker_socket",
    ),
    (
        "-v /var/run/docker/plugins",
        run(Binds=["/var/run/docker/plugins:/p"]),
        ROOT_BINDS,
        False,
        "HostConfig.Binds[0]",
        "docker_socket",
    ),
    ("-v /var/run/lock is not a socket", run(Binds=["/var/run/lock:/l"]), ROOT_BINDS, True, "", ""),
    ("-v rootless socket", run(Binds=["/run/user/1000:/u"]), ROOT_BINDS, False, "HostConfig.Binds[0]", "docker_socket"),
    ("-v socket by name", run(Binds=["/srv/x/docker.sock:/s"]), SRV, False, "HostConfig.Binds[0]", "docker_socket"),
    ("-v /proc/1/root", run(Binds=["/proc/1/root:/h"]), ROOT_BINDS, False, "HostConfig.Binds[0]", "docker_socket"),
    ("socket allowed by docker_socket + root", run(Binds=["/var/run/docker.sock:/s"]), OPEN, True, "", ""),
    (
        "socket: docker_socket alone is not a bind root",
        run(Binds=["/var/run/docker.sock:/s"]),
        SOCKET_ONLY,
        False,
        "HostConfig.Binds[0]",
        "bind_roots",
    ),
    (
        "socket with docker_socket and root /run",
        run(Binds=["/var/run/docker.sock:/s"]),
        Allowance(docker_socket=True, bind_roots=("/run",)),
        False,
        "HostConfig.Binds[0]",
        "bind_roots",
    ),
    (
        "socket with docker_socket and root /var/run",
        run(Binds=["/var/run/docker.sock:/s:ro"]),
        Allowance(docker_socket=True, bind_roots=("/var/run",)),
        True,
        "",
        "",
    ),
    ("/var/lib/docker is not the socket", run(Binds=["/var/lib/docker:/d"]), ROOT_BINDS, True, "", ""),
    ("-v /srv/app:/data under /srv", run(Binds=["/srv/app:/data"]), SRV, True, "", ""),
    ("-v /srv:/data equals root", run(Binds=["/srv:/data:ro"]), SRV, True, "", ""),
    ("-v /srv/app/:/data trailing slash", run(Binds=["/srv/app/:/data"]), SRV, True, "", ""),
    ("-v /srv/./app cleaned", run(Binds=["/srv/./app:/data"]), SRV, True, "", ""),
    ("-v /srvx is not under /srv", run(Binds=["/srvx:/data"]), SRV, False, "HostConfig.Binds[0]", "bind_roots"),
    ("-v /srv/../etc", run(Binds=["/srv/../etc:/x"]), SRV, False, "HostConfig.Binds[0]", ""),
    ("-v /srv//app", run(Binds=["/srv//app:/x"]), SRV, False, "HostConfig.Binds[0]", ""),
    ("-v //srv", run(Binds=["//srv:/x"]), SRV, False, "HostConfig.Binds[0]", ""),
    ("-v relative path", run(Binds=["./srv:/x"]), SRV, False, "HostConfig.Binds[0]", ""),
    ("-v empty source", run(Binds=[":/x"]), SRV, False, "HostConfig.Binds[0]", ""),
    ("-v too many parts", run(Binds=["/srv/a:/x:ro:z"]), SRV, False, "HostConfig.Binds[0]", ""),
    ("second bind refused", run(Binds=["/srv/a:/a", "/etc:/b"]), SRV, False, "HostConfig.Binds[1]", "bind_roots"),
    ("propagation rshared is fine", run(Binds=["/srv/a:/a:rshared"]), SRV, True, "", ""),
    ("--pid host", run(PidMode="host"), CLOSED, False, "HostConfig.PidMode", "host_namespaces"),
    ("--pid host allowed", run(PidMode="host"), Allowance(host_namespaces={"pid"}), True, "", ""),
    ("--pid HOST (case)", run(PidMode="HOST"), CLOSED, False, "HostConfig.PidMode", "host_namespaces"),
    ("--pid container:x", run(PidMode="container:x"), CLOSED, False, "HostConfig.PidMode", "join_containers"),
    ("--network host", network("host"), CLOSED, False, "HostConfig.NetworkMode", "host_namespaces"),
    ("--network host allowed", network("host"), Allowance(host_namespaces={"network"}), True, "", ""),
    (
        "--network host wrong namespace allowed",
        network("host"),
        Allowance(host_namespaces={"pid"}),
        False,
        "HostConfig.NetworkMode",
        "host_namespaces",
    ),
    ("--network container:x", network("container:x"), CLOSED, False, "HostConfig.NetworkMode", "join_containers"),
    ("--network container:x allowed", network("container:x"), Allowance(join_containers=True), True, "", ""),
    ("--network none", network("none"), CLOSED, True, "", ""),
    ("--network bridge", network("bridge"), CLOSED, True, "", ""),
    ("--network default", network("default"), CLOSED, True, "", ""),
    ("no NetworkMode", run(NetworkMode=""), CLOSED, True, "", ""),
    ("--network mynet", network("mynet"), CLOSED, False, "HostConfig.NetworkMode", "networks"),
    ("--network mynet allowed by name", network("mynet"), Allowance(networks=("mynet",)), True, "", ""),
    (
        "--network mynet2 is another name",
        network("mynet2"),
        Allowance(networks=("mynet",)),
        False,
        "HostConfig.NetworkMode",
        "networks",
    ),
    ("--network ci-a allowed by prefix", network("ci-a"), CI_NETS, True, "", ""),
    ("--network cia is not under ci-", network("cia"), CI_NETS, False, "HostConfig.NetworkMode", "networks"),
    ("--network any name with *", network("internal"), Allowance(networks=("*",)), True, "", ""),
    (
        "--network Bridge is a user network's name",
        network("Bridge"),
        CLOSED,
        False,
        "HostConfig.NetworkMode",
        "networks",
    ),
    ("--network NONE is a user network's name", network("NONE"), CI_NETS, False, "HostConfig.NetworkMode", "networks"),
    (
        "--network HOST is host and a name",
        network("HOST"),
        Allowance(host_namespaces={"network"}),
        False,
        "HostConfig.NetworkMode",
        "networks",
    ),
    (
        "--network by ID prefix (may be host)",
        network("6692"),
        CLOSED,
        False,
        "HostConfig.NetworkMode",
        "host_namespaces",
    ),
    ("--network by full ID", network("ab" * 32), CLOSED, False, "HostConfig.NetworkMode", "host_namespaces"),
    ("--network hex name upper case", network("CAFE"), CLOSED, False, "HostConfig.NetworkMode", "host_namespaces"),
    (
        "--network by ID with host allowed",
        network("6692"),
        Allowance(host_namespaces={"network"}, networks=("*",)),
        True,
        "",
        "",
    ),
    (
        "--network by ID, host allowed, names not",
        network("6692"),
        Allowance(host_namespaces={"network"}, networks=("ci-*",)),
        False,
        "HostConfig.NetworkMode",
        "networks",
    ),
    (
        "top-level NetworkMode (old bodies)",
        raw('{"Image": "a", "NetworkMode": "internal"}'),
        CI_NETS,
        False,
        "NetworkMode",
        "networks",
    ),
    (
        "endpoint key of another's network, with an alias",
        json.dumps(
            {
                "Image": "a",
                "HostConfig": {"NetworkMode": "ci-a"},
                "NetworkingConfig": {"EndpointsConfig": {"internal": {"Aliases": ["dockguard"]}}},
            }
        ).encode(),
        CI_NETS,
        False,
        "NetworkingConfig.EndpointsConfig.internal",
        "networks",
    ),
    (
        "endpoint NetworkID naming another's network",
        json.dumps(
            {
                "Image": "a",
                "HostConfig": {"NetworkMode": "ci-a"},
                "NetworkingConfig": {"EndpointsConfig": {"ci-a": {"NetworkID": "internal"}}},
            }
        ).encode(),
        CI_NETS,
        False,
        "NetworkingConfig.EndpointsConfig.ci-a.NetworkID",
        "networks",
    ),
    (
        "endpoint NetworkID in the group's networks",
        json.dumps(
            {
                "Image": "a",
                "HostConfig": {"NetworkMode": "ci-a"},
                "NetworkingConfig": {"EndpointsConfig": {"ci-a": {"NetworkID": "ci-b", "Aliases": ["web"]}}},
            }
        ).encode(),
        CI_NETS,
        True,
        "",
        "",
    ),
    (
        "endpoint NetworkID of the host network",
        json.dumps(
            {"Image": "a", "NetworkingConfig": {"EndpointsConfig": {"mynet": {"NetworkID": "6692bede"}}}}
        ).encode(),
        CLOSED,
        False,
        "NetworkingConfig.EndpointsConfig.mynet.NetworkID",
        "host_namespaces",
    ),
    (
        "endpoint named host alone",
        json.dumps({"Image": "a", "NetworkingConfig": {"EndpointsConfig": {"host": {}}}}).encode(),
        CLOSED,
        False,
        "NetworkingConfig.EndpointsConfig.host",
        "host_namespaces",
    ),
    ("--ipc host", run(IpcMode="host"), CLOSED, False, "HostConfig.IpcMode", "host_namespaces"),
    ("--ipc container:x", run(IpcMode="container:x"), CLOSED, False, "HostConfig.IpcMode", "join_containers"),
    ("--ipc shareable", run(IpcMode="shareable"), CLOSED, True, "", ""),
    ("--ipc private", run(IpcMode="private"), CLOSED, True, "", ""),
    ("--ipc none", run(IpcMode="none"), CLOSED, True, "", ""),
    ("--userns host", run(UsernsMode="host"), CLOSED, False, "HostConfig.UsernsMode", "host_namespaces"),
    ("--uts host", run(UTSMode="host"), CLOSED, False, "HostConfig.UTSMode", "host_namespaces"),
    ("--cgroupns host", run(CgroupnsMode="host"), CLOSED, False, "HostConfig.CgroupnsMode", "host_namespaces"),
    ("--cgroupns private", run(CgroupnsMode="private"), CLOSED, True, "", ""),
    ("Cgroup container:x", run(Cgroup="container:x"), CLOSED, False, "HostConfig.Cgroup", "join_containers"),
    ("--cap-add SYS_ADMIN", run(CapAdd=["SYS_ADMIN"]), CLOSED, False, "HostConfig.CapAdd[0]", "capabilities"),
    ("--cap-add cap_sys_admin", run(CapAdd=["cap_sys_admin"]), CLOSED, False, "HostConfig.CapAdd[0]", "capabilities"),
    ("--cap-add ALL", run(CapAdd=["ALL"]), CLOSED, False, "HostConfig.CapAdd[0]", "capabilities"),
    ("--cap-add all (case)", run(CapAdd=["all"]), CLOSED, False, "HostConfig.CapAdd[0]", "capabilities"),
    (
        "--cap-add ALL with specific caps only",
        run(CapAdd=["ALL"]),
        Allowance(capabilities={"SYS_ADMIN"}),
        False,
        "HostConfig.CapAdd[0]",
        "capabilities",
    ),
    ("--cap-add sys_admin allowed", run(CapAdd=["cap_sys_admin"]), Allowance(capabilities={"SYS_ADMIN"}), True, "", ""),
    ("--cap-add anything with ALL", run(CapAdd=["SYS_MODULE", "ALL"]), Allowance(capabilities={"ALL"}), True, "", ""),
    (
        "--cap-add second cap refused",
        run(CapAdd=["NET_ADMIN", "SYS_PTRACE"]),
        Allowance(capabilities={"NET_ADMIN"}),
        False,
        "HostConfig.CapAdd[1]",
        "capabilities",
    ),
    (
        "--cap-drop ALL --cap-add CHOWN (a default)",
        run(CapDrop=["ALL"], CapAdd=["CHOWN", "NET_BIND_SERVICE"]),
        CLOSED,
        True,
        "",
        "",
    ),
    ("CapAdd as one string (StrSlice)", run(CapAdd="SYS_ADMIN"), CLOSED, False, "HostConfig.CapAdd[0]", "capabilities"),
    ("CapAdd as one allowed string", run(CapAdd="NET_ADMIN"), Allowance(capabilities={"NET_ADMIN"}), True, "", ""),
    (
        "CapAdd long s (Go folds to S)",
        raw('{"HostConfig": {"CapAdd": ["\u017fys_admin"]}}'),
        CLOSED,
        False,
        "HostConfig.CapAdd[0]",
        "capabilities",
    ),
    (
        "--device",
        run(Devices=[{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]),
        CLOSED,
        False,
        "HostConfig.Devices",
        "devices",
    ),
    (
        "--device allowed",
        run(Devices=[{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}]),
        Allowance(devices=True),
        True,
        "",
        "",
    ),
    (
        "--device-cgroup-rule",
        run(DeviceCgroupRules=["c 1:3 mr"]),
        CLOSED,
        False,
        "HostConfig.DeviceCgroupRules",
        "devices",
    ),
    (
        "--gpus all",
        run(DeviceRequests=[{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]),
        CLOSED,
        False,
        "HostConfig.DeviceRequests",
        "devices",
    ),
    (
        "seccomp=unconfined",
        run(SecurityOpt=["seccomp=unconfined"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    (
        "seccomp:unconfined",
        run(SecurityOpt=["seccomp:unconfined"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    (
        "seccomp=<profile json>",
        run(SecurityOpt=["seccomp=" + UNCONFINED_PROFILE]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    ("seccomp=builtin", run(SecurityOpt=["seccomp=builtin"]), CLOSED, True, "", ""),
    (
        "apparmor:unconfined",
        run(SecurityOpt=["apparmor:unconfined"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    (
        "apparmor=unconfined",
        run(SecurityOpt=["apparmor=unconfined"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    (
        "apparmor=other profile",
        run(SecurityOpt=["apparmor=my-profile"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    ("apparmor=docker-default", run(SecurityOpt=["apparmor=docker-default"]), CLOSED, True, "", ""),
    ("label=disable", run(SecurityOpt=["label=disable"]), CLOSED, False, "HostConfig.SecurityOpt[0]", "unconfined"),
    ("label:disable", run(SecurityOpt=["label:disable"]), CLOSED, False, "HostConfig.SecurityOpt[0]", "unconfined"),
    (
        "label=type:spc_t",
        run(SecurityOpt=["label=type:spc_t"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    ("bare disable", run(SecurityOpt=["disable"]), CLOSED, False, "HostConfig.SecurityOpt[0]", "unconfined"),
    (
        "systempaths=unconfined",
        run(SecurityOpt=["systempaths=unconfined"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    (
        "no-new-privileges=false",
        run(SecurityOpt=["no-new-privileges=false"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    (
        "no-new-privileges:false",
        run(SecurityOpt=["no-new-privileges:false"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    (
        "no-new-privileges=0",
        run(SecurityOpt=["no-new-privileges=0"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    ("no-new-privileges", run(SecurityOpt=["no-new-privileges"]), CLOSED, True, "", ""),
    ("no-new-privileges=true", run(SecurityOpt=["no-new-privileges=true"]), CLOSED, True, "", ""),
    (
        "no-new-privileges=maybe",
        run(SecurityOpt=["no-new-privileges=maybe"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "",
    ),
    (
        "unknown security option",
        run(SecurityOpt=["writable-cgroups=true"]),
        CLOSED,
        False,
        "HostConfig.SecurityOpt[0]",
        "unconfined",
    ),
    ("security option without value", run(SecurityOpt=["seccomp"]), CLOSED, False, "HostConfig.SecurityOpt[0]", ""),
    (
        "unconfined allows them all",
        run(SecurityOpt=["seccomp=unconfined", "apparmor=unconfined", "label=disable"]),
        Allowance(unconfined=True),
        True,
        "",
        "",
    ),
    (
        "MaskedPaths emptied",
        run(MaskedPaths=[], ReadonlyPaths=[]),
        CLOSED,
        False,
        "HostConfig.MaskedPaths",
        "unconfined",
    ),
    ("ReadonlyPaths emptied", run(ReadonlyPaths=[]), CLOSED, False, "HostConfig.ReadonlyPaths", "unconfined"),
    ("MaskedPaths partial", run(MaskedPaths=["/proc/kcore"]), CLOSED, False, "HostConfig.MaskedPaths", "unconfined"),
    (
        "MaskedPaths defaults plus more",
        run(
            MaskedPaths=[
                "/proc/asound",
                "/proc/acpi",
                "/proc/interrupts",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
                "/sys/devices/virtual/powercap",
                "/proc/extra",
            ]
        ),
        CLOSED,
        True,
        "",
        "",
    ),  # fmt: skip
    ("--sysctl", run(Sysctls={"net.ipv4.ip_forward": "1"}), CLOSED, False, "HostConfig.Sysctls", "sysctls"),
    ("--sysctl allowed", run(Sysctls={"net.ipv4.ip_forward": "1"}), Allowance(sysctls=True), True, "", ""),
    ("empty Sysctls", run(Sysctls={}), CLOSED, True, "", ""),
    ("--runtime nvidia", run(Runtime="nvidia"), CLOSED, False, "HostConfig.Runtime", "runtimes"),
    ("--runtime nvidia allowed", run(Runtime="nvidia"), Allowance(runtimes={"nvidia"}), True, "", ""),
    ("--runtime runc", run(Runtime="runc"), CLOSED, True, "", ""),
    ("--runtime any with *", run(Runtime="kata"), OPEN, True, "", ""),
    (
        "--volume-driver rexray",
        run(VolumeDriver="rexray", Binds=["v:/v"]),
        CLOSED,
        False,
        "HostConfig.VolumeDriver",
        "volume_drivers",
    ),
    ("--volume-driver local", run(VolumeDriver="local"), CLOSED, True, "", ""),
    ("--volume-driver allowed", run(VolumeDriver="rexray"), Allowance(volume_drivers={"rexray"}), True, "", ""),
    ("--volumes-from", run(VolumesFrom=["web"]), CLOSED, False, "HostConfig.VolumesFrom", "join_containers"),
    ("--volumes-from allowed", run(VolumesFrom=["web:ro"]), Allowance(join_containers=True), True, "", ""),
    # a cgroup of the caller's choice, as a build's cgroupparent
    ("--cgroup-parent", run(CgroupParent="/escape"), CLOSED, False, "HostConfig.CgroupParent", "cgroup_parent"),
    ("--cgroup-parent allowed", run(CgroupParent="ci.slice"), Allowance(cgroup_parent=True), True, "", ""),
    (
        "--mount type=bind /etc",
        run(Mounts=[{"Type": "bind", "Source": "/etc", "Target": "/e"}]),
        SRV,
        False,
        "HostConfig.Mounts[0].Source",
        "bind_roots",
    ),
    (
        "--mount type=bind /srv/a",
        run(Mounts=[{"Type": "bind", "Source": "/srv/a", "Target": "/a", "BindOptions": {"Propagation": "rshared"}}]),
        SRV,
        True,
        "",
        "",
    ),
    (
        "--mount type=bind socket",
        run(Mounts=[{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/s"}]),
        ROOT_BINDS,
        False,
        "HostConfig.Mounts[0].Source",
        "docker_socket",
    ),
    (
        "--mount type=bind relative",
        run(Mounts=[{"Type": "bind", "Source": "srv", "Target": "/s"}]),
        ROOT_BINDS,
        False,
        "HostConfig.Mounts[0].Source",
        "",
    ),
    ("--mount type=volume", run(Mounts=[{"Type": "volume", "Source": "data", "Target": "/d"}]), CLOSED, True, "", ""),
    ("--mount type=tmpfs", run(Mounts=[{"Type": "tmpfs", "Target": "/t"}]), CLOSED, True, "", ""),
    ("--mount type=image", run(Mounts=[{"Type": "image", "Source": "alpine", "Target": "/i"}]), CLOSED, True, "", ""),
    (
        "--mount type=BIND (unknown type)",
        run(Mounts=[{"Type": "BIND", "Source": "/etc", "Target": "/e"}]),
        CLOSED,
        False,
        "HostConfig.Mounts[0].Type",
        "",
    ),
    (
        "--mount without type",
        run(Mounts=[{"Source": "/etc", "Target": "/e"}]),
        CLOSED,
        False,
        "HostConfig.Mounts[0].Type",
        "",
    ),
    (
        "--mount volume with driver",
        run(Mounts=[volume_mount("rexray")]),
        CLOSED,
        False,
        "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Name",
        "volume_drivers",
    ),
    (
        "--mount volume local bind opts",
        run(Mounts=[volume_mount("local", type="none", o="bind", device="/etc")]),
        SRV,
        False,
        "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options.device",
        "bind_roots",
    ),
    (
        "--mount volume default driver bind opts",
        run(Mounts=[volume_mount(type="none", o="ro,rbind", device="/")]),
        ROOT_BINDS,
        False,
        "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options.device",
        "docker_socket",
    ),
    (
        "--mount volume local bind under root",
        run(Mounts=[volume_mount(type="none", o="bind", device="/srv/x")]),
        SRV,
        True,
        "",
        "",
    ),
    (
        "--mount volume local tmpfs",
        run(Mounts=[volume_mount(type="tmpfs", device="tmpfs", o="size=1m")]),
        CLOSED,
        True,
        "",
        "",
    ),
    (
        "legacy top-level Privileged",
        raw('{"Image": "a", "Privileged": true}'),
        CLOSED,
        False,
        "Privileged",
        "privileged",
    ),
    (
        "legacy top-level Binds",
        raw('{"Image": "a", "HostConfig": {}, "Binds": ["/:/h"]}'),
        CLOSED,
        False,
        "Binds[0]",
        "docker_socket",
    ),
    (
        "case: hostconfig/privileged",
        raw('{"hostconfig": {"privileged": true}}'),
        CLOSED,
        False,
        "HostConfig.Privileged",
        "privileged",
    ),
    (
        "case: Unicode long s in HostConfig",
        raw('{"Ho\u017ftConfig": {"Privileged": true}}'),
        CLOSED,
        False,
        "HostConfig.Privileged",
        "privileged",
    ),
    (
        "case: Kelvin sign",
        raw('{"HostConfig": {"Devices": [{}], "\u212aey": 1}}'),
        CLOSED,
        False,
        "HostConfig.Devices",
        "devices",
    ),
    (
        "case: dotless i",
        raw('{"HostConfig": {"Pr\u0131vileged": true}}'),
        CLOSED,
        False,
        "HostConfig.Privileged",
        "privileged",
    ),
    (
        "case: dotted I",
        raw('{"HostConfig": {"Pr\u0130vileged": true}}'),
        CLOSED,
        False,
        "HostConfig.Privileged",
        "privileged",
    ),
    (
        "ambiguous: Privileged and privileged",
        raw('{"HostConfig": {"Privileged": false, "privileged": true}}'),
        CLOSED,
        False,
        "privileged",
        "",
    ),
    (
        "ambiguous even when open",
        raw('{"HostConfig": {"Privileged": false, "privileged": true}}'),
        OPEN,
        False,
        "privileged",
        "",
    ),
    (
        "ambiguous: HostConfig twice",
        raw('{"HostConfig": {}, "hostConfig": {"Privileged": true}}'),
        CLOSED,
        False,
        "hostConfig",
        "",
    ),
    (
        "duplicate identical keys",
        raw('{"HostConfig": {"Privileged": true, "Privileged": false}}'),
        OPEN,
        False,
        "Privileged",
        "",
    ),
    ("duplicate label keys", raw('{"Labels": {"a": "1", "a": "2"}}'), OPEN, False, "a", ""),
    ("NaN", raw('{"HostConfig": {"CpuPercent": NaN}}'), OPEN, False, "", ""),
    ("Infinity", raw('{"HostConfig": {"CpuPercent": -Infinity}}'), OPEN, False, "", ""),
    ("invalid UTF-8", b'{"Image": "\xff"}', OPEN, False, "", ""),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"Image": "a"}', OPEN, False, "", ""),
    ("top-level array", raw('[{"HostConfig": {"Privileged": true}}]'), OPEN, False, "", ""),
    ("top-level string", raw('"x"'), OPEN, False, "", ""),
    ("invalid JSON", raw('{"Image": "a",}'), OPEN, False, "", ""),
    ("trailing content", raw('{"Image": "a"} {"HostConfig": {"Privileged": true}}'), OPEN, False, "", ""),
    ("whitespace only", raw("  "), OPEN, False, "", ""),
    ("empty body", b"", OPEN, False, "", ""),
    ("deep nesting", raw('{"Labels": ' + "[" * 100000 + "]" * 100000 + "}"), OPEN, False, "", ""),
    (
        "wrong type: Privileged string",
        raw('{"HostConfig": {"Privileged": "true"}}'),
        OPEN,
        False,
        "HostConfig.Privileged",
        "",
    ),
    (
        "wrong type: Privileged number",
        raw('{"HostConfig": {"Privileged": 1}}'),
        OPEN,
        False,
        "HostConfig.Privileged",
        "",
    ),
    ("wrong type: Binds string", raw('{"HostConfig": {"Binds": "/:/h"}}'), OPEN, False, "HostConfig.Binds", ""),
    ("wrong type: Binds element", raw('{"HostConfig": {"Binds": [1]}}'), OPEN, False, "HostConfig.Binds[0]", ""),
    ("wrong type: CapAdd number", raw('{"HostConfig": {"CapAdd": 5}}'), OPEN, False, "HostConfig.CapAdd", ""),
    ("wrong type: HostConfig array", raw('{"HostConfig": []}'), OPEN, False, "HostConfig", ""),
    (
        "wrong type: Mounts element",
        raw('{"HostConfig": {"Mounts": ["/etc"]}}'),
        OPEN,
        False,
        "HostConfig.Mounts[0]",
        "",
    ),
    (
        "wrong type: Sysctls value",
        raw('{"HostConfig": {"Sysctls": {"a": 1}}}'),
        OPEN,
        False,
        "HostConfig.Sysctls.a",
        "",
    ),
    (
        "null is the zero value",
        raw('{"HostConfig": {"Privileged": null, "Binds": null, "Mounts": null}}'),
        CLOSED,
        True,
        "",
        "",
    ),
    ("null HostConfig", raw('{"Image": "a", "HostConfig": null}'), CLOSED, True, "", ""),
    (
        "unknown fields ignored",
        raw('{"Image": "a", "HostConfig": {"Frobnicate": {"Privileged": true}}}'),
        CLOSED,
        True,
        "",
        "",
    ),
]


@pytest.mark.parametrize(
    ("body", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in CREATE_CASES],
    ids=[case[0] for case in CREATE_CASES],
)
def test_container_create(body: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = judge("container.create", body, allowance)
    assert (verdict.allowed, verdict.field, verdict.guard) == (allowed, field, guard), verdict.reason
    assert bool(verdict.reason) is not allowed


def test_open_allows_every_openable_create_case() -> None:
    """OPEN allows everything the table refuses with a guard (refusals without a guard have two readings)."""
    openable = [case for case in CREATE_CASES if case[5] != ""]
    assert len(openable) > 60
    for name, body, *_ in openable:
        verdict = judge("container.create", body, OPEN)
        assert verdict.allowed, (name, verdict.reason)


def test_reasons_name_the_field_and_the_setting() -> None:
    verdict = judge("container.create", run(Privileged=True), CLOSED)
    assert verdict.reason == (
        "HostConfig.Privileged is true: privileged containers are not allowed "
        "(set privileged = true in the group's guards to allow it)"
    )
    verdict = judge("container.create", run(Binds=["/etc:/x"]), SRV)
    assert (
        verdict.reason
        == "HostConfig.Binds[0] mounts /etc from the host: bind mounts are allowed only under /srv (bind_roots)"
    )
    verdict = judge("container.create", run(Binds=["/etc:/x"]), CLOSED)
    assert "add a directory to bind_roots" in verdict.reason
    verdict = judge("container.create", run(CapAdd=["cap_sys_admin"]), CLOSED)
    assert 'add "SYS_ADMIN" to capabilities' in verdict.reason
    verdict = judge("container.create", run(Binds=["/var/run/docker.sock:/s"]), CLOSED)
    assert "docker_socket = true and add a bind_roots entry" in verdict.reason
    verdict = judge("container.create", network("host"), CLOSED)
    assert 'add "network" to host_namespaces' in verdict.reason


def test_refused_values_are_shown_safely() -> None:
    verdict = judge("container.create", raw('{"HostConfig": {"Binds": ["/etc\\u0000x:/x"]}}'), SRV)
    assert not verdict.allowed and "\x00" not in verdict.reason
    verdict = judge("container.create", raw('{"HostConfig": {"Binds": ["/et\\ud800c:/x"]}}'), SRV)
    assert not verdict.allowed
    verdict.reason.encode("utf-8")  # no lone surrogate in the reason


# --- container update, exec, services, volumes ----------------------------------

UPDATE_CASES = [
    ("plain update", raw('{"Memory": 1048576, "RestartPolicy": {"Name": "always"}}'), CLOSED, True, "", ""),
    ("empty body", b"", CLOSED, True, "", ""),
    ("Devices", raw('{"Devices": [{"PathOnHost": "/dev/sda"}]}'), CLOSED, False, "Devices", "devices"),
    ("DeviceCgroupRules", raw('{"DeviceCgroupRules": ["a *:* rwm"]}'), CLOSED, False, "DeviceCgroupRules", "devices"),
    ("DeviceRequests", raw('{"DeviceRequests": [{"Count": -1}]}'), CLOSED, False, "DeviceRequests", "devices"),
    ("devices allowed", raw('{"devices": [{"PathOnHost": "/dev/sda"}]}'), Allowance(devices=True), True, "", ""),
    ("Privileged cannot be updated (ignored)", raw('{"Privileged": true}'), CLOSED, True, "", ""),
    ("ambiguous", raw('{"Devices": [], "devices": [{}]}'), OPEN, False, "devices", ""),
]


@pytest.mark.parametrize(
    ("body", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in UPDATE_CASES],
    ids=[case[0] for case in UPDATE_CASES],
)
def test_container_update(body: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = judge("container.update", body, allowance)
    assert (verdict.allowed, verdict.field, verdict.guard) == (allowed, field, guard), verdict.reason


def exec_body(**fields: Any) -> bytes:
    body = {"User": "", "Privileged": False, "Tty": False, "AttachStdin": False, "AttachStderr": True,
            "AttachStdout": True, "Detach": False, "DetachKeys": "", "Env": None, "WorkingDir": "",
            "Cmd": ["sh"]}  # fmt: skip
    body.update(fields)
    return json.dumps(body).encode()


NON_ROOT = Allowance(exec_root=False)
OPEN_BUT_PRIVILEGED = attrs.evolve(OPEN, privileged=False)

EXEC_CASES = [
    ("docker exec", exec_body(), CLOSED, True, "", ""),
    ("docker exec --privileged", exec_body(Privileged=True), CLOSED, False, "Privileged", "exec_privileged"),
    ("docker exec --privileged allowed", exec_body(Privileged=True), Allowance(exec_privileged=True), True, "", ""),
    ("exec -u 0 with exec_root", exec_body(User="0"), CLOSED, True, "", ""),
    ("non-root: -u 1000 (group 0 by default)", exec_body(User="1000"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: -u 1000:1000", exec_body(User="1000:1000"), NON_ROOT, True, "", ""),
    ("non-root: -u 01000:01000 (leading zeros)", exec_body(User="01000:01000"), NON_ROOT, True, "", ""),
    ("non-root: no user (inherits)", exec_body(User=""), NON_ROOT, False, "User", "exec_root"),
    ("non-root: User absent", raw('{"Cmd": ["sh"]}'), NON_ROOT, False, "User", "exec_root"),
    ("non-root: User null", raw('{"Cmd": ["sh"], "User": null}'), NON_ROOT, False, "User", "exec_root"),
    ("non-root: empty body", b"", NON_ROOT, False, "User", "exec_root"),
    ("non-root: 0", exec_body(User="0"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: 00", exec_body(User="00"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: +0", exec_body(User="+0"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: -0", exec_body(User="-0"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: root", exec_body(User="root"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: ROOT", exec_body(User="ROOT"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: 0:0", exec_body(User="0:0"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: root:root", exec_body(User="root:root"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: root:0", exec_body(User="root:0"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: 0:root", exec_body(User="0:root"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: 1000:0 (root group)", exec_body(User="1000:0"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: a name", exec_body(User="nobody"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: 2^32 (wraps to 0)", exec_body(User="4294967296"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: spaces", exec_body(User=" 1000"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: Arabic-Indic digits", exec_body(User="\u0661\u0660"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: three parts", exec_body(User="1000:1000:1"), NON_ROOT, False, "User", "exec_root"),
    ("non-root: case trick user", raw('{"user": "0"}'), NON_ROOT, False, "User", "exec_root"),
    ("wrong type: User number", raw('{"User": 1000}'), NON_ROOT, False, "User", ""),
    ("wrong type: Privileged string", raw('{"Privileged": "false"}'), CLOSED, False, "Privileged", ""),
]


@pytest.mark.parametrize(
    ("body", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in EXEC_CASES],
    ids=[case[0] for case in EXEC_CASES],
)
def test_exec_create(body: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = judge("exec.create", body, allowance)
    assert (verdict.allowed, verdict.field, verdict.guard) == (allowed, field, guard), verdict.reason


def service(**container_spec: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"Image": "nginx:latest", "Init": False, "Isolation": "default"}
    spec.update(container_spec)
    return {
        "Name": "web",
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": spec,
            "Resources": {"Limits": {}, "Reservations": {}},
            "Placement": {},
            "Networks": [],
            "ForceUpdate": 0,
            "Runtime": "container",
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080}]},
    }


def svc(**container_spec: Any) -> bytes:
    return json.dumps(service(**container_spec)).encode()


def svc_with(change: dict[str, Any]) -> bytes:
    body = service()
    body["TaskTemplate"].update(change)
    return json.dumps(body).encode()


CS = "TaskTemplate.ContainerSpec"
SERVICE_CASES = [
    ("plain service", svc(), CLOSED, True, "", ""),
    ("its network", svc_with({"Networks": [{"Target": "ci-frontend"}]}), CI_NETS, True, "", ""),
    (
        "its network not allowed",
        svc_with({"Networks": [{"Target": "ci-frontend"}]}),
        CLOSED,
        False,
        "TaskTemplate.Networks[0].Target",
        "networks",
    ),
    (
        "another's network",
        svc_with({"Networks": [{"Target": "internal", "Aliases": ["dockguard"]}]}),
        CI_NETS,
        False,
        "TaskTemplate.Networks[0].Target",
        "networks",
    ),
    (
        "another's network, top-level Networks",
        raw('{"Name": "web", "Networks": [{"Target": "internal"}]}'),
        CI_NETS,
        False,
        "Networks[0].Target",
        "networks",
    ),
    ("bridge network", svc_with({"Networks": [{"Target": "bridge"}]}), CLOSED, True, "", ""),
    (
        "a swarm ID prefix, any network allowed",
        svc_with({"Networks": [{"Target": "pjak"}]}),
        Allowance(networks=("*",)),
        False,
        "TaskTemplate.Networks[0].Target",
        "host_namespaces",
    ),
    (
        "one letter, any network allowed",
        svc_with({"Networks": [{"Target": "p"}]}),
        Allowance(networks=("*",)),
        False,
        "TaskTemplate.Networks[0].Target",
        "host_namespaces",
    ),
    (
        "a name with a dash, any network allowed",
        svc_with({"Networks": [{"Target": "web-net"}]}),
        Allowance(networks=("*",)),
        True,
        "",
        "",
    ),
    (
        "an exactly listed name",
        svc_with({"Networks": [{"Target": "backend"}]}),
        Allowance(networks=("backend",)),
        True,
        "",
        "",
    ),
    (
        "a swarm ID prefix with the host network allowed",
        svc_with({"Networks": [{"Target": "pjak"}]}),
        Allowance(networks=("*",), host_namespaces={"network"}),
        True,
        "",
        "",
    ),
    ("volume mount", svc(Mounts=[{"Type": "volume", "Source": "data", "Target": "/d"}]), CLOSED, True, "", ""),
    (
        "bind mount /",
        svc(Mounts=[{"Type": "bind", "Source": "/", "Target": "/h"}]),
        CLOSED,
        False,
        f"{CS}.Mounts[0].Source",
        "docker_socket",
    ),
    (
        "bind mount /etc",
        svc(Mounts=[{"Type": "bind", "Source": "/etc", "Target": "/e"}]),
        SRV,
        False,
        f"{CS}.Mounts[0].Source",
        "bind_roots",
    ),
    ("bind mount /srv/a", svc(Mounts=[{"Type": "bind", "Source": "/srv/a", "Target": "/a"}]), SRV, True, "", ""),
    (
        "socket mount",
        svc(Mounts=[{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/s"}]),
        ROOT_BINDS,
        False,
        f"{CS}.Mounts[0].Source",
        "docker_socket",
    ),
    (
        "volume with driver",
        svc(Mounts=[volume_mount("rexray")]),
        CLOSED,
        False,
        f"{CS}.Mounts[0].VolumeOptions.DriverConfig.Name",
        "volume_drivers",
    ),
    (
        "volume local bind opts",
        svc(Mounts=[volume_mount(type="none", o="bind", device="/etc")]),
        CLOSED,
        False,
        f"{CS}.Mounts[0].VolumeOptions.DriverConfig.Options.device",
        "bind_roots",
    ),
    (
        "--cap-add SYS_ADMIN",
        svc(CapabilityAdd=["CAP_SYS_ADMIN"]),
        CLOSED,
        False,
        f"{CS}.CapabilityAdd[0]",
        "capabilities",
    ),
    ("--cap-add allowed", svc(CapabilityAdd=["CAP_NET_ADMIN"]), Allowance(capabilities={"NET_ADMIN"}), True, "", ""),
    ("CapabilityAdd as a string", svc(CapabilityAdd="CAP_NET_ADMIN"), OPEN, False, f"{CS}.CapabilityAdd", ""),
    ("--sysctl", svc(Sysctls={"net.core.somaxconn": "1024"}), CLOSED, False, f"{CS}.Sysctls", "sysctls"),
    (
        "SELinux disabled",
        svc(Privileges={"SELinuxContext": {"Disable": True}}),
        CLOSED,
        False,
        f"{CS}.Privileges.SELinuxContext.Disable",
        "unconfined",
    ),
    (
        "SELinux type",
        svc(Privileges={"SELinuxContext": {"Type": "spc_t"}}),
        CLOSED,
        False,
        f"{CS}.Privileges.SELinuxContext.Type",
        "unconfined",
    ),
    (
        "seccomp unconfined",
        svc(Privileges={"Seccomp": {"Mode": "unconfined"}}),
        CLOSED,
        False,
        f"{CS}.Privileges.Seccomp.Mode",
        "unconfined",
    ),
    (
        "seccomp custom",
        svc(Privileges={"Seccomp": {"Mode": "custom", "Profile": "e30="}}),
        CLOSED,
        False,
        f"{CS}.Privileges.Seccomp.Mode",
        "unconfined",
    ),
    (
        "seccomp default",
        svc(Privileges={"Seccomp": {"Mode": "default"}, "NoNewPrivileges": False}),
        CLOSED,
        True,
        "",
        "",
    ),
    (
        "apparmor disabled",
        svc(Privileges={"AppArmor": {"Mode": "disabled"}}),
        CLOSED,
        False,
        f"{CS}.Privileges.AppArmor.Mode",
        "unconfined",
    ),
    (
        "unconfined allowed",
        svc(Privileges={"AppArmor": {"Mode": "disabled"}, "Seccomp": {"Mode": "unconfined"}}),
        Allowance(unconfined=True),
        True,
        "",
        "",
    ),
    (
        "host network",
        svc_with({"Networks": [{"Target": "host"}]}),
        CLOSED,
        False,
        "TaskTemplate.Networks[0].Target",
        "host_namespaces",
    ),
    (
        "host network allowed",
        svc_with({"Networks": [{"Target": "host"}]}),
        Allowance(host_namespaces={"network"}),
        True,
        "",
        "",
    ),
    (
        "plugin service",
        svc_with({"Runtime": "plugin", "PluginSpec": {"Name": "x", "Remote": "x/y"}}),
        CLOSED,
        False,
        "TaskTemplate.PluginSpec",
        "privileged",
    ),
    ("plugin runtime alone", svc_with({"Runtime": "plugin"}), CLOSED, False, "TaskTemplate.Runtime", "privileged"),
    ("unknown runtime", svc_with({"Runtime": "vm"}), OPEN, False, "TaskTemplate.Runtime", ""),
    (
        "generic resources",
        svc_with(
            {
                "Resources": {
                    "Reservations": {"GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]}
                }
            }
        ),
        CLOSED,
        False,
        "TaskTemplate.Resources.Reservations.GenericResources",
        "devices",
    ),
    (
        "case trick",
        raw('{"tasktemplate": {"containerspec": {"mounts": [{"type": "bind", "source": "/etc", "target": "/e"}]}}}'),
        SRV,
        False,
        f"{CS}.Mounts[0].Source",
        "bind_roots",
    ),
    ("empty body", b"", OPEN, False, "", ""),
]


@pytest.mark.parametrize("kind", ["service.create", "service.update"])
@pytest.mark.parametrize(
    ("body", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in SERVICE_CASES],
    ids=[case[0] for case in SERVICE_CASES],
)
def test_service(kind: str, body: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = judge(kind, body, allowance)
    assert (verdict.allowed, verdict.field, verdict.guard) == (allowed, field, guard), verdict.reason


def vol(**body: Any) -> bytes:
    return json.dumps({"Name": "v", "Labels": {}, **body}).encode()


def net(**body: Any) -> bytes:
    """What the docker CLI 20.10 sends for `docker network create`, with fields replaced."""
    document: dict[str, Any] = {
        "Name": "ci-a", "CheckDuplicate": True, "Driver": "bridge", "Scope": "", "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {}, "Config": []}, "Internal": False, "Attachable": False,
        "Ingress": False, "ConfigOnly": False, "ConfigFrom": None, "Options": {}, "Labels": {},
    }  # fmt: skip
    document.update(body)
    return json.dumps(document).encode()


BRIDGE_NAME = "com.docker.network.bridge.name"
NETWORK_CREATE_CASES = [
    ("docker network create ci-a", net(), CI_NETS, True, "", ""),
    ("a name the group may not use", net(Name="internal"), CI_NETS, False, "Name", "networks"),
    ("any name, closed", net(), CLOSED, False, "Name", "networks"),
    ("driver left to the daemon", net(Driver=""), CI_NETS, True, "", ""),
    ("overlay", net(Driver="overlay", Attachable=True, Options={"encrypted": ""}), CI_NETS, True, "", ""),
    ("--internal, labels", net(Internal=True, Labels={"a": "b"}), CI_NETS, True, "", ""),
    (
        "bridge --subnet (a host route)",
        net(IPAM={"Driver": "", "Config": [{"Subnet": "192.0.2.0/28"}]}),
        CI_NETS,
        False,
        "IPAM.Config[0].Subnet",
        "network_drivers",
    ),
    (
        "bridge --gateway",
        net(Driver="", IPAM={"Config": [{"Gateway": "10.9.0.1"}]}),
        CI_NETS,
        False,
        "IPAM.Config[0].Gateway",
        "network_drivers",
    ),
    (
        "bridge --aux-address",
        net(IPAM={"Config": [{"AuxiliaryAddresses": {"a": "10.9.0.5"}}]}),
        CI_NETS,
        False,
        "IPAM.Config[0].AuxiliaryAddresses",
        "network_drivers",
    ),
    ("bridge, empty IPAM config", net(IPAM={"Config": [{}]}), CI_NETS, True, "", ""),
    (
        "bridge --subnet with bridge allowed",
        net(IPAM={"Config": [{"Subnet": "10.9.0.0/24"}]}),
        Allowance(networks=("ci-*",), network_drivers={"bridge"}),
        True,
        "",
        "",
    ),
    (
        "overlay --subnet (no host route)",
        net(Driver="overlay", IPAM={"Config": [{"Subnet": "10.9.0.0/24"}]}),
        CI_NETS,
        True,
        "",
        "",
    ),
    (
        "plain bridge options",
        net(Options={"com.docker.network.driver.mtu": "1400", "com.docker.network.bridge.enable_icc": "false"}),
        CI_NETS,
        True,
        "",
        "",
    ),
    (
        "macvlan on a host interface",
        net(Driver="macvlan", Options={"parent": "eth0"}),
        CI_NETS,
        False,
        "Driver",
        "network_drivers",
    ),
    (
        "macvlan allowed",
        net(Driver="macvlan", Options={"parent": "eth0"}),
        Allowance(networks=("ci-*",), network_drivers={"macvlan"}),
        True,
        "",
        "",
    ),
    (
        "macvlan allowed, name not",
        net(Name="lan", Driver="macvlan"),
        Allowance(network_drivers={"*"}),
        False,
        "Name",
        "networks",
    ),
    (
        "ipvlan",
        net(Driver="ipvlan", Options={"parent": "eth0", "ipvlan_mode": "l2"}),
        CI_NETS,
        False,
        "Driver",
        "network_drivers",
    ),
    (
        "ipvlan with macvlan allowed",
        net(Driver="ipvlan"),
        Allowance(networks=("ci-*",), network_drivers={"macvlan"}),
        False,
        "Driver",
        "network_drivers",
    ),
    ("host driver", net(Driver="host"), CI_NETS, False, "Driver", "network_drivers"),
    ("null driver", net(Driver="null"), CI_NETS, False, "Driver", "network_drivers"),
    ("a plugin driver", net(Driver="weaveworks/net-plugin:latest"), CI_NETS, False, "Driver", "network_drivers"),
    ("driver Bridge is not bridge", net(Driver="Bridge"), CI_NETS, False, "Driver", "network_drivers"),
    (
        "bridge on an existing host bridge",
        net(Options={BRIDGE_NAME: "br0"}),
        CI_NETS,
        False,
        f"Options.{BRIDGE_NAME}",
        "network_drivers",
    ),
    (
        "host bridge, driver left to the daemon",
        net(Driver="", Options={BRIDGE_NAME: "br0"}),
        CI_NETS,
        False,
        f"Options.{BRIDGE_NAME}",
        "network_drivers",
    ),
    (
        "host bridge with bridge allowed",
        net(Options={BRIDGE_NAME: "br0"}),
        Allowance(networks=("ci-*",), network_drivers={"bridge"}),
        True,
        "",
        "",
    ),
    ("parent on a bridge", net(Options={"parent": "eth0"}), CI_NETS, False, "Options.parent", "network_drivers"),
    (
        "routed gateway mode",
        net(Options={"com.docker.network.bridge.gateway_mode_ipv4": "routed"}),
        CI_NETS,
        False,
        "Options.com.docker.network.bridge.gateway_mode_ipv4",
        "network_drivers",
    ),
    (
        "overlay VXLAN IDs",
        net(Driver="overlay", Options={"com.docker.network.driver.overlay.vxlanid_list": "4097"}),
        CI_NETS,
        False,
        "Options.com.docker.network.driver.overlay.vxlanid_list",
        "network_drivers",
    ),
    (
        "option in another case",
        net(Options={"Com.Docker.Network.Bridge.Name": "br0"}),
        CI_NETS,
        False,
        "Options.Com.Docker.Network.Bridge.Name",
        "network_drivers",
    ),
    (
        "config-only holding a parent",
        net(ConfigOnly=True, Options={"parent": "eth0"}),
        CI_NETS,
        False,
        "Options.parent",
        "network_drivers",
    ),
    ("config-only, plain", net(ConfigOnly=True, IPAM={"Config": [{"Subnet": "10.9.0.0/24"}]}), CI_NETS, True, "", ""),
    (
        "--config-from",
        net(Driver="macvlan", ConfigFrom={"Network": "lan-config"}),
        Allowance(networks=("ci-*",), network_drivers={"bridge"}),
        False,
        "Driver",
        "network_drivers",
    ),
    (
        "--config-from with bridge",
        net(ConfigFrom={"Network": "lan-config"}),
        CI_NETS,
        False,
        "ConfigFrom",
        "network_drivers",
    ),
    ("--ingress", net(Driver="overlay", Ingress=True), CI_NETS, False, "Ingress", "network_drivers"),
    ("IPAM plugin", net(IPAM={"Driver": "infoblox"}), CI_NETS, False, "IPAM.Driver", "network_drivers"),
    (
        "IPAM plugin allowed",
        net(IPAM={"Driver": "infoblox"}),
        Allowance(networks=("ci-*",), network_drivers={"infoblox"}),
        True,
        "",
        "",
    ),
    ("case trick", raw('{"name": "ci-a", "driver": "macvlan"}'), CI_NETS, False, "Driver", "network_drivers"),
    (
        "two readings of Driver",
        raw('{"Name": "ci-a", "Driver": "bridge", "driver": "macvlan"}'),
        OPEN,
        False,
        "driver",
        "",
    ),
    ("wrong type: Options value", raw('{"Name": "ci-a", "Options": {"parent": 1}}'), OPEN, False, "Options.parent", ""),
    ("wrong type: Ingress", raw('{"Name": "ci-a", "Ingress": "true"}'), OPEN, False, "Ingress", ""),
    ("empty body", b"", OPEN, False, "", ""),
]


@pytest.mark.parametrize(
    ("body", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in NETWORK_CREATE_CASES],
    ids=[case[0] for case in NETWORK_CREATE_CASES],
)
def test_network_create(body: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = judge("network.create", body, allowance)
    assert (verdict.allowed, verdict.field, verdict.guard) == (allowed, field, guard), verdict.reason


def conn(**endpoint: Any) -> bytes:
    """What the docker CLI 20.10 sends for `docker network connect --alias web NET c1`."""
    config: dict[str, Any] = {"IPAMConfig": None, "Links": None, "Aliases": ["web"]}
    config.update(endpoint)
    return json.dumps({"Container": "c1", "EndpointConfig": config}).encode()


NETWORK_CONNECT_CASES = [
    ("docker network connect --alias", conn(), CLOSED, True, "", ""),
    ("no EndpointConfig", raw('{"Container": "c1"}'), CLOSED, True, "", ""),
    (
        "NetworkID of another's network",
        conn(NetworkID="internal"),
        CI_NETS,
        False,
        "EndpointConfig.NetworkID",
        "networks",
    ),
    ("NetworkID in the group's networks", conn(NetworkID="ci-b"), CI_NETS, True, "", ""),
    (
        "NetworkID hexadecimal (may be host)",
        conn(NetworkID="6692bede"),
        Allowance(networks=("*",)),
        False,
        "EndpointConfig.NetworkID",
        "host_namespaces",
    ),
    (
        "NetworkID host",
        conn(NetworkID="host"),
        Allowance(networks=("*",)),
        False,
        "EndpointConfig.NetworkID",
        "host_namespaces",
    ),
    (
        "case trick",
        raw('{"endpointconfig": {"networkid": "internal"}}'),
        CI_NETS,
        False,
        "EndpointConfig.NetworkID",
        "networks",
    ),
    ("empty body", b"", OPEN, False, "", ""),
]


@pytest.mark.parametrize(
    ("body", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in NETWORK_CONNECT_CASES],
    ids=[case[0] for case in NETWORK_CONNECT_CASES],
)
def test_network_connect(body: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = judge("network.connect", body, allowance)
    assert (verdict.allowed, verdict.field, verdict.guard) == (allowed, field, guard), verdict.reason


def test_network_reasons_say_what_is_at_stake() -> None:
    reason = judge("container.create", network("internal"), CLOSED).reason
    assert "DNS names" in reason and 'prefix such as "ci-*", to networks' in reason
    assert "only the networks ci-*" in judge("container.create", network("internal"), CI_NETS).reason
    reason = judge("network.create", net(Driver="macvlan", Options={"parent": "eth0"}), CI_NETS).reason
    assert "host's interfaces" in reason and 'add "macvlan" to network_drivers' in reason


VOLUME_CASES = [
    ("docker volume create", vol(Driver="local", DriverOpts={}), CLOSED, True, "", ""),
    ("empty body", b"", CLOSED, True, "", ""),
    ("non-local driver", vol(Driver="rexray/ebs"), CLOSED, False, "Driver", "volume_drivers"),
    ("non-local driver allowed", vol(Driver="rexray/ebs"), Allowance(volume_drivers={"rexray/ebs"}), True, "", ""),
    ("driver Local is not local", vol(Driver="Local"), CLOSED, False, "Driver", "volume_drivers"),
    (
        "local bind /etc",
        vol(Driver="local", DriverOpts={"type": "none", "o": "bind", "device": "/etc"}),
        SRV,
        False,
        "DriverOpts.device",
        "bind_roots",
    ),
    (
        "local bind /srv/a",
        vol(Driver="local", DriverOpts={"type": "none", "o": "bind", "device": "/srv/a"}),
        SRV,
        True,
        "",
        "",
    ),
    (
        "local bind socket dir",
        vol(DriverOpts={"type": "none", "o": "bind", "device": "/run"}),
        ROOT_BINDS,
        False,
        "DriverOpts.device",
        "docker_socket",
    ),
    (
        "local rbind with other type",
        vol(DriverOpts={"type": "ext4", "o": "ro, rbind", "device": "/etc"}),
        SRV,
        False,
        "DriverOpts.device",
        "bind_roots",
    ),
    (
        "local bind with ..",
        vol(DriverOpts={"type": "none", "o": "bind", "device": "/srv/../etc"}),
        SRV,
        False,
        "DriverOpts.device",
        "",
    ),
    (
        "local device with type none, no o",
        vol(DriverOpts={"type": "none", "device": "/etc"}),
        SRV,
        False,
        "DriverOpts.device",
        "bind_roots",
    ),
    (
        "local keys in other case",
        vol(DriverOpts={"Type": "none", "O": "bind", "Device": "/etc"}),
        SRV,
        False,
        "DriverOpts.device",
        "bind_roots",
    ),
    ("local keys ambiguous", vol(DriverOpts={"device": "/srv/a", "Device": "/etc"}), OPEN, False, "Device", ""),
    (
        "local tmpfs",
        vol(DriverOpts={"type": "tmpfs", "device": "tmpfs", "o": "size=100m,uid=1000"}),
        CLOSED,
        True,
        "",
        "",
    ),
    ("local nfs", vol(DriverOpts={"type": "nfs", "device": ":/export", "o": "addr=10.0.0.1,rw"}), CLOSED, True, "", ""),
    (
        "local cifs",
        vol(DriverOpts={"type": "cifs", "device": "//server/share", "o": "username=u"}),
        CLOSED,
        True,
        "",
        "",
    ),
    (
        "local block device",
        vol(DriverOpts={"type": "ext4", "device": "/dev/sda1"}),
        CLOSED,
        False,
        "DriverOpts.type",
        "devices",
    ),
    (
        "local block device allowed",
        vol(DriverOpts={"type": "btrfs", "device": "/dev/sda2"}),
        Allowance(devices=True),
        True,
        "",
        "",
    ),
    ("local proc", vol(DriverOpts={"type": "proc", "device": "proc"}), CLOSED, False, "DriverOpts.type", "devices"),
    (
        "local overlay",
        vol(DriverOpts={"type": "overlay", "device": "overlay", "o": "lowerdir=/etc"}),
        CLOSED,
        False,
        "DriverOpts.type",
        "devices",
    ),
    ("local size only", vol(DriverOpts={"size": "10G"}), CLOSED, True, "", ""),
    ("wrong type: DriverOpts value", raw('{"DriverOpts": {"device": 1}}'), OPEN, False, "DriverOpts.device", ""),
    ("wrong type: Driver", raw('{"Driver": ["local"]}'), OPEN, False, "Driver", ""),
]


@pytest.mark.parametrize(
    ("body", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in VOLUME_CASES],
    ids=[case[0] for case in VOLUME_CASES],
)
def test_volume_create(body: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = judge("volume.create", body, allowance)
    assert (verdict.allowed, verdict.field, verdict.guard) == (allowed, field, guard), verdict.reason


# --- plugins: the privileges a pull accepts, the settings a set changes ------------

PRIVILEGED = Allowance(privileged=True)
SSHFS_PRIVILEGES = [
    {"Name": "network", "Description": "permissions to access a network", "Value": ["host"]},
    {"Name": "mount", "Description": "host path to mount", "Value": ["/var/lib/docker/plugins/"]},
    {"Name": "capabilities", "Description": "list of additional capabilities required", "Value": ["CAP_SYS_ADMIN"]},
]
PLUGIN_PULL_CASES = [
    # (name, body, allowance, allowed, field, guard)
    ("no privileges accepted", raw("[]"), CLOSED, True, "", ""),
    ("null: none", raw("null"), CLOSED, True, "", ""),
    ("vieux/sshfs's privileges", raw(json.dumps(SSHFS_PRIVILEGES)), CLOSED, False, "[0]", "privileged"),
    ("allowed with privileged", raw(json.dumps(SSHFS_PRIVILEGES)), PRIVILEGED, True, "", ""),
    ("any element counts", raw("[{}]"), CLOSED, False, "[0]", "privileged"),
    ("a null element counts", raw("[null]"), CLOSED, False, "[0]", "privileged"),
    ("not with other guards", raw(json.dumps(SSHFS_PRIVILEGES)), OPEN_BUT_PRIVILEGED, False, "[0]", "privileged"),
    ("empty body", b"", OPEN, False, "", ""),
    ("blank body", b" ", OPEN, False, "", ""),
    ("an object", raw('{"Name": "network"}'), OPEN, False, "(body)", ""),
    ("two readings of Name", raw('[{"Name": "network", "name": "x"}]'), OPEN, False, "name", ""),
    ("trailing content", raw("[] [{}]"), OPEN, False, "", ""),
    ("Name of the wrong type", raw('[{"Name": 1}]'), OPEN, False, "[0].Name", ""),
]
PLUGIN_SET_CASES = [
    ("environment variable by field", raw('["DEBUG.value=1"]'), CLOSED, True, "", ""),
    ("args by field", raw('["args.value=-v"]'), CLOSED, True, "", ""),
    ("a dotted env name", raw('["a.b.value=1"]'), CLOSED, True, "", ""),
    ("nothing", raw("[]"), CLOSED, True, "", ""),
    ("mount source", raw('["state.source=/"]'), CLOSED, False, "[0]", "privileged"),
    ("device path", raw('["DEBUG.value=1", "gpu.path=/dev/mem"]'), CLOSED, False, "[1]", "privileged"),
    # without a field the daemon picks the setting's only settable field: maybe a mount
    ("no field", raw('["state=/"]'), CLOSED, False, "[0]", "privileged"),
    ("no value", raw('["state"]'), CLOSED, False, "[0]", "privileged"),
    ("field case matters to the daemon", raw('["DEBUG.VALUE=1"]'), CLOSED, False, "[0]", "privileged"),
    ("leading dot is no field", raw('[".value=1"]'), CLOSED, False, "[0]", "privileged"),
    ("mount source with privileged", raw('["state.source=/"]'), PRIVILEGED, True, "", ""),
    ("a string, not a list", raw('"state.source=/"'), OPEN, False, "(body)", ""),
    ("a number element", raw("[1]"), OPEN, False, "(body)[0]", ""),
    ("empty body", b"", OPEN, False, "", ""),
]


@pytest.mark.parametrize(
    ("kind", "body", "allowance", "allowed", "field", "guard"),
    [("plugin.pull", *case[1:]) for case in PLUGIN_PULL_CASES]
    + [("plugin.upgrade", *case[1:]) for case in PLUGIN_PULL_CASES]
    + [("plugin.set", *case[1:]) for case in PLUGIN_SET_CASES],
    ids=[f"pull: {c[0]}" for c in PLUGIN_PULL_CASES]
    + [f"upgrade: {c[0]}" for c in PLUGIN_PULL_CASES]
    + [f"set: {c[0]}" for c in PLUGIN_SET_CASES],
)
def test_plugins(kind: str, body: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = judge(kind, body, allowance)
    assert verdict.allowed is allowed, verdict.reason
    assert (verdict.field, verdict.guard) == (field, guard)
    if guard:
        assert "privileged = true" in verdict.reason


def test_plugin_reasons_name_what_is_granted() -> None:
    reason = judge("plugin.pull", raw(json.dumps(SSHFS_PRIVILEGES)), CLOSED).reason
    assert "network, mount, capabilities" in reason and "root on the host" in reason
    assert "NAME.value=" in judge("plugin.set", raw('["state=/"]'), CLOSED).reason


@pytest.mark.parametrize(
    ("kind", "cases"),
    [
        ("container.update", UPDATE_CASES),
        ("exec.create", EXEC_CASES),
        ("service.create", SERVICE_CASES),
        ("volume.create", VOLUME_CASES),
        ("network.create", NETWORK_CREATE_CASES),
        ("network.connect", NETWORK_CONNECT_CASES),
        ("plugin.pull", PLUGIN_PULL_CASES),
        ("plugin.set", PLUGIN_SET_CASES),
    ],
)
def test_open_allows_every_openable_case(kind: str, cases: list[tuple[Any, ...]]) -> None:
    for name, body, _allowance, _allowed, _field, guard in cases:
        if guard:
            verdict = judge(kind, body, OPEN)
            assert verdict.allowed, (name, verdict.reason)


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown inspection kind"):
        judge("image.build", b"{}", OPEN)


# --- inspection_kind -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "kind"),
    [
        ("POST", b"/containers/create", "container.create"),
        ("POST", b"/v1.41/containers/create?name=web", "container.create"),
        ("POST", b"/containers/abc/update", "container.update"),
        ("POST", b"/containers/abc/exec", "exec.create"),
        ("POST", b"/v1.45/services/create", "service.create"),
        ("POST", b"/services/web/update?version=3", "service.update"),
        ("POST", b"/volumes/create", "volume.create"),
        ("POST", b"/containers/create/update", "container.update"),
        ("GET", b"/containers/create", None),
        ("post", b"/containers/create", None),
        ("PUT", b"/volumes/create", None),
        ("POST", b"/containers/abc/start", "container.start"),
        ("POST", b"/exec/abc/start", None),
        ("POST", b"/volumes/prune", None),
        ("POST", b"/containers/a/b/update", "container.update"),
        ("POST", b"/networks/create", "network.create"),
        ("POST", b"/v1.41/networks/ci-a/connect", "network.connect"),
        ("POST", b"/networks/a/b/connect", "network.connect"),
        ("POST", b"/networks/ci-a/disconnect", None),
        ("DELETE", b"/networks/ci-a", None),
        ("POST", b"/v1.41/plugins/pull?remote=vieux/sshfs", "plugin.pull"),
        ("POST", b"/plugins/vieux/sshfs:latest/upgrade", "plugin.upgrade"),
        ("POST", b"/plugins/sshfs/set", "plugin.set"),
        ("POST", b"/plugins/create?name=x", None),
        ("POST", b"/plugins/sshfs/enable", None),
    ],
)
def test_inspection_kind(method: str, target: bytes, kind: str | None) -> None:
    assert inspection_kind(method, canonicalise(target)) == kind


def test_every_kind_is_reachable() -> None:
    found = {
        inspection_kind("POST", canonicalise(t))
        for t in (
            b"/containers/create", b"/containers/x/update", b"/containers/x/exec",
            b"/services/create", b"/services/x/update", b"/volumes/create", b"/containers/x/start",
            b"/plugins/pull", b"/plugins/x/upgrade", b"/plugins/x/set", b"/networks/create", b"/networks/x/connect",
        )
    }  # fmt: skip
    # libpod (issue 17): tests/test_podman_guards.py
    assert found == {kind for kind in INSPECTED_KINDS if not kind.startswith("libpod.")}


# --- Allowance: merge, describe, configuration -------------------------------------


def test_merge_is_a_union() -> None:
    left = Allowance(privileged=True, capabilities={"NET_ADMIN"}, bind_roots=("/srv",), host_namespaces={"pid"},
                     runtimes={"nvidia"}, exec_root=False)  # fmt: skip
    right = Allowance(devices=True, capabilities={"SYS_PTRACE"}, bind_roots=("/data", "/srv"), host_namespaces={"network"},
                      volume_drivers={"rexray"}, exec_privileged=True, docker_socket=True, join_containers=True,
                      unconfined=True, sysctls=True, exec_root=False, image_names=("ci/*", "web"), buildkit=True,
                      remote_fetch=True, cgroup_parent=True)  # fmt: skip
    left = attrs.evolve(left, image_names=("web", "team/app"))
    merged = left.merge(right)
    assert merged == Allowance(
        privileged=True,
        capabilities={"NET_ADMIN", "SYS_PTRACE"},
        devices=True,
        bind_roots=("/srv", "/data"),
        docker_socket=True,
        host_namespaces={"pid", "network"},
        join_containers=True,
        unconfined=True,
        sysctls=True,
        runtimes={"nvidia"},
        volume_drivers={"rexray"},
        exec_root=False,
        exec_privileged=True,
        image_names=("web", "team/app", "ci/*"),
        buildkit=True,
        remote_fetch=True,
        cgroup_parent=True,
    )
    assert left.merge(CLOSED).exec_root is True  # CLOSED allows exec as root
    assert CLOSED.merge(CLOSED) == CLOSED
    assert CLOSED.merge(OPEN) == OPEN == OPEN.merge(CLOSED)


def test_merge_allows_what_either_allows() -> None:
    a = Allowance(privileged=True)
    b = Allowance(bind_roots=("/srv",))
    body = run(Privileged=True, Binds=["/srv/x:/x:ro"])
    assert not judge("container.create", body, a).allowed
    assert not judge("container.create", body, b).allowed
    assert judge("container.create", body, a.merge(b)).allowed


def test_describe() -> None:
    assert CLOSED.describe() == "guards: no escalations allowed; exec as root"
    text = Allowance(privileged=True, bind_roots=("/srv", "/data"), capabilities={"SYS_PTRACE", "NET_ADMIN"},
                     host_namespaces={"network", "pid"}, exec_root=False).describe()  # fmt: skip
    assert text == (
        "guards: privileged; capabilities NET_ADMIN, SYS_PTRACE; read-only bind mounts under /srv, /data; "
        "host namespaces pid, network; exec as non-root only"
    )
    assert "\n" not in OPEN.describe()
    for key in ("privileged", "devices", "docker socket", "unconfined", "sysctls", "privileged exec",
                "writes images *", "buildkit", "remote fetch", "cgroup parent"):  # fmt: skip
        assert key in OPEN.describe()
    assert Allowance(networks=("ci-*", "backend"), network_drivers={"macvlan"}).describe() == (
        "guards: network drivers macvlan; networks ci-*, backend; exec as root"
    )
    assert Allowance(image_names=("ci/*",), buildkit=True).describe() == (
        "guards: writes images ci/*; buildkit; exec as root"
    )


def test_closed_and_open() -> None:
    assert CLOSED == Allowance()
    assert CLOSED.exec_root is True
    assert OPEN.host_namespaces == frozenset(HOST_NAMESPACES)
    assert all(getattr(OPEN, name) for name in GUARD_KEYS)


def test_allowance_from_mapping() -> None:
    table = {
        "privileged": False,
        "capabilities": ["net_admin", "CAP_SYS_PTRACE"],
        "devices": True,
        "bind_roots": ["/srv", "/"],
        "docker_socket": False,
        "host_namespaces": ["network"],
        "join_containers": True,
        "unconfined": False,
        "sysctls": True,
        "runtimes": ["nvidia"],
        "volume_drivers": ["*"],
        "exec_root": False,
        "exec_privileged": True,
        "image_names": ["ci/*", "registry.local:5000/team/app", "ci/*", "*"],
        "network_drivers": ["macvlan"],
        "networks": ["ci-*", "backend", "Team*", "ci-*"],
        "buildkit": True,
        "remote_fetch": False,
        "cgroup_parent": True,
    }
    assert allowance_from_mapping("dockguard.toml", "groups.ci.guards", table) == Allowance(
        capabilities={"NET_ADMIN", "SYS_PTRACE"},
        devices=True,
        bind_roots=("/srv", "/"),
        host_namespaces={"network"},
        join_containers=True,
        sysctls=True,
        runtimes={"nvidia"},
        volume_drivers={"*"},
        exec_root=False,
        exec_privileged=True,
        image_names=("ci/*", "registry.local:5000/team/app", "*"),
        network_drivers={"macvlan"},
        networks=("ci-*", "backend", "Team*"),
        buildkit=True,
        cgroup_parent=True,
    )
    assert allowance_from_mapping("f", "groups.x.guards", {}) == CLOSED
    assert allowance_from_mapping("f", "g", {"capabilities": ["ALL"]}).capabilities == {"ALL"}


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"privilege": True}, "groups.ci.guards.privilege", 'did you mean "privileged"?'),
        ({"bind_root": ["/srv"]}, "groups.ci.guards.bind_root", 'did you mean "bind_roots"?'),
        ({"zzz": 1}, "groups.ci.guards.zzz", "unknown guard 'zzz'"),
        ({"privileged": "true"}, "groups.ci.guards.privileged", "must be true or false"),
        ({"privileged": 1}, "groups.ci.guards.privileged", "must be true or false"),
        ({"exec_root": None}, "groups.ci.guards.exec_root", "must be true or false"),
        ({"capabilities": "NET_ADMIN"}, "groups.ci.guards.capabilities", "must be a list of strings"),
        ({"capabilities": [1]}, "groups.ci.guards.capabilities", "not a string"),
        ({"capabilities": ["NET_ADMN"]}, "groups.ci.guards.capabilities", 'did you mean "NET_ADMIN"?'),
        ({"capabilities": ["SUPERPOWER"]}, "groups.ci.guards.capabilities", "unknown capability 'SUPERPOWER'"),
        ({"host_namespaces": ["net"]}, "groups.ci.guards.host_namespaces", "unknown namespace 'net'"),
        ({"host_namespaces": ["PID"]}, "groups.ci.guards.host_namespaces", 'did you mean "pid"?'),
        ({"bind_roots": ["srv"]}, "groups.ci.guards.bind_roots", "not absolute"),
        ({"bind_roots": ["/srv/../etc"]}, "groups.ci.guards.bind_roots", "not a normalised path"),
        ({"bind_roots": ["/srv/"]}, "groups.ci.guards.bind_roots", "not a normalised path"),
        ({"bind_roots": ["/srv//a"]}, "groups.ci.guards.bind_roots", "not a normalised path"),
        ({"bind_roots": ["/srv/./a"]}, "groups.ci.guards.bind_roots", "not a normalised path"),
        ({"bind_roots": ["//srv"]}, "groups.ci.guards.bind_roots", "not a normalised path"),
        ({"bind_roots": "/srv"}, "groups.ci.guards.bind_roots", "must be a list of strings"),
        ({"runtimes": [""]}, "groups.ci.guards.runtimes", "is not a name"),
        ({"volume_drivers": [" x"]}, "groups.ci.guards.volume_drivers", "is not a name"),
        ({"buildkit": "yes"}, "groups.ci.guards.buildkit", "must be true or false"),
        ({"remote_fetch": 1}, "groups.ci.guards.remote_fetch", "must be true or false"),
        ({"cgroup_parent": None}, "groups.ci.guards.cgroup_parent", "must be true or false"),
        ({"build_kit": True}, "groups.ci.guards.build_kit", 'did you mean "buildkit"?'),
        ({"image_name": ["ci/*"]}, "groups.ci.guards.image_name", 'did you mean "image_names"?'),
        ({"image_names": "ci/*"}, "groups.ci.guards.image_names", "must be a list of strings"),
        ({"image_names": ["ci/App"]}, "groups.ci.guards.image_names", "must be lower-case"),
        ({"image_names": ["ci/*/x"]}, "groups.ci.guards.image_names", "not at the end"),
        ({"image_names": ["ci/app:latest"]}, "groups.ci.guards.image_names", "has a tag or digest"),
        ({"image_names": [""]}, "groups.ci.guards.image_names", "empty pattern"),
        ({"image_names": ["ci//app"]}, "groups.ci.guards.image_names", "not a valid image reference"),
        ({"image_names": ["a" * 64]}, "groups.ci.guards.image_names", "image ID"),
        ({"network": ["ci-*"]}, "groups.ci.guards.network", 'did you mean "networks"?'),
        ({"networks": "ci-*"}, "groups.ci.guards.networks", "must be a list of strings"),
        ({"networks": [""]}, "groups.ci.guards.networks", "not a network name or prefix"),
        ({"networks": ["*ci"]}, "groups.ci.guards.networks", "not a network name or prefix"),
        ({"networks": [" ci"]}, "groups.ci.guards.networks", "not a network name or prefix"),
        ({"networks": ["ci*"]}, "groups.ci.guards.networks", 'e.g. "ci-*"'),
        ({"networks": ["cafe"]}, "groups.ci.guards.networks", "hexadecimal"),
        ({"networks": ["host"]}, "groups.ci.guards.networks", "host needs host_namespaces"),
        ({"networks": ["container:web"]}, "groups.ci.guards.networks", "join_containers"),
        ({"network_drivers": [""]}, "groups.ci.guards.network_drivers", "is not a name"),
    ],
)
def test_allowance_from_mapping_errors(table: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        allowance_from_mapping("dockguard.toml", "groups.ci.guards", table)
    assert caught.value.source == "dockguard.toml"
    assert caught.value.key == key
    assert words in caught.value.reason


def test_allowance_from_mapping_needs_a_table() -> None:
    with pytest.raises(ConfigError) as caught:
        allowance_from_mapping("f", "groups.ci.guards", ["privileged"])  # type: ignore[arg-type]
    assert caught.value.key == "groups.ci.guards"


def test_allowance_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        CLOSED.privileged = True  # type: ignore[misc]


# --- never raises ------------------------------------------------------------------

FIELD_NAMES = [
    "HostConfig", "hostconfig", "Privileged", "privileged", "CapAdd", "Binds", "Mounts", "Type", "Source",
    "VolumeOptions", "DriverConfig", "Name", "Options", "type", "o", "device", "Devices", "DeviceRequests",
    "DeviceCgroupRules", "PidMode", "NetworkMode", "IpcMode", "UsernsMode", "UTSMode", "CgroupnsMode", "Cgroup",
    "VolumesFrom", "CgroupParent", "SecurityOpt", "MaskedPaths", "ReadonlyPaths", "Sysctls", "Runtime", "VolumeDriver",
    "NetworkingConfig", "EndpointsConfig", "User", "TaskTemplate", "ContainerSpec", "Privileges",
    "SELinuxContext", "Seccomp", "AppArmor", "Mode", "Profile", "Disable", "CapabilityAdd", "PluginSpec",
    "Networks", "Target", "Resources", "Reservations", "GenericResources", "Driver", "DriverOpts",
]  # fmt: skip
STRING_VALUES = ["", "host", "container:x", "/", "/srv/a", "/var/run/docker.sock", "bind", "none", "0", "root",
                 "seccomp=unconfined", "SYS_ADMIN", "ALL", "local", "plugin", "a:b:c", "/a/../b", "\u017f"]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(STRING_VALUES)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=30,
)
allowances = st.sampled_from([CLOSED, OPEN, SRV, NON_ROOT, ROOT_BINDS, SOCKET_ONLY])


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(INSPECTED_KINDS), body=st.binary(max_size=200), allowance=allowances)
def test_judge_never_raises_on_bytes(kind: str, body: bytes, allowance: Allowance) -> None:
    verdict = judge(kind, body, allowance)
    assert isinstance(verdict, Verdict)
    assert verdict.allowed or verdict.reason


@settings(max_examples=500, deadline=None)
@given(kind=st.sampled_from(INSPECTED_KINDS), document=json_values, allowance=allowances)
def test_judge_never_raises_on_json(kind: str, document: Any, allowance: Allowance) -> None:
    verdict = judge(kind, json.dumps(document).encode(), allowance)
    assert isinstance(verdict, Verdict)
    assert verdict.allowed or verdict.reason
    assert verdict.allowed == (verdict.field == verdict.guard == verdict.reason == "")


@settings(max_examples=300, deadline=None)
@given(document=json_values)
def test_nested_into_a_realistic_body(document: Any) -> None:
    """Arbitrary values in every inspected HostConfig field still give a Verdict; OPEN refuses only with guard ''."""
    for name in FIELD_NAMES:
        body = copy.deepcopy(cli_run())
        body["HostConfig"][name] = document
        verdict = judge("container.create", json.dumps(body).encode(), OPEN)
        assert verdict.allowed or verdict.guard == ""


@pytest.mark.parametrize(
    "body, allowed",
    [
        (b"", True),
        (b"{}", True),
        (b"null", True),
        (b'{"Privileged": true}', False),
        (b'{"Binds": ["/:/host"]}', False),
        (b"{ }", False),  # anything but the empty forms: a HostConfig old APIs apply at start
    ],
)
def test_start_takes_no_body(body: bytes, allowed: bool) -> None:
    verdict = judge("container.start", body, OPEN)
    assert verdict.allowed is allowed
    if not allowed:
        assert "takes no body" in verdict.reason


# -- bind roots: read-only by default, and judged as the host resolves them ------------------

RO_SRV = Allowance(bind_roots=("/srv",))


def _fake_host(links: dict[str, str]):
    def resolve(path: str) -> str:
        for link, target in links.items():
            if path == link or path.startswith(link + "/"):
                return (target.rstrip("/") + path[len(link) :]) or "/"
        return path

    return resolve


BIND_ROOT_CASES = [
    ("rw bind under a root", run(Binds=["/srv/a:/a"]), RO_SRV, {}, False, "bind_write"),
    ("ro bind under a root", run(Binds=["/srv/a:/a:ro"]), RO_SRV, {}, True, ""),
    ("ro,z bind", run(Binds=["/srv/a:/a:z,ro"]), RO_SRV, {}, True, ""),
    ("rw mount", run(Mounts=[{"Type": "bind", "Source": "/srv/a", "Target": "/a"}]), RO_SRV, {}, False, "bind_write"),
    (
        "ro mount",
        run(Mounts=[{"Type": "bind", "Source": "/srv/a", "Target": "/a", "ReadOnly": True}]),
        RO_SRV,
        {},
        True,
        "",
    ),
    ("planted link to /", run(Binds=["/srv/a/esc:/h:ro"]), RO_SRV, {"/srv/a/esc": "/"}, False, "docker_socket"),
    ("planted link to /etc", run(Binds=["/srv/a/esc:/h:ro"]), RO_SRV, {"/srv/a/esc": "/etc"}, False, "bind_roots"),
    (
        "missing path under the link",
        run(Binds=["/srv/a/esc/new:/h:ro"]),
        RO_SRV,
        {"/srv/a/esc": "/"},
        False,
        "bind_roots",
    ),
    (
        "link to the socket",
        run(Binds=["/srv/s:/s:ro"]),
        Allowance(bind_roots=("/",)),
        {"/srv/s": "/run/docker.sock"},
        False,
        "docker_socket",
    ),
    ("link inside the root", run(Binds=["/srv/l:/l:ro"]), RO_SRV, {"/srv/l": "/srv/real"}, True, ""),
]


@pytest.mark.parametrize(
    ("body", "allowance", "links", "allowed", "guard"),
    [c[1:] for c in BIND_ROOT_CASES],
    ids=[c[0] for c in BIND_ROOT_CASES],
)
def test_bind_roots_are_read_only_and_resolved(body, allowance, links, allowed, guard) -> None:
    verdict = judge("container.create", body, allowance, host_paths=_fake_host(links))
    assert (verdict.allowed, verdict.guard) == (allowed, guard), verdict.reason


def test_a_volume_that_binds_a_planted_link_is_refused() -> None:
    body = json.dumps({"Name": "v", "DriverOpts": {"type": "none", "o": "bind,ro", "device": "/srv/a/esc"}}).encode()
    verdict = judge("volume.create", body, RO_SRV, host_paths=_fake_host({"/srv/a/esc": "/home"}))
    assert (verdict.allowed, verdict.guard) == (False, "bind_roots"), verdict
    assert "which the host resolves to /home" in verdict.reason
    body = json.dumps({"Name": "v", "DriverOpts": {"type": "none", "o": "bind", "device": "/srv/a"}}).encode()
    assert judge("volume.create", body, RO_SRV).guard == "bind_write"


def test_an_unreadable_host_path_is_refused() -> None:
    from dockguard.guards import HostPathUnverifiable

    def unreadable(path: str) -> str:
        raise HostPathUnverifiable("dockguard cannot read at /srv/a (Permission denied)")

    verdict = judge("container.create", run(Binds=["/srv/a:/a:ro"]), RO_SRV, host_paths=unreadable)
    assert not verdict.allowed and "Permission denied" in verdict.reason


def test_services_mount_swarm_secrets_only_when_allowed() -> None:
    for field in ("Secrets", "Configs"):
        body = json.dumps(
            {
                "Name": "s",
                "TaskTemplate": {"ContainerSpec": {"Image": "a", field: [{"SecretID": "abc", "File": {"Name": "x"}}]}},
            }
        ).encode()
        verdict = judge("service.create", body, CLOSED)
        assert (verdict.allowed, verdict.guard) == (False, "swarm_secrets"), verdict
        assert judge("service.create", body, Allowance(swarm_secrets=True)).allowed
