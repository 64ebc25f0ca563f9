"""Which image names a request writes, judged against the group's ``image_names``.

Tag poisoning: a caller that may build, tag, commit, import or load images
can write a tag that Watchtower, compose or an administrator will later run
(``victim:latest``). A group's ``image_names`` guard lists the repositories
its requests may write (:mod:`dockguard.references` reads names and patterns
as the daemon does); closed by default. The requests, and what each writes,
read from the query as the daemon reads it (moby ``api/server/router/image``
and ``container``, ``httputils.RepoTagReference``):

* ``POST /images/{name}/tag?repo=R&tag=T``: ``R`` (the tag ``T``, or ``R``'s
  own tag, or ``latest``);
* ``POST /commit?repo=R&tag=T``: ``R``; no ``repo``, no tag written;
* ``POST /images/create`` without ``fromImage`` is an import: ``repo`` is
  written as for a tag, and ``fromSrc`` other than ``-`` (the body) is a URL
  the daemon downloads, which needs ``remote_fetch``;
* ``POST /images/create?fromImage=N`` is a pull: it writes only ``N``, with
  what the registry serves for ``N``. That is the tag's own provenance, not a
  poisoning, so a pull needs no ``image_names`` (Watchtower pulls);
* ``POST /images/load`` writes every tag its tar's manifest names. Reading
  them would mean reading a possibly huge stream before relaying it, so a load
  needs ``"*"`` in ``image_names``;
* ``POST /build?t=...`` (every ``t``): see :mod:`dockguard.builds`.

The checks run under groups only (``meaning.check_request`` with an
allowance); each refusal names ``image_names`` (or ``remote_fetch``) in
:attr:`~dockguard.guards.Verdict.guard`. Names the daemon would reject are
refused without a guard.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from dockguard.guards import ALLOWED, Allowance, Verdict, refusal
from dockguard.queries import Query
from dockguard.references import ANY, ReferenceRefused, matches, repository, valid_tag

__all__ = ["IMAGE_WRITE_ROUTES", "judge_image_write", "judge_written_name"]

#: The routes (method, template) :func:`judge_image_write` judges.
IMAGE_WRITE_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/images/{name}/tag"),
        ("POST", "/commit"),
        ("POST", "/images/create"),
        ("POST", "/images/load"),
    }
)


def _rule(allowance: Allowance) -> str:
    if not allowance.image_names:
        return (
            'the group may write no image names (add a pattern such as "ci/*" to image_names in the '
            "group's guards to allow it)"
        )
    return f"the group may write only {', '.join(allowance.image_names)} (image_names)"


def judge_written_name(field: str, text: str, tag: str, allowance: Allowance) -> Verdict:
    """Whether the group may write the tag ``text`` (with ``tag``, if given) names.

    ``field`` names the query parameter for the reason, e.g. ``"(query) repo"``.
    """
    if tag and not valid_tag(tag):
        return refusal(field, "", f"the tag {tag[:80]!r} is not a valid tag; the daemon would reject it")
    try:
        name = repository(text)
    except ReferenceRefused as refused:
        return refusal(field, "", refused.reason)
    if matches(name, allowance.image_names):
        return ALLOWED
    return refusal(
        field,
        "image_names",
        f"{field.removeprefix('(query) ')} would write a tag of {name}, which Watchtower, compose or a person may later run: {_rule(allowance)}",
    )


def judge_image_write(template: str, query: Query, allowance: Allowance) -> Verdict:
    """The verdict for ``POST template`` (one of :data:`IMAGE_WRITE_ROUTES`) with ``query``."""
    if template == "/images/load":
        if ANY in allowance.image_names:
            return ALLOWED
        return refusal(
            "(body)",
            "image_names",
            "loading images writes every tag named inside the archive, which dockguard does not read: "
            'it needs "*" in image_names (a load can overwrite any tag, e.g. one Watchtower or compose '
            "later runs)",
        )
    if template == "/images/create":
        if query.get("fromImage"):
            return ALLOWED  # a pull writes only the name it fetched, with that name's content
        source = query.get("fromSrc")
        if source not in ("", "-") and not allowance.remote_fetch:
            return refusal(
                "(query) fromSrc",
                "remote_fetch",
                f"fromSrc is {source[:80]!r}: the daemon would download it (from its own network, which "
                "may reach what the caller cannot) (set remote_fetch = true in the group's guards to allow it)",
            )
    # /images/{name}/tag, /commit and an import write repo[:tag]; no repo, no tag written
    # (the tag route rejects an empty repo).
    repo = query.get("repo")
    if not repo:
        return ALLOWED
    return judge_written_name("(query) repo", repo, query.get("tag"), allowance)
