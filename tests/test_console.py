"""
The ``dockguard`` console command as a shell runs it: its output piped into
a reader that stops early (``dockguard certs client ... | head``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockguard.cli import READER_GONE_STATUS

DOCKGUARD = str(Path(sys.executable).with_name("dockguard"))

#: Python's standard output is block-buffered into a pipe, unless
#: PYTHONUNBUFFERED is set (as in many container images): both.
BUFFERING = {
    "buffered": {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
    "unbuffered": {**os.environ, "PYTHONUNBUFFERED": "1"},
}


def piped_into_head(args: list[str], count: int = 10, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """
    Run ``dockguard ARGS | head -c COUNT`` where head has already read its
    COUNT bytes and gone when dockguard writes (as when dockguard's output
    is longer than what head wants): dockguard's exit status and stderr,
    and what head printed.
    """
    read, write = os.pipe()
    try:
        head = subprocess.Popen(["head", "-c", str(count)], stdin=read, stdout=subprocess.PIPE)
        os.close(read)
        os.write(write, b"0123456789"[:count])
        printed, _ = head.communicate(timeout=30)
        assert head.returncode == 0
        # head is gone: the pipe has no reader left, as in `dockguard ... | head`
        # once head has what it wants.
        command = subprocess.run(
            [DOCKGUARD, *args],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env or BUFFERING["buffered"],
            timeout=60,
        )
    finally:
        os.close(write)
    return command.returncode, command.stderr, printed


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki") / "ca"
    subprocess.run([DOCKGUARD, "certs", "init", str(directory)], check=True, capture_output=True)
    return directory


@pytest.mark.parametrize("buffering", sorted(BUFFERING))
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(lambda ca: ["certs", "client", str(ca), "alice", "--force"], id="certs-client"),
        pytest.param(lambda ca: ["certs", "list", str(ca)], id="certs-list"),
        pytest.param(lambda ca: ["explain", "alice"], id="explain"),
        pytest.param(lambda ca: ["version"], id="version"),
    ],
)
def test_a_reader_that_stops_early_ends_the_command_quietly(ca: Path, args, buffering: str) -> None:
    status, stderr, printed = piped_into_head(args(ca), env=BUFFERING[buffering])
    assert stderr == b"", stderr.decode()
    assert status == READER_GONE_STATUS == 141
    assert printed == b"0123456789"


@pytest.mark.parametrize("buffering", sorted(BUFFERING))
def test_help_into_a_gone_reader_is_quiet_too(buffering: str) -> None:
    status, stderr, _ = piped_into_head(["--help"], env=BUFFERING[buffering])
    assert stderr == b"", stderr.decode()
    # argparse itself ignores a write that fails (unbuffered: its only one)
    assert status == (0 if buffering == "unbuffered" else 141)


def test_the_work_is_done_even_if_nobody_reads_what_it_says(ca: Path) -> None:
    status, stderr, _ = piped_into_head(["certs", "client", str(ca), "bob"])
    assert (status, stderr) == (141, b"")
    assert (ca / "clients" / "bob" / "cert.pem").exists()


def test_a_reader_that_reads_everything_sees_status_0(ca: Path) -> None:
    shell = subprocess.run(
        ["sh", "-c", f'"{DOCKGUARD}" certs client "{ca}" carol | head -c 10'],
        capture_output=True,
        timeout=60,
    )
    assert shell.stdout == b"client car" and shell.stderr == b""
    complete = subprocess.run([DOCKGUARD, "certs", "list", str(ca)], capture_output=True, timeout=60)
    assert complete.returncode == 0 and b"carol" in complete.stdout and complete.stderr == b""


def test_errors_other_than_a_gone_reader_are_still_said(tmp_path: Path) -> None:
    result = subprocess.run(
        [DOCKGUARD, "certs", "client", str(tmp_path / "no-ca"), "alice"], capture_output=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith(b"dockguard certs: ")
