"""
The decoder of the daemon's chunked bodies: the same data whatever way the
bytes are split, and one reading only.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockguard.chunked import MAX_LINE, ChunkedDecoder, ChunkError


def decode(pieces: list[bytes]) -> tuple[bytes, bool, bytes]:
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(p) for p in pieces)
    return out, decoder.done, decoder.leftover


def encode(chunks: list[bytes], trailers: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n" + trailers + b"\r\n"


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in points + [len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=0, max_size=3000), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=30000), max_size=12),
    trailers=st.sampled_from([b"", b"X-T: 1\r\n", b"A: b\r\nC: d\r\n"]),
)
def test_any_split_gives_the_same_body(chunks: list[bytes], cuts: list[int], trailers: bytes) -> None:
    wire = encode(chunks, trailers)
    assert decode(splits(wire, cuts)) == (b"".join(chunks), True, b"")


def test_one_byte_at_a_time() -> None:
    wire = encode([b"hello", b" ", b"world" * 1000])
    assert decode([wire[i : i + 1] for i in range(len(wire))]) == (b"hello " + b"world" * 1000, True, b"")


@pytest.mark.parametrize(
    "wire, body",
    [
        (b"5;name=value\r\nhello\r\n0\r\n\r\n", b"hello"),  # extensions are ignored
        (b"5 \r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"000\r\n\r\n", b""),
    ],
)
def test_accepted_spellings(wire: bytes, body: bytes) -> None:
    assert decode([wire]) == (body, True, b"")


@pytest.mark.parametrize(
    "wire",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"5 5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",  # data not followed by CRLF
        b"5\nhello\r\n0\r\n\r\n",  # bare LF
        b"11111111111111111\r\n",  # more than 64 bits
        b"\r\n",  # empty size line
    ],
)
def test_malformed_chunks_are_refused(wire: bytes) -> None:
    with pytest.raises(ChunkError):
        decode([wire])


def test_an_endless_size_line_is_refused() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"5" * MAX_LINE)
    with pytest.raises(ChunkError):
        decoder.feed(b"5" * 10)


def test_endless_trailers_are_refused() -> None:
    with pytest.raises(ChunkError):
        decode([b"0\r\n" + b"X: y\r\n" * 5000 + b"\r\n"])


def test_bytes_after_the_end_are_kept_apart() -> None:
    assert decode([b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"]) == (b"ok", True, b"HTTP/1.1 200 OK\r\n")


def test_an_unfinished_body_is_not_done() -> None:
    assert decode([b"5\r\nhel"]) == (b"hel", False, b"")
