"""
The one HTTP/1.1 reader of the tests: what a client received
(L{parse_responses}) or what the daemon received (L{parse_requests}), read
strictly by h11, as L{Message}s.  Both the in-memory relay tests
(L{harness.relayworld}) and the raw-socket end-to-end tests
(L{harness.rawhttp}) read with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import h11

__all__ = ["Message", "parse_requests", "parse_responses"]


@dataclass
class Message:
    """A parsed request or response; C{headers} has lower-case names."""

    head: h11.Request | h11.Response
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    complete: bool = False
    informational: list[int] = field(default_factory=list)

    @property
    def status(self) -> int:
        return self.head.status_code  # type: ignore[union-attr]

    def header(self, name: bytes) -> bytes | None:
        values = [v for k, v in self.headers if k == name]
        assert len(values) <= 1, f"{name!r} appears {len(values)} times"
        return values[0] if values else None

    def names(self) -> set[bytes]:
        return {k for k, _ in self.headers}

    def json(self) -> dict:
        assert self.header(b"content-type") == b"application/json"
        return json.loads(self.body)


def parse_responses(data: bytes, methods: list[bytes]) -> list[Message]:
    """
    Read the responses to requests made with C{methods}, in order, from the
    bytes a client received.  The last one may be incomplete.
    """
    conn = h11.Connection(h11.CLIENT)
    if data:  # h11 reads b"" as the end of the connection
        conn.receive_data(data)
    out: list[Message] = []
    for method in methods:
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        informational: list[int] = []
        message: Message | None = None
        while True:
            event = conn.next_event()
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                message = Message(event, list(event.headers), informational=informational)
                out.append(message)
            elif isinstance(event, h11.Data):
                assert message is not None
                message.body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert message is not None
                message.complete = True
                break
            else:
                return out
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            return out
    return out


def parse_requests(data: bytes, upgraded: bool = True) -> tuple[list[Message], bytes]:
    """
    Read the requests the daemon received; the last one may be incomplete.
    Also return the bytes left after an upgrade request (raw stream), unless
    C{upgraded} is false (the daemon refused the upgrade and the connection
    went on with HTTP).
    """
    conn = h11.Connection(h11.SERVER)
    if data:  # h11 reads b"" as the end of the connection
        conn.receive_data(data)
    out: list[Message] = []
    message: Message | None = None
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Request):
            message = Message(event, list(event.headers))
            out.append(message)
        elif isinstance(event, h11.Data):
            assert message is not None
            message.body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert message is not None
            message.complete = True
            if conn.their_state is h11.MIGHT_SWITCH_PROTOCOL and upgraded:
                break
            # dockerd has no CONNECT route: it answers 404 and goes on with HTTP.
            status = 404 if message.head.method == b"CONNECT" else 200
            conn.send(h11.Response(status_code=status, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()
        else:
            break
    rest, _ = conn.trailing_data
    return out, bytes(rest)
