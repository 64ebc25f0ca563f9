"""A private, throw-away Docker daemon for end-to-end tests.

``PrivateDaemon().start()`` runs a real ``dockerd`` whose every piece of state
lives in one short temporary directory ``$D`` (``/tmp/dg-<hex>``):

* API socket ``$D/docker.sock``, data root ``$D/data``, exec root ``$D/exec``,
  pid file ``$D/pid``, its own ``daemon.json`` and log ``$D/dockerd.log``;
* a daemon-managed containerd under ``$D/exec/containerd`` (dockerd's default
  mode when no system containerd socket exists), with a containerd namespace
  named after ``$D`` so that it cannot collide with a system daemon even if
  dockerd decides to share the system containerd;
* no networking at all (``--bridge=none``, no iptables, no ip forwarding, so
  the host's network configuration is never touched): containers must be run
  with ``--network none``;
* the ``vfs`` storage driver (no overlay mounts needed), the ``cgroupfs``
  cgroup driver and a private cgroup parent ``/dg-<hex>`` so that container
  processes left behind can be found and killed.

``stop()`` shuts it down (SIGTERM, then SIGKILL), kills anything that is left
(containerd, shims, container processes), unmounts whatever is still mounted
under ``$D``, removes the cgroups and the directory.  It is idempotent.

Directories of daemons whose owning process died without stopping them (e.g. a
test session killed with SIGKILL) are cleaned up by the next ``start()``.

The module also builds test images without any registry:
``make_busybox_image`` (from the host's static busybox) and ``make_big_image``
(a layer of incompressible data on top of it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import functools
import hashlib
import http.client
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import psutil

__all__ = [
    "DOCKER_CLIS",
    "BUSYBOX_APPLETS",
    "BigImage",
    "DockerdError",
    "DockerdNotInstalled",
    "PrivateDaemon",
    "api_request",
    "cleanup_stale_daemons",
    "make_big_image",
    "make_busybox_image",
]

#: The docker CLIs the e2e tests run against dockguard: 28.x and 20.10.
DOCKER_CLIS = ["/usr/local/bin/docker", "/usr/bin/docker"]

#: Applets linked in /bin of the ``busybox:local`` image.
BUSYBOX_APPLETS = (
    # asked for by the test plan
    "sh",
    "cat",
    "echo",
    "sleep",
    "ls",
    "head",
    "dd",
    "true",
    "false",
    "env",
    "id",
    "wc",
    "tr",
    "yes",
    "md5sum",
    "sha256sum",
    "mkdir",
    "rm",
    "seq",
    # cheap extras that tests tend to want
    "tail",
    "printf",
    "test",
    "[",
    "kill",
    "ps",
    "hostname",
    "uname",
    "touch",
    "cp",
    "mv",
    "ln",
    "chmod",
    "stat",
    "grep",
    "sed",
    "cut",
    "sort",
    "uniq",
    "xargs",
    "tee",
    "whoami",
    "pwd",
    "date",
    "du",
    "base64",
    "od",
    "find",
    "basename",
    "dirname",
    "sync",
    "timeout",
    "tar",
    "gzip",
    "gunzip",
)

_MARKER = "dockguard-harness.json"
_DIR_PREFIX = "dg-"
_DEFAULT_PARENT = "/tmp"
_MNT_DETACH = 2
_REPRODUCIBLE_MTIME = 1_700_000_000


class DockerdError(RuntimeError):
    """The private daemon could not be started or cleaned up."""


class DockerdNotInstalled(DockerdError):
    """dockerd (or one of the tools it needs) is missing from this machine."""


# ---------------------------------------------------------------------------
# tiny HTTP client over a unix socket (no dependency on docker-py for health)
# ---------------------------------------------------------------------------


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def api_request(
    socket_path: str | os.PathLike[str],
    method: str,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, bytes]:
    """One plain HTTP/1.1 request to the Docker API on a unix socket.

    Returns ``(status, body)``.  Raises ``OSError`` if the socket does not
    answer.  An iterable body is sent with chunked transfer encoding.
    """
    conn = _UnixHTTPConnection(os.fspath(socket_path), timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            conn.request(method, path, body=body, headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# environment probing
# ---------------------------------------------------------------------------


def _which_or_sbin(name: str) -> str | None:
    path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
    return shutil.which(name, path=path)


def find_dockerd(dockerd: str = "dockerd") -> str:
    """Absolute path of dockerd; raise ``DockerdNotInstalled`` with a clear
    message if it or the helpers it runs (containerd, runc) are missing."""
    missing = []
    found = _which_or_sbin(dockerd) if os.sep not in dockerd else (dockerd if os.access(dockerd, os.X_OK) else None)
    if found is None:
        missing.append(dockerd)
    for helper in ("containerd", "containerd-shim-runc-v2", "runc"):
        if _which_or_sbin(helper) is None:
            missing.append(helper)
    if missing:
        raise DockerdNotInstalled(
            "the end-to-end tests need a real Docker daemon, but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed. "
            "Run the test command from the README (it apt-installs docker.io and "
            "busybox-static before running pytest), or: "
            "apt-get update && apt-get install -y docker.io busybox-static"
        )
    if os.geteuid() != 0:
        raise DockerdError("the private dockerd needs root (run the tests as root)")
    assert found is not None
    return found


@functools.cache
def _dockerd_version(dockerd: str) -> tuple[int, int]:
    out = subprocess.run([dockerd, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@functools.cache
def _dockerd_accepts(dockerd: str, flag: str) -> bool:
    """Whether this dockerd knows ``flag`` (probed with ``--version``, which
    parses all flags and exits without starting anything)."""
    proc = subprocess.run([dockerd, flag, "--version"], capture_output=True, timeout=30)
    return proc.returncode == 0


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCKER_", "DOCKERD_", "CONTAINERD_"))
        and k
        not in (
            "NOTIFY_SOCKET",
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            "XDG_RUNTIME_DIR",
            "ROOTLESSKIT_STATE_DIR",
        )
    }
    path = env.get("PATH", "")
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if d not in path.split(":"):
            path = f"{path}:{d}" if path else d
    env["PATH"] = path
    return env


# ---------------------------------------------------------------------------
# cleanup helpers (shared by stop() and the stale-directory sweep)
# ---------------------------------------------------------------------------


def _unescape_mount_path(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts_under(root: str) -> list[str]:
    """Mount points at or below ``root``, most recently mounted first."""
    result = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 5:
                    continue
                mp = _unescape_mount_path(fields[4])
                if mp == root or mp.startswith(root.rstrip("/") + "/"):
                    result.append(mp)
    except OSError:
        return []
    result.reverse()
    return result


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _unmount_all(root: str) -> list[str]:
    """Lazily unmount everything at or below ``root``; return what is still
    mounted afterwards."""
    for _ in range(10):
        mounts = _mounts_under(root)
        if not mounts:
            return []
        for mp in mounts:
            if _libc().umount2(mp.encode(), _MNT_DETACH) != 0:
                err = ctypes.get_errno()
                if err not in (errno.EINVAL, errno.ENOENT):
                    subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)
    return _mounts_under(root)


def _cgroup_dirs(name: str) -> list[Path]:
    """Existing cgroup directories called ``name`` directly below a cgroup
    hierarchy root (v1 controllers, the v2 unified tree, or both)."""
    roots: set[str] = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                fstype = post.split()[0] if post else ""
                if fstype in ("cgroup", "cgroup2"):
                    roots.add(_unescape_mount_path(pre.split()[4]))
    except OSError:
        pass
    return [Path(r) / name for r in sorted(roots) if (Path(r) / name).is_dir()]


def _pids_in_cgroups(name: str) -> set[int]:
    pids: set[int] = set()
    for top in _cgroup_dirs(name):
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    text = Path(dirpath, "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(x) for x in text.split())
    return pids


def _remove_cgroups(name: str) -> list[str]:
    leftovers = []
    for top in _cgroup_dirs(name):
        for _attempt in range(50):
            for dirpath, _dirs, _files in os.walk(top, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
            if not top.exists():
                break
            time.sleep(0.1)
        if top.exists():
            leftovers.append(str(top))
    return leftovers


def _is_gone(p: psutil.Process) -> bool:
    try:
        return (not p.is_running()) or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _processes_of(root: str, name: str) -> list[psutil.Process]:
    """Processes belonging to the daemon rooted at ``root``: anything whose
    command line mentions the directory or its unique name (dockerd,
    containerd, shims), plus anything inside its cgroup parent (containers)."""
    me = os.getpid()
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == me:
            continue
        cmd = " ".join(p.info.get("cmdline") or [])
        if root in cmd or name in cmd:
            found[p.pid] = p
    for pid in _pids_in_cgroups(name):
        if pid == me:
            continue
        try:
            found.setdefault(pid, psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return [p for p in found.values() if not _is_gone(p)]


def _kill_processes(root: str, name: str, timeout: float = 15.0) -> list[psutil.Process]:
    """SIGKILL every process of the daemon; return those that survived."""
    deadline = time.monotonic() + timeout
    while True:
        procs = _processes_of(root, name)
        if not procs:
            return []
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        # wait a little for them to go, then rescan (new shims may appear
        # while containerd dies, container processes may be reparented).
        t_end = min(deadline, time.monotonic() + 2.0)
        while time.monotonic() < t_end and not all(_is_gone(p) for p in procs):
            time.sleep(0.05)
        if time.monotonic() >= deadline:
            return _processes_of(root, name)


def _destroy_dir(root: str, name: str) -> list[str]:
    """Kill, unmount, un-cgroup and delete a daemon directory; return a list
    of problems (empty when everything went away)."""
    problems: list[str] = []
    survivors = _kill_processes(root, name)
    if survivors:
        problems.append("processes survived SIGKILL: " + ", ".join(f"{p.pid}" for p in survivors))
    still_mounted = _unmount_all(root)
    if still_mounted:
        problems.append(f"could not unmount: {still_mounted}")
    leftover_cgroups = _remove_cgroups(name)
    if leftover_cgroups:
        problems.append(f"could not remove cgroups: {leftover_cgroups}")
    if os.path.lexists(root):
        for attempt in range(3):
            try:
                shutil.rmtree(root)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if attempt == 2:
                    problems.append(f"could not remove {root}: {exc}")
                else:
                    _unmount_all(root)
                    time.sleep(0.2)
    return problems


def _owner_alive(info: dict) -> bool:
    try:
        p = psutil.Process(int(info["owner_pid"]))
        return abs(p.create_time() - float(info["owner_create_time"])) < 1.0
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def cleanup_stale_daemons(parent: str = _DEFAULT_PARENT) -> list[str]:
    """Destroy private daemon directories under ``parent`` whose owning
    process is gone (a session killed before it could stop its daemon).

    Only directories carrying this harness's marker file are touched, and
    never one whose owner is still running (a concurrent test session).
    Returns the directories removed.
    """
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(_DIR_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        marker = Path(entry.path, _MARKER)
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if _owner_alive(info):
            continue
        _destroy_dir(entry.path, entry.name)
        removed.append(entry.path)
    return removed


# ---------------------------------------------------------------------------
# the daemon
# ---------------------------------------------------------------------------


class PrivateDaemon:
    """A real dockerd private to one test session.  See the module docstring.

    Attributes available after ``start()``: ``dir`` (``$D``), ``socket_path``,
    ``url`` (``unix://…``), ``log_path``, ``pid``, ``env`` (``DOCKER_HOST``).
    """

    def __init__(
        self,
        *,
        dockerd: str = "dockerd",
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        parent_dir: str = _DEFAULT_PARENT,
        keep_log_to: str | os.PathLike[str] | None = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        self.dockerd = dockerd
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.parent_dir = parent_dir
        #: if set, ``stop()`` copies dockerd's log there before deleting ``$D``
        self.keep_log_to = Path(keep_log_to) if keep_log_to is not None else None
        self.extra_args = list(extra_args)
        self.dir: Path | None = None
        self.name: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths --------------------------------------------------------------

    def _require_dir(self) -> Path:
        if self.dir is None:
            raise DockerdError("the private dockerd is not started")
        return self.dir

    @property
    def socket_path(self) -> str:
        return str(self._require_dir() / "docker.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self._require_dir() / "dockerd.log"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a docker CLI talking straight to this daemon."""
        return {"DOCKER_HOST": self.url}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of dockerd's log, without grpc chatter."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, DockerdError):
            return "(no dockerd log)"
        kept = [ln for ln in text.splitlines() if "module=grpc" not in ln]
        return "\n".join(kept[-lines:])

    def api_client(self, **kwargs):
        """A docker-py low-level ``APIClient`` bound to this daemon."""
        import docker

        kwargs.setdefault("version", "auto")
        kwargs.setdefault("timeout", 120)
        return docker.APIClient(base_url=self.url, **kwargs)

    # -- lifecycle ----------------------------------------------------------

    def _make_dir(self) -> tuple[Path, str]:
        for _ in range(100):
            # hex only: the name doubles as a containerd namespace and a
            # cgroup name, both of which dislike '_' runs and odd characters
            name = _DIR_PREFIX + secrets.token_hex(4)
            path = Path(self.parent_dir, name)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            return path, name
        raise DockerdError(f"could not create a directory in {self.parent_dir}")

    def command(self) -> list[str]:
        """dockerd's command line (valid once the directory exists)."""
        d = self._require_dir()
        assert self.name is not None
        exe = find_dockerd(self.dockerd)
        cmd = [
            exe,
            "--host",
            f"unix://{d}/docker.sock",
            "--data-root",
            f"{d}/data",
            "--exec-root",
            f"{d}/exec",
            "--pidfile",
            f"{d}/pid",
            # never read /etc/docker/daemon.json (which could conflict)
            "--config-file",
            f"{d}/daemon.json",
            "--storage-driver=vfs",
            # no networking: do not touch the host's iptables, sysctls, bridges
            "--bridge=none",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            # cgroupfs driver with a private parent so leftovers can be found
            "--exec-opt",
            "native.cgroupdriver=cgroupfs",
            "--cgroup-parent",
            f"/{self.name}",
            # unique containerd namespaces even if a system containerd is used
            "--containerd-namespace",
            self.name,
            "--containerd-plugins-namespace",
            f"{self.name}-plugins",
            "--log-level",
            "info",
        ]
        if _dockerd_accepts(exe, "--ip6tables=false"):
            cmd.append("--ip6tables=false")
        if _dockerd_accepts(exe, "--shutdown-timeout=3"):
            cmd.append("--shutdown-timeout=3")
        cmd.extend(self.extra_args)
        return cmd

    def _daemon_json(self, exe: str) -> dict:
        d = self._require_dir()
        config: dict = {}
        if _dockerd_version(exe) < (23, 0):
            # dockerd 20.10 otherwise creates /etc/docker/key.json
            config["deprecated-key-path"] = f"{d}/key.json"
        return config

    def start(self) -> PrivateDaemon:
        if self.dir is not None:
            raise DockerdError("this PrivateDaemon is already started")
        exe = find_dockerd(self.dockerd)
        cleanup_stale_daemons(self.parent_dir)
        self.dir, self.name = self._make_dir()
        try:
            me = psutil.Process()
            (self.dir / _MARKER).write_text(
                json.dumps(
                    {
                        "owner_pid": me.pid,
                        "owner_create_time": me.create_time(),
                        "name": self.name,
                    }
                )
            )
            (self.dir / "daemon.json").write_text(json.dumps(self._daemon_json(exe)))
            cmd = self.command()
            with open(self.log_path, "wb") as log:
                log.write(("+ " + " ".join(cmd) + "\n").encode())
                log.flush()
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_clean_env(),
                    cwd=str(self.dir),
                    start_new_session=True,  # no terminal signals, own group
                )
            self._wait_ready()
        except BaseException as exc:
            tail = self.log_tail()
            try:
                self.stop()
            except Exception:
                pass
            if isinstance(exc, DockerdError) or not isinstance(exc, Exception):
                raise
            raise DockerdError(f"could not start dockerd: {exc!r}\n--- dockerd.log ---\n{tail}") from exc
        return self

    def restart(self, down: float = 0.0) -> None:
        """Stop the daemon process (its containers killed first), wait
        ``down`` seconds, and start it again on the same socket and data:
        what a client of the socket sees when dockerd is restarted."""
        proc = self._proc
        if self.dir is None or proc is None:
            raise DockerdError("the private dockerd is not started")
        self._kill_containers()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        time.sleep(down)
        with open(self.log_path, "ab") as log:
            log.write(b"[harness] restarting dockerd\n")
            log.flush()
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_clean_env(),
                cwd=str(self.dir),
                start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        last_error: object = None
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise DockerdError(
                    f"dockerd exited with status {rc} during startup\n"
                    f"--- tail of {self.log_path} ---\n{self.log_tail()}"
                )
            try:
                status, body = api_request(self.socket_path, "GET", "/_ping", timeout=5)
                if status == 200 and body.strip() == b"OK":
                    return
                last_error = f"HTTP {status} {body[:200]!r}"
            except OSError as exc:
                last_error = exc
            if time.monotonic() > deadline:
                raise DockerdError(
                    f"dockerd did not answer GET /_ping on {self.socket_path} within "
                    f"{self.start_timeout:.0f}s (last error: {last_error})\n"
                    f"--- tail of {self.log_path} ---\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the daemon and remove every trace of it.  Idempotent."""
        if self.dir is None:
            return
        root, name, proc = str(self.dir), self.name or "", self._proc
        problems: list[str] = []
        try:
            if proc is not None and proc.poll() is None:
                # dockerd would give every running container its own stop
                # timeout (10 s by default) on SIGTERM: kill them first.
                self._kill_containers()
                try:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
                    try:  # not an error for the caller, but keep it in the log
                        with open(self.log_path, "a") as log:
                            log.write("[harness] dockerd ignored SIGTERM; killed it\n")
                    except OSError:
                        pass
            if self.keep_log_to is not None:
                try:
                    self.keep_log_to.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(self.log_path, self.keep_log_to)
                except OSError:
                    pass
            problems = _destroy_dir(root, name)
        finally:
            self.dir = None
            self.name = None
            self._proc = None
        if problems:
            raise DockerdError(f"private dockerd in {root} not fully cleaned up: " + "; ".join(problems))

    def _kill_containers(self) -> None:
        try:
            status, body = api_request(self.socket_path, "GET", "/containers/json", timeout=10)
            if status != 200:
                return
            for c in json.loads(body):
                api_request(self.socket_path, "POST", f"/containers/{c['Id']}/kill", timeout=10)
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            pass

    def __enter__(self) -> PrivateDaemon:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self.is_running() else "stopped"
        return f"<PrivateDaemon {self.dir} {state}>"


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------


def _split_tag(tag: str) -> tuple[str, str]:
    repo, sep, t = tag.rpartition(":")
    if not sep or "/" in t:
        return tag, "latest"
    return repo, t


def _is_static_elf(path: str) -> bool:
    """True if ``path`` is an ELF executable without a program interpreter."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        is64 = head[4] == 2
        order = "little" if head[5] == 1 else "big"
        if is64:
            phoff = int.from_bytes(head[32:40], order)
            phentsize = int.from_bytes(head[54:56], order)
            phnum = int.from_bytes(head[56:58], order)
        else:
            phoff = int.from_bytes(head[28:32], order)
            phentsize = int.from_bytes(head[42:44], order)
            phnum = int.from_bytes(head[44:46], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        if int.from_bytes(table[i * phentsize : i * phentsize + 4], order) == 3:  # PT_INTERP
            return False
    return True


def _tarinfo(
    name: str, *, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0, linkname: str = ""
) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.linkname = linkname
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = _REPRODUCIBLE_MTIME
    return ti


def busybox_rootfs_tar(busybox: str = "/bin/busybox") -> bytes:
    """A minimal root filesystem around a static busybox, as tar bytes."""
    if not os.path.exists(busybox):
        raise DockerdNotInstalled(f"{busybox} is missing: install busybox-static (the README's test command does)")
    if not _is_static_elf(busybox):
        raise DockerdNotInstalled(f"{busybox} is dynamically linked; the test image needs busybox-static")
    data = Path(busybox).read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d, mode in (
            ("bin", 0o755),
            ("dev", 0o755),
            ("etc", 0o755),
            ("proc", 0o555),
            ("root", 0o700),
            ("sys", 0o555),
            ("tmp", 0o1777),
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("var", 0o755),
            ("home", 0o755),
        ):
            tar.addfile(_tarinfo(d, kind=tarfile.DIRTYPE, mode=mode))
        tar.addfile(_tarinfo("bin/busybox", mode=0o755, size=len(data)), io.BytesIO(data))
        for applet in BUSYBOX_APPLETS:
            tar.addfile(_tarinfo(f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777, linkname="busybox"))
        tar.addfile(_tarinfo("usr/bin/env", kind=tarfile.SYMTYPE, mode=0o777, linkname="/bin/busybox"))
        files = {
            "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            "etc/group": "root:x:0:\nnobody:x:65534:\nnogroup:x:65534:\n",
        }
        for fname, text in files.items():
            raw = text.encode()
            tar.addfile(_tarinfo(fname, size=len(raw)), io.BytesIO(raw))
    return buf.getvalue()


def _check_json_stream(raw: bytes | str, what: str) -> list[dict]:
    """Parse a Docker JSON-lines progress stream and raise on an error."""
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    messages = []
    decoder = json.JSONDecoder()
    text = raw.strip()
    pos = 0
    while pos < len(text):
        obj, end = decoder.raw_decode(text, pos)
        messages.append(obj)
        pos = end
        while pos < len(text) and text[pos] in " \r\n\t":
            pos += 1
    for m in messages:
        if isinstance(m, dict) and (m.get("error") or m.get("errorDetail")):
            raise DockerdError(f"{what} failed: {m.get('error') or m.get('errorDetail')}")
    return messages


def make_busybox_image(
    socket_path: str | os.PathLike[str],
    tag: str = "busybox:local",
    *,
    busybox: str = "/bin/busybox",
) -> str:
    """Import a busybox root filesystem as image ``tag`` (no registry needed).

    Uses ``POST /images/create?fromSrc=-`` with a tar built in memory.
    Returns the image id (``sha256:…``).
    """
    repo, t = _split_tag(tag)
    data = busybox_rootfs_tar(busybox)
    changes = ('CMD ["sh"]', "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    query = f"/images/create?fromSrc=-&repo={_q(repo)}&tag={_q(t)}" + "".join(f"&changes={_q(c)}" for c in changes)
    status, body = api_request(
        socket_path,
        "POST",
        query,
        body=data,
        headers={"Content-Type": "application/x-tar"},
        timeout=120,
    )
    if status != 200:
        raise DockerdError(f"image import failed: HTTP {status}: {body[:500]!r}")
    _check_json_stream(body, "image import")
    return _image_id(socket_path, tag)


def _q(s: str) -> str:
    return quote(s, safe="")


def _image_id(socket_path: str | os.PathLike[str], ref: str) -> str:
    status, body = api_request(socket_path, "GET", f"/images/{_q(ref)}/json", timeout=60)
    if status != 200:
        raise DockerdError(f"inspect {ref} failed: HTTP {status}: {body[:500]!r}")
    return json.loads(body)["Id"]


@dataclasses.dataclass(frozen=True)
class BigImage:
    """What ``make_big_image`` made."""

    tag: str
    id: str
    #: path of the big file inside the image
    path: str
    #: exact size of the big file in bytes (``size_mb`` MiB)
    size: int
    #: hex sha256 (and md5, for busybox's md5sum) of the big file's content
    sha256: str
    md5: str
    #: ``Size`` reported by ``GET /images/{tag}/json`` (all layers)
    image_size: int


def _tar_stream(members: Iterable[tuple[tarfile.TarInfo, Iterable[bytes]]]) -> Iterator[bytes]:
    """Lazily produce a tar archive from (TarInfo, chunks) pairs."""
    for info, chunks in members:
        yield info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
        written = 0
        for chunk in chunks:
            written += len(chunk)
            yield chunk
        if written != info.size:
            raise ValueError(f"{info.name}: wrote {written} bytes, header says {info.size}")
        if written % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - written % tarfile.BLOCKSIZE)
    yield b"\0" * (tarfile.BLOCKSIZE * 2)


def _random_chunks(size: int, seed: int, hashers: list, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(chunk_size, left)
        chunk = rng.randbytes(n)
        for h in hashers:
            h.update(chunk)
        left -= n
        yield chunk


def make_big_image(
    socket_path: str | os.PathLike[str],
    tag: str,
    size_mb: float,
    *,
    base: str = "busybox:local",
    path: str = "/bigfile",
    seed: int = 0,
    timeout: float = 900.0,
) -> BigImage:
    """Build image ``tag``: ``base`` plus one layer holding ``path``, a file of
    ``size_mb`` MiB of incompressible pseudo-random data (deterministic for a
    given ``seed``).

    The build context (Dockerfile + data) is streamed to ``POST /build`` with
    chunked encoding, never held in memory whole.  ``base`` must exist
    locally (nothing is pulled).
    """
    size = int(size_mb * 1024 * 1024)
    sha, md5 = hashlib.sha256(), hashlib.md5()
    dockerfile = f"FROM {base}\nCOPY bigfile {path}\n".encode()
    context = _tar_stream(
        [
            (_tarinfo("Dockerfile", size=len(dockerfile)), [dockerfile]),
            (_tarinfo("bigfile", size=size), _random_chunks(size, seed, [sha, md5])),
        ]
    )
    repo, t = _split_tag(tag)
    query = f"/build?t={_q(f'{repo}:{t}')}&rm=1&forcerm=1&pull=0&q=0&nocache=1"
    status, body = api_request(
        socket_path,
        "POST",
        query,
        body=context,
        headers={"Content-Type": "application/x-tar"},
        timeout=timeout,
    )
    if status != 200:
        raise DockerdError(f"build of {tag} failed: HTTP {status}: {body[:1000]!r}")
    _check_json_stream(body, f"build of {tag}")
    st, raw = api_request(socket_path, "GET", f"/images/{_q(tag)}/json", timeout=60)
    if st != 200:
        raise DockerdError(f"inspect {tag} failed: HTTP {st}: {raw[:500]!r}")
    info = json.loads(raw)
    return BigImage(
        tag=f"{repo}:{t}",
        id=info["Id"],
        path=path,
        size=size,
        sha256=sha.hexdigest(),
        md5=md5.hexdigest(),
        image_size=int(info["Size"]),
    )
