"""The one place that turns an HTTP request target into the path dockguard judges.

Every authorisation decision is made on the L{CanonicalPath} returned by
L{canonicalise}. The rules are written so that the path dockguard judges
is the path the Docker daemon routes; wherever the two could disagree, the
request is refused instead (L{PathRefused}), because a proxy that
authorises one reading while the daemon serves another is bypassed.

What the daemon does (dockerd 20.10, measured; see
C{/work/shared/notes/relay-facts.md}), and the rule that follows from it:

* It percent-decodes the path before routing (C{/%69mages/json} and
  C{/images%2fjson} both reach the images list), so dockguard decodes exactly
  once too, and refuses escapes whose decoded character would change the
  path's structure (C{/ . % \\ ? #}) or is a control or non-ASCII character.
* It answers C{301} to the cleaned path for C{.}/C{..} segments and for
  C{//}, so those are refused: the client should send the cleaned path.
* It answers C{404} for a trailing slash and for a wrong case
  (C{/IMAGES/json}), so paths stay case-sensitive and a trailing slash is
  refused.
* Its router matches C{/v{version:[0-9.]+}} as the first segment, so exactly
  that (case-sensitive, lowercase C{v}) is taken as the version prefix.

Podman's service (4.3, C{pkg/api/server}; measured against C{podman system
service} 4.3.1, see docs/podman.md) routes the same paths with two
differences, and dockguard keeps one reading for both:

* Its version prefix is C{/v{version:[0-9][0-9A-Za-z.-]*}}
  (C{VersionedPath}). Only what both routers read as a version is one:
  C{v} then a digit, then digits and dots (C{/v1.41/}, C{/v4.3.1/}). A
  first segment that either router alone reads as a version (C{/v4.3.1-dev/},
  C{/v4x/}, C{/v./}, C{/v.1/}) is refused.
* Its router matches the *encoded* path (gorilla/mux C{UseEncodedPath}) and
  decodes only the placeholders' values, so C{/%69mages/json} is no route
  there (404) while moby serves the image list. An escape in a segment that a
  route names literally (C{images}, C{json}, C{libpod}, ...), or in the
  version prefix, is refused: written plainly, the two routers agree.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["CanonicalPath", "PathRefused", "canonicalise"]


@attrs.frozen
class CanonicalPath:
    """A request target in the form every policy decision is made on."""

    #: Percent-decoded, API version prefix removed, e.g.
    #: C{"/containers/abc/start"}; C{"/"} for the root.
    path: str
    #: The path's segments, e.g. C{("containers", "abc", "start")}; C{()} for C{"/"}.
    segments: tuple[str, ...]
    #: C{"1.41"} for a target starting C{/v1.41/}, else C{None}.
    version: str | None
    #: The raw query string without the C{?}; C{""} if there is none.
    query: str


class PathRefused(ValueError):
    """A request target dockguard will not authorise, with a reason to act on."""

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


# Moby's router pattern is /v{version:[0-9.]+}: gorilla/mux anchors a variable
# to the whole segment, so "v1.41abc" is not a version (the daemon says 404).
# Podman's is /v{version:[0-9][0-9A-Za-z.-]*}. A version is what both read as
# one; a segment only one of them reads as a version is refused.
_VERSION = re.compile(r"v[0-9][0-9.]*")
_EITHER_VERSION = re.compile(r"v[0-9.][0-9A-Za-z.-]*")

_HEX = frozenset(b"0123456789abcdefABCDEF")

# Characters that change a path's structure when they appear decoded. An
# escape decoding to one of them has two readings (data or structure), and the
# daemon picks "structure" after it decodes, so such escapes are refused.
_STRUCTURAL = {
    ord("/"): "'/'",
    ord("%"): "'%'",
    ord("\\"): "a backslash",
    ord("."): "'.'",
    ord("?"): "'?'",
    ord("#"): "'#'",
}

_FIX_ESCAPE = (
    "encoded structure characters are refused because the daemon decodes them "
    "before routing; write the path without them"
)


def canonicalise(target: bytes) -> CanonicalPath:
    """Return the canonical form of an HTTP request target, or raise L{PathRefused}.

    C{target} is the request-target exactly as it appeared in the request line
    (for example C{b"/v1.41/containers/json?all=1"}).
    """
    if not target:
        raise PathRefused("the request target is empty; send a path such as /_ping")

    # Only origin-form: absolute-form ("http://host/..."), authority-form
    # ("host:2375", for CONNECT) and asterisk-form ("*", for OPTIONS) name
    # something other than a path on this daemon.
    if target[:1] != b"/":
        raise PathRefused(
            "the request target must be a path starting with '/' (origin-form); "
            "absolute URLs, host:port and '*' are not accepted"
        )

    # Byte-level checks on the whole target, query included: raw spaces and
    # control characters end or split the request line for some parsers, and
    # the Engine API's targets are ASCII (anything else must be
    # percent-encoded by the client).
    for position, byte in enumerate(target):
        if byte >= 0x80:
            raise PathRefused(
                f"the request target contains a non-ASCII byte (0x{byte:02x}) at "
                f"position {position}; the Engine API uses ASCII paths only"
            )
        if byte <= 0x20 or byte == 0x7F:
            raise PathRefused(
                f"the request target contains a space or control character "
                f"(0x{byte:02x}) at position {position}; remove it"
            )

    # A fragment is never sent to a server; one in a request line means the
    # client and dockguard may disagree about where the path ends.
    if b"#" in target:
        raise PathRefused(
            "the request target contains '#'; fragments are never sent to a "
            "server, so remove it and everything after it"
        )

    raw_path, question, raw_query = target.partition(b"?")
    query = raw_query.decode("ascii") if question else ""

    # Some servers and libraries treat a backslash as '/'; refusing it leaves
    # one reading only.
    if b"\\" in raw_path:
        raise PathRefused(
            "the path contains a backslash; some servers treat it as '/', so dockguard refuses it: remove it"
        )

    if raw_path == b"/":
        return CanonicalPath(path="/", segments=(), version=None, query=query)

    raw_segments = raw_path[1:].split(b"/")
    for index, raw in enumerate(raw_segments):
        if raw == b"":
            if index == len(raw_segments) - 1:
                # The daemon answers 404 for a trailing slash.
                raise PathRefused("the path ends with '/', which the daemon does not serve; remove the trailing slash")
            # The daemon answers 301 for '//' instead of serving it.
            raise PathRefused(
                "the path contains '//' (an empty segment), which the daemon "
                "redirects instead of serving; remove the extra slash"
            )
        if raw in (b".", b".."):
            # The daemon answers 301 to the cleaned path for dot segments.
            raise PathRefused(
                "the path contains a '.' or '..' segment, which the daemon "
                "redirects instead of serving; send the cleaned path"
            )

    spanning = _spanning_names(raw_segments)
    segments = [_decode_segment(raw, slash=index >= spanning) for index, raw in enumerate(raw_segments)]
    _refuse_escaped_literals(raw_segments, segments)
    segments = _split_names(segments)

    version: str | None = None
    if _EITHER_VERSION.fullmatch(segments[0]) and not _VERSION.fullmatch(segments[0]):
        raise PathRefused(
            f"the path starts with {segments[0]!r}, which Podman reads as a version prefix and "
            "the Docker daemon does not (or the other way round); write the version as "
            "v<digits and dots>, e.g. /v1.41/ or /v4.3.1/"
        )
    if _VERSION.fullmatch(segments[0]):
        # Only the first segment can be the version prefix, exactly as the
        # daemon's router sees it: lowercase 'v' then digits and dots.
        version = segments[0][1:]
        segments = segments[1:]

    path = "/" + "/".join(segments)
    return CanonicalPath(path=path, segments=tuple(segments), version=version, query=query)


def _refuse_escaped_literals(raw_segments: list[bytes], segments: list[str]) -> None:
    """Refuse an escape in the version prefix or in a segment some route names literally.

    Podman's router matches those segments on the encoded path (no route for
    C{/%69mages/json}) where moby's matches the decoded one: written plainly,
    both read the same route.
    """
    from dockguard.routes import LITERAL_SEGMENTS  # routes imports this module

    for index, (raw, segment) in enumerate(zip(raw_segments, segments)):
        if b"%" not in raw:
            continue
        if segment in LITERAL_SEGMENTS or (index == 0 and _EITHER_VERSION.fullmatch(segment)):
            raise PathRefused(
                f"the path percent-encodes {segment!r}, a segment the routers match literally: "
                "Podman routes the encoded path (no route) where the Docker daemon decodes it "
                "first; write the segment without escapes"
            )


#: libpod sections whose every name placeholder spans segments (C{{name:.*}}): an image's
#: C{docker.io/library/busybox}, which Podman's own client sends as C{docker.io%2Flibrary%2Fbusybox}.
_SPANNING_LIBPOD = ((b"libpod", b"images"), (b"libpod", b"manifests"))


def _spanning_names(raw_segments: list[bytes]) -> int:
    """The index from which C{%2F} may stand for a '/' in a name, or one past the end.

    Under C{/libpod/images/} and C{/libpod/manifests/} Podman matches the
    encoded path, so an escaped '/' stays inside the name placeholder, which
    spans segments there (C{{name:.*}}); moby decodes it before routing. Both
    read the same name when the escape is read as a '/' that splits segments,
    as moby does, so there it is; anywhere else it is refused.
    """
    start = 1 if _VERSION.fullmatch(raw_segments[0].decode("ascii")) else 0
    if tuple(raw_segments[start : start + 2]) in _SPANNING_LIBPOD:
        return start + 2
    return len(raw_segments)


def _split_names(segments: list[str]) -> list[str]:
    """Segments with a decoded '/' split as moby splits them; an empty or dot piece is refused."""
    if not any("/" in segment for segment in segments):
        return segments
    pieces = [piece for segment in segments for piece in segment.split("/")]
    if any(piece in ("", ".", "..") for piece in pieces):
        raise PathRefused(
            "the path encodes '/' as %2F next to another '/' or a dot segment, which the routers read "
            "differently; write the name without empty or dot parts"
        )
    return pieces


def _decode_segment(raw: bytes, *, slash: bool = False) -> str:
    """Percent-decode one path segment exactly once, refusing every ambiguous escape (C{%2F} too unless C{slash})."""
    out = bytearray()
    position = 0
    length = len(raw)
    while position < length:
        byte = raw[position]
        if byte != 0x25:  # '%'
            out.append(byte)
            position += 1
            continue
        escape = raw[position : position + 3]
        if len(escape) < 3 or escape[1] not in _HEX or escape[2] not in _HEX:
            shown = escape.decode("ascii")
            raise PathRefused(
                f"the path contains a malformed percent-escape ({shown!r}); "
                "'%' must be followed by two hexadecimal digits"
            )
        decoded = int(escape[1:], 16)
        text = escape.decode("ascii")
        if decoded == 0x2F and slash:
            out.append(decoded)
            position += 3
            continue
        if decoded in _STRUCTURAL:
            raise PathRefused(f"the path encodes {_STRUCTURAL[decoded]} as {text}; {_FIX_ESCAPE}")
        if decoded < 0x20 or decoded == 0x7F:
            raise PathRefused(
                f"the path encodes a control character as {text}; the Engine API has no such paths, so remove it"
            )
        if decoded >= 0x80:
            raise PathRefused(
                f"the path encodes a non-ASCII byte as {text}; the Engine API uses ASCII paths only, so remove it"
            )
        out.append(decoded)
        position += 3
    return out.decode("ascii")
