"""Image references read as the daemon reads them, and the name patterns of C{image_names}.

The daemon turns every name it writes a tag to (C{docker tag}, C{docker
build -t}, C{docker commit}, C{docker import}) into a full repository
name with C{reference.ParseNormalizedNamed} (distribution/reference,
C{normalize.go}), then adds the tag C{latest} when none is given. So
C{victim}, C{library/victim}, C{docker.io/library/victim} and
C{index.docker.io/library/victim:latest} all write the same tag, the one
C{docker run victim} (or Watchtower, or compose) will later run.
L{repository} gives that full name, and a pattern is matched against it,
so no spelling of a name gets past a pattern written in another.

The reading, step by step:

* a 64-digit hexadecimal string is refused (it would be read as an image ID);
* the part before the first C{/} is a registry (a *domain*) when it contains
  C{.} or C{:}, is C{localhost}, or has an upper-case letter (newer daemons;
  older ones reject such names, so only the newer reading ever writes);
  otherwise the registry is C{docker.io}. C{index.docker.io} is
  C{docker.io}; a C{docker.io} name without C{/} gets C{library/};
* the path must be lower-case, made of components C{[a-z0-9]+} joined by
  C{.}, C{_}, C{__} or dashes, separated by C{/}; the whole name at most
  255 characters; an optional C{:tag} (C{[\\w][\\w.-]{0,127}}) and
  C{@digest} follow.

Anything else is refused (L{ReferenceRefused}): the daemon would reject
it, and dockguard does not guess.

Patterns (L{pattern_prefix}): C{"*"} (any name), a name (C{"ci/app"}:
that repository, any tag), or a name prefix ending in C{*} (C{"ci/*"}:
every repository whose full name starts with C{docker.io/ci/}). A pattern is
normalised like a name, so C{"nginx"} is C{docker.io/library/nginx} and
C{"ci/*"} does not match C{ci-other/x}; C{"ci*"} is read as
C{docker.io/library/ci*}, not as C{ci/...}. Tags are not part of a pattern.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import re

__all__ = ["ANY", "ReferenceRefused", "matches", "pattern_prefix", "repository", "valid_tag"]

#: The pattern that matches every name.
ANY = "*"

_DEFAULT_DOMAIN = "docker.io"
_LEGACY_DEFAULT_DOMAIN = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
_NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?",
    re.ASCII,
)
_TAG_ONLY = re.compile(_TAG, re.ASCII)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}", re.ASCII)


class ReferenceRefused(ValueError):
    """A reference the daemon would reject, with a reason to act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _split_domain(name: str) -> tuple[str, str]:
    # distribution/reference normalize.go splitDockerDomain (the newer reading).
    slash = name.find("/")
    first = name[:slash]
    if slash == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = _DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[slash + 1 :]
    if domain == _LEGACY_DEFAULT_DOMAIN:
        domain = _DEFAULT_DOMAIN
    if domain == _DEFAULT_DOMAIN and "/" not in remainder:
        remainder = _OFFICIAL_PREFIX + remainder
    return domain, remainder


def _parse(text: str) -> re.Match[str]:
    shown = text if len(text) <= 80 else text[:80] + "..."
    if _IDENTIFIER.fullmatch(text):
        raise ReferenceRefused(f"{shown!r} is an image ID (64 hexadecimal digits), not a repository name")
    domain, remainder = _split_domain(text)
    path = remainder.split(":", 1)[0]
    if path.lower() != path:
        raise ReferenceRefused(f"{shown!r} is not a valid reference: repository names must be lower-case")
    found = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if found is None:
        raise ReferenceRefused(f"{shown!r} is not a valid image reference; the daemon would reject it")
    if len(found.group("name")) > _NAME_MAX:
        raise ReferenceRefused(f"{shown!r} is longer than {_NAME_MAX} characters; the daemon would reject it")
    return found


def repository(text: str) -> str:
    """The full repository name the daemon writes for C{text}, e.g. C{docker.io/library/victim}.

    A tag or digest in C{text} is checked and dropped: a pattern names
    repositories. Raises L{ReferenceRefused} for what the daemon rejects.
    """
    return _parse(text).group("name")


def valid_tag(tag: str) -> bool:
    """Whether C{tag} is a tag the daemon accepts (C{[\\w][\\w.-]{0,127}})."""
    return _TAG_ONLY.fullmatch(tag) is not None


def pattern_prefix(pattern: str) -> str:
    """The normalised form of an C{image_names} pattern, or L{ReferenceRefused}.

    C{"*"} stays C{"*"}; C{"ci/app"} becomes C{"docker.io/ci/app"};
    C{"ci/*"} becomes C{"docker.io/ci/*"}.
    """
    if pattern == ANY:
        return ANY
    star = pattern.endswith("*")
    stem = pattern[:-1] if star else pattern
    if "*" in stem:
        raise ReferenceRefused(f"{pattern!r} has a '*' that is not at the end; write \"ci/*\" or a full name")
    if not stem:
        raise ReferenceRefused('an empty pattern matches nothing; write a name, "ci/*", or "*"')
    # A prefix is checked as the shortest name that starts with it.
    probe = stem + "a" if star else stem
    found = _parse(probe)
    if found.group("tag") is not None or found.group("digest") is not None:
        raise ReferenceRefused(f"{pattern!r} has a tag or digest; patterns name repositories (any tag)")
    name = found.group("name")
    return name[:-1] + "*" if star else name


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether the full repository C{name} matches one of C{patterns} (as written in the configuration)."""
    for pattern in patterns:
        try:
            prefix = pattern_prefix(pattern)
        except ReferenceRefused:
            continue  # configuration is checked on load; never widen on a bad pattern
        if prefix == ANY or prefix == name or (prefix.endswith("*") and name.startswith(prefix[:-1])):
            return True
    return False
