"""Which image names a request writes, judged against the group's C{image_names}.

Tag poisoning: a caller that may build, tag, commit, import or load images
can write a tag that Watchtower, compose or an administrator will later run
(C{victim:latest}). A group's C{image_names} guard lists the repositories
its requests may write (L{dockguard.references} reads names and patterns
as the daemon does); closed by default. The requests, and what each writes,
read from the query as the daemon reads it (moby C{api/server/router/image}
and C{container}, C{httputils.RepoTagReference}):

* C{POST /images/{name}/tag?repo=R&tag=T}: C{R} (the tag C{T}, or C{R}'s
  own tag, or C{latest});
* C{POST /commit?repo=R&tag=T}: C{R}; no C{repo}, no tag written;
* C{POST /images/create} without C{fromImage} is an import: C{repo} is
  written as for a tag, and C{fromSrc} other than C{-} (the body) is a URL
  the daemon downloads, which needs C{remote_fetch};
* C{POST /images/create?fromImage=N} is a pull: it writes only C{N}, with
  what the registry serves for C{N}. That is the tag's own provenance, not a
  poisoning, so a pull needs no C{image_names} (Watchtower pulls);
* C{POST /images/load} writes every tag its tar's manifest names. Reading
  them would mean reading a possibly huge stream before relaying it, so a load
  needs C{"*"} in C{image_names};
* C{POST /build?t=...} (every C{t}): see L{dockguard.builds}.

The checks run under groups only (C{meaning.check_request} with an
allowance); each refusal names C{image_names} (or C{remote_fetch}) in
L{guard<dockguard.guards.Verdict.guard>}. Names the daemon would reject are
refused without a guard.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from dockguard.guards import ALLOWED, Allowance, Verdict, refusal
from dockguard.queries import Query
from dockguard.references import ANY, ReferenceRefused, matches, repository, valid_tag

__all__ = ["IMAGE_WRITE_ROUTES", "judge_image_write", "judge_written_name"]

#: The routes (method, template) L{judge_image_write} judges.
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
    """Whether the group may write the tag C{text} (with C{tag}, if given) names.

    C{field} names the query parameter for the reason, e.g. C{"(query) repo"}.
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
    """The verdict for C{POST template} (one of L{IMAGE_WRITE_ROUTES}) with C{query}."""
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
