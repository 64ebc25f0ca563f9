"""
C{dockguard certs token} and C{dockguard certs tokens}: one-time enrolment
tokens (L{dockguard.enrolment}) made, listed and revoked in the CA
directory, for C{dockguard enroll} on the host that is to use the
certificate.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from dockguard import tokens
from dockguard.tokens import DEFAULT_TTL, parse_ttl


def register(sub: Any) -> None:
    """Add C{token} and C{tokens} to C{dockguard certs}' sub-parsers."""
    p = sub.add_parser("token", help="make a one-time enrolment token for NAME (for `dockguard enroll`)")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("name", metavar="NAME", help="the identity the certificate will name (its CN)")
    p.add_argument(
        "--ttl",
        type=_ttl,
        default=DEFAULT_TTL,
        metavar="DURATION",
        help="how long it may be used: 90s, 15m, 2h, 1d (default: 15m; at most 7d)",
    )
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("tokens", help="list the enrolment tokens of DIR, or revoke one (--revoke ID)")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--revoke", metavar="ID", help="revoke this unused token (its id, or the start of it)")
    p.set_defaults(func=cmd_tokens)


def _ttl(text: str) -> Any:
    try:
        return parse_ttl(text)
    except tokens.TokenError as e:
        raise argparse.ArgumentTypeError(str(e))


def cmd_token(args: argparse.Namespace, out: TextIO) -> int:
    """The token alone on stdout (for C{$(...)} and files), what to do with it on stderr."""
    directory: Path = args.dir
    token, record = tokens.add_token(directory, args.name, args.ttl, datetime.now(UTC))
    print(token.text, file=out)
    notes = [
        f"token {record.id} for {record.name}: one use, until {record.expires_at:%Y-%m-%d %H:%M:%S}Z",
        "on the host that will use it: dockguard enroll https://THIS-HOST:PORT TOKEN --dir DIR",
        f'it grants no group: the configuration file does, e.g. [identities] {record.name} = ["readonly"]',
    ]
    for line in notes:
        print(f"# {line}", file=sys.stderr)
    return 0


def cmd_tokens(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir
    now = datetime.now(UTC)
    if args.revoke is not None:
        record = tokens.revoke_token(directory, args.revoke, now)
        print(f"revoked token {record.id} for {record.name}", file=out)
        return 0
    rows = [("ID", "NAME", "STATE", "EXPIRES", "USED BY", "SERIAL")]
    for r in tokens.load_tokens(directory):
        rows.append((r.id, r.name, r.state(now), f"{r.expires_at:%Y-%m-%d %H:%M:%S}Z", r.used_by or "", r.serial or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)
    return 0
