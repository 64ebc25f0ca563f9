"""
The container image, built from the repository's Dockerfile and run for real
against the private daemon of tests/conftest.py (issue 19).

No registry is reachable here, so ``python:3.11-slim`` is replaced by an
image of the same shape made from Debian's packages
(``harness/baseimage.py``: debootstrap, cached under /var/tmp) and given to
the build as ``--build-arg PYTHON_IMAGE=…``; the build runs with
``--network host``, since the private daemon has no bridge and pip needs
PyPI.  Otherwise the commands are the documentation's: the build and the
hardened ``docker run`` of docs/recipes.md, and docs/examples/compose.yaml
started by Debian's docker-compose 1.29.

What this machine cannot do, and what the tests do instead:

* the private daemon has no bridge (``--bridge=none``, no iptables: the
  tests never change the host's network), so no network can be created:
  containers run with ``--network none`` (the callers join the container's
  network namespace: ``nsenter`` for the docker CLI on this host, or
  ``network_mode: service:…`` in compose) or, for the mutual-TLS listener,
  ``--network host`` on a free loopback port;
* nothing can be pulled: compose's Traefik is replaced by a busybox
  container running this host's static docker CLI (``/usr/local/bin/docker``)
  that waits for dockguard to be healthy, as Traefik does.

Every container, volume and image made here is removed at the end of the
module (and the private daemon's data directory goes with the session).
The image's size and its idle RSS are printed (``-rP`` shows them); they are
recorded in docs/performance.md, "The container image".
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docs_blocks import DOCS, REPO, block, shell_commands

from conftest import BUSYBOX_IMAGE, clean_cli_env, tls_client_env
from harness.baseimage import debian_python_base
from harness.dockerd import PrivateDaemon
from harness.guard import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

#: docker CLI 28 (no buildx here: the classic builder) and Debian's 20.10
DOCKER = "/usr/local/bin/docker"
DOCKER20 = "/usr/bin/docker"
IMAGE = "dockguard:local"
BASE = "dockguard-test-base:bookworm"
#: on everything these tests create, for the clean-up
LABEL = "dockguard-test=image"
#: the image's HEALTHCHECK, probed every second instead of every 30 s
FAST_HEALTH = ["--health-interval", "1s"]
UID = 10001


class Docker:
    """The docker CLI against the private daemon, with a clean environment."""

    def __init__(self, daemon: PrivateDaemon, home: Path) -> None:
        self.daemon = daemon
        self.home = home
        self.env = clean_cli_env(home, {"DOCKER_HOST": daemon.url})

    def __call__(
        self,
        *args: str,
        binary: str = DOCKER,
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        prefix: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*prefix, binary, *args],
            env={**self.env, **(env or {})},
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {shlex.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def inspect(self, what: str) -> dict:
        return json.loads(self("inspect", what).stdout)[0]

    def state(self, name: str) -> dict:
        return self.inspect(name)["State"]

    def wait_health(self, name: str, status: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(name)
            health = state.get("Health") or {}
            if health.get("Status") == status:
                return health
            assert state["Status"] == "running", f"{name} is {state['Status']}:\n{self.logs(name)}"
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not {status} within {timeout:.0f}s: {health}\n{self.logs(name)}")
            time.sleep(0.5)

    def logs(self, name: str) -> str:
        done = self("logs", name, check=False)
        return done.stdout + done.stderr

    def in_netns(self, name: str, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        """The docker CLI of this host, run in the network namespace of
        container ``name`` (whose network is ``none``): it reaches what the
        container listens on at 127.0.0.1."""
        pid = self.state(name)["Pid"]
        return self(*args, prefix=("nsenter", "-t", str(pid), "-n", "--"), **kw)

    def ids(self, *args: str) -> set[str]:
        return set(self(*args).stdout.split())


def _unique(what: str) -> str:
    return f"dg-image-{what}-{secrets.token_hex(3)}"


def _socket_gid(path: str | Path) -> str:
    return str(os.stat(path).st_gid)


@pytest.fixture(scope="module")
def docker(dockerd: PrivateDaemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """The CLI, and at the end the removal of everything the module made."""
    cli = Docker(dockerd, tmp_path_factory.mktemp("image-cli-home"))
    images_before = cli.ids("images", "-aq", "--no-trunc")
    yield cli
    for container in cli.ids("ps", "-aq", "--filter", f"label={LABEL}"):
        cli("rm", "-f", "-v", container, check=False)
    for volume in cli.ids("volume", "ls", "-q", "--filter", f"label={LABEL}"):
        cli("volume", "rm", "-f", volume, check=False)
    for _ in range(3):  # children before parents
        made = cli.ids("images", "-aq", "--no-trunc") - images_before
        if not made:
            break
        cli("rmi", "-f", *made, check=False)
    cli("builder", "prune", "-af", check=False, timeout=300)
    assert not cli.ids("ps", "-aq", "--filter", f"label={LABEL}")
    assert cli.ids("images", "-aq", "--no-trunc") <= images_before


@pytest.fixture(scope="module")
def image(docker: Docker) -> str:
    """``docker build -t dockguard:local .`` as docs/recipes.md says, with the
    docker CLI 28 of this machine (the classic builder), on the Debian base."""
    started = time.monotonic()
    debian_python_base(DOCKER, docker.env, BASE)
    based = time.monotonic()
    argv = shlex.split(block("recipes.md", "recipes-image-build").text)
    assert argv[:2] == ["docker", "build"] and argv[-1] == "." and f"{IMAGE}" in argv
    argv = [*argv[1:-1], "--build-arg", f"PYTHON_IMAGE={BASE}", "--network", "host", "."]
    done = docker(*argv, cwd=REPO, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert "Successfully tagged dockguard:local" in done.stdout  # the classic builder's words
    print(f"\nbase image: {based - started:.0f} s; docker build: {time.monotonic() - based:.0f} s")
    return IMAGE


def _config(docker: Docker, ref: str) -> dict:
    config = docker.inspect(ref)["Config"]
    return {k: config.get(k) for k in ("Entrypoint", "Cmd", "User", "WorkingDir", "Env", "Healthcheck", "ExposedPorts")}


@pytest.fixture(scope="module")
def buildkit(image: str, docker: Docker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """BuildKit (docker 20.10's, in the daemon) building the same Dockerfile
    as ``dockguard:buildkit``, in the background while the containers of the
    other tests run: ``(process, log path)``."""
    log = tmp_path_factory.mktemp("buildkit") / "build.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                DOCKER20,
                "build",
                "-t",
                "dockguard:buildkit",
                "--build-arg",
                f"PYTHON_IMAGE={BASE}",
                "--network",
                "host",
                "--progress",
                "plain",
                ".",
            ],
            env={**docker.env, "DOCKER_BUILDKIT": "1"},
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    yield process, log
    if process.poll() is None:
        process.kill()
        process.wait()


def test_the_image_is_what_the_dockerfile_says(image: str, docker: Docker, buildkit) -> None:
    config = _config(docker, image)
    assert config["Entrypoint"] == ["twistd", "-n", "--pidfile=", "dockguard"]
    assert config["Cmd"] == ["--config", "/etc/dockguard/dockguard.toml"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Healthcheck"]["Test"] == [
        "CMD",
        "dockguard",
        "healthcheck",
        "--config",
        "/etc/dockguard/dockguard.toml",
    ]
    assert config["ExposedPorts"] == {"2375/tcp": {}}
    layers = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "COPY file:" in layers or "COPY docker/dockguard.toml" in layers


# -- 1. the drop-in, hardened ---------------------------------------------------------


def _documented_run(docker: Docker, name: str) -> str:
    """docs/recipes.md's `docker run` of the drop-in, for this machine: the
    private daemon's socket, no network (none can be created here), a name
    and a label of the test's, the health probed every second."""
    commands = shell_commands(block("recipes.md", "recipes-image-run"))
    assert commands[0] == "docker network create --internal docker-api"
    command = commands[1]
    sock = docker.daemon.socket_path
    for old, new in [
        ("-v /var/run/docker.sock:/var/run/docker.sock:ro", f"-v {sock}:/var/run/docker.sock:ro"),
        ("stat -c %g /var/run/docker.sock", f"stat -c %g {sock}"),
        ("--network docker-api", "--network none"),
        ("--name dockguard ", f"--name {name} --label {LABEL} {shlex.join(FAST_HEALTH)} "),
        ("docker run ", f"{DOCKER} run "),
    ]:
        assert command.count(old) == 1, f"docs/recipes.md: {old!r} in {command!r}"
        command = command.replace(old, new)
    for hardening in (
        "--read-only",
        "--tmpfs /tmp",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        "--group-add",
        "-e CONTAINERS=1 dockguard:local",
    ):
        assert hardening in command
    assert "--user" not in command, "the image's own user (10001) is the one tested"
    return command


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_the_drop_in_runs_hardened(image: str, docker: Docker) -> None:
    name = _unique("dropin")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _documented_run(docker, name)],
        env=docker.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    health = docker.wait_health(name, "healthy")
    assert health["Log"][-1]["Output"].strip() == "healthy"

    # `docker ps` through it works, `docker images` is refused, with both CLIs
    for cli in (DOCKER, DOCKER20):
        ps = docker.in_netns(
            name, "ps", "--format", "{{.Names}} {{.Status}}", binary=cli, env={"DOCKER_HOST": "tcp://127.0.0.1:2375"}
        )
        assert f"{name} Up " in ps.stdout and "(healthy)" in ps.stdout
        images = docker.in_netns(name, "images", binary=cli, check=False, env={"DOCKER_HOST": "tcp://127.0.0.1:2375"})
        assert images.returncode != 0
        assert (
            "Error response from daemon: dockguard refused GET /images/json for socket-proxy: the images "
            "section is closed (IMAGES=0); set IMAGES=1 to open it (rule: IMAGES=0)"
        ) in images.stderr

    # hardened as asked: uid 10001 with the socket's group, no capabilities,
    # no new privileges, a read-only root
    info = docker.inspect(name)
    pid = info["State"]["Pid"]
    status = _proc_status(pid)
    assert status["Uid"].split() == [str(UID)] * 4 and status["Gid"].split() == [str(UID)] * 4
    assert _socket_gid(docker.daemon.socket_path) in status["Groups"].split()
    assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert info["HostConfig"]["CapDrop"] == ["ALL"]
    log = docker.logs(name)
    assert "relaying to the Docker daemon at /var/run/docker.sock" in log
    # its configuration is the built-in one, the repository's file
    copied = subprocess.run(
        [DOCKER, "cp", f"{name}:/etc/dockguard/dockguard.toml", "-"],
        env=docker.env,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(copied)) as tar:
        member = tar.extractfile("dockguard.toml")
        assert member is not None and member.read() == (REPO / "docker" / "dockguard.toml").read_bytes()
    assert "Starting factory <twisted.internet.protocol.Factory" not in log, "every health probe is logged"

    # what it costs: the image, and the process at rest after those requests
    time.sleep(2)
    rss, anon, file = (int(_proc_status(pid)[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile"))
    size = docker.inspect(image)["Size"] / 1e6
    base = docker.inspect(BASE)["Size"] / 1e6
    print(
        f"\nimage {image}: {size:.0f} MB ({size - base:.0f} MB on top of the {base:.0f} MB base); "
        f"idle RSS {rss:.1f} MB ({anon:.1f} MB anonymous, {file:.1f} MB file-backed)"
    )
    assert rss < 80

    # `docker stop`: twistd, PID 1, stops at once on SIGTERM, exit status 0
    started = time.monotonic()
    docker("stop", name)
    assert time.monotonic() - started < 8
    assert docker.state(name)["ExitCode"] == 0


# -- 2. a configuration of its own: groups, a tool's Unix socket, mutual TLS ----------


def test_a_mounted_configuration_with_a_unix_socket_and_mutual_tls(
    image: str, docker: Docker, pki, tmp_path: Path
) -> None:
    name, volume = _unique("config"), _unique("tool-socket")
    tls, admin = free_port(), free_port()
    etc = tmp_path / "etc"
    (etc / "pki").mkdir(parents=True)
    for source, target in [
        (pki.ca_path, "ca.pem"),
        (pki.server_cert_path, "server-cert.pem"),
        (pki.server_key_path, "server-key.pem"),
    ]:
        shutil.copyfile(source, etc / "pki" / target)
    os.chown(etc / "pki" / "server-key.pem", UID, -1)  # docs/recipes.md: chown 10001 pki/server-key.pem
    os.chmod(etc / "pki" / "server-key.pem", 0o600)
    (etc / "dockguard.toml").write_text(f"""\
# The tool's own Unix socket, in a volume only the tool and dockguard mount.
[[listeners]]
url = "unix:///run/dockguard/tool/docker.sock?identity=tool&mode=0666"

# Mutual TLS: the caller is its certificate's CN.
[[listeners]]
url = "tls://127.0.0.1:{tls}?cert=pki/server-cert.pem&key=pki/server-key.pem&client_ca=pki/ca.pem"

[admin]
listen = "tcp://127.0.0.1:{admin}"

[identities]
tool = ["traefik"]
ops = ["admin"]
ci = ["deploy"]

[groups.deploy]
extends = ["readonly"]
actions = ["container.create"]
""")
    # the recipes' volume: a tmpfs owned by dockguard's user
    docker(
        "volume",
        "create",
        "--label",
        LABEL,
        "--driver",
        "local",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        f"o=uid={UID},gid={UID},mode=0755",
        volume,
    )
    sock = docker.daemon.socket_path
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--label",
        LABEL,
        *FAST_HEALTH,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--group-add",
        _socket_gid(sock),
        "-v",
        f"{sock}:/var/run/docker.sock:ro",
        "-v",
        f"{etc / 'dockguard.toml'}:/etc/dockguard/dockguard.toml:ro",
        "-v",
        f"{etc / 'pki'}:/etc/dockguard/pki:ro",
        "-v",
        f"{volume}:/run/dockguard/tool",
        image,
    )
    docker.wait_health(name, "healthy")
    log = docker.logs(name)
    assert 'listening on unix:///run/dockguard/tool/docker.sock: fixed identity "tool", mode 0666' in log
    assert f"listening on tls://127.0.0.1:{tls}" in log

    # the tool hard-codes /var/run/docker.sock: the volume is its /var/run
    def tool(*args: str) -> subprocess.CompletedProcess[str]:
        return docker(
            "run",
            "--rm",
            "--label",
            LABEL,
            "--network",
            "none",
            "-v",
            f"{volume}:/var/run",
            "-v",
            f"{DOCKER}:/usr/local/bin/docker:ro",
            "-e",
            "HOME=/tmp",
            BUSYBOX_IMAGE,
            "docker",
            *args,
            check=False,
        )

    ps = tool("ps", "--format", "{{.Names}}")
    assert ps.returncode == 0, ps.stderr
    assert name in ps.stdout.split()
    images = tool("images")
    assert images.returncode != 0
    assert "dockguard refused GET /images/json for tool" in images.stderr

    # mutual TLS from this host: each certificate is an identity with its groups
    def over_tls(who: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
        cert = who if isinstance(who, Path) else pki.client(who)
        env = {**tls_client_env(pki, tls), "DOCKER_CERT_PATH": str(cert)}
        return docker(*args, env=env, check=False)

    assert over_tls("ops", "images").returncode == 0
    created = over_tls("ci", "create", "--label", LABEL, "--network", "none", BUSYBOX_IMAGE, "true")
    assert created.returncode == 0, created.stderr
    refused = over_tls("ci", "create", "--label", LABEL, "--network", "none", "--privileged", BUSYBOX_IMAGE, "true")
    assert refused.returncode != 0
    assert "dockguard refused POST /containers/create for ci" in refused.stderr and "privileged" in refused.stderr
    stranger = over_tls("laptop", "ps")
    assert "dockguard refused GET" in stranger.stderr and "for laptop" in stranger.stderr
    untrusted = over_tls(pki.client_from_other_ca("ops"), "ps")
    assert untrusted.returncode != 0 and "dockguard refused" not in untrusted.stderr
    docker("rm", "-f", name)


# -- 3. the HEALTHCHECK follows the daemon ---------------------------------------------


def test_the_healthcheck_follows_the_daemon(image: str, docker: Docker) -> None:
    """A second private daemon is the upstream, its socket in a directory
    mounted into the container (a restarted daemon makes a new socket file,
    which a bind mount of the old file would never show). Stopping it turns
    the container unhealthy, a daemon there again turns it healthy."""
    shared = Path(tempfile.mkdtemp(prefix="dockguard-image-up-"))
    shared.chmod(0o755)
    extra = ["--host", f"unix://{shared}/docker.sock"]
    upstream = PrivateDaemon(extra_args=extra).start()
    name = _unique("health")
    try:
        docker(
            "run",
            "-d",
            "--name",
            name,
            "--label",
            LABEL,
            *FAST_HEALTH,
            "--health-retries",
            "2",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--group-add",
            _socket_gid(shared / "docker.sock"),
            "-v",
            f"{shared}:/run/upstream:ro",
            "-e",
            "SOCKET_PATH=/run/upstream/docker.sock",
            "-e",
            "CONTAINERS=1",
            image,
        )
        docker.wait_health(name, "healthy")

        upstream.stop()
        health = docker.wait_health(name, "unhealthy", timeout=60)
        assert "cannot reach the Docker daemon at /run/upstream/docker.sock" in health["Log"][-1]["Output"]
        # what a tool sees meanwhile: a 502 naming the socket
        ps = docker.in_netns(name, "ps", check=False, env={"DOCKER_HOST": "tcp://127.0.0.1:2375"})
        assert ps.returncode != 0 and "/run/upstream/docker.sock" in ps.stderr

        upstream = PrivateDaemon(extra_args=extra).start()
        docker.wait_health(name, "healthy", timeout=60)
        ps = docker.in_netns(name, "ps", env={"DOCKER_HOST": "tcp://127.0.0.1:2375"})
        assert ps.stdout.startswith("CONTAINER ID")
    finally:
        docker("rm", "-f", name, check=False)
        upstream.stop()
        shutil.rmtree(shared, ignore_errors=True)


# -- 4. the compose example ------------------------------------------------------------


COMPOSE = DOCS / "examples" / "compose.yaml"

#: what replaces Traefik (which cannot be pulled here): this host's static
#: docker CLI in busybox, in dockguard's network namespace, started once
#: dockguard is healthy, as Traefik is.
_TOOL = f"""\
  tool:
    image: {BUSYBOX_IMAGE}
    network_mode: "service:dockguard"
    environment:
      DOCKER_HOST: tcp://127.0.0.1:2375
      HOME: /tmp
    volumes:
      - {DOCKER}:/usr/local/bin/docker:ro
    command: ["docker", "ps", "--format", "{{{{.Names}}}} {{{{.Status}}}}"]
    depends_on:
      dockguard:
        condition: service_healthy
"""


def _compose_for_this_machine(sock: str) -> str:
    text = COMPOSE.read_text()
    traefik = text[text.index("\n  traefik:\n") + 1 : text.index("\nnetworks:\n") + 1]
    for old, new in [
        (traefik, _TOOL),
        (text[text.index("\nnetworks:\n") + 1 :], ""),
        ("    build: ../..", f"    build: {REPO}"),  # the copy lives elsewhere
        ("- /var/run/docker.sock:/var/run/docker.sock:ro", f"- {sock}:/var/run/docker.sock:ro"),
        # no bridge on this daemon: dockguard's network namespace has loopback only
        ("    networks:\n      - docker-api\n", "    network_mode: none\n"),
        ("      interval: 30s\n", "      interval: 1s\n"),
    ]:
        assert text.count(old) == 1, f"{COMPOSE}: {old!r}"
        text = text.replace(old, new)
    return text


def test_the_compose_example_starts_with_docker_compose(image: str, docker: Docker, tmp_path: Path) -> None:
    project = _unique("compose").replace("-", "")
    path = tmp_path / "compose.yaml"
    path.write_text(_compose_for_this_machine(docker.daemon.socket_path))
    env = {"DOCKER_GID": _socket_gid(docker.daemon.socket_path)}

    def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return docker("-p", project, "-f", str(path), *args, binary="docker-compose", env=env, check=check, timeout=300)

    try:
        up = compose("up", "-d", "--no-build", check=False)
        assert up.returncode == 0, up.stderr
        guard, tool = f"{project}_dockguard_1", f"{project}_tool_1"
        assert docker.state(guard)["Health"]["Status"] == "healthy"  # depends_on: service_healthy
        assert docker("wait", tool).stdout.strip() == "0"
        assert f"{guard} Up " in docker.logs(tool)
        info = docker.inspect(guard)
        host = info["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges:true"] and host["Tmpfs"] == {"/tmp": ""}
        assert host["GroupAdd"] == [env["DOCKER_GID"]] and host["RestartPolicy"]["Name"] == "unless-stopped"
        assert info["Config"]["Env"].count("CONTAINERS=1") == 1
        assert info["Config"]["Healthcheck"]["Test"] == docker.inspect(image)["Config"]["Healthcheck"]["Test"]
    finally:
        compose("down", "-v", "--remove-orphans", check=False)
    assert not docker.ids("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}")


def test_a_tool_enrols_with_the_image_as_its_one_line_command(
    image: str, docker: Docker, guard_factory, tmp_path: Path
) -> None:
    """docs/recipes.md: without dockguard installed, the image enrols the
    host (C{--entrypoint dockguard ... enroll}): the key is made in the
    container, written to the mounted directory as its user, and the
    certificate it gets works over mutual TLS."""
    pki, certs_dir = tmp_path / "pki", tmp_path / "host-certs"
    for args in (["init", str(pki)], ["server", str(pki), "--name", "127.0.0.1"]):
        made = subprocess.run([sys.executable, "-m", "dockguard.cli", "certs", *args], capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
    port, enrol_port = free_port(), free_port()
    config = tmp_path / "dockguard.toml"
    config.write_text(f"""\
[[listeners]]
url = "tls://127.0.0.1:{port}?cert={pki}/server-cert.pem&key={pki}/server-key.pem&client_ca={pki}/ca.pem&crl={pki}/crl.pem"

[enrol]
listen = "tcp://127.0.0.1:{enrol_port}"
ca = "{pki}"

[identities]
laptop = ["readonly"]
""")
    guard_factory([], extra_args=["--config", str(config)], wait_for=("127.0.0.1", enrol_port))
    token = subprocess.run(
        [sys.executable, "-m", "dockguard.cli", "certs", "token", str(pki), "laptop"], capture_output=True, text=True
    ).stdout.strip()
    certs_dir.mkdir()
    os.chown(certs_dir, UID, UID)  # "the directory must exist, and be yours"
    enrolled = docker(
        "run",
        "--rm",
        "--label",
        LABEL,
        "--network",
        "host",
        "--user",
        f"{UID}:{UID}",
        "--entrypoint",
        "dockguard",
        "-v",
        f"{certs_dir}:/certs",
        image,
        "enroll",
        f"https://127.0.0.1:{enrol_port}",
        token,
        "--dir",
        "/certs",
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert {p.name for p in certs_dir.iterdir()} == {"ca.pem", "cert.pem", "key.pem"}
    key = (certs_dir / "key.pem").stat()
    assert (key.st_mode & 0o777, key.st_uid) == (0o600, UID)
    env = clean_cli_env(
        tmp_path / "cli-home",
        {"DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs_dir)},
    )
    ps = subprocess.run([DOCKER, "ps"], capture_output=True, text=True, env=env, timeout=60)
    assert ps.returncode == 0, ps.stderr
    assert "CONTAINER ID" in ps.stdout


def test_every_compose_file_reads_with_docker_compose_1_29() -> None:
    """Debian 12's docker-compose (1.29, the compose file format without
    top-level `name:`) reads every compose file of the docs."""
    env = {**os.environ, "DOCKER_GID": "999"}
    env.pop("DOCKER_HOST", None)
    files = [COMPOSE, *sorted((DOCS / "examples" / "recipes").glob("*/compose.yaml"))]
    assert len(files) == 19
    for path in files:
        done = subprocess.run(
            ["docker-compose", "-f", str(path), "config", "-q"],
            cwd=path.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{path}: {done.stderr}"


def test_the_docs_build_the_image_one_way() -> None:
    """Every `docker build` the docs, the compose files and the Dockerfile
    show is the one the image test runs."""
    documented = block("recipes.md", "recipes-image-build").text
    assert documented == "docker build -t dockguard:local ."
    sources = [REPO / "Dockerfile", REPO / "README.md", *DOCS.glob("*.md"), *DOCS.glob("examples/**/*.yaml")]
    found = 0
    for path in sources:
        for line in path.read_text().splitlines():
            if "docker build -t dockguard" in line:
                found += 1
                assert re.search(r"docker build -t dockguard:local \.($|[\s`])", line), f"{path}: {line}"
    assert found >= 9


def test_buildkit_builds_the_same_image(image: str, docker: Docker, buildkit) -> None:
    """The classic builder made the image the other tests ran; BuildKit
    builds it too, without fetching a frontend image (nothing could be
    fetched here), with the same configuration."""
    process, log = buildkit
    assert process.wait(900) == 0, log.read_text()[-4000:]
    assert "docker/dockerfile" not in log.read_text()
    assert _config(docker, "dockguard:buildkit") == _config(docker, image)
    docker("rmi", "dockguard:buildkit")
