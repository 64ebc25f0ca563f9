"""canonicalise: request target -> the path the daemon routes, or refused."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dockguard.paths import CanonicalPath, PathRefused, canonicalise


@pytest.mark.parametrize(
    ("target", "path", "segments", "version", "query"),
    [
        # plain paths
        (b"/", "/", (), None, ""),
        (b"/_ping", "/_ping", ("_ping",), None, ""),
        (b"/containers/abc/start", "/containers/abc/start", ("containers", "abc", "start"), None, ""),
        (b"/images/ubuntu:22.04/json", "/images/ubuntu:22.04/json", ("images", "ubuntu:22.04", "json"), None, ""),
        (b"/containers/my.app/json", "/containers/my.app/json", ("containers", "my.app", "json"), None, ""),
        (b"/containers/.../json", "/containers/.../json", ("containers", "...", "json"), None, ""),
        # paths stay case-sensitive: the daemon answers 404 for /IMAGES/json
        (b"/IMAGES/json", "/IMAGES/json", ("IMAGES", "json"), None, ""),
        # version prefixes: exactly moby's /v{version:[0-9.]+} as the first segment
        (b"/v1.41/containers/json", "/containers/json", ("containers", "json"), "1.41", ""),
        (b"/v01.41/containers/json", "/containers/json", ("containers", "json"), "01.41", ""),
        (b"/v1.41.0/containers/json", "/containers/json", ("containers", "json"), "1.41.0", ""),
        (b"/v1/_ping", "/_ping", ("_ping",), "1", ""),
        (b"/v1.41", "/", (), "1.41", ""),
        (b"/v1.41?x=1", "/", (), "1.41", "x=1"),
        (b"/V1.41/containers/json", "/V1.41/containers/json", ("V1.41", "containers", "json"), None, ""),
        (b"/v/containers/json", "/v/containers/json", ("v", "containers", "json"), None, ""),
        (b"/va1.41/_ping", "/va1.41/_ping", ("va1.41", "_ping"), None, ""),
        # only the first segment can be the version
        (b"/v1.41/v1.40/_ping", "/v1.40/_ping", ("v1.40", "_ping"), "1.41", ""),
        (b"/_ping/v1.41", "/_ping/v1.41", ("_ping", "v1.41"), None, ""),
        # percent-decoding exactly once, as the daemon does before routing
        # (an escaped literal segment, /%69mages/json, is refused: tests/test_podman_paths.py)
        (b"/containers/my%20app/json", "/containers/my app/json", ("containers", "my app", "json"), None, ""),
        (b"/containers/%41%62c/json", "/containers/Abc/json", ("containers", "Abc", "json"), None, ""),
        # the query is split at the first '?' and kept raw
        (b"/_ping?/containers/json", "/_ping", ("_ping",), None, "/containers/json"),
        (b"/_ping?", "/_ping", ("_ping",), None, ""),
        (b"/images/json?a=b?c", "/images/json", ("images", "json"), None, "a=b?c"),
        (b"/?x", "/", (), None, "x"),
        (
            b"/v1.41/containers/json?all=1&filters=%7B%22status%22%3A%5B%22running%22%5D%7D",
            "/containers/json",
            ("containers", "json"),
            "1.41",
            "all=1&filters=%7B%22status%22%3A%5B%22running%22%5D%7D",
        ),
        # the query may hold what the path may not: it does not route
        (b"/_ping?a=%2f..%2e/\\", "/_ping", ("_ping",), None, "a=%2f..%2e/\\"),
    ],
)
def test_accepted_targets(target: bytes, path: str, segments: tuple[str, ...], version: str | None, query: str) -> None:
    assert canonicalise(target) == CanonicalPath(path=path, segments=segments, version=version, query=query)


@pytest.mark.parametrize(
    ("target", "says"),
    [
        (b"", "empty"),
        # only origin-form
        (b"*", "origin-form"),
        (b"http://localhost/_ping", "origin-form"),
        (b"http://localhost:2375/v1.41/containers/json", "origin-form"),
        (b"localhost:2375", "origin-form"),
        (b"_ping", "origin-form"),
        (b"?/_ping", "origin-form"),
        # fragments
        (b"/_ping#x", "'#'"),
        (b"/_ping?x#y", "'#'"),
        (b"/#", "'#'"),
        # non-ASCII, controls and spaces anywhere in the target
        (b"/images/caf\xc3\xa9", "non-ASCII"),
        (b"/_ping?q=\xff", "non-ASCII"),
        (b"/_ping x", "space or control"),
        (b"/_ping?x y", "space or control"),
        (b"/_ping\t", "space or control"),
        (b"/_ping\x00", "space or control"),
        (b"/_ping\x7f", "space or control"),
        (b"/_ping\r\nHost: x", "space or control"),
        # encoded characters that change structure
        (b"/images%2fjson", "'/'"),
        (b"/images%2Fjson", "'/'"),
        (b"/%2e%2e/containers/json", "'.'"),
        (b"/containers/%2e/json", "'.'"),
        (b"/containers/a%2Eb/json", "'.'"),
        (b"/images/%25", "'%'"),
        (b"/images/%2569mages", "'%'"),
        (b"/images/%5c", "backslash"),
        (b"/images/%5C", "backslash"),
        (b"/images/%3fx", "'?'"),
        (b"/images/%23x", "'#'"),
        (b"/images/%00", "control character"),
        (b"/images/%0a", "control character"),
        (b"/images/%1F", "control character"),
        (b"/images/%7f", "control character"),
        (b"/images/%80", "non-ASCII"),
        (b"/images/%C3%A9", "non-ASCII"),
        # malformed escapes
        (b"/images/%zz", "malformed"),
        (b"/images/%4", "malformed"),
        (b"/images/%", "malformed"),
        (b"/images/%g1", "malformed"),
        (b"/images/%%41", "malformed"),
        # backslashes
        (b"/images\\json", "backslash"),
        (b"/\\", "backslash"),
        # empty segments and trailing slashes
        (b"//containers/json", "'//'"),
        (b"/containers//json", "'//'"),
        (b"//", "'//'"),
        (b"/containers/json/", "ends with '/'"),
        (b"/v1.41/", "ends with '/'"),
        (b"/_ping/?x", "ends with '/'"),
        # dot segments
        (b"/./containers/json", "'.' or '..'"),
        (b"/containers/../images/json", "'.' or '..'"),
        (b"/containers/.", "'.' or '..'"),
        (b"/..", "'.' or '..'"),
        (b"/v1.41/../_ping", "'.' or '..'"),
    ],
)
def test_refused_targets(target: bytes, says: str) -> None:
    with pytest.raises(PathRefused) as refused:
        canonicalise(target)
    assert says in refused.value.reason
    assert str(refused.value) == refused.value.reason


def test_path_refused_is_a_value_error_with_its_reason() -> None:
    error = PathRefused("the path ends with '/'")
    assert isinstance(error, ValueError)
    assert error.reason == "the path ends with '/'"
    assert str(error) == "the path ends with '/'"


def test_canonical_path_is_frozen() -> None:
    canonical = canonicalise(b"/_ping")
    with pytest.raises(AttributeError):
        canonical.path = "/containers/json"  # type: ignore[misc]


# ---- properties -------------------------------------------------------------

# Characters a canonical segment may hold literally when re-encoded; everything
# else is written as %XX.
_LITERAL = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@")


def _encode(canonical: CanonicalPath) -> bytes:
    """Write a canonical path back as a request target."""
    segments = list(canonical.segments)
    if canonical.version is not None:
        segments.insert(0, "v" + canonical.version)
    encoded = "/" + "/".join("".join(c if c in _LITERAL else f"%{ord(c):02X}" for c in segment) for segment in segments)
    if canonical.query:
        encoded += "?" + canonical.query
    return encoded.encode("ascii")


_PIECES = st.sampled_from(
    [
        "/",
        "/",
        "/",
        "v1.41",
        "V1.41",
        "v",
        "1",
        ".",
        "..",
        "containers",
        "_ping",
        "json",
        "%",
        "%2f",
        "%2F",
        "%2e",
        "%25",
        "%5c",
        "%69",
        "%76",
        "%20",
        "%00",
        "%ff",
        "%7",
        "%zz",
        "?",
        "#",
        "\\",
        " ",
        "\t",
        "\x7f",
        "é",
        "a",
        "Z",
        "0",
        ":",
        "@",
        "~",
        "&",
        "=",
        "+",
        '"',
        "[",
    ]
)

_SEGMENT_PIECES = st.sampled_from(
    [
        "v1.41",
        "v01.41",
        "v1",
        "V1.41",
        "v1.41abc",
        "containers",
        "_ping",
        "json",
        "a",
        "Z",
        "0",
        ".",
        "%69",
        "%76",
        "%2e",
        "%20",
        "%41",
        "%7E",
        ":",
        "@",
        "~",
        "-",
        "'",
        '"',
        "[",
        "{",
        "|",
    ]
)
_SEGMENTS = st.lists(_SEGMENT_PIECES, min_size=1, max_size=3).map("".join)

# Mostly well-formed targets, so that many are accepted and the property bites.
_WELL_FORMED = st.builds(
    lambda prefix, segments, query: (prefix + "/" + "/".join(segments) + query).encode("ascii"),
    st.sampled_from(["", "", "/v1.41", "/v01.41", "/%76%31.41", "/v1.41.0"]),
    st.lists(_SEGMENTS, max_size=5),
    st.sampled_from(["", "?", "?all=1", "?/containers/json", "?a=%2f&b=..", "?x?y"]),
)

_TARGETS = st.one_of(
    _WELL_FORMED,
    _WELL_FORMED,
    st.lists(_PIECES, max_size=14).map(lambda pieces: "".join(pieces).encode("utf-8")),
    st.lists(_PIECES, max_size=14).map(lambda pieces: ("/" + "".join(pieces)).encode("utf-8")),
    st.binary(max_size=40),
    st.binary(max_size=40).map(lambda raw: b"/" + raw),
)


@settings(max_examples=2000)
@given(_TARGETS)
@example(b"/%69mages/json?all=1")
@example(b"/v1.41/v1.40/containers/my%20app/json")
@example(b"/v1.41")
def test_canonical_form_is_a_fixed_point(target: bytes) -> None:
    """Whatever is accepted canonicalises again, once re-encoded, to itself.

    Nothing but PathRefused ever escapes canonicalise.
    """
    try:
        canonical = canonicalise(target)
    except PathRefused as refused:
        assert refused.reason
        return
    assert canonicalise(_encode(canonical)) == canonical

    # and the canonical form has none of the things the daemon would redirect or reject
    assert canonical.path == "/" + "/".join(canonical.segments)
    assert all(segment not in ("", ".", "..") for segment in canonical.segments)
    assert not any(c in segment for segment in canonical.segments for c in "/%\\?#")
    assert canonical.version is None or re.fullmatch(r"[0-9.]+", canonical.version)
    if canonical.segments:
        assert canonical.version is not None or not re.fullmatch(r"v[0-9.]+", canonical.segments[0])
