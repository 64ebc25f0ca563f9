"""
End to end: docker-py (the Python SDK most homelab tools use) through
dockguard's mutual-TLS listener.
"""

from __future__ import annotations

import io
import tarfile
import threading
import uuid

import pytest

import docker
from conftest import BUSYBOX_IMAGE

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(tls_guard, pki, monkeypatch):
    # requests lets these override the CA the client was given
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert_dir = pki.client("sdk")
    tls = docker.tls.TLSConfig(
        client_cert=(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem")),
        ca_cert=str(cert_dir / "ca.pem"),
        verify=True,
    )
    c = docker.DockerClient(base_url=f"https://127.0.0.1:{tls_guard.port}", tls=tls, timeout=60)
    yield c
    c.close()


def name() -> str:
    return "dgpy-" + uuid.uuid4().hex[:10]


def test_ping_version_info(client) -> None:
    assert client.ping() is True
    assert client.version()["Os"] == "linux"
    assert "Containers" in client.info()


def test_run_and_logs(client) -> None:
    out = client.containers.run(BUSYBOX_IMAGE, ["echo", "from-sdk"], network_mode="none", remove=True)
    assert out == b"from-sdk\n"


def test_streamed_logs_follow(client) -> None:
    c = client.containers.run(
        BUSYBOX_IMAGE,
        ["sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.3; done"],
        network_mode="none",
        detach=True,
        name=name(),
    )
    try:
        lines = b"".join(c.logs(stream=True, follow=True)).splitlines()
        assert lines == [b"n1", b"n2", b"n3"]
    finally:
        c.remove(force=True)


def test_exec_run_and_socket_attach(client) -> None:
    c = client.containers.run(BUSYBOX_IMAGE, ["sleep", "60"], network_mode="none", detach=True, name=name())
    try:
        code, out = c.exec_run(["sh", "-c", "echo exec-ok"])
        assert (code, out) == (0, b"exec-ok\n")
        # exec with a hijacked socket and stdin (what tools with a web shell do)
        exec_id = client.api.exec_create(c.id, ["cat"], stdin=True)["Id"]
        sock = client.api.exec_start(exec_id, socket=True)
        raw = getattr(sock, "_sock", sock)  # SocketIO over plain HTTP, the SSLSocket itself over TLS
        raw.sendall(b"through-the-socket\n")
        raw.settimeout(10)
        data = b""
        while b"through-the-socket" not in data:
            chunk = raw.recv(4096)
            assert chunk, data
            data += chunk
        sock.close()
    finally:
        c.remove(force=True)


def test_events_stream(client) -> None:
    c_name = name()
    events = client.events(decode=True, filters={"container": c_name, "event": "die"})
    seen: list[dict] = []

    def read() -> None:
        for event in events:
            seen.append(event)
            break

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    client.containers.run(BUSYBOX_IMAGE, ["true"], network_mode="none", name=c_name, remove=True)
    reader.join(20)
    events.close()
    assert seen and seen[0]["Actor"]["Attributes"]["name"] == c_name


def test_archive_put_and_get(client) -> None:
    c = client.containers.run(BUSYBOX_IMAGE, ["sleep", "60"], network_mode="none", detach=True, name=name())
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            payload = b"archive-content\n"
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        assert c.put_archive("/tmp", buf.getvalue())
        stream, stat = c.get_archive("/tmp/hello.txt")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            assert tar.extractfile("hello.txt").read() == payload
        assert stat["size"] == len(payload)
    finally:
        c.remove(force=True)


def test_build_save_load(client) -> None:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = f"FROM {BUSYBOX_IMAGE}\nRUN echo sdk-built > /b\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    tag = f"{name()}:sdk"
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    saved = b"".join(image.save(named=True))
    client.images.remove(tag, force=True)
    (loaded,) = client.images.load(saved)
    assert loaded.id == image.id
    assert client.containers.run(tag, ["cat", "/b"], network_mode="none", remove=True) == b"sdk-built\n"
    client.images.remove(tag, force=True)
