"""
Denial of service against a real ``twistd dockguard`` in front of the
private real dockerd: what one caller does must not cost the others.

The in-memory twins (deterministic) are in ``tests/test_relay.py`` and
``tests/test_attacks.py``; these check the same properties over real
sockets, with the real daemon's own framing.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
from harness.guard import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def writer(guard_factory):
    port = free_port()
    guard = guard_factory(
        [f"tcp://127.0.0.1:{port}?identity=tester"],
        env={"CONTAINERS": "1", "POST": "1"},
        wait_for=("127.0.0.1", port),
    )
    return guard, port


def test_a_connection_whose_response_had_no_length_is_never_reused(writer) -> None:
    """
    One caller loops on an attach to a missing container (the daemon answers
    404 with no length, then closes); another's uploads (never replayed) must
    not land on such a connection: none may fail with 502.
    """
    guard, port = writer
    status, body = request(port, "POST", "/v1.41/containers/dg-missing-x/attach?stream=1")
    assert status == 404, body
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            request(port, "POST", "/v1.41/containers/dg-missing-x/attach?stream=1")

    looper = threading.Thread(target=loop)
    looper.start()
    statuses: dict[int, int] = {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(400):
            conn.request("POST", "/v1.41/containers/create", body=b'{"Image":"dg-no-such-image:none"}',
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
    finally:
        stop.set()
        looper.join()
    assert statuses == {404: 400}, statuses
    assert "Traceback" not in guard.log()
