"""
Run dockguard the way a user does: a real ``twistd -n dockguard`` process
from the installed package, in front of a private daemon.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import attrs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def twistd_command() -> list[str]:
    beside = Path(sys.executable).with_name("twistd")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("twistd")
    if found is None:
        raise RuntimeError("twistd is not installed: run the README's test command")
    return [found]


@attrs.define
class Guard:
    """A running dockguard process."""

    process: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    unix_path: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_guard(
    workdir: Path,
    upstream: str,
    listen: list[str],
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    wait_for: tuple[str, int] | str | None = None,
    timeout: float = 20,
    twistd_args: list[str] | None = None,
) -> Guard:
    """
    Start ``twistd -n [twistd_args] dockguard`` and wait until ``wait_for``
    (a TCP ``(host, port)`` or a Unix socket path) accepts connections.
    """
    log_path = workdir / f"dockguard-{time.monotonic_ns()}.log"
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
    }
    if "PYTHONPATH" in os.environ:
        # scripts/mutations runs the tests against a broken copy of src/
        full_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    full_env.update(env or {})
    args = [*twistd_command(), "-n", "--pidfile=", *(twistd_args or []), "dockguard", "--upstream", upstream]
    for spec in listen:
        args += ["--listen", spec]
    args += extra_args or []
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=workdir,
        )
    guard = Guard(process=process, log_path=log_path)
    if wait_for is None:
        return guard
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"dockguard exited with {process.returncode}:\n{guard.log()}")
        try:
            if isinstance(wait_for, str):
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(wait_for)
                guard.unix_path = wait_for
            else:
                socket.create_connection(wait_for, timeout=1).close()
                guard.port = wait_for[1]
            return guard
        except OSError:
            if time.monotonic() > deadline:
                guard.stop()
                raise RuntimeError(f"dockguard did not start listening:\n{guard.log()}")
            time.sleep(0.05)


def start_with_config(
    workdir: Path, upstream: str, config: str, wait_for: tuple[str, int] | str | None = None
) -> Guard:
    """Write ``config`` to ``workdir/dockguard.toml`` and start dockguard with ``--config`` on it."""
    path = workdir / "dockguard.toml"
    path.write_text(config)
    return start_guard(workdir, upstream, [], extra_args=["--config", str(path)], wait_for=wait_for)


def peak_rss_during(pid: int, work) -> tuple[int, int, float]:
    """
    Run ``work()`` while sampling process ``pid``'s RSS every 20 ms; return
    (RSS before, peak RSS, seconds taken).
    """
    import threading

    import psutil

    proc = psutil.Process(pid)
    before = proc.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return before, peak[0], time.monotonic() - started
