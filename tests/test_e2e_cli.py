"""
End to end: the real docker CLI (28.x and 20.10) through dockguard's
mutual-TLS listener to a private real dockerd.  Everything the CLI does must
work exactly as against the daemon itself.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
import uuid

import pytest

from conftest import BUSYBOX_IMAGE, clean_cli_env, tls_client_env, tls_listen
from harness.dockerd import make_big_image
from harness.guard import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(docker_cli, docker_binary, tls_guard, pki):
    """``cli(*args, input=None)`` — the CLI under test, through dockguard."""
    env = tls_client_env(pki, tls_guard.port)

    def run(*args: str, input: bytes | None = None, timeout: float = 60, extra_env=None):
        return docker_cli(
            list(args), env={**env, **(extra_env or {})}, binary=docker_binary, input=input, timeout=timeout
        )

    run.env = env
    run.binary = docker_binary
    return run


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout: {result.stdout.decode(errors='replace')}\n"
        f"stderr: {result.stderr.decode(errors='replace')}"
    )
    return result.stdout.decode()


def name() -> str:
    return "dg-" + uuid.uuid4().hex[:10]


def test_version_and_ps(cli) -> None:
    assert ok(cli("version", "--format", "{{.Server.Os}}")).strip() == "linux"
    assert ok(cli("ps", "-a")).startswith("CONTAINER ID")


def test_run_rm_prints_output(cli) -> None:
    assert ok(cli("run", "--rm", "--network", "none", BUSYBOX_IMAGE, "echo", "hello")) == "hello\n"


def test_run_with_stdin_attaches(cli) -> None:
    """``run -i`` attaches (hijack) and passes stdin EOF on."""
    out = ok(cli("run", "--rm", "-i", "--network", "none", BUSYBOX_IMAGE, "cat", input=b"via stdin\n"))
    assert out == "via stdin\n"


def test_detached_run_logs_follow_until_exit(cli) -> None:
    c = name()
    ok(
        cli(
            "run",
            "-d",
            "--name",
            c,
            "--network",
            "none",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 0.5; done",
        )
    )
    try:
        out = ok(cli("logs", "-f", c, timeout=30))
        assert out.splitlines() == ["line1", "line2", "line3"]
    finally:
        cli("rm", "-f", c)


def test_exec_with_stdin_returns_output(cli) -> None:
    """``echo hi | docker exec -i c cat``: stdin EOF crosses the TLS half-close."""
    c = name()
    ok(cli("run", "-d", "--name", c, "--network", "none", BUSYBOX_IMAGE, "sleep", "60"))
    try:
        assert ok(cli("exec", "-i", c, "cat", input=b"hi\n", timeout=30)) == "hi\n"
        assert ok(cli("exec", c, "echo", "plain")) == "plain\n"
    finally:
        cli("rm", "-f", c)


def run_in_pty(args: list[str], env: dict[str, str], send: bytes = b"", timeout: float = 30) -> bytes:
    master, slave = os.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    if send:
        os.write(master, send)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=10) == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return out


def test_exec_interactive_tty(cli, tmp_path) -> None:
    """``docker exec -it`` under a pseudo-terminal: a TTY inside, a shell that answers."""
    c = name()
    ok(cli("run", "-d", "--name", c, "--network", "none", BUSYBOX_IMAGE, "sleep", "60"))
    try:
        env = clean_cli_env(tmp_path, cli.env)
        out = run_in_pty([cli.binary, "exec", "-it", c, "sh"], env, send=b"tty; echo pty-$((6*7))\nexit\n")
        assert b"/dev/pts/" in out
        assert b"pty-42" in out
    finally:
        cli("rm", "-f", c)


def test_attach_receives_output_until_exit(cli) -> None:
    c = name()
    ok(cli("run", "-d", "--name", c, "--network", "none", BUSYBOX_IMAGE, "sh", "-c", "sleep 2; echo attached-out"))
    try:
        assert ok(cli("attach", "--no-stdin", c, timeout=30)) == "attached-out\n"
    finally:
        cli("rm", "-f", c)


def test_events_stream_delivers_an_event(cli, tmp_path) -> None:
    env = clean_cli_env(tmp_path, cli.env)
    c = name()
    events = subprocess.Popen(
        [
            cli.binary,
            "events",
            "--filter",
            f"container={c}",
            "--filter",
            "event=die",
            "--format",
            "{{.Actor.Attributes.name}} {{.Action}}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1)  # the stream is open before the event happens
        ok(cli("run", "--rm", "--name", c, "--network", "none", BUSYBOX_IMAGE, "true"))
        ready, _, _ = select.select([events.stdout], [], [], 20)
        assert ready, "no event arrived"
        assert events.stdout.readline().decode().strip() == f"{c} die"
    finally:
        events.kill()
        events.wait()


def test_build_legacy_builder(cli, tmp_path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "file.txt").write_text("from the context\n")
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_IMAGE}\nCOPY file.txt /file.txt\nRUN echo built > /built\n")
    tag = f"{name()}:built"
    ok(cli("build", "-q", "-t", tag, str(ctx), extra_env={"DOCKER_BUILDKIT": "0"}, timeout=120))
    try:
        out = ok(cli("run", "--rm", "--network", "none", tag, "cat", "/file.txt", "/built"))
        assert out == "from the context\nbuilt\n"
    finally:
        cli("rmi", "-f", tag)


def test_cp_both_ways(cli, tmp_path) -> None:
    c = name()
    ok(cli("run", "-d", "--name", c, "--network", "none", BUSYBOX_IMAGE, "sleep", "60"))
    try:
        src = tmp_path / "in.bin"
        src.write_bytes(os.urandom(300_000))
        ok(cli("cp", str(src), f"{c}:/tmp/in.bin"))
        back = tmp_path / "back.bin"
        ok(cli("cp", f"{c}:/tmp/in.bin", str(back)))
        assert back.read_bytes() == src.read_bytes()
    finally:
        cli("rm", "-f", c)


def test_stop_and_rm(cli) -> None:
    c = name()
    ok(cli("run", "-d", "--name", c, "--network", "none", BUSYBOX_IMAGE, "sleep", "60"))
    ok(cli("stop", "-t", "1", c))
    assert ok(cli("inspect", "--format", "{{.State.Running}}", c)).strip() == "false"
    ok(cli("rm", c))
    assert cli("inspect", c).returncode != 0


@pytest.fixture(scope="module")
def big_image(dockerd):
    return make_big_image(dockerd.socket_path, "dg-big:200", 200)


def test_save_then_load_large_image(cli, big_image, tmp_path) -> None:
    """A 200 MB image leaves and comes back through dockguard unchanged."""
    archive = tmp_path / "big.tar"
    ok(cli("save", "-o", str(archive), big_image.tag, timeout=180))
    assert archive.stat().st_size > 200 * 1024 * 1024
    ok(cli("rmi", big_image.tag))
    out = ok(cli("load", "-i", str(archive), timeout=180))
    assert big_image.tag in out
    assert ok(cli("image", "inspect", "--format", "{{.Id}}", big_image.tag)).strip() == big_image.id


def test_refusal_reaches_the_cli(docker_cli, docker_binary, guard_factory, pki) -> None:
    """With Tecnativa's defaults, listing containers is refused and the CLI says why."""
    port = free_port()
    guard_factory([tls_listen(pki, port)], env={}, wait_for=("127.0.0.1", port))
    env = tls_client_env(pki, port, name="watcher")
    assert docker_cli(["version"], env=env, binary=docker_binary).returncode == 0
    result = docker_cli(["ps"], env=env, binary=docker_binary)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "Error response from daemon: dockguard refused GET /containers/json for watcher" in err
    assert "CONTAINERS=0" in err


def test_buildkit_build_through_session_hijack(docker_cli, tls_guard, pki, tmp_path) -> None:
    """
    BuildKit (the 20.10 CLI's built-in client; the 28.x CLI needs the buildx
    plugin, not installed here) opens ``POST /session`` with ``Upgrade: h2c``
    and speaks HTTP/2 over the hijacked connection.
    """
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_IMAGE}\nRUN echo from-buildkit > /f\n")
    env = {**tls_client_env(pki, tls_guard.port), "DOCKER_BUILDKIT": "1"}
    tag = f"{name()}:bk"
    ok(docker_cli(["build", "--network", "none", "-t", tag, str(ctx)], env=env, binary="/usr/bin/docker", timeout=120))
    try:
        assert ok(docker_cli(["run", "--rm", "--network", "none", tag, "cat", "/f"], env=env)) == "from-buildkit\n"
        assert "hijacked ops POST /session" in tls_guard.log()
    finally:
        docker_cli(["rmi", "-f", tag], env=env)
