"""
Where dockguard's idle RSS goes.  Needs no daemon (the upstream socket is
only connected to on the first request) and takes a few seconds.

    .venv/bin/python bench/idle_memory.py

Prints:

1. RSS (anonymous and file-backed) of a fresh interpreter after each step
   of cumulative imports: bare Python, the reactor, twistd's machinery, h11,
   the TLS stack (cryptography, pyOpenSSL, service_identity), dockguard;
2. RSS of a running ``twistd -n dockguard`` with a plain TCP listener only,
   and with a mutual-TLS listener as well, and its largest mappings;
3. the slowest imports (``-X importtime``, cumulative) and the Python heap
   allocated by each top-level package while importing (tracemalloc).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from harness.guard import free_port, start_guard  # noqa: E402
from harness.pki import TestPKI  # noqa: E402

STEPS = [
    ("python", ""),
    ("+ twisted reactor", "from twisted.internet import reactor"),
    ("+ twistd machinery", "import twisted.scripts.twistd, twisted.application.app, twisted.logger"),
    ("+ h11, attrs", "import h11, attrs"),
    ("+ TLS stack", "import cryptography.x509, OpenSSL.SSL, twisted.internet.ssl, service_identity"),
    ("+ dockguard (what twistd dockguard loads)", "import dockguard.tap, dockguard.service"),
]

#: Twisted's TCP transport imports its TLS support (pyOpenSSL, cryptography)
#: whenever pyOpenSSL is installed, so the reactor step above already holds
#: the TLS stack; these lines separate the two.
COMPARE = [
    (
        "twisted reactor, TLS stack blocked",
        "import sys; sys.modules.update(OpenSSL=None, cryptography=None, service_identity=None)\n"
        "from twisted.internet import reactor",
    ),
    ("cryptography + pyOpenSSL only", "import cryptography.x509, OpenSSL.SSL"),
    ("stdlib modules twisted pulls in", "import asyncio, http.cookiejar, urllib.request, email.message, uuid"),
]

_STATUS = """
def _status():
    out = {}
    for line in open('/proc/self/status'):
        k, _, v = line.partition(':')
        if k in ('VmRSS', 'RssAnon', 'RssFile'):
            out[k] = int(v.split()[0]) * 1024
    return out
"""


def status_of(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) * 1024
    return out


def mappings(pid: int, top: int = 8) -> list[tuple[str, int]]:
    agg: collections.Counter = collections.Counter()
    current = "[anon]"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                current = parts[5] if len(parts) > 5 else "[anon]"
            elif parts and parts[0] == "Rss:":
                agg[current] += int(parts[1]) * 1024
    return agg.most_common(top)


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:6.1f}"


def import_steps() -> None:
    print("cumulative imports in a fresh interpreter   RSS MB   anon MB   file MB   (step adds)")
    code = ""
    last = 0
    for label, stmt in STEPS:
        code += stmt + "\n"
        probe = f"{code}{_STATUS}\nimport json; print(json.dumps(_status()))"
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        s = json.loads(out)
        print(
            f"  {label:<40} {mb(s['VmRSS'])}   {mb(s['RssAnon'])}    {mb(s['RssFile'])}   ({(s['VmRSS'] - last) / 1024 / 1024:+.1f})"
        )
        last = s["VmRSS"]
    print("  for comparison, alone in a fresh interpreter:")
    for label, stmt in COMPARE:
        probe = f"{stmt}\n{_STATUS}\nimport json; print(json.dumps(_status()))"
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        s = json.loads(out)
        print(f"  {label:<40} {mb(s['VmRSS'])}   {mb(s['RssAnon'])}    {mb(s['RssFile'])}")


def running_guard() -> None:
    print("\na running twistd -n dockguard (idle, 2 s after start)")
    with tempfile.TemporaryDirectory(prefix="dg-mem-") as d:
        work = Path(d)
        pki = TestPKI(work / "pki")
        sock = str(work / "no-daemon.sock")
        tls = (
            f"tls://127.0.0.1:{free_port()}?cert={pki.server_cert_path}&key={pki.server_key_path}"
            f"&client_ca={pki.ca_path}"
        )
        for label, listeners in (("tcp listener", []), ("tcp + tls listeners", [tls])):
            port = free_port()
            guard = start_guard(
                work, sock, [f"tcp://127.0.0.1:{port}?identity=m", *listeners], wait_for=("127.0.0.1", port)
            )
            try:
                time.sleep(2)
                s = status_of(guard.pid)
                print(f"  {label:<40} {mb(s['VmRSS'])}   {mb(s['RssAnon'])}    {mb(s['RssFile'])}")
                if listeners:
                    print("  largest mappings:")
                    for name, size in mappings(guard.pid):
                        print(f"    {mb(size)} MB  {name}")
            finally:
                guard.stop()


def import_time(top: int = 15) -> None:
    stmt = "; ".join(s for _, s in STEPS[1:])
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", stmt], capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = line.split(":", 1)[1].split("|")
        rows.append((int(cum_us), int(self_us), name[1:]))
    top_level = [r for r in rows if not r[2].startswith(" ")]
    print(
        f"\nslowest top-level imports (-X importtime, cumulative ms; total {sum(r[0] for r in top_level) / 1000:.0f} ms)"
    )
    for cum, _own, name in sorted(top_level, reverse=True)[:top]:
        print(f"  {cum / 1000:7.1f}  {name.strip()}")


def heap_by_package(top: int = 12) -> None:
    stmt = "; ".join(s for _, s in STEPS[1:])
    probe = f"""
import tracemalloc, collections, json
tracemalloc.start()
{stmt}
snap = tracemalloc.take_snapshot()
agg = collections.Counter()
for stat in snap.statistics('filename'):
    parts = stat.traceback[0].filename.split('/')
    if 'site-packages' in parts:
        pkg = parts[parts.index('site-packages') + 1].removesuffix('.py')
    elif 'dockguard' in parts:
        pkg = 'dockguard'
    elif parts[0].startswith('<frozen'):
        pkg = 'code objects (importlib, marshal)'
    else:
        pkg = 'stdlib'
    agg[pkg] += stat.size
print(json.dumps(agg.most_common({top})))
print(json.dumps(sum(agg.values())))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    print(
        f"\nPython heap allocated while importing, by package (tracemalloc; total {int(out[1]) / 1024 / 1024:.1f} MB)"
    )
    for pkg, size in json.loads(out[0]):
        print(f"  {mb(size)} MB  {pkg}")


def main() -> None:
    print(f"python {sys.version.split()[0]} ({sys.executable})\n")
    import_steps()
    running_guard()
    import_time()
    heap_by_package()


if __name__ == "__main__":
    main()
