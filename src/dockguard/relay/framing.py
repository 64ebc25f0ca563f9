"""
Where a request begins and ends on a client connection, and how the
messages dockguard sends are framed.  No Twisted here.

L{RequestReader} takes the bytes a client sends and gives back one request
at a time: its L{Head}, then its body, then its end.  A head is cut off at
its blank line (at most C{limits.max_head_bytes}), checked by llhttp (the
parser Node.js trusts at its edge, through C{httptools}, with no leniency
turned on) and by the rules below, which are stricter still.  The body is
counted by its C{Content-Length}, or decoded chunk by chunk
(L{dockguard.chunked}): the reader never reads past the end of a request,
so a pipelined request stays in its buffer, untouched, until the one before
it is answered.

Where a message could be read two ways, the reader refuses it
(L{FramingError}); the relay then answers and closes.  Every message
dockguard sends on is framed again from what was read, never copied.
"""

from __future__ import annotations

import json
import re

import httptools

from dockguard.chunked import ChunkedDecoder, ChunkError

__all__ = [
    "HOP_BY_HOP",
    "FramingError",
    "Head",
    "RequestReader",
    "end_to_end",
    "json_error",
    "request_head",
]

# RFC 9110 section 7.6.1: connection-specific header fields, never forwarded.
# Framing headers are written again from the message itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

#: The fields never sent on as they came (see L{Head.forward}).
_NOT_FORWARDED = HOP_BY_HOP | {b"content-length"}

#: Header fields the Connection header may not name: the framing of the
#: message and the Host it is for.  Dropping them as hop-by-hop would relay
#: a different message from the one judged.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"host"})

#: A request line: a method (any token, as the daemon takes any), one space,
#: a target, one space, a version.  Versions other than 1.0 and 1.1 are read
#: as HTTP/1.x and relayed as 1.1 (the framing judged is the one sent).
_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])")

#: The end of a head: a line end, then an empty line.
_BLANK_LINE = re.compile(rb"\n\r?\n")

HEAD_TOO_LARGE = "the request head is larger than {} bytes (limits.max_head_bytes)"


class FramingError(Exception):
    """
    A request that cannot be read one way only, or is too large to read.

    @ivar status: the HTTP status to answer with (400, 431, 501, 505).
    @ivar reason: what is wrong, for the client and the log.
    @ivar rule: the rule in the decision log (C{framing} or a limit's key).
    @ivar method: the request's method, when the head got that far.
    @ivar target: the request's target, when the head got that far.
    """

    def __init__(
        self, status: int, reason: str, rule: str = "framing", method: bytes = b"", target: bytes = b""
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.rule = rule
        self.method = method
        self.target = target


class Head:
    """
    A request head as read: what the relay judges and sends on.

    @ivar headers: the header fields as sent, names unchanged.
    @ivar names: their names, lower-cased.
    @ivar forward: the fields a proxy sends on: all but hop-by-hop ones,
        those the Connection header names, and Content-Length (the relay
        writes the framing again).
    @ivar fields: each field by its lower-case name (the first, if repeated).
    @ivar length: the body's length: C{Content-Length}, 0 without a body,
        or -1 for a chunked body.
    @ivar keep_alive: the client lets the connection carry another request.
    """

    __slots__ = (
        "method",
        "target",
        "version",
        "headers",
        "names",
        "forward",
        "fields",
        "size",
        "length",
        "keep_alive",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
        names: list[bytes],
        forward: list[tuple[bytes, bytes]],
        fields: dict[bytes, bytes],
        size: int,
        length: int,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.names = names
        self.forward = forward
        self.fields = fields
        self.size = size
        self.length = length
        self.keep_alive = keep_alive

    @property
    def has_body(self) -> bool:
        return self.length != 0

    def values(self, name: bytes) -> list[bytes]:
        """Every value of the field C{name} (lower case), in order."""
        return [value for (_, value), low in zip(self.headers, self.names) if low == name]


class _HeadCollector:
    """The llhttp callbacks for one request head."""

    __slots__ = ("target", "headers")

    def __init__(self) -> None:
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp drops the whitespace before a value, not after it: the
        # value is what every other reader takes it to be (RFC 9112 section 5).
        self.headers.append((name, value.rstrip(b" \t")))


#: The reader's states.
HEAD, BODY, DONE = "head", "body", "done"


class RequestReader:
    """
    Reads requests from a client's bytes, one at a time.

    Call L{receive} with each read, then L{head} while in L{HEAD}, L{body}
    while in L{BODY}; in L{DONE} the request has been read whole, and
    L{next_request} moves on to the next one (its bytes may already wait in
    L{buffer}).
    """

    def __init__(self, head_bytes: int, max_headers: int, chunks_per_call: int) -> None:
        self.head_bytes = head_bytes
        self.max_headers = max_headers
        self.chunks_per_call = chunks_per_call
        self.state = HEAD
        #: Bytes received and not yet read.
        self.buffer = b""
        #: Body bytes still due (Content-Length), or -1 while chunked.
        self._left = 0
        self._chunks: ChunkedDecoder | None = None
        #: The llhttp parser of the head being read, and how far it has read.
        self._parser: httptools.HttpRequestParser | None = None
        self._collected = _HeadCollector()
        self._line: re.Match[bytes] | None = None
        #: Where the request line ends (its LF), and how far llhttp has read.
        self._eol = 0
        self._scanned = 0
        self._error: FramingError | None = None

    def receive(self, data: bytes) -> None:
        self.buffer = self.buffer + data if self.buffer else data

    @property
    def waiting(self) -> int:
        """Bytes received and not yet read."""
        return len(self.buffer)

    def head(self) -> Head | None:
        """
        The next request head, once it is all here; L{None} until then.
        Bytes are checked by llhttp as they arrive, so a head that cannot
        be read is refused before it is whole.
        @raise FramingError: it cannot be read one way, or is too large.
        """
        buf = self.buffer
        line = self._line
        if line is None:
            # The request line is read here; llhttp reads the target and the
            # fields behind a request line of its own (it refuses methods and
            # versions it does not know, which the daemon takes as any).
            eol = buf.find(b"\n", 0, self.head_bytes)
            if eol < 0:
                if len(buf) > self.head_bytes:
                    raise FramingError(431, HEAD_TOO_LARGE.format(self.head_bytes), "limits.max_head_bytes")
                if b"\r" in buf[:-1]:
                    raise FramingError(400, "a bare CR in the request line")
                return None
            line = _REQUEST_LINE.fullmatch(buf, 0, eol - 1 if buf[eol - 1 : eol] == b"\r" else eol)
            if line is None:
                method, _, rest = buf[:eol].partition(b" ")
                raise FramingError(
                    400,
                    "the request line is not METHOD SP TARGET SP HTTP/x.y",
                    method=method,
                    target=rest.partition(b" ")[0],
                )
            self._line = line
            self._eol = eol
            self._collected = _HeadCollector()
            self._parser = httptools.HttpRequestParser(self._collected)
            self._feed(b"GET " + line.group(2) + b" HTTP/1.1\r\n", line)
            self._scanned = eol + 1
        start = self._scanned
        # The whole head, blank line included, within head_bytes: however
        # the bytes come, and llhttp never reads past the limit.
        blank = _BLANK_LINE.search(buf, max(self._eol, start - 3), self.head_bytes)
        if blank is not None:
            end = upto = blank.end()
        else:
            # A line end is fed once the next byte says whether it folds.
            end = -1
            upto = min(len(buf), self.head_bytes)
            while upto > start and buf[upto - 1] in b"\r\n":
                upto -= 1
        if upto > start:
            # RFC 9112 section 2.2: a bare LF ends a line, as for the daemon;
            # section 5.2: an obs-fold is read as one space.  The fields are
            # read, and sent on, with CRLF and unfolded: one reading.
            piece = buf[start:upto].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            self._feed(piece.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" "), line)
            self._scanned = upto
        if end < 0:
            if len(buf) > self.head_bytes:
                raise FramingError(431, HEAD_TOO_LARGE.format(self.head_bytes), "limits.max_head_bytes")
            return None
        raw, self.buffer = buf[:upto], buf[upto:]
        collected = self._collected
        self._parser = self._line = None
        self._scanned = 0
        head = self._parse(raw, line, collected)
        self._left = head.length
        if head.length == 0:
            self.state = DONE
        else:
            self.state = BODY
            if head.length < 0:
                self._chunks = ChunkedDecoder()
        return head

    def _feed(self, data: bytes, line: re.Match[bytes]) -> None:
        parser = self._parser
        assert parser is not None
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # an Upgrade request: its body is framed as any other's
        except httptools.HttpParserError as e:
            raise FramingError(400, _llhttp_reason(e), method=line.group(1), target=line.group(2)) from None

    def _parse(self, raw: bytes, line: re.Match[bytes], collected: _HeadCollector) -> Head:
        method, target, major, minor = line.groups()
        version = b"1.0" if (major, minor) < (b"1", b"1") else b"1.1"
        if target != collected.target:
            raise FramingError(400, "the request target cannot be read one way", method=method, target=target)
        headers = collected.headers
        if len(headers) > self.max_headers:
            raise FramingError(
                431,
                f"{len(headers)} header fields; at most {self.max_headers} are read (limits.max_headers)",
                "limits.max_headers",
                method,
                target,
            )
        fields: dict[bytes, bytes] = {}
        hosts = 0
        connection: list[bytes] = []
        names = [name.lower() for name, _ in headers]
        for (_name, value), low in zip(headers, names):
            if low not in fields:
                fields[low] = value
            if low == b"host":
                hosts += 1
            elif low == b"connection":
                connection += [token.strip().lower() for token in value.split(b",")]
        fail = _framing_fault(fields, hosts, connection, version)
        if fail:
            raise FramingError(400, fail, method=method, target=target)
        drop = _NOT_FORWARDED.union(connection) if connection else _NOT_FORWARDED
        forward = [field for field, low in zip(headers, names) if low not in drop]
        te = fields.get(b"transfer-encoding")
        if te is not None:
            length = -1
        else:
            cl = fields.get(b"content-length")
            length = int(cl) if cl is not None else 0
        return Head(
            method=method,
            target=target,
            version=version,
            headers=headers,
            names=names,
            forward=forward,
            fields=fields,
            size=len(raw),
            length=length,
            keep_alive=version == b"1.1" and b"close" not in connection,
        )

    def body(self) -> bytes:
        """
        The body bytes received so far (maybe none); the state becomes
        L{DONE} once the body has ended.  A chunked body gives at most
        C{chunks_per_call} chunks a call: L{more} then says the rest is
        already here.
        @raise FramingError: a chunked body that cannot be read one way.
        """
        if self._error is not None:
            raise self._error
        buf = self.buffer
        if not buf and not self.more:
            return b""
        if self._left > 0:
            if len(buf) <= self._left:
                self.buffer = b""
                self._left -= len(buf)
                if self._left == 0:
                    self.state = DONE
                return buf
            data, self.buffer = buf[: self._left], buf[self._left :]
            self._left = 0
            self.state = DONE
            return data
        chunks = self._chunks
        assert chunks is not None
        self.buffer = b""
        try:
            data = chunks.feed(buf, self.chunks_per_call)
        except ChunkError as e:
            # What came before the fault is given first (as it would be had
            # the fault come in a later read); the next call raises.
            self._error = FramingError(400, f"bad chunked body: {e}")
            if e.data:
                return e.data
            raise self._error from None
        if chunks.done:
            self.buffer = chunks.leftover
            self._chunks = None
            self.state = DONE
        return data

    @property
    def failed(self) -> bool:
        """The body turned out malformed: the next L{body} call raises."""
        return self._error is not None

    @property
    def more(self) -> bool:
        """A chunked body stopped at C{chunks_per_call} with more of it here."""
        return self._chunks is not None and self._chunks.stopped

    def next_request(self) -> None:
        """The request is answered: read the next one."""
        self.state = HEAD
        self._left = 0
        self._chunks = None

    def take_rest(self) -> bytes:
        """Everything received and not read (what follows a hijacking request)."""
        rest, self.buffer = self.buffer, b""
        if self._chunks is not None:
            rest = self._chunks.pending + rest
        return rest


def _framing_fault(fields: dict[bytes, bytes], hosts: int, connection: list[bytes], version: bytes) -> str:
    """Why a parsed head cannot be relayed as one message ('' if it can)."""
    if b"transfer-encoding" in fields and b"content-length" in fields:
        return "both Content-Length and Transfer-Encoding (the body can be read two ways)"
    if hosts > 1:
        return "several Host fields (the request is for two hosts)"
    if hosts == 0 and version == b"1.1":
        return "no Host field (HTTP/1.1 requires one)"
    named = set(connection) & _FRAMING
    if named:
        return f"the Connection header names {b', '.join(sorted(named)).decode()}, which a proxy cannot drop"
    te = fields.get(b"transfer-encoding")
    if te is not None and te.lower() != b"chunked":
        return f"Transfer-Encoding {te.decode('ascii', 'replace')}: only chunked is read"
    cl = fields.get(b"content-length")
    if cl is not None and not (cl.isdigit() and len(cl) <= 18):
        return "a Content-Length that is not a number"
    return ""


def _llhttp_reason(error: Exception) -> str:
    text = str(error.args[0]) if error.args else type(error).__name__
    return text.rstrip(".")


def request_head(head: Head, length: int | None = None, target: bytes | None = None) -> bytes:
    """
    The head sent to the daemon: the request line and the fields a proxy
    sends on, as read; the framing written again (C{length}: that of a body
    read whole and judged, sent by its length; C{target}: the target judged,
    when it is not the one sent).
    """
    fields = head.fields
    lines = [head.method, b" ", head.target if target is None else target, b" HTTP/1.1\r\n"]
    for name, value in head.forward:
        lines += (name, b": ", value, b"\r\n")
    upgrade = fields.get(b"upgrade")
    if upgrade is not None:
        lines.append(b"Connection: Upgrade\r\nUpgrade: %s\r\n" % (upgrade or b"tcp"))
    if b"host" not in fields:
        lines.append(b"Host: docker\r\n")
    if length is None:
        length = head.length
    if length < 0:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    elif length or b"content-length" in fields:
        lines.append(b"Content-Length: %d\r\n" % length)
    lines.append(b"\r\n")
    return b"".join(lines)


def end_to_end(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """
    The header fields a proxy sends on: all but hop-by-hop ones and those
    the Connection header names.
    """
    named: set[bytes] = set()
    for raw, value in headers:
        if raw.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return [(raw, value) for raw, value in headers if (low := raw.lower()) not in HOP_BY_HOP and low not in named]


def json_error(status: int, message: str, close: bool = False, head_only: bool = False) -> bytes:
    """A whole response in Docker's error shape: C{{"message": ...}}."""
    body = json.dumps({"message": message}).encode() + b"\n"
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (
        status,
        REASONS.get(status, b"Error"),
        len(body),
        b"Connection: close\r\n" if close else b"",
    )
    return head if head_only else head + body


REASONS = {
    200: b"OK",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    408: b"Request Timeout",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}
