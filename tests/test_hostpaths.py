"""dockguard.hostpaths: a bind source read as the host reads it (real files in a temp dir)."""

from __future__ import annotations

import os

import pytest

from dockguard.guards import HostPathUnverifiable
from dockguard.hostpaths import resolve


def test_resolve_follows_links_as_the_host_does(tmp_path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    os.symlink("/", root / "esc")
    os.symlink("real", root / "rel")
    os.symlink("../root/real", root / "up")
    base = os.path.realpath(root)
    assert resolve(f"{base}/real") == f"{base}/real"
    assert resolve(f"{base}/esc") == "/"
    assert resolve(f"{base}/esc/etc") == "/etc"
    assert resolve(f"{base}/esc/missing/new") == "/missing/new"  # the daemon would create it under /
    assert resolve(f"{base}/rel/x") == f"{base}/real/x"
    assert resolve(f"{base}/up") == f"{base}/real"
    assert resolve(f"{base}/missing/a/b") == f"{base}/missing/a/b"


def test_loops_and_files_are_unverifiable(tmp_path) -> None:
    base = os.path.realpath(tmp_path)
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    (tmp_path / "file").write_text("x")
    with pytest.raises(HostPathUnverifiable, match="links"):
        resolve(f"{base}/a")
    with pytest.raises(HostPathUnverifiable, match="not a directory"):
        resolve(f"{base}/file/x")
