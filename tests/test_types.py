"""
C{mypy --strict} with the mypy-zope plugin, as configured in pyproject.toml
([tool.mypy]: src/dockguard and the twistd plugin), reports no error.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_MESSAGE = re.compile(r"^(?P<path>[^:\n]+):\d+(?::\d+)?: (?P<severity>error|note|warning): ", re.MULTILINE)


def test_mypy_strict_reports_no_error(tmp_path: Path) -> None:
    for module in ("mypy", "mypy_zope"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (it is in the test extra: pip install '.[test]')")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            # A cache of its own: nothing left in the work tree, nothing stale read.
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    errors = [m["path"] for m in _MESSAGE.finditer(output) if m["severity"] == "error"]
    # 0: clean; 1: errors, listed; anything else (2) is a crash or a bad configuration.
    assert result.returncode in (0, 1), f"mypy exited with {result.returncode}:\n{output}"
    assert result.returncode == 0 or errors, f"mypy failed without naming an error:\n{output}"
    assert not errors, f"mypy --strict reports errors in {', '.join(sorted(set(errors)))}:\n{output}"
