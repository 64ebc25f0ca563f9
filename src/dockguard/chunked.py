"""
A decoder for the chunked bodies the daemon sends (RFC 9112 section 7.1).

The daemon writes streams such as C{docker cp} archives in chunks of a few
KiB; h11 makes an event of each, which made bulk streams CPU-bound.  Once
h11 has read a chunked response's head, the upstream connection hands the
body to a L{ChunkedDecoder} instead: it only finds chunk boundaries and
returns the data of a whole read at once.  The client side still frames
what it sends with h11, so nothing the daemon writes reaches a client
unframed.  Anything malformed raises L{ChunkError}: the daemon connection
is then dropped, as with any broken response.
"""

from __future__ import annotations

import re

#: A chunk-size line: hex digits, optional extensions (ignored).
_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
#: Longest chunk-size or trailer line accepted, and all trailers together.
MAX_LINE = 4096
MAX_TRAILERS = 16 * 1024


class ChunkError(ValueError):
    """The daemon's chunked body cannot be read one way only."""


class ChunkedDecoder:
    """
    Feed it the bytes after a chunked response head; it returns the body's
    data and says when the body has ended.
    """

    def __init__(self) -> None:
        self._buffer = b""
        #: Data bytes left in the current chunk; -1 while a size line is
        #: due, -2 while its trailing CRLF is, -3 in the trailers.
        self._left = -1
        self._trailers = 0
        self.done = False
        #: Bytes that came after the end of the body.
        self.leftover = b""

    def feed(self, data: bytes) -> bytes:
        """The body data in C{data} (maybe empty); sets L{done} at the end."""
        buf = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end and not self.done:
            if self._left > 0:
                take = min(self._left, end - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._left = -2
            elif self._left == -2:
                if end - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise ChunkError("chunk data not followed by CRLF")
                pos += 2
                self._left = -1
            else:
                eol = buf.find(b"\r\n", pos, pos + MAX_LINE + 2)
                if eol < 0:
                    if end - pos > MAX_LINE:
                        raise ChunkError("chunk-size or trailer line too long")
                    break
                line = buf[pos:eol]
                pos = eol + 2
                if self._left == -1:
                    match = _SIZE.fullmatch(line)
                    if match is None:
                        raise ChunkError(f"bad chunk-size line {line[:40]!r}")
                    size = int(match.group(1), 16)
                    self._left = size if size else -3
                elif not line:
                    self.done = True
                else:
                    self._trailers += len(line)
                    if self._trailers > MAX_TRAILERS:
                        raise ChunkError("trailers too long")
        if self.done:
            self._buffer, self.leftover = b"", buf[pos:]
        else:
            self._buffer = buf[pos:]
        if len(out) == 1:
            return out[0]
        return b"".join(out)
