"""
ruff, as configured in pyproject.toml ([tool.ruff]: pyflakes, import order,
bugbear, pyupgrade), finds nothing in the code, the tests, the bench and the
scripts, and its formatter would change nothing there.
"""

from __future__ import annotations

import importlib.util
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ["src", "twisted", "tests", "bench", "scripts/mutations"]


def test_ruff_finds_nothing(tmp_path: Path) -> None:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (it is in the test extra: pip install '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *CHECKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # 0: clean; 1: findings, listed; anything else is a crash or a bad configuration.
    assert result.returncode == 0, f"ruff exited with {result.returncode}:\n{result.stdout}{result.stderr}"


def test_ruff_format_changes_nothing() -> None:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (it is in the test extra: pip install '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", *CHECKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"ruff format would change:\n{result.stdout}{result.stderr}"


def test_every_mutation_still_finds_the_code_it_breaks() -> None:
    """
    C{scripts/mutations} breaks each security property once, by replacing a
    piece of code: a refactor that moves that code must move the mutation
    too, or the property silently stops being checked.  (Running them is by
    hand: C{scripts/mutations}.)
    """
    mutations = runpy.run_path(str(ROOT / "scripts" / "mutations"), run_name="mutations")["MUTATIONS"]
    stale = []
    for name, (file, old, new, tests) in mutations.items():
        text = (ROOT / "src" / "dockguard" / file).read_text()
        if text.count(old) != 1:
            stale.append(f"{name}: {old!r} is in src/dockguard/{file} {text.count(old)} times, not once")
        if old == new or not tests or not (ROOT / tests[0]).exists():
            stale.append(f"{name}: changes nothing, or names no test file that exists ({tests[:1]})")
    assert not stale, "\n".join(stale)
