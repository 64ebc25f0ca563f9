"""
The C{dockguard} console command, for everything that is not the server
(which is C{twistd dockguard}): checking a configuration, explaining what an
identity may do (L{dockguard.explain}), suggesting groups from a decision
log (L{dockguard.suggest}), certificates (L{dockguard.certs}), and the
container healthcheck.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, TextIO, cast

from dockguard import __version__, certs, enrolclient
from dockguard.config import build_config, choose_policy
from dockguard.decisionlog import read_decisions
from dockguard.errors import ConfigError
from dockguard.explain import explain_command
from dockguard.listeners import parse_admin
from dockguard.suggest import suggest_groups


def healthcheck(admin: str, timeout: float = 10.0) -> str | None:
    """
    Ask a running dockguard's admin listener (C{tcp://HOST:PORT} or
    C{unix:///PATH}) for C{/health}.

    @return: L{None} when healthy, else why not (one line).
    """
    # Imported here: the admin listener's module brings twisted.web, which
    # no other command needs.
    from dockguard.admin import status_is_200

    listener = parse_admin(admin)
    try:
        if listener.kind == "unix":
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(timeout)
            conn.connect(listener.path)
        else:
            conn = socket.create_connection((listener.host, listener.port), timeout=timeout)
        with conn:
            conn.sendall(b"GET /health HTTP/1.0\r\nHost: dockguard\r\n\r\n")
            answer = b""
            while len(answer) < 65536:
                data = conn.recv(65536)
                if not data:
                    break
                answer += data
    except OSError as e:
        return f"dockguard's admin listener {listener.name} does not answer: {e}"
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if status_is_200(status):
        return None
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        message = status.decode("ascii", "replace") or "no answer"
    return f"unhealthy: {message}"


#: The exit status of a command whose reader went away, as a shell reports
#: one that SIGPIPE ended (128 + 13): C{yes | head} leaves C{yes} this.
READER_GONE_STATUS = 141


class _ReaderGone(BaseException):
    """
    The reader of standard output went away (EPIPE).  Not an L{Exception}:
    no command's error handling (C{except OSError}, ...) may take it for an
    error of its own and report it.
    """


class _Stdout:
    """
    Standard output for the commands: a write or flush that finds its reader
    gone raises L{_ReaderGone}.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise _ReaderGone() from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise _ReaderGone() from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """
    The C{dockguard} console command.  When what reads its output goes away
    before the end (C{dockguard certs client ... | head}), it stops quietly,
    with status L{READER_GONE_STATUS} and no traceback, as other commands
    that SIGPIPE ends do; whatever the command, here once.  (C{out}, when
    given, is the caller's to handle.)
    """
    if out is not None:
        return _main(argv, out)
    stdout = sys.stdout
    try:
        try:
            status = _main(argv, cast(TextIO, _Stdout(stdout)))
        except SystemExit:
            stdout.flush()  # argparse's --help and usage end here, still buffered
            raise
        stdout.flush()
        return status
    except (_ReaderGone, BrokenPipeError):
        # Python flushes stdout once more at exit, and would say that it
        # failed: what is left goes to /dev/null instead.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        os.close(devnull)
        return READER_GONE_STATUS


def _main(argv: list[str] | None, out: TextIO) -> int:
    parser = argparse.ArgumentParser(
        prog="dockguard",
        description="dockguard tools. The server itself runs as: twistd -n dockguard [options]",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    check = sub.add_parser("check-config", help="validate a configuration file without starting")
    check.add_argument("file", type=Path)
    explain = sub.add_parser(
        "explain",
        help="what an identity may do: every API route with allow/deny and the deciding rule, "
        "or one request with METHOD PATH",
    )
    explain.add_argument("identity")
    explain.add_argument("method", nargs="?")
    explain.add_argument("path", nargs="?")
    where = explain.add_mutually_exclusive_group()
    where.add_argument("--config", "-c", type=Path, help="configuration file (default: the environment variables)")
    where.add_argument(
        "--preset",
        action="store_true",
        help="IDENTITY names a preset: what the preset alone allows (its tool's calls, tests/traces/)",
    )
    suggest = sub.add_parser(
        "suggest", help="print, per identity, the smallest group that allows what a decision log saw"
    )
    suggest.add_argument("log", type=Path, help="a decision log (decision_log in the configuration)")
    suggest.add_argument("--identity", action="append", help="only this identity (repeatable)")
    health = sub.add_parser(
        "healthcheck",
        help="exit 0 when a running dockguard and its daemon answer, else 1 (for container healthchecks)",
    )
    where = health.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", "-c", type=Path, help="read the admin listener from this file's [admin] listen")
    where.add_argument("--admin", help="the admin listener: tcp://HOST:PORT or unix:///PATH")
    certs.register(sub)
    enrolclient.register(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "certs":
            return certs.run(args, out)
        if args.command == "enroll":
            return enrolclient.run(args, out)
        if args.command == "healthcheck":
            return _healthcheck(args, out)
        if args.command == "version":
            print(f"dockguard {__version__}", file=out)
            return 0
        if args.command == "check-config":
            config = build_config(os.environ, config_file=args.file)
            _, lines = choose_policy(config.policy, os.environ, config.source)
            print(f"{args.file}: OK", file=out)
            for listener in config.listeners:
                print(f"  listen {listener.describe()}", file=out)
            if config.admin is not None:
                print(f"  admin {config.admin.name}: /health and /metrics", file=out)
            if config.enrol is not None:
                print(f"  enrol {config.enrol.listener.name}: enrolment with tokens of {config.enrol.ca_dir}", file=out)
            for line in lines:
                print(f"  policy: {line}", file=out)
            return 0
        if args.command == "explain":
            return explain_command(args, out)
        if args.command == "suggest":
            only = set(args.identity) if args.identity else None
            print(suggest_groups(read_decisions(args.log), only), end="", file=out)
            return 0
    except ConfigError as e:
        print(f"dockguard: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"dockguard: {e}", file=sys.stderr)
        return 2
    return 2


def _healthcheck(args: argparse.Namespace, out: TextIO) -> int:
    """Docker's healthcheck convention: 0 healthy, 1 unhealthy (2 is reserved)."""
    try:
        if args.config is not None:
            config = build_config({}, config_file=args.config)
            if config.admin is None:
                raise ConfigError(str(args.config), "admin", 'missing: add [admin] listen = "tcp://127.0.0.1:9180"')
            admin = config.admin.name
        else:
            admin = args.admin
        problem = healthcheck(admin)
    except ConfigError as e:
        problem = str(e)
    if problem is not None:
        print(f"dockguard: {problem}", file=sys.stderr)
        return 1
    print("healthy", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
