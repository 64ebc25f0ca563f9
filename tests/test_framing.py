"""
The client-side request reader (L{dockguard.relay.framing.RequestReader}),
Twisted-free: first on its own, then against h11, byte stream by byte stream.

The reader is the security boundary: where a request could be read two
ways, it must refuse.  h11 is a second, independent reading (the relay's
parser before the reader).  The differential fuzz feeds both the same
streams and compares them message by message: accepted or refused, method,
target, header fields, body bytes, where each message ends, and whether the
connection is kept.  Every disagreement must belong to a class listed in
L{KNOWN}, each with its reason; a new class fails the test.

Bounded for a shared 2-core machine (a few seconds);
DOCKGUARD_FUZZ_EXAMPLES=20000 for a longer run by hand.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from itertools import zip_longest

import h11
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dockguard.relay.framing import BODY, DONE, HEAD, FramingError, Head, RequestReader

HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100


def reader(chunks_per_call: int = 0) -> RequestReader:
    return RequestReader(HEAD_BYTES, MAX_HEADERS, chunks_per_call)


# -- what a stream reads as ------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A request read whole, and the offset in the stream just after it."""

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    end: int
    keep_alive: bool


@dataclass(frozen=True)
class Refused:
    """A request refused (or cut off by the end of the stream): the reason is not compared."""

    reason: str = field(compare=False)


Reading = list[Message | Refused]


def by_reader(pieces: list[bytes], chunks_per_call: int = 0) -> Reading:
    """The stream, fed in C{pieces}, as the reader reads it; read on while it keeps the connection."""
    r = reader(chunks_per_call)
    left = iter(pieces)
    out: Reading = []
    fed = 0
    head: Head | None = None
    body: list[bytes] = []

    def feed() -> bool:
        nonlocal fed
        piece = next(left, None)
        if piece is None:
            return False
        r.receive(piece)
        fed += len(piece)
        return True

    try:
        while True:
            if r.state is HEAD:
                head, body = r.head(), []
                if head is None and not feed():
                    if r.waiting:
                        out.append(Refused("the stream ends in a head"))
                    return out
            elif r.state is BODY:
                body.append(r.body())
                if r.state is BODY and not r.more and not r.failed and not feed():
                    out.append(Refused("the stream ends in a body"))
                    return out
            else:
                assert r.state is DONE and head is not None
                out.append(
                    Message(
                        head.method,
                        head.target,
                        comparable(head.headers),
                        b"".join(body),
                        fed - r.waiting,
                        head.keep_alive,
                    )
                )
                if not head.keep_alive:
                    return out
                r.next_request()
    except FramingError as e:
        assert e.status in (400, 431) and e.reason and e.rule, vars(e)
        out.append(Refused(e.reason))
        return out


def by_h11(stream: bytes) -> Reading:
    """The same stream as h11 reads it, each request answered with a bare 404."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(stream)
    conn.receive_data(b"")
    out: Reading = []
    try:
        while not isinstance(request := conn.next_event(), h11.ConnectionClosed):
            assert isinstance(request, h11.Request), request
            body = []
            while not isinstance(data := conn.next_event(), h11.EndOfMessage):
                assert isinstance(data, h11.Data), data
                body.append(bytes(data.data))
            end = len(stream) - len(conn.trailing_data[0])
            # A 404 turns down an Upgrade or CONNECT, so h11 reads on.
            conn.send(h11.Response(status_code=404, headers=[(b"content-length", b"0")]))
            conn.send(h11.EndOfMessage())
            keep_alive = conn.our_state is h11.DONE
            headers = comparable([(name, bytes(value)) for name, value in request.headers.raw_items()])
            out.append(Message(request.method, request.target, headers, b"".join(body), end, keep_alive))
            if not keep_alive:
                return out
            conn.start_next_cycle()
    except h11.RemoteProtocolError as e:
        out.append(Refused(str(e)))
    return out


def comparable(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
    # h11 gives Transfer-Encoding in lower case, the reader as sent: both
    # take "chunked" in any case, and the relay writes its own.
    return tuple((name, value.lower() if name.lower() == b"transfer-encoding" else value) for name, value in headers)


# -- the known disagreements -----------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """
    A class of disagreement: one side (C{refuser}, C{"reader"} or C{"h11"})
    refuses a message the other reads, for a reason matching C{reason}; the
    message as the other side read it has a head matching C{head} and a
    body matching C{body}.  C{example} shows it.
    """

    refuser: str
    reason: str
    example: bytes
    head: bytes = b""
    body: bytes = b""


H = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n"
TE = H + b"Transfer-Encoding: chunked\r\n\r\n"
#: A bare CR or a bare LF.

# Not differences, though deliberate: the reader takes any token as a
# method, reads HTTP/d.d other than 1.0 and 1.1 as 1.1 and refuses a missing
# Host on HTTP/1.1, as h11 does; it ends a line at a bare LF (RFC 9112
# section 2.2) and reads an obs-fold as a space (section 5.2), as h11 and the
# daemon do, and sends the head on with CRLF and unfolded; a Transfer-Encoding value is compared in
# lower case (see comparable()).
KNOWN: dict[str, Known] = {
    # == Only the reader refuses: it is the stricter, nothing gets through. ==
    #
    # Control bytes but HT (and DEL) in a value: h11 takes all but NUL and
    # the white-space ones, llhttp none (RFC 9110 section 5.5).
    "ctl-in-value": Known(
        "reader", r"^Invalid header value char$", H + b"X-A: a\x7fb\r\n\r\n", head=rb"[\x01-\x08\x0e-\x1f\x7f]"
    ),
    # Both framings: h11 lets Transfer-Encoding win (RFC 9112 section 6.3);
    # the message could be read either way, so the reader refuses it.
    "cl-and-te": Known(
        "reader",
        r"^(both Content-Length and Transfer-Encoding|Content-Length can't be present with "
        r"Transfer-Encoding|Transfer-Encoding can't be present with Content-Length)",
        H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    # Content-Length repeated, even with the same value, or a list of equal
    # values ("5, 5"): h11 reads one length, llhttp refuses.
    "cl-repeated": Known(
        "reader",
        r"^(Duplicate Content-Length|Invalid character in Content-Length)$",
        H + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    ),
    # A Content-Length of 19 or 20 digits: h11 takes up to 20.
    "cl-too-long": Known(
        "reader",
        r"^a Content-Length that is not a number$",
        H + b"Content-Length: 0000000000000000000\r\n\r\n",
        head=rb"[0-9]{19}",
    ),
    # A tab after "chunked": llhttp refuses it, h11 strips it.
    "te-tab": Known(
        "reader",
        r"^(Request has invalid `Transfer-Encoding`|Invalid `Transfer-Encoding` header value)$",
        H + b"Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n",
        head=rb"chunked[ \t]*\t",
    ),
    # The Connection header naming a framing field or Host: a proxy that
    # drops what Connection names would relay another message.
    "connection-names-framing": Known(
        "reader", r"^the Connection header names ", H + b"Connection: content-length\r\n\r\n"
    ),
    # A version above 1.1 is read as 1.1 (and relayed as 1.1), so it needs
    # a Host; h11 asks for one on 1.1 only.
    "no-host-above-1.1": Known(
        "reader",
        r"^no Host field",
        b"GET /_ping HTTP/2.0\r\n\r\n",
        head=rb"\A[^\r\n]* HTTP/([2-9]\.[0-9]|1\.[2-9])\r\n",
    ),
    # The reader hands the target to llhttp behind a GET: the authority form
    # (CONNECT host:port) and a target starting with neither "/", "*" nor a
    # scheme are refused; h11 takes any visible bytes.
    "odd-target-form": Known(
        "reader",
        r"^(Unexpected (start )?char in url|Invalid characters in url|Invalid char in url)",
        b"CONNECT docker:2375 HTTP/1.1\r\nHost: docker\r\n\r\n",
    ),
    # A chunk size of 17 to 20 hex digits (h11 takes 20); a bare CR in a
    # chunk extension (h11 takes any byte but LF there).
    "chunk-size-line": Known(
        "reader",
        r"^bad chunked body: bad chunk-size line",
        TE + b"5;a\rb\r\nhello\r\n0\r\n\r\n",
        body=rb"(\A|\n)([0-9A-Fa-f]{17}|[^\r\n]*;[^\n]*\r(?!\n))",
    ),
    # Trailers are dropped, never relayed, but read as strictly as a head: a
    # bare LF, obs-fold, a control byte or a malformed line is refused.  (h11
    # unfolds, and ends the trailers at LF LF: a request behind "X: a\n"
    # would be a trailer line to a laxer reader and a request to h11.)
    "trailer-line": Known("reader", r"^bad chunked body: (bad trailer line|a bare LF)", TE + b"0\r\nX-T: a\n\r\n"),
    # Content-Length or Transfer-Encoding as a trailer: a proxy that merges
    # trailers into the head would frame the message again; h11 takes them.
    "framing-trailer": Known(
        "reader",
        r"^bad chunked body: a (?i:content-length|transfer-encoding) trailer",
        TE + b"0\r\nContent-Length: 5\r\n\r\n",
    ),
    #
    # == Only h11 refuses, and the reader's reading is unambiguous. ==
    #
    # White space before a chunk extension ("5 ;a"): RFC 9112 section 7.1.1
    # allows it (BWS), h11 does not.  The size line still ends at its CRLF
    # and the relay re-chunks the body, extensions dropped.
    "bws-before-chunk-ext": Known(
        "h11", r"^illegal chunk header", TE + b"5 ;a\r\nhello\r\n0\r\n\r\n", body=rb"(\A|\n)[0-9A-Fa-f]+[ \t]+;"
    ),
}


def disagreement(stream: bytes, ours: Reading, theirs: Reading) -> tuple[str, str] | None:
    """
    The first disagreement between the reader (C{ours}) and h11 (C{theirs}):
    its class (a key of L{KNOWN}, or C{"new"}) and what it is; L{None} if
    they agree.
    """
    start = 0
    for mine, h11s in zip_longest(ours, theirs):
        if mine == h11s:
            if isinstance(mine, Message):
                start = mine.end
            continue
        what = f"at offset {start}:\n  reader: {mine!r}\n  h11:    {h11s!r}"
        if isinstance(mine, Refused) and isinstance(h11s, Message):
            refuser, reason, read = "reader", mine.reason, h11s
        elif isinstance(mine, Message) and isinstance(h11s, Refused):
            refuser, reason, read = "h11", h11s.reason, mine
        else:
            return "new", what
        # The message as the side that accepted it read it.
        head, blank, body = re.split(rb"(\n\r?\n)", stream[start : read.end], maxsplit=1)
        head += blank
        for name, known in KNOWN.items():
            if (
                known.refuser == refuser
                and re.search(known.reason, reason)
                and re.search(known.head, head, re.DOTALL)
                and re.search(known.body, body, re.DOTALL)
            ):
                return name, what
        return "new", what
    return None


# -- the grammar -----------------------------------------------------------------------------
#
# Each stream has a focus: the one part of the grammar that is nasty in it
# (one time in three or so there, one in five hundred elsewhere), so that
# most streams differ from a plain one in one way, and both readers get far
# enough to disagree.


@dataclass(frozen=True)
class Part:
    """
    A part of the grammar: its name, its plain choices and its nasty ones,
    taken one time in C{one_in} when the stream's focus is on it.
    """

    name: str
    plain: list[bytes]
    nasty: list[bytes]
    one_in: int = 3


def pick(draw: st.DrawFn, focus: str, part: Part) -> bytes:
    # (Not st.integers: hypothesis draws its bounds far more often.)
    odds = part.one_in if focus == part.name else 500
    nasty = draw(st.sampled_from([False] * (odds - 1) + [True]))
    return draw(st.sampled_from(part.nasty if nasty else part.plain))


SP = Part("sp", [b" "], [b"  ", b"\t", b""])
EOL = Part("eol", [b"\r\n"], [b"\n", b"\r", b"\r\r\n", b"\n\r", b"\r\n "])
METHOD = Part(
    "method",
    [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"get", b"X-Y~!"],
    [b"CONNECT", b"G\x00T", b"", b"G\xc3\x89T", b"GET\x7f", b"M("],
)
TARGET = Part(
    "target",
    [b"/_ping", b"/v1.41/build?t=a&q=%20", b"*", b"http://docker/_ping", b"/a?b#c", b"/%", b'/"<>{}|\\^`'],
    [b"docker:2375", b"/\xc3\xa9", b"/a\x00", b"/a\x7f", b"/a\x0b", b"a", b"?a", b"", b"/a b", b"/a?\x80"],
)
VERSION = Part(
    "version",
    [b"HTTP/1.1"] * 4 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2"],
    [b"HTTP/1.10", b"http/1.1", b"HTTP/1", b"HTTP/1.1 ", b"", b"HTTPS/1.1", b"HTTP/1.1\x00"],
)
NAME = Part(
    "name",
    [b"X-A", b"User-Agent", b"Content-Type", b"Expect", b"Upgrade", b"x-registry-auth"],
    [
        b"Connection",
        b"Host",
        b"Content-Length",
        b"Transfer-Encoding",
        b"content-length",
        b"TRANSFER-ENCODING",
        b"X A",
        b"X_A",
        b"",
        b"X\x00",
        b"X\x7f",
        b"\xc3\xa9",
        b"Host ",
        b" Host",
        b"\tX-A",
        b"X:Y",
    ],
)
SEP = Part("sep", [b": ", b":"], [b":\t", b" : ", b"::", b": \t "])
VALUE = Part(
    "value",
    [
        b"a",
        b"docker",
        b"chunked",
        b"Chunked",
        b"close",
        b"keep-alive",
        b"upgrade",
        b"tcp",
        b"100-continue",
        b"5",
        b"0",
        b"005",
        b",",
        b" ",
        b"\t",
        b'"',
        b";",
        b"=",
        b"\x80\xff",
        b"content-length",
        b"host",
    ],
    [
        b"-1",
        b"0x5",
        b"5, 5",
        b"\x00",
        b"\x01",
        b"\x7f",
        b"\x0b",
        b"\x0c",
        b"\r",
        b"\n",
        b"\r\n ",
        b"\r\n\t",
        b"identity",
        b"gzip",
        b"1" * 19,
    ],
)
FRAMING = Part(
    "framing",
    [b"none", b"cl", b"chunked", b"chunked"],
    [
        b"cl-short",
        b"cl-long",
        b"cl-twice",
        b"cl-conflict",
        b"cl-list",
        b"cl-and-te",
        b"te-and-cl",
        b"te-twice",
        b"te-other",
        b"te-upper",
        b"connection-names",
    ],
    one_in=1,
)
#: A chunk-size line, for a size n (and how far n is from the chunk's size).
SIZE_LINE = Part(
    "size-line",
    [b"{0:x}", b"{0:X}", b"{0:04x}", b"{0:x};a=b", b'{0:x};a="x;y"', b"{0:x} "],
    [
        b"{0:017x}",
        b"{0:020x}",
        b"0x{0:x}",
        b" {0:x}",
        b"-{0:x}",
        b"+{0:x}",
        b"{0:x}\t",
        b"{0:x} ;a",
        b"{0:x}\t;a",
        b"{0:x};\r",
        b"{0:x};a\x00",
        b"{0:x};a\n",
        b"{0:x} {0:x}",
        b"{0:x}\n",
    ],
)
SIZE_ERROR = Part("size-line", [b"0"], [b"-1", b"1"])
AFTER_DATA = Part("after-data", [b"\r\n"], [b"\n", b"", b"XX", b"\r", b"\r\r\n"])
LAST_CHUNK = Part(
    "last-chunk", [b"0\r\n", b"000\r\n", b"0;x\r\n", b"0 \r\n"], [b"0\t;x\r\n", b"00000000000000000\r\n", b"0\n", b""]
)
END = Part("last-chunk", [b"\r\n"], [b"\n", b"", b"\r", b"\r\n\r\n"])
TRAILER = Part(
    "trailer",
    [b"X-T: 1\r\n", b"X-T:\r\n", b"X-T: a \r\n", b"Host: other\r\n"],
    [
        b"X-T: a\n",
        b" folded\r\n",
        b"\tfolded\r\n",
        b"NoColon\r\n",
        b"Content-Length: 5\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"X: \x00\r\n",
        b"X: \x7f\r\n",
        b"X T: 1\r\n",
        b": v\r\n",
    ],
)
NASTY = [b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x00", b"\x7f", b"\xff", b":", b";", b","]
FOCI = [
    "plain",
    "bytes",
    *sorted(
        {
            part.name
            for part in (
                SP,
                EOL,
                METHOD,
                TARGET,
                VERSION,
                NAME,
                SEP,
                VALUE,
                FRAMING,
                SIZE_LINE,
                AFTER_DATA,
                LAST_CHUNK,
                TRAILER,
            )
        }
    ),
]
DATA = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"hello", b"0\r\n\r\n", b"\r\n", b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n"]),
)


def chunked(draw: st.DrawFn, focus: str, data: bytes) -> bytes:
    """C{data} as a chunked body, with odd size lines, odd chunk ends and trailers."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=2)))
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(data)]):
        if b > a:
            size = b - a + int(pick(draw, focus, SIZE_ERROR))
            line = pick(draw, focus, SIZE_LINE).decode().format(size).encode("latin-1")
            out += [line, b"\r\n", data[a:b], pick(draw, focus, AFTER_DATA)]
    out.append(pick(draw, focus, LAST_CHUNK))
    out += [pick(draw, focus, TRAILER) for _ in range(draw(st.integers(0, 2)))]
    return b"".join([*out, pick(draw, focus, END)])


@st.composite
def request(draw: st.DrawFn, focus: str) -> bytes:
    def header_line() -> bytes:
        value = b"".join(pick(draw, focus, VALUE) for _ in range(draw(st.integers(0, 3))))
        return pick(draw, focus, NAME) + pick(draw, focus, SEP) + value

    request_line = b"".join(pick(draw, focus, part) for part in (METHOD, SP, TARGET, SP, VERSION))
    fields = [header_line() for _ in range(draw(st.integers(0, 3)))]
    if draw(st.sampled_from([True] * 19 + [False])):
        fields.insert(draw(st.integers(0, len(fields))), b"Host: docker")
    data = draw(DATA)
    framing = pick(draw, focus, FRAMING).decode()
    body = chunked(draw, focus, data) if framing.startswith(("chunked", "te-")) or framing == "cl-and-te" else data
    cl = b"Content-Length: %d" % len(data)
    te = b"Transfer-Encoding: chunked"
    extra = {
        "none": [],
        "cl": [cl],
        "chunked": [te],
        "cl-short": [b"Content-Length: %d" % max(len(data) - 1, 0)],
        "cl-long": [b"Content-Length: %d" % (len(data) + 3)],
        "cl-twice": [cl, cl],
        "cl-conflict": [cl, b"Content-Length: 1"],
        "cl-list": [cl + b", %d" % len(data)],
        "cl-and-te": [cl, te],
        "te-and-cl": [te, b"Content-Length: %d" % len(body)],
        "te-twice": [te, te],
        "te-other": [te, b"Transfer-Encoding: " + draw(st.sampled_from([b"gzip", b"identity", b"chunked, gzip"]))],
        "te-upper": [b"Transfer-Encoding: CHUNKED"],
        "connection-names": [cl, b"Connection: " + draw(st.sampled_from([b"content-length", b"Host", b"x-a"]))],
    }[framing]
    for one in extra:
        fields.insert(draw(st.integers(0, len(fields))), one)
    if draw(st.sampled_from([False] * 5 + [True])):
        fields.insert(0, b"Connection: " + draw(st.sampled_from([b"close", b"keep-alive", b"Upgrade", b"te, close"])))
    return b"".join(line + pick(draw, focus, EOL) for line in [request_line, *fields, b""]) + body


@st.composite
def streams(draw: st.DrawFn, focus: str) -> bytes:
    """Requests one after another; with the focus on bytes, a nasty byte or two put in anywhere."""
    stream = b"".join(draw(st.lists(request(focus), min_size=1, max_size=3)))
    stream += draw(st.sampled_from([b""] * 4 + [b"\r\n", b"GARBAGE", H + b"\r\n"]))
    for _ in range(draw(st.integers(1, 2)) if focus == "bytes" else 0):
        at = draw(st.integers(0, len(stream)))
        stream = stream[:at] + draw(st.sampled_from(NASTY)) + stream[at + draw(st.integers(0, 1)) :]
    return stream


FUZZ = settings(
    max_examples=int(os.environ.get("DOCKGUARD_FUZZ_EXAMPLES", "450")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted({min(c, len(stream)) for c in cuts}), len(stream)]
    return [stream[a:b] for a, b in zip(points, points[1:])]


# -- the reader on its own -------------------------------------------------------------------


def summary(head: Head) -> tuple[object, ...]:
    return (head.method, head.target, head.version, head.headers, head.fields, head.size, head.length, head.keep_alive)


HEADS = [
    H + b"\r\n",
    b"POST /v1.41/build?t=a HTTP/1.0\r\nContent-Length: 5\r\nX-Registry-Config: e30=\r\n\r\n",
    b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: Chunked\r\nConnection: te, close\r\n\r\n",
    b"POST /v1.41/containers/a/attach?stream=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
    b"X-Empty:\r\nX-Spaces: \t a \t b \t\r\n\r\n",
]


@pytest.mark.parametrize("data", HEADS)
def test_a_head_split_anywhere_reads_as_whole(data: bytes) -> None:
    whole = reader()
    whole.receive(data)
    expected = whole.head()
    assert expected is not None and whole.buffer == b""
    for cut in range(len(data)):
        split = reader()
        split.receive(data[:cut])
        assert split.head() is None
        split.receive(data[cut:])
        head = split.head()
        assert head is not None and summary(head) == summary(expected), cut
    one_by_one = reader()
    for byte in range(len(data)):
        one_by_one.receive(data[byte : byte + 1])
        head = one_by_one.head()
        assert (head is None) == (byte < len(data) - 1)
    assert head is not None and summary(head) == summary(expected)


@pytest.mark.parametrize(
    "data", [H + b"X-A: a\x00\r\n\r\n", H + b"X-A: a\r\rX-B: b\r\n\r\n", b"GET /_ping HTTP/1.1\rHost: d\r\n\r\n"]
)
def test_a_bad_head_split_anywhere_is_refused(data: bytes) -> None:
    for cut in range(len(data) + 1):
        r = reader()
        with pytest.raises(FramingError) as refused:
            r.receive(data[:cut])
            r.head()
            r.receive(data[cut:])
            r.head()
        assert refused.value.status == 400


def test_the_head_values_are_what_was_sent_less_the_white_space_around_them() -> None:
    r = reader()
    r.receive(H + b"X-A: \t a \t b \t\r\nX-B:\r\nX-C:  \r\n\r\n")
    head = r.head()
    assert head is not None
    assert head.headers == [(b"Host", b"docker"), (b"X-A", b"a \t b"), (b"X-B", b""), (b"X-C", b"")]
    assert head.fields[b"x-a"] == b"a \t b" and head.values(b"x-b") == [b""]


def test_pipelined_requests_wait_in_the_buffer() -> None:
    second = b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n"
    r = reader()
    r.receive(H + b"\r\n" + second)
    first = r.head()
    assert first is not None and first.target == b"/_ping" and r.state is DONE
    assert r.buffer == second and r.waiting == len(second)
    r.next_request()
    after = r.head()
    assert after is not None and after.target == b"/v1.41/secrets" and r.buffer == b""


@pytest.mark.parametrize(
    "body",
    [
        b"Content-Length: 5\r\n\r\nhello",
        b"Transfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\nX-T: 1\r\n\r\n",
    ],
)
def test_a_body_is_read_to_its_end_and_not_a_byte_further(body: bytes) -> None:
    second = b"GET /v1.41/secrets HTTP/1.1\r\nHost: docker\r\n\r\n"
    r = reader()
    r.receive(b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\n" + body + second)
    head = r.head()
    assert head is not None and head.has_body and r.state is BODY
    assert r.body() == b"hello" and r.state is DONE
    assert r.buffer == second
    r.next_request()
    assert r.head() is not None and r.state is DONE and r.waiting == 0


def test_a_chunked_body_gives_at_most_chunks_per_call_chunks_a_call() -> None:
    r = reader(chunks_per_call=2)
    r.receive(TE + b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n1\r\nd\r\n1\r\ne\r\n0\r\n\r\n")
    assert r.head() is not None
    reads = []
    while r.state is BODY:
        reads.append((r.body(), r.more))
    assert reads == [(b"ab", True), (b"cd", True), (b"e", False)]
    assert r.state is DONE and r.buffer == b""


def test_a_chunked_body_cut_anywhere_gives_the_same_data() -> None:
    data = TE + b"5;ext\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n" + H + b"\r\n"
    for cut in range(len(TE), len(data) + 1):
        r = reader(chunks_per_call=1)
        r.receive(data[:cut])
        assert r.head() is not None
        out = r.body()
        while r.more:
            out += r.body()
        r.receive(data[cut:])
        while r.state is BODY:
            out += r.body()
        assert (out, r.buffer) == (b"hello world", H + b"\r\n"), cut


def test_a_malformed_chunk_gives_the_data_before_it_then_fails() -> None:
    r = reader()
    r.receive(TE + b"5\r\nhello\r\nzz\r\n")
    assert r.head() is not None
    assert r.body() == b"hello" and r.failed
    with pytest.raises(FramingError) as refused:
        r.body()
    assert refused.value.status == 400 and "chunk-size" in refused.value.reason


def test_take_rest_gives_every_byte_not_read() -> None:
    # What follows a hijacking request is the stream, not HTTP.
    r = reader()
    r.receive(H + b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x00\x01raw stream")
    assert r.head() is not None
    assert r.take_rest() == b"\x00\x01raw stream" and r.waiting == 0
    # In a chunked body: the size line not yet decoded comes first.
    r = reader()
    r.receive(TE + b"5\r\nhello\r\n1")
    assert r.head() is not None and r.body() == b"hello"
    r.receive(b"0\r\n")
    assert r.take_rest() == b"10\r\n"


def test_a_head_of_head_bytes_is_read_and_one_byte_more_is_431() -> None:
    data = H + b"X-A: " + b"a" * 40 + b"\r\n\r\n"
    fits = RequestReader(len(data), MAX_HEADERS, 0)
    fits.receive(data)
    assert fits.head() is not None
    for cuts in ([], [len(data) - 1], list(range(len(data)))):
        r = RequestReader(len(data) - 1, MAX_HEADERS, 0)
        with pytest.raises(FramingError) as refused:
            for piece in pieces(data, cuts):
                r.receive(piece)
                r.head()
        assert (refused.value.status, refused.value.rule) == (431, "limits.max_head_bytes"), cuts


def test_an_endless_request_line_is_431() -> None:
    r = RequestReader(64, MAX_HEADERS, 0)
    r.receive(b"GET /" + b"a" * 64)
    with pytest.raises(FramingError) as refused:
        r.head()
    assert (refused.value.status, refused.value.rule) == (431, "limits.max_head_bytes")


def test_more_header_fields_than_max_headers_is_431() -> None:
    r = RequestReader(HEAD_BYTES, 3, 0)
    r.receive(H + b"X-A: 1\r\nX-B: 2\r\n\r\n")
    assert r.head() is not None
    r = RequestReader(HEAD_BYTES, 3, 0)
    r.receive(H + b"X-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n")
    with pytest.raises(FramingError) as refused:
        r.head()
    assert (refused.value.status, refused.value.rule) == (431, "limits.max_headers")
    assert (refused.value.method, refused.value.target) == (b"GET", b"/_ping")


REFUSED = [
    b"GET /_ping HTTP/1.1\r\n\r\n",
    b"GET /_ping HTTP/1.1\rHost: d\r\n\r\n",
    b"GET  /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET /_ping HTTP/1.10\r\nHost: d\r\n\r\n",
    H + b"Host: other\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\n Host: d\r\n\r\n",
    H + b"X A: b\r\n\r\n",
    H + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    H + b"Content-Length: -1\r\n\r\n",
    H + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    H + b"Transfer-Encoding: gzip\r\n\r\n",
    H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    H + b"Connection: host\r\n\r\n",
    TE + b"5\r\nhelloXX0\r\n\r\n",
    TE + b"0x5\r\nhello\r\n0\r\n\r\n",
    TE + b"0\r\nX-T: a\r\n b\r\n\r\n",
    TE + b"0\r\nX-T: a\n\r\n",
    TE + b"0\r\nTransfer-Encoding: chunked\r\n\r\n",
]


@pytest.mark.parametrize("data", REFUSED)
def test_every_refusal_says_its_status_and_reason(data: bytes) -> None:
    [refused] = by_reader([data])
    assert isinstance(refused, Refused) and refused.reason
    r = reader()
    r.receive(data)
    with pytest.raises(FramingError) as error:
        r.head()
        while r.state is BODY:
            r.body()
    assert error.value.status == 400 and error.value.reason and error.value.rule == "framing"
    assert str(error.value) == error.value.reason


# -- the differential fuzz -------------------------------------------------------------------


def check(stream: bytes, cuts: list[int]) -> str | None:
    """The class of the first disagreement with h11 (a known one), if any."""
    ours = by_reader([stream])
    # However the bytes come, and however many chunks a call gives: the same reading.
    assert by_reader(pieces(stream, cuts), chunks_per_call=1) == ours
    found = disagreement(stream, ours, by_h11(stream))
    if found is None:
        return None
    name, what = found
    assert name != "new", f"a new class of disagreement with h11 {what}\nstream: {stream!r}"
    return name


@FUZZ
@given(data=st.data(), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_the_reader_and_h11_agree_but_for_known_differences(data: st.DataObject, cuts: list[int]) -> None:
    focus = data.draw(st.sampled_from(FOCI), label="focus")
    name = check(data.draw(streams(focus), label="stream"), cuts)
    event(f"{focus}: {name or 'agree'}")


@pytest.mark.parametrize(
    "stream",
    [
        # A request hidden behind a trailer that ends with a bare LF.
        TE + b"5\r\nhello\r\n0\r\nX-T: a\n\r\n" + H + b"\r\n",
        # CVE-2025-43859 (h11 < 0.16): any two bytes after chunk data.
        TE + b"5\r\nhelloXX0\r\n\r\n" + H + b"\r\n",
        H + b"Content-Length: 5\r\nContent-Length: 1\r\n\r\nhello",
        H + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + H + b"\r\n",
        H + b"X-A: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        H + b"X-A: a \t\r\n\r\n",
        TE + b" 5\r\nhello\r\n0\r\n\r\n",
        b"GET /_ping HTTP/1.0\r\n\r\n" + H + b"\r\n",
    ],
)
def test_hostile_streams_read_the_same_or_as_known(stream: bytes) -> None:
    check(stream, list(range(0, len(stream), 7)))


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_each_known_difference_is_what_its_example_shows(name: str) -> None:
    stream = KNOWN[name].example
    found = disagreement(stream, by_reader([stream]), by_h11(stream))
    assert found is not None and found[0] == name, found


@pytest.mark.parametrize(
    "stream",
    [
        H + b"\r\n",
        H + b"Content-Length: 5\r\n\r\nhello" + H + b"\r\n",
        TE + b"5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n" + H + b"Connection: close\r\n\r\n",
        b"POST /v1.41/build HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
        H + b"X-A:  a b \t\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n" + H + b"\r\n",
    ],
)
def test_plain_streams_read_the_same(stream: bytes) -> None:
    ours = by_reader([stream])
    assert all(isinstance(m, Message) for m in ours)
    assert ours == by_h11(stream)
