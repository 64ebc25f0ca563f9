"""Where a refused request's body goes (L{dockguard.relay.refusals})."""

from __future__ import annotations

import pytest

from dockguard.relay.framing import RequestReader
from dockguard.relay.refusals import Fate, fate_of_body

DRAIN = 64 * 1024


def head_of(fields: bytes):
    reader = RequestReader(256 * 1024, 100, 64)
    reader.receive(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\n" + fields + b"\r\n")
    head = reader.head()
    assert head is not None
    return head


@pytest.mark.parametrize(
    ("fields", "body_read", "fate"),
    [
        (b"", True, Fate.NEXT),
        (b"Content-Length: 10\r\n", True, Fate.NEXT),
        (b"Content-Length: 10\r\n", False, Fate.DRAIN),
        (b"Content-Length: %d\r\n" % DRAIN, False, Fate.DRAIN),
        (b"Content-Length: %d\r\n" % (DRAIN + 1), False, Fate.LINGER),
        (b"Transfer-Encoding: chunked\r\n", False, Fate.LINGER),
        (b"Content-Length: 10\r\nExpect: 100-continue\r\n", False, Fate.CLOSE),
        (b"Content-Length: 10\r\nExpect: 100-Continue\r\n", True, Fate.NEXT),
    ],
)
def test_the_fate_of_a_refused_body(fields: bytes, body_read: bool, fate: Fate) -> None:
    assert fate_of_body(head_of(fields), body_read, DRAIN) is fate
