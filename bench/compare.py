"""
dockguard against HAProxy (as a Tecnativa docker-socket-proxy) and the bare
daemon: one run, one table of ratios.  See docs/performance.md.

    bench/run                       # installs what is missing, then this
    .venv/bin/python bench/compare.py [--quick] [--only api,bulk,streams,tls]

It starts, and stops again whatever happens:

* a private dockerd (tests/harness) with a plain TCP listener besides its
  Unix socket (wrk cannot speak to a Unix socket), ~50 containers and, for
  the bulk scenarios, a ~1 GB image;
* dockguard (``twistd -n dockguard``) with a plain TCP and a mutual-TLS
  listener, and HAProxy with bench/haproxy-tecnativa.cfg (plain and
  ``verify required`` TLS frontends), both with the same Tecnativa-style
  permissions (CONTAINERS IMAGES POST EVENTS PING VERSION);
* stunnel in client mode in front of both TLS listeners, so that wrk (which
  cannot present a client certificate) drives the mutual-TLS rows; the same
  stunnel serves both, so the ratio compares like with like;
* for the TLS scenario, a second private dockerd with its own ``--tlsverify``
  port and the same containers, and a second dockguard in front of its socket.

Absolute numbers on a shared 2-core machine are noise; the ratios from one
run are what the targets are judged on.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from harness.dockerd import (  # noqa: E402
    DOCKER_CLIS,
    PrivateDaemon,
    api_request,
    make_big_image,
    make_busybox_image,
)
from harness.guard import Guard, free_port, start_guard  # noqa: E402
from harness.pki import TestPKI  # noqa: E402

MB = 1024 * 1024
#: The permissions of both proxies: Tecnativa variables, enough for every scenario.
PERMISSIONS = {"CONTAINERS": "1", "IMAGES": "1", "POST": "1", "EVENTS": "1", "PING": "1", "VERSION": "1"}
#: The CLI for the bulk transfers.  Here docker 28's `cp … -` over TCP tops
#: out near 25 MB/s whatever is behind it (even the daemon's own TCP port; it
#: is 10x faster over the Unix socket), which would hide the relays; 20.10's
#: does not.
BULK_CLI = "/usr/bin/docker"
EVENTS_REQUEST = b"GET /events HTTP/1.1\r\nHost: docker\r\n\r\n"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes: every one started here is stopped again (process group)
# ---------------------------------------------------------------------------


class Processes:
    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            stop_group(proc)
        self._procs.clear()


def stop_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_port(port: int, proc: subprocess.Popen, what: str, log_path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on {port}:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def settle_rss(pid: int, seconds: float = 1.0) -> int:
    """RSS after a short pause (lets freed memory and finished writes settle)."""
    time.sleep(seconds)
    return rss(pid)


def peak_rss_during(pids: list[int], work) -> tuple[list[int], float]:
    """Run work() sampling each pid's RSS every 20 ms: (peaks, seconds)."""
    procs = [psutil.Process(p) for p in pids]
    peaks = [p.memory_info().rss for p in procs]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for i, p in enumerate(procs):
                with contextlib.suppress(psutil.Error):
                    peaks[i] = max(peaks[i], p.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return peaks, time.monotonic() - started


# ---------------------------------------------------------------------------
# the setup
# ---------------------------------------------------------------------------


class Setup:
    """Everything started for one run, with the addresses of each path."""

    def __init__(self, work: Path, procs: Processes, stack: contextlib.ExitStack, n_containers: int) -> None:
        self.work = work
        self.procs = procs
        self.stack = stack
        self.n_containers = n_containers
        self.pki = TestPKI(work / "pki")
        self.client_dir = self.pki.client("bench")
        self.docker_config = work / "docker-config"
        self.docker_config.mkdir()
        self.daemon_tcp = free_port()
        self.daemon = PrivateDaemon(extra_args=["--host", f"tcp://127.0.0.1:{self.daemon_tcp}"])
        self.tls_daemon: PrivateDaemon | None = None
        self.tls_daemon_port = 0
        self.guard: Guard | None = None
        self.guard_for_tls_daemon: Guard | None = None

    # -- daemon ---------------------------------------------------------------

    def start_daemon(self) -> None:
        log("starting the private dockerd")
        self.daemon.start()
        self.stack.callback(self.daemon.stop)
        make_busybox_image(self.daemon.socket_path)
        make_containers(self.daemon.socket_path, self.n_containers)

    def start_tls_daemon(self) -> None:
        """A second dockerd with its own --tlsverify port, same containers."""
        log("starting a second dockerd with --tlsverify")
        self.tls_daemon_port = free_port()
        pki = self.pki
        self.tls_daemon = PrivateDaemon(
            extra_args=[
                "--host",
                f"tcp://127.0.0.1:{self.tls_daemon_port}",
                "--tlsverify",
                "--tlscacert",
                str(pki.ca_path),
                "--tlscert",
                str(pki.server_cert_path),
                "--tlskey",
                str(pki.server_key_path),
            ]
        )
        self.tls_daemon.start()
        self.stack.callback(self.tls_daemon.stop)
        make_busybox_image(self.tls_daemon.socket_path)
        make_containers(self.tls_daemon.socket_path, self.n_containers)
        self.guard_tls2_port = free_port()
        self.guard_for_tls_daemon = start_guard(
            self.work,
            self.tls_daemon.socket_path,
            [self._tls_listener(self.guard_tls2_port)],
            env=PERMISSIONS,
            wait_for=("127.0.0.1", self.guard_tls2_port),
        )
        self.stack.callback(self.guard_for_tls_daemon.stop)

    # -- dockguard ------------------------------------------------------------

    def _tls_listener(self, port: int) -> str:
        pki = self.pki
        return f"tls://127.0.0.1:{port}?cert={pki.server_cert_path}&key={pki.server_key_path}&client_ca={pki.ca_path}"

    def start_guard(self) -> None:
        log("starting dockguard")
        self.guard_port = free_port()
        self.guard_tls_port = free_port()
        # The bench is one peer holding every stream: dockguard's per-peer
        # limit (128 by default) is raised as a user with such a tool would.
        limits = self.work / "bench-limits.toml"
        limits.write_text("[limits]\nmax_connections_per_peer = 4096\nmax_connections = 8192\n")
        self.guard = start_guard(
            self.work,
            self.daemon.socket_path,
            [f"tcp://127.0.0.1:{self.guard_port}?identity=bench", self._tls_listener(self.guard_tls_port)],
            env=PERMISSIONS,
            extra_args=["--config", str(limits)],
            wait_for=("127.0.0.1", self.guard_port),
        )
        self.stack.callback(self.guard.stop)

    # -- HAProxy, stunnel -------------------------------------------------------

    def start_haproxy(self) -> None:
        log("starting HAProxy")
        self.haproxy_port = free_port()
        self.haproxy_tls_port = free_port()
        crt = self.work / "haproxy-server.pem"
        crt.write_bytes(self.pki.server_cert_path.read_bytes() + self.pki.server_key_path.read_bytes())
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SOCKET_PATH": self.daemon.socket_path,
            "HAPROXY_PORT": str(self.haproxy_port),
            "HAPROXY_TLS_PORT": str(self.haproxy_tls_port),
            "HAPROXY_CRT": str(crt),
            "HAPROXY_CA": str(self.pki.ca_path),
            **PERMISSIONS,
        }
        log_path = self.work / "haproxy.log"
        self.haproxy = self.procs.start(
            [find_tool("haproxy"), "-db", "-f", str(BENCH / "haproxy-tecnativa.cfg")], log_path, env
        )
        wait_port(self.haproxy_port, self.haproxy, "haproxy", log_path)

    def start_stunnel(self) -> None:
        """Client-mode stunnel: plain local ports to both mutual-TLS listeners."""
        log("starting stunnel (client certificate for wrk)")
        self.stunnel_guard = free_port()
        self.stunnel_haproxy = free_port()
        conf = self.work / "stunnel.conf"
        cd = self.client_dir
        common = (
            f"client = yes\ncert = {cd / 'cert.pem'}\nkey = {cd / 'key.pem'}\nCAfile = {cd / 'ca.pem'}\n"
            "verifyChain = yes\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n"
        )
        conf.write_text(
            "foreground = yes\npid =\ndebug = 4\n"
            f"[guard]\naccept = 127.0.0.1:{self.stunnel_guard}\nconnect = 127.0.0.1:{self.guard_tls_port}\n{common}"
            f"[haproxy]\naccept = 127.0.0.1:{self.stunnel_haproxy}\nconnect = 127.0.0.1:{self.haproxy_tls_port}\n{common}"
        )
        log_path = self.work / "stunnel.log"
        self.stunnel = self.procs.start([find_tool("stunnel4", "stunnel"), str(conf)], log_path)
        wait_port(self.stunnel_guard, self.stunnel, "stunnel", log_path)
        wait_port(self.stunnel_haproxy, self.stunnel, "stunnel", log_path)

    # -- docker CLI environments ------------------------------------------------

    def cli_env(self, path: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DOCKER_CONFIG": str(self.docker_config),
            "HOME": str(self.work),
        }
        tls = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(self.client_dir)}
        if path == "daemon":
            env["DOCKER_HOST"] = self.daemon.url
        elif path == "daemon-tcp":
            env["DOCKER_HOST"] = f"tcp://127.0.0.1:{self.daemon_tcp}"
        elif path == "haproxy":
            env["DOCKER_HOST"] = f"tcp://127.0.0.1:{self.haproxy_port}"
        elif path == "dockguard":
            env["DOCKER_HOST"] = f"tcp://127.0.0.1:{self.guard_port}"
        elif path == "haproxy-tls":
            env.update(tls, DOCKER_HOST=f"tcp://127.0.0.1:{self.haproxy_tls_port}")
        elif path == "dockguard-tls":
            env.update(tls, DOCKER_HOST=f"tcp://127.0.0.1:{self.guard_tls_port}")
        elif path == "daemon2-tls":
            env.update(tls, DOCKER_HOST=f"tcp://127.0.0.1:{self.tls_daemon_port}")
        elif path == "dockguard2-tls":
            env.update(tls, DOCKER_HOST=f"tcp://127.0.0.1:{self.guard_tls2_port}")
        else:
            raise ValueError(path)
        return env


def find_tool(*names: str) -> str:
    for name in names:
        for d in ("", "/usr/sbin/", "/usr/bin/", "/sbin/"):
            found = shutil.which(d + name) if d else shutil.which(name)
            if found:
                return found
    raise SystemExit(f"{names[0]} is not installed: run bench/run (it installs haproxy, wrk, stunnel4)")


def make_containers(socket_path: str, n: int) -> None:
    body = json.dumps({"Image": "busybox:local", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}).encode()
    for i in range(n):
        status, out = api_request(
            socket_path,
            "POST",
            f"/containers/create?name=bench-{i}",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        if status != 201:
            raise RuntimeError(f"container create failed: {status} {out[:300]!r}")


# ---------------------------------------------------------------------------
# scenario 1: request rate and latency (wrk)
# ---------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, connections: int, duration: float) -> dict:
    cmd = [find_tool("wrk"), "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "10s", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    result: dict = {"errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    result["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        result[key] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        result["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        result["errors"] += sum(int(x) for x in m.groups())
    return result


def scenario_api(s: Setup, duration: float, conns: list[int]) -> dict:
    targets = {
        "daemon": f"http://127.0.0.1:{s.daemon_tcp}",
        "haproxy": f"http://127.0.0.1:{s.haproxy_port}",
        "dockguard": f"http://127.0.0.1:{s.guard_port}",
        "haproxy-tls": f"http://127.0.0.1:{s.stunnel_haproxy}",
        "dockguard-tls": f"http://127.0.0.1:{s.stunnel_guard}",
    }
    endpoints = {"/_ping": "/_ping", "/containers/json": "/containers/json?all=1"}
    results: dict = {}
    for base in targets.values():
        wrk(base + "/_ping", max(conns), min(1.0, duration))  # warm-up: connections, pools, caches
    for ep, path in endpoints.items():
        for c in conns:
            for name, base in targets.items():
                r = wrk(base + path, c, duration)
                results[(ep, c, name)] = r
                log(
                    f"wrk {ep} c={c} {name}: {r['rps']:.0f} req/s p50 {r['p50']:.2f} ms p99 {r['p99']:.2f} ms"
                    + (f" ERRORS {r['errors']}" if r["errors"] else "")
                )
    return results


# ---------------------------------------------------------------------------
# scenario 5: scoped groups (issue 14): a look-up per named container, and a
# filtered list, against the same calls without a scope
# ---------------------------------------------------------------------------

SCOPE_GROUPS = """
[limits]
max_connections_per_peer = 4096

[identities]
plain = ["plain"]
scoped = ["scoped"]

[groups.plain]
sections = { ping = "read", containers = "read" }

[groups.scoped]
sections = { ping = "read", containers = "read" }
scope = { labels = ["bench.scope=in"] }
"""


def scenario_scope(s: Setup, duration: float, total: int) -> dict:
    """wrk on one dockguard with two listeners: an unscoped and a scoped identity."""
    body = {"Image": "busybox:local", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
    made = max(0, total - s.n_containers)
    log(f"creating {made} more containers, half of them labelled bench.scope=in")
    first_in = None
    for i in range(made):
        labels = {"bench.scope": "in"} if i % 2 == 0 else {}
        status, out = api_request(
            s.daemon.socket_path,
            "POST",
            f"/containers/create?name=scope-{i}",
            body=json.dumps({**body, "Labels": labels}).encode(),
            headers={"Content-Type": "application/json"},
        )
        if status != 201:
            raise RuntimeError(f"container create failed: {status} {out[:300]!r}")
        if first_in is None and labels:
            first_in = json.loads(out)["Id"]
    if first_in is None:
        raise RuntimeError("the scope scenario needs --containers below its total")
    config = s.work / "scope.toml"
    config.write_text(SCOPE_GROUPS)
    plain, scoped = free_port(), free_port()
    guard = start_guard(
        s.work,
        s.daemon.socket_path,
        [f"tcp://127.0.0.1:{plain}?identity=plain", f"tcp://127.0.0.1:{scoped}?identity=scoped"],
        extra_args=["--config", str(config)],
        wait_for=("127.0.0.1", plain),
    )
    s.stack.callback(guard.stop)
    results: dict = {}
    for port in (plain, scoped):
        wrk(f"http://127.0.0.1:{port}/_ping", 16, min(1.0, duration))
    for ep, path in (("inspect", f"/containers/{first_in}/json"), ("list", "/containers/json?all=1")):
        for name, port in (("plain", plain), ("scoped", scoped)):
            r = wrk(f"http://127.0.0.1:{port}{path}", 16, duration)
            results[(ep, name)] = r
            log(
                f"wrk scope {ep} c=16 {name}: {r['rps']:.0f} req/s p50 {r['p50']:.2f} ms"
                + (f" ERRORS {r['errors']}" if r["errors"] else "")
            )
    results["containers"] = s.n_containers + made
    return results


# ---------------------------------------------------------------------------
# scenario 3 (+4): 1,000 event streams
# ---------------------------------------------------------------------------


async def _hold_streams(connect, n: int, pid: int | None, rest: float, trigger) -> dict:
    sem = asyncio.Semaphore(50)  # Twisted's listen backlog is 50

    async def open_one():
        async with sem:
            reader, writer = await connect()
            writer.write(EVENTS_REQUEST)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"GET /events answered {head[:200]!r}")
            return reader, writer

    async def first_data(reader) -> float:
        data = await reader.read(65536)
        if not data:
            raise RuntimeError("an events stream closed before the event")
        return time.monotonic()

    proc = psutil.Process(pid) if pid else None
    before = {"rss": proc.memory_info().rss, "fds": proc.num_fds()} if proc else {}
    opened_at = time.monotonic()
    streams = await asyncio.gather(*(open_one() for _ in range(n)))
    open_s = time.monotonic() - opened_at
    waits = [asyncio.ensure_future(first_data(r)) for r, _ in streams]
    await asyncio.sleep(1.0)
    result: dict = {"open_s": open_s, **{f"before_{k}": v for k, v in before.items()}}
    if proc:
        cpu0 = sum(proc.cpu_times()[:2])
        await asyncio.sleep(rest)
        result["rest_cpu_pct"] = (sum(proc.cpu_times()[:2]) - cpu0) / rest * 100
        result["open_rss"] = proc.memory_info().rss
        result["open_fds"] = proc.num_fds()
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    await loop.run_in_executor(None, trigger)
    times = await asyncio.wait_for(asyncio.gather(*waits), 60)
    lat = sorted(t - t0 for t in times)
    result["fanout_all_ms"] = lat[-1] * 1e3
    result["fanout_p50_ms"] = lat[len(lat) // 2] * 1e3
    for _, writer in streams:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for _, w in streams), return_exceptions=True)
    if proc:
        await asyncio.sleep(2.0)
        result["after_rss"] = proc.memory_info().rss
        result["after_fds"] = proc.num_fds()
    return result


def scenario_streams(s: Setup, n: int, rest: float) -> dict:
    counter = iter(range(10**6))

    def trigger() -> None:
        tag = f"ev{next(counter)}"
        status, body = api_request(s.daemon.socket_path, "POST", f"/images/busybox:local/tag?repo=dgbench&tag={tag}")
        if status != 201:
            raise RuntimeError(f"tag failed: {status} {body!r}")

    targets = {
        "daemon": (lambda: asyncio.open_unix_connection(s.daemon.socket_path), None),
        "haproxy": (lambda: asyncio.open_connection("127.0.0.1", s.haproxy_port), s.haproxy.pid),
        "dockguard": (lambda: asyncio.open_connection("127.0.0.1", s.guard_port), s.guard.pid),
    }
    # dockguard three times: the allocator keeps the first round's memory
    # (RSS is a high-water mark), so a leak shows as growth from round to
    # round, not as RSS above the start.
    targets["dockguard-2"] = targets["dockguard-3"] = targets["dockguard"]
    results = {}
    for name, (connect, pid) in targets.items():
        r = asyncio.run(_hold_streams(connect, n, pid, rest, trigger))
        results[name] = r
        extra = ""
        if pid:
            extra = (
                f", RSS {r['before_rss'] / MB:.1f} -> {r['open_rss'] / MB:.1f} -> {r['after_rss'] / MB:.1f} MB,"
                f" fds {r['before_fds']} -> {r['open_fds']} -> {r['after_fds']}, CPU at rest {r['rest_cpu_pct']:.2f}%"
            )
        log(f"{n} streams via {name}: opened in {r['open_s']:.1f}s, event to all {r['fanout_all_ms']:.0f} ms{extra}")
    return results


# ---------------------------------------------------------------------------
# scenario 2 (+4): bulk transfers with the docker CLI
# ---------------------------------------------------------------------------

#: The daemon's own plain TCP port is the baseline, like in the wrk rows.
BULK_PATHS = ["daemon-tcp", "haproxy", "dockguard", "haproxy-tls", "dockguard-tls"]


def run_cli(s: Setup, path: str, args: list[str], stdout=subprocess.DEVNULL, timeout: float = 900) -> float:
    started = time.monotonic()
    proc = subprocess.run(
        [BULK_CLI, *args], env=s.cli_env(path), stdout=stdout, stderr=subprocess.PIPE, timeout=timeout
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} via {path} failed: {proc.stderr.decode(errors='replace')}")
    return took


#: Seconds one bulk transfer may take before it counts as stalled; a stalled
#: transfer is tried once more (HAProxy's path has been seen to stall a
#: `docker load` at random on this machine).
BULK_TIMEOUT = 240


def retried(what: str, attempt, before_retry=lambda: None):
    """C{attempt()}, tried twice if it stalls; L{None} if it stalls twice."""
    for last in (False, True):
        try:
            return attempt()
        except subprocess.TimeoutExpired:
            log(f"{what} stalled for {BULK_TIMEOUT} s" + ("; giving up on it" if last else "; trying once more"))
            before_retry()
    return None


def scenario_bulk(s: Setup, size_mb: int) -> dict:
    log(f"building a {size_mb} MB image")
    started = time.monotonic()
    image = make_big_image(s.daemon.socket_path, "dg-bench:big", size_mb)
    log(f"built in {time.monotonic() - started:.0f}s")
    results: dict = {"image_mb": image.image_size / MB}
    guard_pid, haproxy_pid = s.guard.pid, s.haproxy.pid
    archive = s.work / "big.tar"
    try:
        # docker cp out of a (created, not started) container
        status, body = api_request(
            s.daemon.socket_path,
            "POST",
            "/containers/create?name=bench-big",
            body=json.dumps({"Image": image.tag, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        if status != 201:
            raise RuntimeError(f"create failed: {status} {body!r}")
        run_cli(s, "daemon", ["cp", f"bench-big:{image.path}", "-"])  # warm the page cache
        for path in BULK_PATHS:
            took = retried(
                f"cp via {path}",
                lambda path=path: run_cli(s, path, ["cp", f"bench-big:{image.path}", "-"], timeout=BULK_TIMEOUT),
            )
            results[("cp", path)] = image.size / MB / took if took else None
            log(f"cp {image.size / MB:.0f} MB via {path}: {_fmt(results[('cp', path)])} MB/s")
        api_request(s.daemon.socket_path, "DELETE", "/containers/bench-big?force=1")

        with open(archive, "wb") as out:
            run_cli(s, "daemon", ["save", image.tag], stdout=out)
        size = archive.stat().st_size
        results["archive_mb"] = size / MB
        for path in BULK_PATHS:
            took = retried(
                f"save via {path}", lambda path=path: run_cli(s, path, ["save", image.tag], timeout=BULK_TIMEOUT)
            )
            results[("save", path)] = size / MB / took if took else None
            log(f"save {size / MB:.0f} MB via {path}: {_fmt(results[('save', path)])} MB/s")

        for path in BULK_PATHS:
            status, body = api_request(s.daemon.socket_path, "DELETE", f"/images/{image.tag}")
            if status != 200:
                raise RuntimeError(f"rmi failed: {status} {body!r}")
            before = [rss(guard_pid), rss(haproxy_pid)]
            peaks, took = (None, None)
            done = retried(
                f"load via {path}",
                lambda path=path: peak_rss_during(
                    [guard_pid, haproxy_pid],
                    lambda: run_cli(
                        s, path, ["load", "-i", str(archive)], stdout=subprocess.PIPE, timeout=BULK_TIMEOUT
                    ),
                ),
                lambda: api_request(s.daemon.socket_path, "DELETE", f"/images/{image.tag}?force=1"),
            )
            if done is None:
                results[("load", path)] = results[("load_peak", path)] = None
                continue
            peaks, took = done
            results[("load", path)] = size / MB / took
            results[("load_peak", path)] = {
                "guard_before": before[0],
                "guard_peak": peaks[0],
                "haproxy_before": before[1],
                "haproxy_peak": peaks[1],
            }
            log(
                f"load {size / MB:.0f} MB via {path}: {results[('load', path)]:.0f} MB/s; "
                f"dockguard RSS {before[0] / MB:.1f} -> peak {peaks[0] / MB:.1f} MB, "
                f"haproxy {before[1] / MB:.1f} -> {peaks[1] / MB:.1f} MB"
            )
        status, raw = api_request(s.daemon.socket_path, "GET", f"/images/{image.tag}/json")
        if status != 200 or json.loads(raw)["Id"] != image.id:
            raise RuntimeError("the loaded image differs from the one saved")
        results["after_rss"] = settle_rss(guard_pid)
    finally:
        archive.unlink(missing_ok=True)
        api_request(s.daemon.socket_path, "DELETE", "/containers/bench-big?force=1")
        api_request(s.daemon.socket_path, "DELETE", f"/images/{image.tag}?force=1", timeout=300)
    return results


# ---------------------------------------------------------------------------
# scenario 5: TLS handshakes, docker ps
# ---------------------------------------------------------------------------


def handshakes(s: Setup, port: int, seconds: float, parallel: int = 2) -> float:
    """New mutual-TLS connections per second (each does GET /_ping), with
    ``parallel`` openssl s_time clients."""
    cd = s.client_dir
    cmd = [
        find_tool("openssl"),
        "s_time",
        "-connect",
        f"127.0.0.1:{port}",
        "-new",
        "-time",
        f"{seconds:g}",
        "-cert",
        str(cd / "cert.pem"),
        "-key",
        str(cd / "key.pem"),
        "-CAfile",
        str(cd / "ca.pem"),
        "-www",
        "/_ping",
    ]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(parallel)
    ]
    total = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 60)
        m = re.search(r"(\d+) connections in ([\d.]+) real seconds", out)
        if not m:
            raise RuntimeError(f"openssl s_time printed no rate:\n{out[-2000:]}")
        total += int(m.group(1)) / float(m.group(2))
    return total


def installed_clis() -> list[str]:
    return [c for c in DOCKER_CLIS if os.access(c, os.X_OK)]


def cli_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\d+\.\d+)", out)
    return m.group(1) if m else binary


def scenario_tls(s: Setup, seconds: float, ps_runs: int) -> dict:
    s.start_tls_daemon()
    results: dict = {}
    for name, port in (("daemon", s.tls_daemon_port), ("haproxy", s.haproxy_tls_port), ("dockguard", s.guard_tls_port)):
        results[("handshakes", name)] = handshakes(s, port, seconds)
        log(f"mutual-TLS handshakes/s via {name}: {results[('handshakes', name)]:.0f}")
    for binary in installed_clis():
        times: dict[str, list[float]] = {"daemon2-tls": [], "dockguard2-tls": []}
        for i in range(ps_runs + 2):
            for path in times if i % 2 else reversed(list(times)):
                started = time.monotonic()
                proc = subprocess.run([binary, "ps", "-a"], env=s.cli_env(path), capture_output=True, timeout=60)
                took = time.monotonic() - started
                if proc.returncode != 0 or proc.stdout.count(b"\n") != s.n_containers + 1:
                    raise RuntimeError(f"docker ps via {path}: {proc.returncode} {proc.stderr!r}")
                if i >= 2:  # two warm-up rounds
                    times[path].append(took)
        for path, ts in times.items():
            results[("ps", binary, path)] = statistics.median(ts) * 1e3
        log(
            f"{binary} ps -a: dockerd TLS port {results[('ps', binary, 'daemon2-tls')]:.1f} ms, "
            f"dockguard {results[('ps', binary, 'dockguard2-tls')]:.1f} ms (median of {ps_runs})"
        )
    return results


# ---------------------------------------------------------------------------
# profile (optional): py-spy on dockguard while wrk drives /_ping
# ---------------------------------------------------------------------------


def find_py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summarise_collapsed(path: Path, top: int = 25) -> str:
    """Own and inclusive time per function from py-spy's collapsed stacks."""
    own: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [re.sub(r"\(.*/(site-packages|lib/python3\.\d+)/", "(", f) for f in frames]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {n / total * 100:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"  {n / total * 100:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(lines)


def scenario_profile(s: Setup, out_dir: Path, seconds: float) -> dict:
    py_spy = find_py_spy()
    if py_spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy into the bench virtualenv)")
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = {}
    runs = {
        "ping-tcp-c16": lambda: wrk(f"http://127.0.0.1:{s.guard_port}/_ping", 16, seconds),
        "ping-mtls-c16": lambda: wrk(f"http://127.0.0.1:{s.stunnel_guard}/_ping", 16, seconds),
        "containers-tcp-c16": lambda: wrk(f"http://127.0.0.1:{s.guard_port}/containers/json?all=1", 16, seconds),
    }
    for name, work in runs.items():
        raw = out_dir / f"{name}.txt"
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(s.guard.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--duration",
                f"{int(seconds)}",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)
        r = work()
        _, err = spy.communicate(timeout=60)
        if not raw.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')}")
        summary = summarise_collapsed(raw)
        (out_dir / f"{name}.summary.txt").write_text(summary + "\n")
        summaries[name] = summary
        log(f"profiled {name} ({r['rps']:.0f} req/s under py-spy): {out_dir / (name + '.summary.txt')}")
    return summaries


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _fmt(v, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def build_table(r: dict, args) -> tuple[list[tuple], list[tuple[str, bool, str]]]:
    """Rows (scenario, metric, daemon, HAProxy, dockguard, dockguard/HAProxy) and target verdicts."""
    rows: list[tuple] = []
    verdicts: list[tuple[str, bool, str]] = []
    api = r.get("api")
    if api:
        for ep in ("/_ping", "/containers/json"):
            for c in args.conns:
                for tls in (False, True):
                    h, g = ("haproxy-tls", "dockguard-tls") if tls else ("haproxy", "dockguard")
                    d = None if tls else api[(ep, c, "daemon")]
                    H, G = api[(ep, c, h)], api[(ep, c, g)]
                    label = f"{ep} c={c}" + (" mTLS*" if tls else "")
                    rows.append(
                        (
                            label,
                            "req/s",
                            _fmt(d and d["rps"]),
                            _fmt(H["rps"]),
                            _fmt(G["rps"]),
                            _ratio(G["rps"], H["rps"]),
                        )
                    )
                    rows.append(
                        (
                            "",
                            "p50 / p99 ms",
                            "-" if d is None else f"{d['p50']:.2f} / {d['p99']:.2f}",
                            f"{H['p50']:.2f} / {H['p99']:.2f}",
                            f"{G['p50']:.2f} / {G['p99']:.2f}",
                            _ratio(G["p50"], H["p50"]),
                        )
                    )
        if 16 in args.conns:
            H, G = api[("/_ping", 16, "haproxy")], api[("/_ping", 16, "dockguard")]
            ratio = G["rps"] / H["rps"]
            verdicts.append(
                (
                    "dockguard plain TCP >= 0.5x HAProxy req/s on /_ping at 16 connections",
                    ratio >= 0.5,
                    f"{ratio:.2f}x ({G['rps']:.0f} vs {H['rps']:.0f} req/s)",
                )
            )
        if 16 in args.conns and 64 in args.conns:
            G16, G64 = api[("/_ping", 16, "dockguard")], api[("/_ping", 64, "dockguard")]
            verdicts.append(
                (
                    "dockguard /_ping at 64 connections no slower than at 16",
                    G64["rps"] >= G16["rps"],
                    f"{G64['rps']:.0f} vs {G16['rps']:.0f} req/s",
                )
            )
        worst_list = min(
            (
                (api[("/containers/json", c, "dockguard")]["rps"] / api[("/containers/json", c, "haproxy")]["rps"], c)
                for c in args.conns
            ),
            default=None,
        )
        if worst_list is not None:
            verdicts.append(
                (
                    "/containers/json >= 0.95x HAProxy req/s at every concurrency (plain TCP)",
                    worst_list[0] >= 0.95,
                    f"worst {worst_list[0]:.2f}x (c={worst_list[1]})",
                )
            )
        if 1 in args.conns:
            D, G = api[("/_ping", 1, "daemon")], api[("/_ping", 1, "dockguard")]
            added = G["p50"] - D["p50"]
            verdicts.append(
                (
                    "p50 added over the direct daemon <= 0.3 ms on /_ping at 1 connection",
                    added <= 0.3,
                    f"+{added:.2f} ms ({G['p50']:.2f} vs {D['p50']:.2f} ms)",
                )
            )
        errors = sum(v["errors"] for v in api.values())
        if errors:
            verdicts.append(("no failed requests under wrk", False, f"{errors} errors"))
    bulk = r.get("bulk")
    if bulk:
        worst = None
        for op in ("save", "load", "cp"):
            for tls in (False, True):
                h, g = ("haproxy-tls", "dockguard-tls") if tls else ("haproxy", "dockguard")
                H, G = bulk[(op, h)], bulk[(op, g)]
                D = None if tls else bulk[(op, "daemon-tcp")]
                rows.append(
                    (
                        f"{op} {bulk['archive_mb'] if op != 'cp' else args.size_mb:.0f} MB" + (" mTLS" if tls else ""),
                        "MB/s",
                        _fmt(D),
                        _fmt(H) if H else "stalled",
                        _fmt(G) if G else "stalled",
                        _ratio(G, H) if H and G else "-",
                    )
                )
                if not (H and G):
                    continue
                if worst is None or G / H < worst[0]:
                    worst = (G / H, f"{op}{' mTLS' if tls else ''}")
        if worst is not None:
            verdicts.append(
                (
                    "bulk streams >= 0.8x HAProxy's MB/s (worst of save/load/cp, plain and mTLS)",
                    worst[0] >= 0.8,
                    f"worst {worst[0]:.2f}x ({worst[1]})",
                )
            )
    streams = r.get("streams")
    if streams:
        n = args.streams
        H, G = streams["haproxy"], streams["dockguard"]
        rows.append(
            (
                f"{n} /events streams",
                "event reaches all, ms",
                _fmt(streams["daemon"]["fanout_all_ms"]),
                _fmt(H["fanout_all_ms"]),
                _fmt(G["fanout_all_ms"]),
                _ratio(G["fanout_all_ms"], H["fanout_all_ms"]),
            )
        )
        rows.append(
            (
                "",
                "event reaches half, ms",
                _fmt(streams["daemon"]["fanout_p50_ms"]),
                _fmt(H["fanout_p50_ms"]),
                _fmt(G["fanout_p50_ms"]),
                _ratio(G["fanout_p50_ms"], H["fanout_p50_ms"]),
            )
        )
        rows.append(
            (
                "",
                "RSS held open, MB",
                "-",
                _fmt(H["open_rss"] / MB, ".1f"),
                _fmt(G["open_rss"] / MB, ".1f"),
                _ratio(G["open_rss"], H["open_rss"]),
            )
        )
        rows.append(
            (
                "",
                "RSS growth, MB",
                "-",
                _fmt((H["open_rss"] - H["before_rss"]) / MB, "+.1f"),
                _fmt((G["open_rss"] - G["before_rss"]) / MB, "+.1f"),
                "-",
            )
        )
        rows.append(("", "CPU at rest, %", "-", _fmt(H["rest_cpu_pct"], ".2f"), _fmt(G["rest_cpu_pct"], ".2f"), "-"))
        G3 = streams["dockguard-3"]
        rows.append(
            (
                "",
                "after close: RSS MB (fds)",
                "-",
                f"{(H['after_rss'] - H['before_rss']) / MB:+.1f} ({H['after_fds'] - H['before_fds']:+d})",
                f"{(G['after_rss'] - G['before_rss']) / MB:+.1f} ({G['after_fds'] - G['before_fds']:+d})",
                "-",
            )
        )
        rows.append(
            (
                "",
                "3rd round, after close",
                "-",
                "-",
                f"{(G3['after_rss'] - G['before_rss']) / MB:+.1f} ({G3['after_fds'] - G['before_fds']:+d})",
                "-",
            )
        )
    mem = r.get("memory", {})
    idle = mem.get("idle")
    if idle is not None:
        rows.append(
            ("memory", "idle RSS, MB", "-", _fmt(mem.get("haproxy_idle", 0) / MB, ".1f"), _fmt(idle / MB, ".1f"), "-")
        )
        verdicts.append(("idle RSS <= 46 MB", idle <= 46 * MB, f"{idle / MB:.1f} MB"))
    if bulk:
        for path in ("dockguard", "dockguard-tls"):
            p = bulk[("load_peak", path)]
            hp = bulk[("load_peak", path.replace("dockguard", "haproxy"))]
            if p is None:
                continue
            base = idle if idle is not None else p["guard_before"]
            rows.append(
                (
                    "",
                    f"before / peak in {bulk['archive_mb']:.0f} MB load{' mTLS' if 'tls' in path else ''}",
                    "-",
                    f"{hp['haproxy_before'] / MB:.1f} / {hp['haproxy_peak'] / MB:.1f}" if hp else "stalled",
                    f"{p['guard_before'] / MB:.1f} / {p['guard_peak'] / MB:.1f}",
                    "-",
                )
            )
            verdicts.append(
                (
                    f"peak RSS during the {bulk['archive_mb']:.0f} MB load{' (mTLS)' if 'tls' in path else ''}"
                    " <= idle + 64 MB",
                    p["guard_peak"] - base <= 64 * MB,
                    f"+{(p['guard_peak'] - base) / MB:.1f} MB ({p['guard_peak'] / MB:.1f} MB)",
                )
            )
    for when in ("after bulk", "after streams", "after wrk"):
        if when in mem:
            rows.append(("", f"RSS {when}, MB", "-", "-", _fmt(mem[when] / MB, ".1f"), "-"))
    if streams:
        G = streams["dockguard"]
        growth = G["open_rss"] - G["before_rss"]
        verdicts.append((f"{args.streams} idle streams <= idle + 40 MB", growth <= 40 * MB, f"+{growth / MB:.1f} MB"))
        rounds = [streams[k] for k in ("dockguard", "dockguard-2", "dockguard-3")]
        fds = max(x["after_fds"] for x in rounds) - G["before_fds"]
        high = max(x["open_rss"] for x in rounds[:-1])
        last = rounds[-1]["after_rss"]
        verdicts.append(
            (
                "nothing retained after the streams close (fds back after each of 3 rounds; "
                "RSS after the 3rd <= the earlier rounds' peak + 2 MB)",
                fds <= 0 and last <= high + 2 * MB,
                f"fds {fds:+d}; RSS after each round "
                + ", ".join(f"{(x['after_rss'] - G['before_rss']) / MB:+.1f}" for x in rounds)
                + f" MB, earlier peak {(high - G['before_rss']) / MB:+.1f} MB",
            )
        )
    scope = r.get("scope")
    if scope:
        n = scope["containers"]
        for ep, label in (("inspect", "GET /containers/{id}/json"), ("list", f"/containers/json, {n} containers")):
            P, S = scope[(ep, "plain")], scope[(ep, "scoped")]
            rows.append(
                (
                    f"scope: {label}",
                    "req/s unscoped / scoped",
                    "-",
                    "-",
                    f"{P['rps']:.0f} / {S['rps']:.0f}",
                    f"{S['rps'] / P['rps']:.2f}x scoped/unscoped",
                )
            )
            verdicts.append(
                (
                    f"scoped {label} >= 0.8x unscoped (c=16)",
                    S["rps"] >= 0.8 * P["rps"],
                    f"{S['rps'] / P['rps']:.2f}x ({S['rps']:.0f} vs {P['rps']:.0f} req/s)",
                )
            )
            if S["errors"] or P["errors"]:
                verdicts.append(
                    (f"no failed requests in the scope {ep} runs", False, f"{S['errors']} / {P['errors']} errors")
                )
    tls = r.get("tls")
    if tls:
        rows.append(
            (
                "TLS",
                "new mTLS conns/s (+ /_ping)",
                _fmt(tls[("handshakes", "daemon")]),
                _fmt(tls[("handshakes", "haproxy")]),
                _fmt(tls[("handshakes", "dockguard")]),
                _ratio(tls[("handshakes", "dockguard")], tls[("handshakes", "haproxy")]),
            )
        )
        for binary in installed_clis():
            d, g = tls[("ps", binary, "daemon2-tls")], tls[("ps", binary, "dockguard2-tls")]
            version = cli_version(binary)
            rows.append(("", f"docker {version} ps -a, ms", f"{d:.1f}", "-", f"{g:.1f}", f"{g / d:.2f}x vs daemon"))
            verdicts.append(
                (
                    f"docker {version} ps through dockguard within 5% of dockerd's TLS port",
                    g <= d * 1.05,
                    f"{(g / d - 1) * 100:+.1f}% ({g:.1f} vs {d:.1f} ms)",
                )
            )
    return rows, verdicts


def render(rows: list[tuple], verdicts: list[tuple[str, bool, str]], header: str) -> str:
    cols = ("scenario", "metric", "daemon", "HAProxy", "dockguard", "dg/HAProxy")
    widths = [max(len(str(x[i])) for x in [cols, *rows]) for i in range(len(cols))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [header, "", line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    if any(r[0].endswith("mTLS*") for r in rows):
        out += ["", "* wrk through one stunnel client (it presents the client certificate) for both proxies."]
    out += ["", "Targets:"]
    out += [f"  [{'met' if ok else 'NOT met'}] {what}: {detail}" for what, ok, detail in verdicts]
    return "\n".join(out)


# ---------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        default="api,bulk,streams,tls,scope",
        help="comma-separated scenarios: api, bulk, streams, tls, scope (default: all)",
    )
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 3)")
    parser.add_argument("--conns", default="1,16,64", help="wrk connection counts (default 1,16,64)")
    parser.add_argument("--size-mb", type=int, help="size of the bulk image's layer (default 1024)")
    parser.add_argument("--streams", type=int, help="concurrent /events streams (default 1000)")
    parser.add_argument("--containers", type=int, default=50, help="containers present (default 50)")
    parser.add_argument("--tls-seconds", type=float, help="seconds per handshake run (default 4)")
    parser.add_argument("--ps-runs", type=int, help="docker ps runs per path (default 15)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 s wrk runs, 64 MB image, 200 streams, 5 ps runs"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="also run py-spy on dockguard under /_ping and /containers/json load; "
        "collapsed stacks and summaries go to DIR",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    args = parser.parse_args()
    # --quick has smaller defaults; options given explicitly win either way
    defaults = {
        "duration": (3.0, 1.0),
        "size_mb": (1024, 64),
        "streams": (1000, 200),
        "tls_seconds": (4.0, 2.0),
        "ps_runs": (15, 5),
    }
    for key, (full, quick) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    args.conns = [int(c) for c in args.conns.split(",")]
    only = set(args.only.split(","))
    unknown = only - {"api", "bulk", "streams", "tls", "scope"}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        raise SystemExit("the bench starts a private dockerd: run it as root")
    for tool in ("wrk", "haproxy", "openssl"):
        find_tool(tool)
    find_tool("stunnel4", "stunnel")
    # 1,000 streams through a proxy are 2,000 sockets: lift the soft limit
    # (children inherit it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 65536):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    # SIGTERM / SIGHUP unwind through the finally blocks like Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)

    started = time.monotonic()
    results: dict = {}
    procs = Processes()
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="dg-bench-", dir="/tmp"))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        stack.callback(procs.stop_all)
        s = Setup(work, procs, stack, args.containers)
        s.start_daemon()
        s.start_guard()
        s.start_haproxy()
        s.start_stunnel()
        results["memory"] = {"idle": settle_rss(s.guard.pid, 2.0), "haproxy_idle": rss(s.haproxy.pid)}
        log(
            f"idle RSS: dockguard {results['memory']['idle'] / MB:.1f} MB, "
            f"haproxy {results['memory']['haproxy_idle'] / MB:.1f} MB"
        )
        # bulk first: its peak RSS is then measured from a process that has
        # not yet held 1,000 streams or 64 wrk connections.
        if "bulk" in only:
            results["bulk"] = scenario_bulk(s, args.size_mb)
            results["memory"]["after bulk"] = rss(s.guard.pid)
        if "streams" in only:
            results["streams"] = scenario_streams(s, args.streams, rest=3.0)
            results["memory"]["after streams"] = rss(s.guard.pid)
        if "api" in only:
            results["api"] = scenario_api(s, args.duration, args.conns)
            results["memory"]["after wrk"] = rss(s.guard.pid)
        if "tls" in only:
            results["tls"] = scenario_tls(s, args.tls_seconds, args.ps_runs)
        if "scope" in only:
            results["scope"] = scenario_scope(s, args.duration, 500)
        if args.profile:
            results["profile"] = scenario_profile(s, Path(args.profile), max(args.duration, 8.0))
        log("stopping everything")
    elapsed = time.monotonic() - started
    rows, verdicts = build_table(results, args)
    header = (
        f"dockguard bench: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}, wrk {args.duration:g} s per cell, took {elapsed:.0f} s"
    )
    print(render(rows, verdicts, header))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "results": {
                        k: {str(kk): vv for kk, vv in v.items()} if isinstance(v, dict) else v
                        for k, v in results.items()
                    },
                },
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
