"""A stand-in for ``python:3.11-slim`` made from Debian's packages.

No registry is reachable from the test machines, so the Dockerfile's
default base (``python:3.11-slim``) cannot be pulled.  ``debian_python_base``
makes an image of the same shape instead, for ``docker build --build-arg
PYTHON_IMAGE=…``:

* ``debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates
  bookworm`` (Debian 12's Python is 3.11, as in ``python:3.11-slim``);
* ``/usr/local/bin/python`` -> ``python3``, as the official image has it;
* this machine's CA bundle in place of Debian's, so that ``pip`` inside the
  build reaches PyPI wherever this machine's HTTPS goes through;
* without apt's lists and package cache, documentation, manual pages and
  translations (``debian:bookworm-slim`` leaves those out too);
* imported with ``docker import`` (``PATH``, ``LANG`` and ``CMD`` set as in
  the official image).

The root filesystem's tar is kept under ``/var/tmp/dockguard-tests/``
(``$DOCKGUARD_TEST_CACHE`` if set), named after everything it is made from
(the recipe below and the CA bundle's content), and made again when it is
older than ``MAX_AGE`` days.  A machine without it makes it (about a
minute: debootstrap downloads a minimal Debian and Python from
``deb.debian.org``); after that an import takes a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness.dockerd import DockerdNotInstalled, _unmount_all, _which_or_sbin

__all__ = ["CACHE_DIR", "MAX_AGE", "debian_python_base", "rootfs_tar"]

CACHE_DIR = Path(os.environ.get("DOCKGUARD_TEST_CACHE", "/var/tmp/dockguard-tests"))
#: days a cached root filesystem is used before it is made again
MAX_AGE = 30

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
#: left out of the image, as the slim images leave them out
TRIMMED = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/log",
)
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: what ``docker import`` sets, as in the official python images
CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
#: bump when the recipe changes in a way the fields above do not show
_RECIPE_VERSION = "1"


def _key() -> str:
    recipe = "\n".join([_RECIPE_VERSION, SUITE, *PACKAGES, *TRIMMED, *CHANGES]).encode()
    h = hashlib.sha256(recipe)
    if os.path.exists(CA_BUNDLE):
        h.update(Path(CA_BUNDLE).read_bytes())
    return h.hexdigest()[:16]


def _debootstrap(target: Path) -> None:
    exe = _which_or_sbin("debootstrap")
    if exe is None:
        raise DockerdNotInstalled(
            "making the base image needs debootstrap: run the README's test command "
            "(it installs it), or apt-get install -y debootstrap"
        )
    done = subprocess.run(
        [exe, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(target)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        log = target / "debootstrap" / "debootstrap.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"debootstrap failed ({done.returncode}):\n{done.stderr[-3000:]}\n{tail}")


def _shape(root: Path) -> None:
    """What makes the Debian root filesystem look like python:3.11-slim."""
    for rel in TRIMMED:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        elif path.exists():
            path.unlink()
    for dev in (root / "dev").iterdir():  # device nodes debootstrap made
        if dev.is_dir() and not dev.is_symlink():
            shutil.rmtree(dev)
        else:
            dev.unlink()
    link = root / "usr" / "local" / "bin" / "python"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to("/usr/bin/python3")
    if os.path.exists(CA_BUNDLE):  # else Debian's own bundle stays
        bundle = root / CA_BUNDLE.lstrip("/")
        bundle.unlink(missing_ok=True)
        shutil.copyfile(CA_BUNDLE, bundle)


def rootfs_tar() -> Path:
    """The tar of the base's root filesystem: the cached one if it is fresh,
    else made now (and cached)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tar = CACHE_DIR / f"debian-{SUITE}-python-{_key()}.tar"
    if tar.exists() and time.time() - tar.stat().st_mtime < MAX_AGE * 86400:
        return tar
    work = Path(tempfile.mkdtemp(prefix="base-", dir=CACHE_DIR))
    try:
        root = work / "root"
        _debootstrap(root)
        _shape(root)
        partial = work / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial), "."],
            check=True,
            capture_output=True,
            timeout=600,
        )
        os.replace(partial, tar)  # atomic: a concurrent session sees all or nothing
    finally:
        _unmount_all(str(work))  # debootstrap mounts /proc and /sys while it works
        shutil.rmtree(work, ignore_errors=True)
    for old in CACHE_DIR.glob(f"debian-{SUITE}-python-*.tar"):
        if old != tar and time.time() - old.stat().st_mtime > 86400:
            old.unlink(missing_ok=True)
    return tar


def debian_python_base(docker: str, env: dict[str, str], tag: str) -> str:
    """Import the base as ``tag`` with the docker CLI ``docker`` (``env``
    names the daemon); return ``tag``."""
    tar = rootfs_tar()
    cmd = [docker, "import"]
    for change in CHANGES:
        cmd += ["--change", change]
    done = subprocess.run([*cmd, str(tar), tag], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"docker import failed: {done.stderr}")
    return tag
