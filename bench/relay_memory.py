"""
Measure dockguard's memory while it relays a large ``docker load`` (and a
``docker save``): idle RSS, and peak RSS during each transfer, sampled with
psutil every 20 ms.  Starts its own private dockerd and dockguard.

    .venv/bin/python bench/relay_memory.py --size-mb 1024

Prints one line per measurement.  This is a measurement, not a test: the
test suite asserts only that a 300 MB upload stays under +64 MB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness.dockerd import PrivateDaemon, make_big_image, make_busybox_image
from harness.guard import free_port, peak_rss_during, start_guard

MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dg-bench-") as work, PrivateDaemon() as daemon:
        workdir = Path(work)
        make_busybox_image(daemon.socket_path)
        image = make_big_image(daemon.socket_path, "dg-bench:big", args.size_mb)
        port = free_port()
        guard = start_guard(
            workdir,
            daemon.socket_path,
            [f"tcp://127.0.0.1:{port}?identity=bench"],
            env={"IMAGES": "1", "POST": "1"},
            wait_for=("127.0.0.1", port),
        )
        try:
            through = docker.APIClient(base_url=f"tcp://127.0.0.1:{port}", timeout=600)
            direct = docker.APIClient(base_url=daemon.url, timeout=600)
            time.sleep(1)
            idle = psutil.Process(guard.pid).memory_info().rss
            print(f"image: {image.image_size / MB:.0f} MB")
            print(f"idle RSS: {idle / MB:.1f} MB")
            archive = workdir / "big.tar"

            def save() -> None:
                with open(archive, "wb") as out:
                    for chunk in through.get_image(image.tag, chunk_size=1 << 20):
                        out.write(chunk)

            _, peak, took = peak_rss_during(guard.pid, save)
            size = archive.stat().st_size
            print(
                f"save {size / MB:.0f} MB: peak RSS {peak / MB:.1f} MB (+{(peak - idle) / MB:.1f}), {size / MB / took:.0f} MB/s"
            )
            direct.remove_image(image.tag)

            def load() -> None:
                with open(archive, "rb") as data:
                    through.load_image(data)

            _, peak, took = peak_rss_during(guard.pid, load)
            print(
                f"load {size / MB:.0f} MB: peak RSS {peak / MB:.1f} MB (+{(peak - idle) / MB:.1f}), {size / MB / took:.0f} MB/s"
            )
            assert direct.inspect_image(image.tag)["Id"] == image.id, "loaded image differs"
            print("loaded image id matches")
        finally:
            guard.stop()


if __name__ == "__main__":
    main()
