"""Ready-made groups for the tools people put in front of the Docker socket.

Use a preset directly (C{traefik = ["traefik"]} under C{[identities]}) or
build on it (C{extends = ["dozzle"]} in a C{[groups.NAME]} table). Preset
names are reserved: a configuration cannot define a group with one of them.

Each preset opens what the tool's own code or documentation shows it calls,
and nothing more; the comment above each says what, why, and where that was
read (repository and path of the stored copy that was read). Opt-in features
of a tool (Dozzle's shell, Watchtower's lifecycle hooks, ...) are left out:
extend the preset with the actions they need.

The presets of tools that only read give each read the tool makes by its
action (C{container.list}, C{container.inspect}, ...), not the section's
"read": a tool that lists containers gets the list, not every container's
inspect, top and changes. Each preset is tested against the trace of its
tool (C{tests/traces/<preset>.toml}: every call it makes, with the file of
its source or the run here that shows it): every traced call is allowed, and
every route it allows is justified by a traced call or named in the trace as
a deliberate extra, with the reason.

Remember what a section "read" gives: every non-sensitive GET of the section,
e.g. C{containers = "read"} includes container inspect (environment
variables!), top, stats and changes, but not logs, archive, export or
attach/ws, and C{images = "read"} not C{docker save} (see
L{dockguard.routes.ROUTES}): logs and image exports are sensitive reads
that a preset asks for by action (C{container.logs}, C{service.logs},
C{task.logs}, C{image.export}) only when its tool reads them. The presets of tools that
read only names, labels, state and stats redact the environment
(C{redact = {"env"}}, L{dockguard.scope}): their callers see the names
of the variables in container and image inspects, not the values. No preset
has a scope.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dockguard.groups import Group
from dockguard.guards import CLOSED, OPEN, Allowance
from dockguard.routes import LIBPOD_SECTIONS, SECTIONS

__all__ = ["PRESETS"]


def _preset(
    name: str,
    description: str,
    sections: dict[str, str],
    actions: tuple[str, ...] = (),
    guards: Allowance = CLOSED,
    redact: frozenset[str] = frozenset(),
) -> Group:
    # Group's redact converter (a bare frozenset) leaves mypy no argument
    # type it accepts, so it goes in through a mapping.
    redaction: dict[str, Any] = {"redact": redact}
    return Group(
        name=name, sections=sections, actions=frozenset(actions), description=description, guards=guards, **redaction
    )


#: The environment's values hidden: for tools that read no container's environment.
_NO_ENV = frozenset({"env"})


_ALL = [section.name for section in SECTIONS]

# Traefik's Docker and Swarm providers (traefik/traefik pkg/provider/docker/
# pdocker.go, pswarm.go): ServerVersion (GET /version), ContainerList
# (GET /containers/json?all=1), ContainerInspect per container
# (GET /containers/{id}/json), Events filtered to containers (GET /events);
# in Swarm mode ServiceList (GET /services), NetworkList with scope=swarm
# (GET /networks), TaskList (GET /tasks) and NodeInspect (GET /nodes/{id}).
# The client pings for API negotiation (HEAD /_ping since Traefik 2.11.31/3.6.1,
# GET /_ping before or when HEAD fails); older Traefiks pin API 1.24
# (/v1.24/...). Of an inspect it reads the name, state, health, labels,
# network mode and network settings (pkg/provider/docker/shared.go
# parseContainer), never Config.Env: the environment is redacted. Each read
# is given by its action: no container top, stats or changes, no logs, no
# service inspect. The calls, each with its file: tests/traces/traefik.toml.
_TRAEFIK = _preset(
    "traefik",
    "Traefik's Docker/Swarm provider: reads containers, events, and in Swarm mode services, tasks, nodes and networks",
    {"ping": "read", "version": "read", "events": "read"},
    (
        "container.list",
        "container.inspect",
        "service.list",
        "network.list",
        "task.list",
        "node.inspect",
    ),
    redact=_NO_ENV,
)

# Homepage's Docker integration uses dockerode (gethomepage/homepage
# src/pages/api/docker/stats/[...service].js, status/[...service].js,
# src/utils/config/service-helpers.js): listContainers({all: true})
# (GET /containers/json?all=true), container.stats({stream: false})
# (GET /containers/{name}/stats?stream=false), container.inspect() for its
# status (GET /containers/{name}/json), and with swarm: true listServices
# (GET /services), getService().inspect() (GET /services/{id}) and listTasks
# (GET /tasks?filters=...). dockerode sends unversioned paths and does not
# ping. A container-control endpoint (start/stop/restart) appears in some
# versions; it is not opened here: extend with actions
# container.start/stop/restart if you use it. It reads names, labels (its
# service discovery), state and stats, no container's environment: the
# environment is redacted. The calls: tests/traces/homepage.toml.
_HOMEPAGE = _preset(
    "homepage",
    "Homepage's Docker widgets: container list and stats, Swarm services and tasks; read-only",
    {},
    (
        "container.list",
        "container.inspect",
        "container.stats",
        "service.list",
        "service.inspect",
        "task.list",
    ),
    redact=_NO_ENV,
)

# Dozzle (amir20/dozzle internal/docker/client.go): Info (GET /info) at start,
# Ping with API negotiation (GET/HEAD /_ping), ContainerList
# (GET /containers/json?all=1), ContainerInspect (GET /containers/{id}/json),
# ContainerLogs with follow (GET /containers/{id}/logs), ContainerStats with
# stream (GET /containers/{id}/stats), Events (GET /events). Opt-in only:
# container actions (DOZZLE_ENABLE_ACTIONS: container.start/stop/restart) and
# the shell (DOZZLE_ENABLE_SHELL: container.attach and container.exec) -
# extend the preset with those actions if you enable them. Of an inspect it
# reads the name, image, command, labels, TTY, state, health and limits
# (internal/docker/client.go newContainerFromJSON), not Config.Env: the
# environment is redacted. It calls GET /version too (detectRuntime). The
# calls: tests/traces/dozzle.toml.
_DOZZLE = _preset(
    "dozzle",
    "Dozzle log viewer: container list, inspect, logs, stats and events; read-only",
    {"ping": "read", "version": "read", "info": "read", "events": "read"},
    ("container.list", "container.inspect", "container.logs", "container.stats"),
    redact=_NO_ENV,
)

# Watchtower recreates containers with a newer image
# (containrrr/watchtower pkg/container/client.go): ContainerList with status
# filters (GET /containers/json), ContainerInspect (GET /containers/{id}/json),
# ImageInspectWithRaw (GET /images/{name}/json), ImagePull
# (POST /images/create), ContainerKill with the stop signal
# (POST /containers/{id}/kill), ContainerRemove force=1
# (DELETE /containers/{id}), ContainerCreate (POST /containers/create?name=),
# NetworkDisconnect and NetworkConnect on the new container
# (POST /networks/{id}/disconnect, /connect), ContainerStart
# (POST /containers/{id}/start), ContainerRename for its self-update
# (POST /containers/{id}/rename), ImageRemove force=1 for --cleanup
# (DELETE /images/{id}). The maintained fork (nicholas-fedor/watchtower
# pkg/container/client.go, container_source.go) adds Ping with version
# negotiation (HEAD /_ping; GET /version before its moby/moby migration),
# Info (GET /info), stopping (container.stop) and UpdateContainer for its
# restart policy (POST /containers/{id}/update). Neither reads logs, exports
# images or reads /system/df. Lifecycle hooks (ContainerExecCreate/
# ExecAttach/ExecInspect) are opt-in and not opened: add container.exec.
# The calls, each with its file: tests/traces/watchtower.toml.
# Note: container.create is root-equivalent on the host; Watchtower needs it.
_WATCHTOWER = _preset(
    "watchtower",
    "Watchtower: pulls new images and recreates containers with them (create/start/stop/kill/delete/rename)",
    {
        "ping": "read",
        "version": "read",
        "info": "read",
    },
    (
        "container.list",
        "container.inspect",
        "image.inspect",
        "container.create",
        "container.start",
        "container.stop",
        "container.kill",
        "container.delete",
        "container.rename",
        "container.update",
        "image.pull",
        "image.delete",
        "network.connect",
    ),
    # Watchtower recreates the containers it finds with their existing host
    # configuration, whatever it holds (binds, capabilities, privileged): it
    # cannot do its job with closed guards. To narrow it, extend watchtower
    # in a group of your own and set that group's guards.
    guards=OPEN,
)

# Portainer manages every kind of Docker object: its Docker proxy
# (portainer/portainer api/http/proxy/factory/docker/transport.go and the
# containers/images/networks/volumes/services/tasks/secrets/configs/swarm/
# build files next to it) forwards every Engine API section, and its UI
# offers consoles (exec, attach), builds, stacks, Swarm and registries. So it
# gets everything on this host, like admin, except the cluster: swarm and node
# writes (and the join tokens) are cluster admin, on every node; no preset
# grants them. Extend it with swarm = "write", nodes = "write" to manage a
# Swarm from Portainer.
_PORTAINER = _preset(
    "portainer",
    "Portainer: full management of the daemon (every section, every method) except Swarm and node "
    "writes; as powerful as admin on this host",
    {**{name: "write" for name in _ALL}, "swarm": "read", "nodes": "read"},
    guards=OPEN,
)

# Dockman's documented minimum (RA341/dockman
# website/versioned_docs/version-latest/docker-socket/index.md, "Minimum
# Required Permissions"): PING, VERSION, INFO, EVENTS, CONTAINERS, IMAGES,
# NETWORKS, VOLUMES, EXEC, POST, SYSTEM, ALLOW_START, ALLOW_STOP,
# ALLOW_RESTARTS; BUILD and COMMIT only if you build or commit. With POST=1 a
# socket proxy opens every method in the open sections, so here: the
# GET-only sections read, containers/images/networks/volumes/exec/system
# write. ALLOW_START/STOP/RESTARTS are contained in containers = "write"; the
# actions are listed anyway so the preset reads like the documentation.
_DOCKMAN = _preset(
    "dockman",
    "Dockman compose manager: the minimum its documentation lists (containers, images, networks, volumes, exec, system with writes)",
    {
        "ping": "read",
        "version": "read",
        "info": "read",
        "events": "read",
        "containers": "write",
        "images": "write",
        "networks": "write",
        "volumes": "write",
        "exec": "write",
        "system": "write",
    },
    ("container.start", "container.stop", "container.restart", "container.kill"),
    # Dockman deploys the compose stacks you give it, binds and all.
    guards=OPEN,
)

# Glances' containers plugin uses docker-py (nicolargo/glances
# glances/plugins/containers/engines/docker.py): docker.from_env() negotiates
# the version (GET /version), containers.list(all=...) lists and inspects
# each container (GET /containers/json, GET /containers/{id}/json),
# container.image.tags inspects the image (GET /images/{id}/json), and
# container.stats(decode=True) streams stats (GET /containers/{id}/stats).
# Of an inspect it reads the name, ID, state, creation time, entrypoint and
# command (generate_stats), not Config.Env: the environment is redacted.
# Seen here: Glances 3.3.1 through dockguard's learn mode
# (tests/traces/glances.toml); it reads no logs and exports no image.
_GLANCES = _preset(
    "glances",
    "Glances containers plugin: container list, inspect and stats, image inspect; read-only",
    {"version": "read"},
    ("container.list", "container.inspect", "container.stats", "image.inspect"),
    redact=_NO_ENV,
)

# Grafana's collector, Alloy: discovery.docker is Prometheus' Docker service
# discovery (prometheus/prometheus discovery/moby/docker.go, network.go):
# ContainerList (GET /containers/json) and NetworkList (GET /networks),
# through a client that negotiates the API version with HEAD /_ping (GET
# /_ping if HEAD fails; moby/moby client/ping.go); loki.source.docker
# (grafana/alloy internal/component/loki/source/docker/tailer.go):
# ContainerInspect (GET /containers/{id}/json) and ContainerLogs with follow
# (GET /containers/{id}/logs): the one preset but dozzle with container.logs.
# Discovery alone is the prometheus preset. Grafana itself does not call the
# Engine API. The calls, each with its file: tests/traces/grafana.toml.
# Discovery turns names, labels, ports and networks into targets; the log
# tailer reads its state and whether it has a TTY: neither reads the
# environment, which is redacted.
_GRAFANA = _preset(
    "grafana",
    "Grafana Alloy: Docker discovery (containers, networks) and container log collection; read-only",
    {"ping": "read"},
    ("container.list", "container.inspect", "container.logs", "network.list"),
    redact=_NO_ENV,
)

# Prometheus' Docker service discovery, docker_sd_configs (prometheus/
# prometheus discovery/moby/docker.go, network.go), which Grafana Alloy's
# discovery.docker is: HEAD /_ping to negotiate the API version (GET /_ping
# if HEAD fails), ContainerList (GET /containers/json) and NetworkList
# (GET /networks); dockerswarm_sd_configs (discovery/moby/services.go,
# tasks.go, nodes.go) lists services, tasks and nodes with their networks.
# Seen here: Prometheus 2.42's docker_sd through dockguard's learn mode
# (tests/traces/prometheus.toml). No logs, no inspect of a container's
# environment: it is redacted.
_PROMETHEUS = _preset(
    "prometheus",
    "Prometheus docker_sd / dockerswarm_sd and Grafana Alloy discovery.docker: lists containers, networks, "
    "and in Swarm mode services, tasks and nodes; read-only",
    {"ping": "read"},
    ("container.list", "network.list", "service.list", "task.list", "node.list"),
    redact=_NO_ENV,
)

# Uptime Kuma's Docker container monitor (louislam/uptime-kuma server/docker.js,
# server/model/monitor.js), through axios on the socket, unversioned: a
# docker host's test lists the containers (GET /containers/json?all=true),
# and each monitor inspects its container for State.Running and
# State.Health (GET /containers/{name}/json). Nothing else; the environment
# is redacted.
_UPTIME_KUMA = _preset(
    "uptime-kuma",
    "Uptime Kuma's Docker container monitor: container list and inspect (state and health); read-only",
    {},
    ("container.list", "container.inspect"),
    redact=_NO_ENV,
)

# CrowdSec's docker acquisition (crowdsecurity/crowdsec
# pkg/acquisition/modules/docker/config.go, run.go, source.go), on the
# moby/moby client (HEAD /_ping to negotiate): Info (GET /info: is it a
# Swarm manager?), ContainerList (GET /containers/json), ContainerInspect
# (GET /containers/{id}/json: labels, TTY), ContainerLogs with follow, held
# open as long as the container runs (GET /containers/{id}/logs?follow=1),
# Events (GET /events); in Swarm mode ServiceList, ServiceInspect and
# ServiceLogs (GET /services, /services/{id}, /services/{id}/logs). Logs are
# what it reads: it has container.logs and service.logs, nothing to write.
_CROWDSEC = _preset(
    "crowdsec",
    "CrowdSec docker acquisition: follows container (and Swarm service) logs, with list, inspect, info and "
    "events; read-only",
    {"ping": "read", "info": "read", "events": "read"},
    (
        "container.list",
        "container.inspect",
        "container.logs",
        "service.list",
        "service.inspect",
        "service.logs",
    ),
    redact=_NO_ENV,
)

# Diun (crazy-max/diun pkg/docker/client.go, container.go, image.go,
# service.go; internal/provider/docker/container.go, swarm/service.go), on
# the moby/moby client (HEAD /_ping to negotiate): ServerVersion at start
# (GET /version), ContainerList (GET /containers/json, labels decide what is
# watched), ImageInspect of each container's image (GET /images/{name}/json);
# in Swarm mode ServiceList (GET /services). The registry is asked by Diun
# itself, not through the daemon. Read-only; the environment is redacted.
_DIUN = _preset(
    "diun",
    "Diun image update notifier: container list and image inspect (Swarm: service list); read-only",
    {"ping": "read", "version": "read"},
    ("container.list", "image.inspect", "service.list"),
    redact=_NO_ENV,
)

# docker-autoheal (willfarrell/docker-autoheal docker-entrypoint), curl on
# the socket, unversioned: lists the unhealthy containers with its label
# (GET /containers/json?filters={"health":["unhealthy"],"label":[...]}) and
# restarts them (POST /containers/{id}/restart?t=10). Restart is its only
# write; a scope (scope = { labels = ["autoheal=true"] }) narrows it to the
# labelled containers, see docs/groups.md.
_AUTOHEAL = _preset(
    "docker-autoheal",
    "docker-autoheal: lists unhealthy containers and restarts them; no other write",
    {},
    ("container.list", "container.restart"),
    redact=_NO_ENV,
)

# Beszel's agent (henrygd/beszel agent/docker.go, agent/handlers.go), plain
# HTTP on the socket, unversioned: GET /containers/json, one-shot stats per
# container (GET /containers/{id}/stats?stream=0&one-shot=1), GET /version,
# GET /info; for the hub's container views, a container's inspect
# (GET /containers/{id}/json, which it strips of Config.Env) and the tail of
# its logs (GET /containers/{id}/logs?stdout=1&stderr=1&tail=...): it has
# container.logs, for that view. The environment is redacted.
_BESZEL = _preset(
    "beszel",
    "Beszel agent: container list and one-shot stats, version and info; inspect and log tail for the hub's views; "
    "read-only",
    {"version": "read", "info": "read"},
    ("container.list", "container.stats", "container.inspect", "container.logs"),
    redact=_NO_ENV,
)

# What's Up Docker's docker watcher (getwud/wud app/watchers/providers/
# docker/Docker.ts) through dockerode, unversioned: listContainers
# (GET /containers/json), getImage().inspect() (GET /images/{name}/json),
# getEvents (GET /events) and, on an event, the container's inspect
# (GET /containers/{id}/json). Its update triggers (app/triggers/providers/
# docker/Docker.ts: pull, stop, remove, create, start, network connect,
# image removal) are opt-in and not opened: extend it with Watchtower's
# actions and guards to use them.
_WUD = _preset(
    "wud",
    "What's Up Docker watcher: container list and inspect, image inspect, events; read-only (triggers not included)",
    {"events": "read"},
    ("container.list", "container.inspect", "image.inspect"),
    redact=_NO_ENV,
)

# caddy-docker-proxy (lucaslorentz/caddy-docker-proxy loader.go,
# generator/generator.go, generator/services.go, docker/client.go), on the
# moby/moby client (HEAD /_ping to negotiate): Info (GET /info: Swarm or
# not), ContainerList (GET /containers/json), ContainerInspect of its own
# container and NetworkInspect of its networks (GET /containers/{id}/json,
# GET /networks/{id}) to find the ingress networks, NetworkList
# (GET /networks), Events (GET /events); in Swarm mode ServiceList, TaskList
# and ConfigList/ConfigInspect (Caddyfiles kept as Swarm configs:
# configs = "read", which is their data). The environment is redacted.
_CADDY_DOCKER_PROXY = _preset(
    "caddy-docker-proxy",
    "caddy-docker-proxy: reads container labels, networks, events (Swarm: services, tasks, configs); read-only",
    {"ping": "read", "info": "read", "events": "read", "configs": "read"},
    ("container.list", "container.inspect", "network.list", "network.inspect", "service.list", "task.list"),
    redact=_NO_ENV,
)

# Ofelia's job-exec (mcuadros/ofelia cli/docker_handler.go, core/execjob.go)
# through go-dockerclient, unversioned: Info at start (GET /info),
# ListContainers with its label filter (GET /containers/json), the
# container's inspect (GET /containers/{id}/json), then per job
# CreateExec/StartExec/InspectExec (POST /containers/{id}/exec,
# POST /exec/{id}/start, GET /exec/{id}/json): container.exec. job-run
# (core/runjob.go: pull, create, start, wait, logs, remove) and job-service-
# run are not opened: extend it for them (they create containers). Guards
# closed: an exec as the container's user (root too) passes, a privileged
# exec (privileged = true on a job) does not.
_OFELIA = _preset(
    "ofelia-exec",
    "Ofelia job-exec: finds its labelled containers and runs execs in them; no other write",
    {"info": "read"},
    ("container.list", "container.inspect", "container.exec"),
    redact=_NO_ENV,
)

# Homarr's Docker integration (homarr-labs/homarr packages/request-handler/
# src/docker.ts, packages/api/src/router/docker/docker-router.ts,
# packages/api/src/router/onboard/onboard-router.ts) through dockerode,
# unversioned, on DOCKER_SOCKET_PATHS: listContainers (GET /containers/json),
# a container's inspect, one-shot stats (GET /containers/{id}/stats?stream=
# false&one-shot=true), the tail of its logs and a followed log stream for
# its log view, and, for the users it permits, start, stop, restart and
# remove (POST /containers/{id}/start, /stop, /restart; DELETE
# /containers/{id}). Guards closed (it creates nothing); the environment is
# redacted.
_HOMARR = _preset(
    "homarr",
    "Homarr dashboard: container list, inspect, stats and logs; start, stop, restart and remove",
    {},
    (
        "container.list",
        "container.inspect",
        "container.stats",
        "container.logs",
        "container.start",
        "container.stop",
        "container.restart",
        "container.delete",
    ),
    redact=_NO_ENV,
)

# Netdata: its docker collector (netdata/netdata src/go/plugin/go.d/
# collector/docker/collect.go, dockerfunc/containers.go) on the moby/moby
# client (HEAD /_ping to negotiate): Info (GET /info), ImageList
# (GET /images/json), ContainerList per health status
# (GET /containers/json?all=1&filters=...); and its cgroup naming
# (src/collectors/cgroups.plugin/cgroup-name/container_runtime.go): a
# container's inspect (GET /containers/{id}/json), of which it reads the
# name, the image, the labels and Config.Env (names from orchestrators'
# variables): the environment is NOT redacted, since Netdata reads it.
_NETDATA = _preset(
    "netdata",
    "Netdata: docker collector (info, image and container lists) and cgroup names (container inspect); read-only",
    {"ping": "read", "info": "read"},
    ("container.list", "container.inspect", "image.list"),
)

# A CI runner that runs each step in a container of its own: Woodpecker's
# agent (woodpecker-ci/woodpecker pipeline/backend/docker/docker.go) on the
# moby/moby client (HEAD /_ping to negotiate): Info (GET /info), per
# workflow a volume and a network (POST /volumes/create, /networks/create),
# per step ImagePull (POST /images/create), ContainerCreate, NetworkConnect,
# ContainerStart, ContainerWait, ContainerInspect, ContainerLogs with follow,
# and at the end ContainerStop/Kill/Remove, VolumeRemove, NetworkRemove.
# GitLab's and Gitea's runners make the same kinds of calls. Guards closed:
# no privileged steps, no host binds (not the Docker socket either), which
# is what a runner's steps should be; open what your pipelines need in a
# group that extends it, with scope = { owner = true } so that it sees and
# removes only what it created (docs/recipes.md#ci-runner-woodpecker).
_CI_RUNNER = _preset(
    "woodpecker-agent",
    "CI runner (a container per step): pull, create, start, wait, logs, stop, kill, remove; a volume and a "
    "network per workflow; guards closed",
    {"ping": "read", "info": "read"},
    (
        "image.pull",
        "container.create",
        "container.start",
        "container.inspect",
        "container.logs",
        "container.stop",
        "container.kill",
        "container.delete",
        "volume.create",
        "volume.delete",
        "network.create",
        "network.connect",
        "network.delete",
    ),
    # Woodpecker names a workflow's network wp_<id>_default; the networks
    # guard holds the runner to those. Other runners name theirs otherwise
    # (GitLab: runner-*): extend with guards = { networks = [...] }.
    guards=attrs.evolve(CLOSED, networks=("wp_*",)),
)

# Every section at "read": every GET/HEAD route except the sensitive ones
# (logs of containers, services and tasks; image exports; container archive,
# export, attach/ws; the swarm's join tokens and unlock key), and no actions.
# To read logs too, extend it: actions = ["container.logs"].
_READONLY = _preset(
    "readonly",
    "every section read-only: lists, inspects, stats, events; no logs, no image exports, no other sensitive "
    "reads, no writes",
    {name: "read" for name in _ALL},
)

# Everything: every section at "write", Podman's libpod API's too (a
# Podman upstream: podman --remote, Cockpit); it is root on the host either way.
_ADMIN = _preset(
    "admin",
    "everything, every method, Docker's API and Podman's libpod API: equivalent to root on the host",
    {name: "write" for name in [*_ALL, *(section.name for section in LIBPOD_SECTIONS)]},
    guards=OPEN,
)

#: The built-in groups, by name.
PRESETS: Mapping[str, Group] = MappingProxyType(
    {
        group.name: group
        for group in (
            _TRAEFIK,
            _HOMEPAGE,
            _DOZZLE,
            _WATCHTOWER,
            _PORTAINER,
            _DOCKMAN,
            _GLANCES,
            _GRAFANA,
            _PROMETHEUS,
            _UPTIME_KUMA,
            _CROWDSEC,
            _DIUN,
            _AUTOHEAL,
            _BESZEL,
            _WUD,
            _CADDY_DOCKER_PROXY,
            _OFELIA,
            _HOMARR,
            _NETDATA,
            _CI_RUNNER,
            _READONLY,
            _ADMIN,
        )
    }
)
