"""
The C{dockguard} console command, for everything that is not the server
(which is C{twistd dockguard}).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dockguard import __version__
from dockguard.config import build_config
from dockguard.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dockguard",
        description="dockguard tools. The server itself runs as: twistd -n dockguard [options]",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    check = sub.add_parser("check-config", help="validate a configuration file without starting")
    check.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.command == "version":
        print(f"dockguard {__version__}")
        return 0
    if args.command == "check-config":
        from dockguard.policy import EnvPolicy

        try:
            config = build_config(os.environ, config_file=args.file)
            EnvPolicy.from_environ(os.environ)
        except ConfigError as e:
            print(f"dockguard: {e}", file=sys.stderr)
            return 2
        print(f"{args.file}: OK")
        for listener in config.listeners:
            print(f"  listen {listener.describe()}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
