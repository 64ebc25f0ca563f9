"""
End to end: the docker CLI (28.x) and docker-py through dockguard to a private
real ``podman system service`` (issue 17), speaking Podman's Docker-compatible
API. What Podman's compatible API does not serve is listed in docs/podman.md.

The private service gives every container that names none the rlimits runc
accepts here and no network (``harness.podman``); the tests still pass
``--network none``.
"""

from __future__ import annotations

import json
import select
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from conftest import BUSYBOX_IMAGE, FULL_ACCESS_ENV, clean_cli_env
from dockguard.routes import LIBPOD_SECTIONS
from harness.dockerd import api_request
from harness.guard import Guard, free_port, start_guard
from harness.podman import PODMAN_ULIMITS, PrivatePodman

pytestmark = pytest.mark.e2e

CLI = "/usr/local/bin/docker"
ULIMITS = [arg for limit in PODMAN_ULIMITS for arg in ("--ulimit", limit)]


@pytest.fixture(scope="module")
def podman_guard(tmp_path_factory: pytest.TempPathFactory, podman: PrivatePodman) -> Iterator[Guard]:
    """One full-access dockguard (fixed identity on loopback TCP) in front of the private Podman."""
    port = free_port()
    guard = start_guard(
        tmp_path_factory.mktemp("podman-guard"),
        podman.socket_path,
        [f"tcp://127.0.0.1:{port}?identity=ops"],
        env=FULL_ACCESS_ENV | {variable: "1" for variable in LIBPOD_VARIABLES},
        wait_for=("127.0.0.1", port),
    )
    yield guard
    guard.stop()


#: Every LIBPOD_* section variable (linuxserver's names, dockguard's LIBPOD_BUILD and LIBPOD_COMMIT).
LIBPOD_VARIABLES = [section.env for section in LIBPOD_SECTIONS]


Run = Callable[..., "subprocess.CompletedProcess[bytes]"]


@pytest.fixture
def cli(docker_cli, podman_guard: Guard) -> Run:
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{podman_guard.port}"}

    def run(*args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return docker_cli(list(args), env=env, binary=CLI, input=input, timeout=timeout)

    run.env = env  # type: ignore[attr-defined]
    return run


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout: {result.stdout.decode(errors='replace')}\n"
        f"stderr: {result.stderr.decode(errors='replace')}"
    )
    return result.stdout.decode()


def name() -> str:
    return "dgp-" + uuid.uuid4().hex[:10]


def run_args(*rest: str, detach: bool = False) -> list[str]:
    return ["run", *(["-d"] if detach else ["--rm"]), "--network", "none", *ULIMITS, *rest]


def test_the_guard_speaks_to_podman(cli) -> None:
    version = json.loads(ok(cli("version", "--format", "{{json .Server}}")))
    assert any(c["Name"] == "Podman Engine" for c in version["Components"])


def test_run_rm_prints_output(cli) -> None:
    assert ok(cli(*run_args(BUSYBOX_IMAGE, "echo", "hello-podman"))) == "hello-podman\n"


def test_run_with_stdin_attaches(cli) -> None:
    """``run -i``: the attach is hijacked and stdin's EOF reaches the container."""
    out = ok(cli(*run_args("-i", BUSYBOX_IMAGE, "cat"), input=b"through-stdin\n", timeout=30))
    assert out == "through-stdin\n"


def test_detached_run_logs_follow_until_exit(cli) -> None:
    c = name()
    ok(
        cli(
            *run_args(
                "--name", c, BUSYBOX_IMAGE, "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done", detach=True
            )
        )
    )
    try:
        ok(cli("wait", c, timeout=30))
        assert ok(cli("logs", "-f", c, timeout=30)) == "line1\nline2\nline3\n"
    finally:
        cli("rm", "-f", c)


def test_exec_with_stdin_returns_output(cli) -> None:
    c = name()
    ok(cli(*run_args("--name", c, BUSYBOX_IMAGE, "sleep", "60", detach=True)))
    try:
        assert ok(cli("exec", "-i", c, "sh", input=b"echo exec-$((6*7))\n", timeout=30)) == "exec-42\n"
        assert ok(cli("exec", c, "echo", "plain")) == "plain\n"
    finally:
        cli("rm", "-f", "-t", "0", c)


def test_attach_receives_output_until_exit(cli) -> None:
    c = name()
    ok(cli(*run_args("--name", c, BUSYBOX_IMAGE, "sh", "-c", "sleep 2; echo attached-out", detach=True)))
    try:
        assert ok(cli("attach", "--no-stdin", c, timeout=30)) == "attached-out\n"
    finally:
        cli("rm", "-f", c)


def test_events_stream_delivers_an_event(cli, tmp_path) -> None:
    c = name()
    events = subprocess.Popen(
        [
            CLI,
            "events",
            "--filter",
            f"container={c}",
            "--filter",
            "event=died",
            "--format",
            "{{.Actor.Attributes.name}}",
        ],
        env=clean_cli_env(tmp_path, cli.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1)  # the stream is open before the event happens
        ok(cli(*run_args("--name", c, BUSYBOX_IMAGE, "true")))
        ready, _, _ = select.select([events.stdout], [], [], 20)
        assert ready, "no event arrived"
        assert events.stdout is not None
        assert events.stdout.readline().decode().strip() == c
    finally:
        events.kill()
        events.wait()


def test_cp_both_ways(cli, tmp_path) -> None:
    c = name()
    ok(cli(*run_args("--name", c, BUSYBOX_IMAGE, "sleep", "60", detach=True)))
    try:
        source = tmp_path / "in.txt"
        source.write_text("copied-in\n")
        ok(cli("cp", str(source), f"{c}:/tmp/in.txt"))
        assert ok(cli("exec", c, "cat", "/tmp/in.txt")) == "copied-in\n"
        ok(cli("cp", f"{c}:/tmp/in.txt", str(tmp_path / "out.txt")))
        assert (tmp_path / "out.txt").read_text() == "copied-in\n"
    finally:
        cli("rm", "-f", "-t", "0", c)


def test_save_then_load(cli, tmp_path) -> None:
    archive = tmp_path / "busybox.tar"
    ok(cli("save", "-o", str(archive), BUSYBOX_IMAGE, timeout=60))
    assert archive.stat().st_size > 100_000
    assert "busybox" in ok(cli("load", "-i", str(archive), timeout=60))


def test_dockerpy_run_logs_and_exec(podman_guard: Guard) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{podman_guard.port}", version="1.41", timeout=60)
    ulimits = [
        docker.types.Ulimit(name="nproc", soft=1000, hard=1000),
        docker.types.Ulimit(name="nofile", soft=1000, hard=1000),
    ]
    c = client.containers.run(
        BUSYBOX_IMAGE, ["sleep", "60"], detach=True, network_mode="none", ulimits=ulimits, name=name()
    )
    try:
        result = c.exec_run(["sh", "-c", "echo py-$((6*7))"])
        assert result.exit_code == 0
        assert result.output == b"py-42\n"
        assert [image for image in client.images.list() if BUSYBOX_IMAGE in " ".join(image.tags)]
    finally:
        c.remove(force=True)
        client.close()


def test_a_refusal_reaches_the_cli_and_podman_never_sees_it(docker_cli, podman_guard: Guard, tmp_path) -> None:
    """A read-only guard (the proxies' defaults plus CONTAINERS=1): a create is refused before Podman."""
    port = free_port()
    guard = start_guard(
        tmp_path,
        podman_guard_socket(podman_guard),
        [f"tcp://127.0.0.1:{port}?identity=ro"],
        env={"CONTAINERS": "1"},
        wait_for=("127.0.0.1", port),
    )
    try:
        c = name()
        env = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
        done = docker_cli(run_args("--name", c, BUSYBOX_IMAGE, "true"), env=env, binary=CLI)
        assert done.returncode != 0
        assert b"dockguard" in done.stderr or b"403" in done.stderr or b"refused" in done.stderr.lower()
        status, _ = api_request(podman_guard_socket(podman_guard), "GET", f"/containers/{c}/json")
        assert status == 404
    finally:
        guard.stop()


def podman_guard_socket(guard: Guard) -> str:
    """The upstream socket ``guard`` was started with."""
    args = guard.process.args
    assert isinstance(args, list)
    return str(args[args.index("--upstream") + 1])


# --- the libpod API: Podman's own client through dockguard -------------------------------------------


@pytest.fixture
def remote(podman_guard: Guard, tmp_path) -> Run:
    """``podman --remote`` (Podman's own client, the libpod API) through dockguard."""
    conf = tmp_path / "containers.conf"
    conf.write_text("")
    env = clean_cli_env(tmp_path, {"CONTAINERS_CONF": str(conf), "XDG_RUNTIME_DIR": str(tmp_path)})
    del env["DOCKER_CONFIG"]  # Podman would read registry credentials there

    def run(*args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["podman", "--remote", "--url", f"tcp://127.0.0.1:{podman_guard.port}", *args],
            env=env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )

    return run


def test_podman_remote_runs_execs_and_inspects(remote) -> None:
    assert (
        ok(remote("run", "--rm", "--network", "none", *ULIMITS, BUSYBOX_IMAGE, "echo", "via-libpod")) == "via-libpod\n"
    )
    c = name()
    ok(remote("run", "-d", "--name", c, "--network", "none", *ULIMITS, BUSYBOX_IMAGE, "sleep", "60"))
    try:
        assert c in ok(remote("ps", "--format", "{{.Names}}"))
        assert ok(remote("exec", "-i", c, "sh", input=b"echo exec-$((6*7))\n")) == "exec-42\n"
        # the client escapes the image name's '/' (localhost%2Fbusybox:local): Podman's reading is kept
        assert ok(remote("image", "inspect", "localhost/busybox:local", "--format", "{{.Id}}")).strip()
        assert "busybox" in ok(remote("images", "--format", "{{.Repository}}"))
    finally:
        remote("rm", "-f", "-t", "0", c)


def test_podman_remote_pods(remote) -> None:
    pod = name()
    ok(remote("pod", "create", "--name", pod, "--infra=false"))
    try:
        assert pod in ok(remote("pod", "ps", "--format", "{{.Name}}"))
    finally:
        ok(remote("pod", "rm", "-f", pod))


def test_podman_remote_read_only_with_libpod_variables(podman: PrivatePodman, tmp_path) -> None:
    """linuxserver's example: LIBPOD_CONTAINERS=1 (LIBPOD_PING and LIBPOD_VERSION by default) reads, nothing writes."""
    port = free_port()
    guard = start_guard(
        tmp_path,
        podman.socket_path,
        [f"tcp://127.0.0.1:{port}?identity=exporter"],
        env={"LIBPOD_CONTAINERS": "1", "LIBPOD_INFO": "1"},
        wait_for=("127.0.0.1", port),
    )
    conf = tmp_path / "containers.conf"
    conf.write_text("")
    env = clean_cli_env(tmp_path, {"CONTAINERS_CONF": str(conf), "XDG_RUNTIME_DIR": str(tmp_path)})
    del env["DOCKER_CONFIG"]

    def remote(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["podman", "--remote", "--url", f"tcp://127.0.0.1:{port}", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )

    try:
        ok(remote("ps", "-a"))
        refused = remote("run", "--rm", "--network", "none", *ULIMITS, BUSYBOX_IMAGE, "true")
        assert refused.returncode != 0
        assert b"dockguard refused" in refused.stderr and b"POST=0" in refused.stderr, refused.stderr
        assert b"dockguard refused" in remote("images").stderr  # LIBPOD_IMAGES=0
    finally:
        guard.stop()


def test_legacy_build(docker_cli, podman_guard: Guard, tmp_path) -> None:
    """docker build with the legacy builder (Podman serves no BuildKit session) through dockguard."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {BUSYBOX_IMAGE}\nRUN echo built > /built\n")
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{podman_guard.port}", "DOCKER_BUILDKIT": "0"}
    ok(docker_cli(["build", "-q", "-t", "dgp/built:1", str(context)], env=env, binary=CLI, timeout=120))
    out = docker_cli(run_args("dgp/built:1", "cat", "/built"), env=env, binary=CLI)
    assert ok(out) == "built\n"
