"""
The C{dockguard} console command, for everything that is not the server
(which is C{twistd dockguard}): checking a configuration, explaining what an
identity may do, and suggesting groups from a decision log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any, TextIO, cast
from urllib.parse import parse_qs

import attrs

from dockguard import __version__, certs, enrolclient
from dockguard.config import build_config, choose_policy, load_policy, parse_admin
from dockguard.decisionlog import read_decisions
from dockguard.errors import ConfigError
from dockguard.groups import GroupPolicy
from dockguard.paths import CanonicalPath, PathRefused, canonicalise
from dockguard.policy import READ_METHODS, Decision, Policy, explain
from dockguard.queries import QueryRefused, parse_query
from dockguard.routes import SCOPED_RESOURCES, Match, Route, lookup, placeholder, sample_path
from dockguard.scope import OWNER_LABEL, REDACTABLE

#: The sections whose unknown routes a scope cannot check (as the relay judges them).
_SCOPED_SECTIONS = frozenset({"containers", "exec", "volumes", "networks"})

#: What a redaction hides, in explain's words.
_HIDES = {
    "env": "environment variables' values, names kept",
    "mounts": "mount sources and binds",
    "labels": "label values, keys kept",
}


def _groups_summary(policy: Policy, identity: str) -> list[str]:
    """One line per group of ``identity``: the resources its rights hold for, what it redacts."""
    if not isinstance(policy, GroupPolicy):
        return []
    lines = []
    for name in policy.identities.get(identity, ()):
        group = policy.groups[name]
        scope = (
            f"scope {group.scope.describe()}"
            if group.scope is not None
            else "no scope (every container, volume and network)"
        )
        redact = "redacts " + ", ".join(sorted(group.redact)) if group.redact else "redacts nothing"
        lines.append(f"  group {name}: {scope}; {redact}")
    return lines


def _scope_refusal(method: str, path: str, match: Match, decision: Decision) -> str | None:
    """
    Why the relay refuses a request its policy allows only through scoped
    groups, with the reason it logs (rule ``scope``), or ``None``.
    """
    if not (decision.allowed and decision.scoped):
        return None
    route = match.judged_route
    if route is None:
        if match.section_name not in _SCOPED_SECTIONS:
            return None
        why = "it is not a known route, so no scope can be checked"
    elif route.scoped == "refused":
        why = "it acts on resources across the board"
    else:
        return None
    groups = ", ".join(grant.group for grant in decision.scoped)
    return (
        f"{method} {path} is granted only by scoped groups ({groups}), and {why}; grant it in a group without a scope"
    )


def _in_scope(route: Route, decision: Decision) -> str:
    """The scopes that hold the resources of a route only scoped groups grant
    (with several: each group's, and what it redacts beyond the others)."""
    grants = decision.scoped
    if len(grants) == 1:
        return str(grants[0].scope.describe())
    parts = []
    for grant in grants:
        part = f"group {grant.group}: {grant.scope.describe()}"
        more = [name for name in _redacted(route, grant.redact) if name not in decision.redact]
        if more:
            part += f" (redacts {', '.join(more)})"
        parts.append(part)
    return "; ".join(parts)


def _has_scope(policy: Policy, identity: str) -> bool:
    """Whether a group of ``identity`` has a scope."""
    if not isinstance(policy, GroupPolicy):
        return False
    return any(policy.groups[name].scope is not None for name in policy.identities.get(identity, ()))


def _scoped_rule(decision: Decision) -> str:
    """The deciding rule, without the scope (shown on its own)."""
    if decision.scoped:
        first = decision.scoped[0]
        return f"group {first.group}: {first.grant}"
    return decision.rule


def _redacted(route: Route | None, redact: frozenset[str]) -> list[str]:
    """What of ``redact`` the answer of ``route`` hides, as the relay rewrites it."""
    if route is None or not redact:
        return []
    if route.template in ("/containers/{id}/json", "/images/{name}/json"):
        shown = REDACTABLE
    elif route.scoped == "list":
        shown = ("mounts", "labels")  # a list has no environment
    else:
        return []
    return [name for name in shown if name in redact]


def _scope_effect(route: Route, identity: str) -> str:
    """What a scope does to ``route``, for ``dockguard explain METHOD PATH``."""
    kind = route.scoped
    if kind in ("container", "volume", "network"):
        return f"any other {kind} answers 404, as if it did not exist"
    if kind == "exec":
        return "an exec of any other container answers 404, as if it did not exist"
    if kind == "list":
        return "the list shows only those"
    if kind == "events":
        return "only their events are delivered"
    if kind == "query":
        return "the container its container= parameter names must be in scope (any other answers 404)"
    return f"what it creates must be in scope; it is labelled {OWNER_LABEL}={identity}"


def _explain(args: argparse.Namespace, out: TextIO) -> int:
    policy = load_policy(args.config, os.environ)
    if args.method is not None:
        if args.path is None:
            print("dockguard explain: give both METHOD and PATH", file=sys.stderr)
            return 2
        try:
            path = canonicalise(args.path.encode())
        except PathRefused as e:
            print(f"refuse {args.method} {args.path}: {e.reason}", file=out)
            return 1
        match = lookup(args.method, path)
        decision = policy.decide(args.identity, args.method, path, match)
        refused = _scope_refusal(args.method, path.path, match, decision)
        if refused is not None:
            print(f"deny {args.identity} {args.method} {args.path}", file=out)
            print("  rule: scope", file=out)
            print(f"  why:  {refused}", file=out)
            return 1
        verdict = (
            "allow"
            if decision.allowed and not decision.learned
            else "learn (would deny)"
            if decision.learned
            else "deny"
        )
        print(f"{verdict} {args.identity} {args.method} {args.path}", file=out)
        print(f"  rule: {decision.rule}", file=out)
        print(f"  why:  {decision.reason}", file=out)
        route = match.judged_route
        if decision.scoped and route is not None and route.scoped is not None:
            print(
                f"  scope: only for the containers, volumes and networks in scope ({_in_scope(route, decision)}); "
                f"{_scope_effect(route, args.identity)}",
                file=out,
            )
        elif decision.allowed and route is not None and route.scoped is None and _has_scope(policy, args.identity):
            print("  scope: none applies: this route touches no container, volume or network", file=out)
        hidden = _redacted(route, decision.redact) if decision.allowed else []
        if hidden:
            print(f"  redact: {'; '.join(f'{name} ({_HIDES[name]})' for name in hidden)}", file=out)
        return 0 if decision.allowed else 1
    rows = explain(policy, args.identity)
    width = max(len(f"{route.method} {route.template}") for route, _ in rows)
    print(
        f"what {args.identity} may do ({'allow' if any(d.allowed for _, d in rows) else 'nothing allowed'}):", file=out
    )
    for line in _groups_summary(policy, args.identity):
        print(line, file=out)
    for route, decision in rows:
        verdict = "learn" if decision.learned else "allow" if decision.allowed else "deny"
        rule = decision.rule
        notes = [route.amounts_to] if decision.allowed and route.amounts_to else []
        template = f"{route.method} {route.template}"
        if _scope_refusal(route.method, route.template, lookup(route.method, sample_path(route)), decision):
            verdict, rule = "deny", "scope"
            notes = ["granted only by scoped groups, which refuse it: it acts on resources across the board"]
        elif decision.scoped:
            rule = _scoped_rule(decision)
            if route.scoped is not None:
                notes.append(f"in scope: {_in_scope(route, decision)}")
        hidden = _redacted(route, decision.redact) if decision.allowed and verdict != "deny" else []
        if hidden:
            notes.append("redacts " + ", ".join(hidden))
        note = f"  ({'; '.join(notes)})" if notes else ""
        print(f"  {verdict:5}  {template:{width}}  {rule}{note}", file=out)
    return 0


#: A reference to a resource by its ID (or an ID prefix of 12 or more hex
#: digits): it cannot become a name pattern of a scope.
_HEX_ID = re.compile(r"[0-9a-f]{12,64}")
#: A reference a scope's name pattern can hold: a container's own name (not a
#: legacy link name such as ``web/db``), a volume's or a network's.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: How many IDs a suggestion's comment names.
_MAX_SHOWN = 10


@attrs.define
class _Seen:
    """What the decision log showed one identity do."""

    sections: dict[str, str] = attrs.Factory(dict)
    actions: set[str] = attrs.Factory(set)
    #: The containers, volumes and networks it named by name.
    names: set[str] = attrs.Factory(set)
    #: ... by ID, or otherwise than by a name a scope can hold.
    unnamed: set[str] = attrs.Factory(set)
    #: Whether it created containers, volumes or networks, and the names it gave them.
    created: bool = False
    created_names: set[str] = attrs.Factory(set)
    #: The calls it made that a scope refuses (prune, system df, ...).
    unscopable: set[str] = attrs.Factory(set)

    def add_scope(self, method: str, path: CanonicalPath, match: Match) -> None:
        """Note which scoped resources ``method path`` touched."""
        route = match.judged_route
        if route is None:
            if match.section_name in _SCOPED_SECTIONS:
                self.unscopable.add(f"{method} {path.path}")
            return
        kind = route.scoped
        if kind == "refused":
            self.unscopable.add(f"{method} {route.template}")
        elif kind == "create":
            self.created = True
            for name in parse_qs(path.query).get("name", []):
                self.created_names.add(name.lstrip("/"))
        elif kind in SCOPED_RESOURCES or kind == "query":
            if kind == "query":
                try:
                    ref = parse_query(path.query).get("container")
                except QueryRefused:
                    return
            else:
                start, end = placeholder(route, path)
                ref = "/".join(path.segments[start:end])
            if _HEX_ID.fullmatch(ref) or not _PLAIN_NAME.fullmatch(ref):
                self.unnamed.add(ref)
            else:
                self.names.add(ref)

    def scope_lines(self) -> list[str]:
        """The ``scope`` to suggest, with comments saying what was left out and why."""
        if not (self.names or self.unnamed or self.created or self.unscopable):
            return []  # it named no container, volume or network: nothing to scope
        lines = []
        if self.unscopable:
            calls = ", ".join(sorted(self.unscopable))
            lines.append(f"# no scope: it called {calls}, which a scope refuses")
            return lines
        names = self.names - self.created_names if self.created else set(self.names)
        if self.created:
            own = sorted(self.names & self.created_names)
            if own:
                lines.append(f"# {', '.join(own)}: created by it, so held by owner = true")
        if self.unnamed:
            refs = sorted({ref[:12] if _HEX_ID.fullmatch(ref) else ref for ref in self.unnamed})
            shown = ", ".join(refs[:_MAX_SHOWN]) + (
                f" and {len(refs) - _MAX_SHOWN} more" if len(refs) > _MAX_SHOWN else ""
            )
            how = "by ID" if all(_HEX_ID.fullmatch(ref) for ref in self.unnamed) else "by ID or by a link name"
            lines.append(f"# the containers, volumes or networks it named {how} ({shown}) cannot be held by name:")
            if self.created:
                lines.append(
                    "# owner = true holds those it created; scope the others by label (labels = [...]) or by name"
                )
            else:
                lines.append("# scope them by label (labels = [...]) or by name")
        if not (names or self.created):
            lines.append("# no scope: it named no container, volume or network by a name")
            return lines
        parts = []
        if names:
            parts.append("names = [" + ", ".join(json.dumps(name) for name in sorted(names)) + "]")
        if self.created:
            parts.append("owner = true")
        lines.append("scope = { " + ", ".join(parts) + " }")
        return lines


def suggest_groups(records: list[dict[str, Any]], only: set[str] | None = None) -> str:
    """
    The smallest group per identity that allows every request the log saw
    allowed or let through in learn mode (would-deny), as TOML ready to paste
    into the configuration.  Refused requests are not counted: enforcing
    groups meant them to fail.

    Its scope is no wider than what the log saw: the names of the
    containers, volumes and networks its paths named, and ``owner = true``
    when it created some (what it creates is its own).  IDs cannot be names:
    they are left out, with a comment.  No scope when it named none, or
    when it made a call that a scope refuses (prune, ``/system/df``, ...).
    """
    needs: dict[str, _Seen] = {}
    for record in records:
        if record.get("decision") not in ("allow", "would-deny"):
            continue
        identity, method, target = record.get("identity"), record.get("method"), record.get("path")
        if only is not None and identity not in only:
            continue
        if not (isinstance(identity, str) and isinstance(method, str) and isinstance(target, str)):
            continue
        try:
            path = canonicalise(target.encode())
        except PathRefused:
            continue
        seen = needs.setdefault(identity, _Seen())
        sections, actions = seen.sections, seen.actions
        match = lookup(method, path)
        seen.add_scope(method, path, match)
        route = match.route
        if route is not None and route.action is not None:
            actions.add(route.action)
            continue
        section = match.section
        if section is None:
            continue
        sensitive = route is not None and route.sensitive
        # a sensitive read without an action of its own only opens with write
        level = "read" if method in READ_METHODS and not sensitive else "write"
        if sections.get(section.name) != "write":
            sections[section.name] = level
    lines = []
    for identity in sorted(needs):
        seen = needs[identity]
        group = f"learned-{identity}"
        lines.append(f"[groups.{json.dumps(group)}]")
        lines.append(f'description = "suggested from the decision log for {identity}"')
        body = ", ".join(f'{name} = "{level}"' for name, level in sorted(seen.sections.items()))
        lines.append(f"sections = {{ {body} }}")
        lines.append("actions = [" + ", ".join(f'"{a}"' for a in sorted(seen.actions)) + "]")
        lines.extend(seen.scope_lines())
        lines.append("")
    if needs:
        lines.append("[identities]")
        for identity in sorted(needs):
            lines.append(f'{json.dumps(identity)} = ["learned-{identity}"]')
    return "\n".join(lines) + "\n"


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
#: one that SIGPIPE ended (128 + 13): ``yes | head`` leaves ``yes`` this.
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
    explain.add_argument("--config", "-c", type=Path, help="configuration file (default: the environment variables)")
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
            return _explain(args, out)
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
