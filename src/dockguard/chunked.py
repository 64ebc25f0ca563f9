"""
A decoder for chunked bodies (RFC 9112 section 7.1), both ways: uploads
from clients and streams from the daemon.

It only finds chunk boundaries and returns the data of a whole read at once
(the daemon writes C{docker cp} archives in chunks of a few KiB).  What is
relayed is framed again, never copied, so extensions and trailers go no
further.  Anything malformed raises L{ChunkError}: a client gets 400, a
daemon connection is dropped, as with any broken response.
"""

from __future__ import annotations

import re

#: A chunk-size line: hex digits, optional extensions (ignored).
_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
#: A trailer field (RFC 9112 section 5): a name, a colon, a value of visible
#: bytes, spaces and tabs.  No obs-fold, no bare CR or LF, no control bytes.
_TRAILER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[^\x00-\x08\x0a-\x1f\x7f]*")
#: Trailers that would frame the message again if merged into its head.
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
#: Longest chunk-size or trailer line accepted, and all trailers together.
MAX_LINE = 4096
MAX_TRAILERS = 16 * 1024


class ChunkError(ValueError):
    """
    A chunked body that cannot be read one way only.

    @ivar data: the body data decoded, in the same call, before the fault.
    """

    data = b""


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
        #: The last L{feed} stopped at its C{limit} of chunks with bytes left.
        self.stopped = False
        #: Bytes that came after the end of the body.
        self.leftover = b""

    @property
    def pending(self) -> bytes:
        """Bytes fed and not decoded yet."""
        return self._buffer

    def feed(self, data: bytes, limit: int = 0) -> bytes:
        """
        The body data in C{data} (maybe empty); sets L{done} at the end.
        With a C{limit}, at most that many chunks are read: L{stopped} then
        says the rest waits for the next call (which may pass C{b""}).
        """
        buf = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        self.stopped = False
        try:
            pos = self._decode(buf, pos, end, out, limit)
        except ChunkError as e:
            e.data = b"".join(out)
            raise
        if self.done:
            self._buffer, self.leftover = b"", buf[pos:]
        else:
            self._buffer = buf[pos:]
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def _decode(self, buf: bytes, pos: int, end: int, out: list[bytes], limit: int) -> int:
        sizes = 0
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
                if limit and self._left == -1 and sizes == limit:
                    self.stopped = True
                    break
                eol = buf.find(b"\r\n", pos, pos + MAX_LINE + 2)
                if eol < 0:
                    if end - pos > MAX_LINE:
                        raise ChunkError("chunk-size or trailer line too long")
                    if buf.find(b"\n", pos, end) >= 0:
                        raise ChunkError("a bare LF in a chunk-size or trailer line")
                    break
                line = buf[pos:eol]
                pos = eol + 2
                if self._left == -1:
                    match = _SIZE.fullmatch(line)
                    if match is None:
                        raise ChunkError(f"bad chunk-size line {line[:40]!r}")
                    size = int(match.group(1), 16)
                    sizes += 1
                    self._left = size if size else -3
                elif not line:
                    self.done = True
                else:
                    trailer = _TRAILER.fullmatch(line)
                    if trailer is None:
                        raise ChunkError(f"bad trailer line {line[:40]!r}")
                    if trailer.group(1).lower() in _FRAMING:
                        raise ChunkError(f"a {trailer.group(1).decode()} trailer (framing belongs in the head)")
                    self._trailers += len(line)
                    if self._trailers > MAX_TRAILERS:
                        raise ChunkError("trailers too long")
        return pos
