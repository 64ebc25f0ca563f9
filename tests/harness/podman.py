"""A private, throw-away Podman service for end-to-end tests.

``PrivatePodman().start()`` runs ``podman system service --time=0`` as root
with every piece of state in one short temporary directory ``$P``
(``/tmp/dgp-<hex>``):

* API socket ``$P/podman.sock``, storage root ``$P/root`` (the ``vfs``
  driver: no overlay mounts), run root ``$P/run``, libpod's temporary
  directory ``$P/tmp``, volumes ``$P/volumes``, network definitions
  ``$P/net``, events in the file ``$P/events.log``, the log ``$P/podman.log``;
* its own ``containers.conf`` (``CONTAINERS_CONF``, so nothing of the host's
  configuration is read): file locks instead of the shared-memory segment
  every root Podman shares, the ``cgroupfs`` cgroup manager, and, for every
  container that names none, **no network** (``netns = "none"``) and the
  rlimits runc accepts in these sandboxes (``nproc`` and ``nofile``
  1000:1000; runc refuses Podman's defaults here);
* no networking at all: nothing creates a bridge, touches routes or
  firewall rules; tests still pass ``--network none`` explicitly.

``stop()`` removes the containers and pods (``podman rm -af -t0``), stops the
service (SIGTERM, then SIGKILL), kills whatever is left that names ``$P``
(conmon), unmounts what is still mounted under ``$P`` and deletes it. It is
idempotent. Directories of services whose owning process died are removed
by the next ``start()``, as for the private dockerd.

:func:`import_busybox` imports the same busybox root filesystem as the
private dockerd's ``busybox:local`` (``harness.dockerd.busybox_rootfs_tar``)
with ``podman import``; Podman names it ``localhost/busybox:local`` and
finds it as ``busybox:local`` too.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from harness.dockerd import (
    _clean_env,
    _destroy_dir,
    _owner_alive,
    api_request,
    busybox_rootfs_tar,
)

__all__ = ["PODMAN_ULIMITS", "PodmanNotAvailable", "PrivatePodman", "import_busybox"]

#: What every container needs in these sandboxes (runc refuses Podman's defaults).
PODMAN_ULIMITS = ("nproc=1000:1000", "nofile=1000:1000")
#: The same, as a create body's ``HostConfig.Ulimits``.
COMPAT_ULIMITS = [{"Name": "nproc", "Soft": 1000, "Hard": 1000}, {"Name": "nofile", "Soft": 1000, "Hard": 1000}]
#: The same, as a libpod SpecGenerator's ``r_limits``.
SPEC_RLIMITS = [{"type": "nproc", "soft": 1000, "hard": 1000}, {"type": "nofile", "soft": 1000, "hard": 1000}]

_MARKER = "dockguard-podman.json"
_DIR_PREFIX = "dgp-"
_PARENT = "/tmp"


class PodmanNotAvailable(RuntimeError):
    """Podman is not installed or cannot start here: the e2e tests skip with this reason."""


def _containers_conf(root: Path) -> str:
    ulimits = ", ".join(f'"{u}"' for u in PODMAN_ULIMITS)
    return (
        "[containers]\n"
        'netns = "none"\n'
        f"default_ulimits = [{ulimits}]\n"
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{root}/events.log"\n'
        'lock_type = "file"\n'
        f'tmp_dir = "{root}/tmp"\n'
        f'volume_path = "{root}/volumes"\n'
        'runtime = "runc"\n'
        "[network]\n"
        f'network_config_dir = "{root}/net"\n'
    )


def cleanup_stale_services(parent: str = _PARENT) -> None:
    """Remove private Podman directories whose owning process is gone."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(_DIR_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            info = json.loads(Path(entry.path, _MARKER).read_text())
        except (OSError, ValueError):
            continue
        if not _owner_alive(info):
            _destroy_dir(entry.path, entry.name)


class PrivatePodman:
    """A ``podman system service`` private to one test session (see the module docstring)."""

    def __init__(self, *, start_timeout: float = 30.0, keep_log_to: str | os.PathLike[str] | None = None) -> None:
        self.start_timeout = start_timeout
        self.keep_log_to = Path(keep_log_to) if keep_log_to is not None else None
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        if self.dir is None:
            raise PodmanNotAvailable("the private Podman is not started")
        return self.dir

    @property
    def socket_path(self) -> str:
        return str(self.root / "podman.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.root / "podman.log"

    def env(self) -> dict[str, str]:
        """The environment of a ``podman`` command on this service's storage."""
        env = _clean_env()
        env["CONTAINERS_CONF"] = str(self.root / "containers.conf")
        env["XDG_RUNTIME_DIR"] = str(self.root / "xdg")
        return env

    def podman(self, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """Run ``podman args`` on this service's storage (not through its socket)."""
        root = self.root
        cmd = [
            "podman",
            "--storage-driver",
            "vfs",
            "--root",
            str(root / "root"),
            "--runroot",
            str(root / "run"),
            "--tmpdir",
            str(root / "tmp"),
            *args,
        ]
        return subprocess.run(
            cmd,
            env=self.env(),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, PodmanNotAvailable):
            return "(no podman log)"

    def start(self) -> PrivatePodman:
        exe = shutil.which("podman") or ("/usr/bin/podman" if os.path.exists("/usr/bin/podman") else None)
        if exe is None:
            raise PodmanNotAvailable("podman is not installed (apt-get install -y podman)")
        if os.geteuid() != 0:
            raise PodmanNotAvailable("the private Podman service runs as root; these tests are not root")
        cleanup_stale_services()
        self.dir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX + secrets.token_hex(2), dir=_PARENT))
        root = self.dir
        me = psutil.Process()
        (root / _MARKER).write_text(json.dumps({"owner_pid": me.pid, "owner_create_time": me.create_time()}))
        for sub in ("root", "run", "tmp", "volumes", "net", "xdg"):
            (root / sub).mkdir(mode=0o700)
        (root / "containers.conf").write_text(_containers_conf(root))
        cmd = [
            exe,
            "--storage-driver",
            "vfs",
            "--root",
            str(root / "root"),
            "--runroot",
            str(root / "run"),
            "--tmpdir",
            str(root / "tmp"),
            "system",
            "service",
            "--time=0",
            f"unix://{self.socket_path}",
        ]
        try:
            with open(self.log_path, "wb") as log:
                log.write(("+ " + " ".join(cmd) + "\n").encode())
                log.flush()
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env(),
                    cwd=str(root),
                    start_new_session=True,
                )
            self._wait_ready()
        except BaseException as exc:
            tail = self.log_tail()
            self.stop()
            if isinstance(exc, PodmanNotAvailable):
                raise
            raise PodmanNotAvailable(f"podman system service did not start: {exc!r}\n{tail}") from exc
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise PodmanNotAvailable(f"podman system service exited with status {rc}:\n{self.log_tail()}")
            try:
                status, body = api_request(self.socket_path, "GET", "/_ping", timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise PodmanNotAvailable(f"podman did not answer /_ping within {self.start_timeout:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the service and remove every trace of it. Idempotent."""
        if self.dir is None:
            return
        root, proc = self.dir, self._proc
        try:
            try:
                self.podman("pod", "rm", "-af", "-t", "0", timeout=60)
                self.podman("rm", "-af", "-t", "0", timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                pass
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(15)
            if self.keep_log_to is not None:
                try:
                    self.keep_log_to.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(root / "podman.log", self.keep_log_to)
                except OSError:
                    pass
            _destroy_dir(str(root), root.name)
        finally:
            self.dir = None
            self._proc = None


def import_busybox(podman: PrivatePodman, tag: str = "busybox:local") -> str:
    """Import the busybox root filesystem the private dockerd uses as ``tag``; return the image ID."""
    with tempfile.NamedTemporaryFile(dir=podman.root / "tmp", suffix=".tar") as tar:
        tar.write(busybox_rootfs_tar())
        tar.flush()
        done = podman.podman(
            "import",
            "--change",
            'CMD ["sh"]',
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            tar.name,
            tag,
        )
    if done.returncode != 0:
        raise PodmanNotAvailable(f"podman import failed: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode().strip()
