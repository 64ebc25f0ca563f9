"""Image references read as the daemon reads them, and the name patterns of ``image_names``.

The daemon turns every name it writes a tag to (``docker tag``, ``docker
build -t``, ``docker commit``, ``docker import``) into a full repository
name with ``reference.ParseNormalizedNamed`` (distribution/reference,
``normalize.go``), then adds the tag ``latest`` when none is given. So
``victim``, ``library/victim``, ``docker.io/library/victim`` and
``index.docker.io/library/victim:latest`` all write the same tag, the one
``docker run victim`` (or Watchtower, or compose) will later run.
:func:`repository` gives that full name, and a pattern is matched against it,
so no spelling of a name gets past a pattern written in another.

The reading, step by step:

* a 64-digit hexadecimal string is refused (it would be read as an image ID);
* the part before the first ``/`` is a registry (a *domain*) when it contains
  ``.`` or ``:``, is ``localhost``, or has an upper-case letter (newer daemons;
  older ones reject such names, so only the newer reading ever writes);
  otherwise the registry is ``docker.io``. ``index.docker.io`` is
  ``docker.io``; a ``docker.io`` name without ``/`` gets ``library/``;
* the path must be lower-case, made of components ``[a-z0-9]+`` joined by
  ``.``, ``_``, ``__`` or dashes, separated by ``/``; the whole name at most
  255 characters; an optional ``:tag`` (``[\\w][\\w.-]{0,127}``) and
  ``@digest`` follow.

Anything else is refused (:class:`ReferenceRefused`): the daemon would reject
it, and dockguard does not guess.

Patterns (:func:`pattern_prefix`): ``"*"`` (any name), a name (``"ci/app"``:
that repository, any tag), or a name prefix ending in ``*`` (``"ci/*"``:
every repository whose full name starts with ``docker.io/ci/``). A pattern is
normalised like a name, so ``"nginx"`` is ``docker.io/library/nginx`` and
``"ci/*"`` does not match ``ci-other/x``; ``"ci*"`` is read as
``docker.io/library/ci*``, not as ``ci/...``. Tags are not part of a pattern.

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
    """The full repository name the daemon writes for ``text``, e.g. ``docker.io/library/victim``.

    A tag or digest in ``text`` is checked and dropped: a pattern names
    repositories. Raises :class:`ReferenceRefused` for what the daemon rejects.
    """
    return _parse(text).group("name")


def valid_tag(tag: str) -> bool:
    """Whether ``tag`` is a tag the daemon accepts (``[\\w][\\w.-]{0,127}``)."""
    return _TAG_ONLY.fullmatch(tag) is not None


def pattern_prefix(pattern: str) -> str:
    """The normalised form of an ``image_names`` pattern, or :class:`ReferenceRefused`.

    ``"*"`` stays ``"*"``; ``"ci/app"`` becomes ``"docker.io/ci/app"``;
    ``"ci/*"`` becomes ``"docker.io/ci/*"``.
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
    """Whether the full repository ``name`` matches one of ``patterns`` (as written in the configuration)."""
    for pattern in patterns:
        try:
            prefix = pattern_prefix(pattern)
        except ReferenceRefused:
            continue  # configuration is checked on load; never widen on a bad pattern
        if prefix == ANY or prefix == name or (prefix.endswith("*") and name.startswith(prefix[:-1])):
            return True
    return False
