"""
Blocks of the user documentation that tests/test_docs.py runs.

A fenced block is marked for the tests by an HTML comment on the line before
it (invisible when the Markdown is rendered)::

    <!-- docs-test: quickstart-certs -->
    ```sh
    dockguard certs init pki
    ```

The comment holds a name (``quickstart-certs``, ``transcript``) or
``file=NAME`` (a file the transcripts of the same page use).  A
``transcript`` block is a console session: ``$ COMMAND`` lines, each followed
by exactly what it prints.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

_MARKED = re.compile(
    r"<!--\s*docs-test:\s*(?P<spec>[^>]*?)\s*-->[ \t]*\n[ \t]*```(?P<lang>[^\n]*)\n(?P<body>.*?)\n[ \t]*```",
    re.S,
)


@dataclass(frozen=True)
class Block:
    page: str
    name: str
    lang: str
    text: str
    line: int
    args: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    """Every marked block of C{docs/PAGE}, in order."""
    text = (DOCS / page).read_text()
    found = []
    for match in _MARKED.finditer(text):
        name, args = "", {}
        for word in match.group("spec").split():
            key, eq, value = word.partition("=")
            if eq:
                args[key] = value
                name = name or key
            else:
                name = name or word
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page, name, match.group("lang").strip(), match.group("body"), line, args))
    return found


def block(page: str, name: str) -> Block:
    """The one block called C{name} on C{page}."""
    named = [b for b in blocks(page) if b.name == name]
    assert len(named) == 1, f"docs/{page} has {len(named)} blocks marked {name!r}"
    return named[0]


@dataclass(frozen=True)
class Step:
    """One C{$ command} of a transcript and what it prints."""

    env: dict[str, str]
    argv: list[str]
    expected: str
    where: str


_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def transcript(block: Block) -> list[Step]:
    steps: list[Step] = []
    command: str | None = None
    output: list[str] = []

    def flush() -> None:
        if command is None:
            return
        words = shlex.split(command)
        env = {}
        while words and _ASSIGNMENT.match(words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        steps.append(Step(env, words, "\n".join(output), block.where))

    for line in block.text.splitlines():
        if line.startswith("$ "):
            flush()
            command, output = line[2:], []
        else:
            assert command is not None, f"{block.where}: output before the first $ line"
            output.append(line)
    flush()
    return steps


def shell_commands(block: Block) -> list[str]:
    """The commands of a C{sh} block, one per entry (backslash continuations joined)."""
    joined = block.text.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
