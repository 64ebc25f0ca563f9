"""
End to end: a request whose path the daemon would route differently from
what the policy judged never passes.  With the containers section open and
the images section closed, no spelling of "list the images" may reach the
daemon's image list through dockguard — checked against the real daemon,
which is also asked directly to show that each spelling is a real attack
(or harmless) there.
"""

from __future__ import annotations

import json
import socket

import pytest

from harness.guard import free_port

pytestmark = pytest.mark.e2e

# Each target is sent as-is on the request line.
TRICKY = [
    b"/images/json",
    b"/v1.41/images/json",
    b"/v01.41/images/json",
    b"/v1.41.0/images/json",
    b"/%69mages/json",
    b"/images%2fjson",
    b"/images%2Fjson",
    b"/containers/..%2fimages/json",
    b"/containers/%2e%2e/images/json",
    b"/containers/../images/json",
    b"/v1.41/containers/../../images/json",
    b"//images/json",
    b"/containers//../images/json",
    b"/images/json/",
    b"/IMAGES/json",
    b"/V1.41/images/json",
    b"/v1.41abc/images/json",
    b"/containers/json/..;/../images/json",
    b"/containers/json?/../images/json",
    b"/containers/json#/../../images/json",
    b"http://docker/images/json",
    b"http://docker/v1.41/images/json",
    b"/containers%00/../images/json",
    b"/%2e%2e/images/json",
    b"/containers/json%3f/../../images/json",
    b"/v1.41/%252e%252e/images/json",
]


def exchange(connect, target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    with connect() as s:
        s.settimeout(10)
        s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else 0
    if b"transfer-encoding: chunked" in head.lower():
        decoded, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2 :]
        body = decoded
    return status, body


def is_image_list(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, list) and any("RepoTags" in item for item in value)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, dockerd):
    from harness.guard import start_guard

    port = free_port()
    guard = start_guard(
        tmp_path_factory.mktemp("paths"),
        dockerd.socket_path,
        [f"tcp://127.0.0.1:{port}?identity=tester"],
        env={"CONTAINERS": "1", "IMAGES": "0"},
        wait_for=("127.0.0.1", port),
    )
    yield lambda: socket.create_connection(("127.0.0.1", port))
    guard.stop()


def test_the_open_section_works_and_the_closed_one_is_refused(guarded, dockerd) -> None:
    direct = lambda: _unix(dockerd.socket_path)
    assert is_image_list(*exchange(direct, b"/images/json")), "the daemon lists images directly"
    status, body = exchange(guarded, b"/containers/json")
    assert status == 200 and isinstance(json.loads(body), list)
    status, body = exchange(guarded, b"/images/json")
    assert status == 403 and "IMAGES=0" in json.loads(body)["message"]


def _unix(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return s


@pytest.mark.parametrize("target", TRICKY, ids=[t.decode(errors="replace") for t in TRICKY])
def test_no_spelling_reaches_the_closed_section(guarded, dockerd, target) -> None:
    status, body = exchange(guarded, target)
    assert not is_image_list(status, body), f"{target!r} reached the image list through dockguard"
    # what does pass is what the policy judged: the containers list (a query
    # that looks like a path stays a query), or the daemon's own 301/404
    assert status in (200, 301, 400, 403, 404), (status, body[:200])
    if status == 200:
        assert all("Names" in c for c in json.loads(body)), body[:200]
    if status in (400, 403):
        assert "dockguard refused" in json.loads(body)["message"]
