"""Scopes (L{dockguard.scope}): which containers, volumes and networks a group's rights hold for."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from dockguard.guards import CLOSED, OPEN
from dockguard.scope import (
    NO_REDACTION,
    OWNER_LABEL,
    REDACTABLE,
    Resource,
    Scope,
    ScopedGrant,
    held,
    redaction_of,
)

ID = "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2"


def container(name: str, **labels: str) -> Resource:
    return Resource("container", ID, name, labels)


def owned(name: str, owner: str, **labels: str) -> Resource:
    return Resource("container", ID, name, {OWNER_LABEL: owner, **labels})


# --- Scope.holds ------------------------------------------------------------

HOLDS: list[tuple[str, dict[str, Any], Resource, bool]] = [
    # names: globs, matched whole and case-sensitively
    ("exact name", {"names": ["web"]}, container("web"), True),
    ("exact name, other", {"names": ["web"]}, container("web2"), False),
    ("exact name, prefix only", {"names": ["web"]}, container("we"), False),
    ("star", {"names": ["web-*"]}, container("web-1"), True),
    ("star, empty tail", {"names": ["web-*"]}, container("web-"), True),
    ("star, not a prefix", {"names": ["web-*"]}, container("my-web-1"), False),
    ("star anywhere", {"names": ["*-web-*"]}, container("ci-web-7"), True),
    ("star alone", {"names": ["*"]}, container("anything_at.all-1"), True),
    ("star matches a link name's slash", {"names": ["web*"]}, container("web/db"), True),
    ("case-sensitive", {"names": ["web-*"]}, container("WEB-1"), False),
    ("case-sensitive pattern", {"names": ["Web"]}, container("web"), False),
    ("question mark: one character", {"names": ["web-?"]}, container("web-1"), True),
    ("question mark: not zero", {"names": ["web-?"]}, container("web-"), False),
    ("question mark: not two", {"names": ["web-?"]}, container("web-12"), False),
    ("class", {"names": ["web-[12]"]}, container("web-2"), True),
    ("class, outside", {"names": ["web-[12]"]}, container("web-3"), False),
    ("range", {"names": ["web-[a-c]"]}, container("web-b"), True),
    ("range, outside", {"names": ["web-[a-c]"]}, container("web-d"), False),
    ("range is case-sensitive", {"names": ["web-[a-c]"]}, container("web-B"), False),
    ("negated class", {"names": ["web-[!0-9]"]}, container("web-x"), True),
    ("negated class, excluded", {"names": ["web-[!0-9]"]}, container("web-5"), False),
    ("dots are literal", {"names": ["app.v1"]}, container("appxv1"), False),
    ("dots are literal, match", {"names": ["app.v1"]}, container("app.v1"), True),
    ("several patterns: second", {"names": ["db", "web-*"]}, container("web-1"), True),
    ("several patterns: none", {"names": ["db", "web-*"]}, container("cache"), False),
    ("an unnamed resource", {"names": ["*"]}, container(""), True),
    ("an unnamed resource, pattern", {"names": ["web"]}, container(""), False),
    # labels: "key" (set, to anything) and "key=value"
    ("label key", {"labels": ["team"]}, container("x", team="a"), True),
    ("label key, empty value", {"labels": ["team"]}, container("x", team=""), True),
    ("label key, absent", {"labels": ["team"]}, container("x", other="team"), False),
    ("label key is not a prefix", {"labels": ["team"]}, container("x", teams="a"), False),
    ("label key is case-sensitive", {"labels": ["team"]}, container("x", Team="a"), False),
    ("label key=value", {"labels": ["team=a"]}, container("x", team="a"), True),
    ("label key=value, other value", {"labels": ["team=a"]}, container("x", team="b"), False),
    ("label key=value, value prefix", {"labels": ["team=a"]}, container("x", team="ab"), False),
    ("label key=value, value case", {"labels": ["team=a"]}, container("x", team="A"), False),
    ("label key=value, absent", {"labels": ["team=a"]}, container("x"), False),
    ("label key= (empty value)", {"labels": ["team="]}, container("x", team=""), True),
    ("label key= (empty value), set", {"labels": ["team="]}, container("x", team="a"), False),
    ("label value with =", {"labels": ["opt=a=b"]}, container("x", opt="a=b"), True),
    ("label value with =, split elsewhere", {"labels": ["opt=a=b"]}, container("x", opt="a"), False),
    ("label value with =, key with =", {"labels": ["opt=a=b"]}, Resource("container", ID, "x", {"opt=a": "b"}), False),
    ("label value is not a glob", {"labels": ["team=*"]}, container("x", team="a"), False),
    ("label value is literal", {"labels": ["team=*"]}, container("x", team="*"), True),
    ("several labels: second", {"labels": ["team=a", "autoheal=true"]}, container("x", autoheal="true"), True),
    ("several labels: none", {"labels": ["team=a", "autoheal=true"]}, container("x", autoheal="1"), False),
    (
        "com.docker.compose label",
        {"labels": ["com.docker.compose.project=shop"]},
        container("shop-web-1", **{"com.docker.compose.project": "shop"}),
        True,
    ),
    # owner: only the identity the label names
    ("owner", {"owner": True}, owned("x", "alice"), True),
    ("owner, someone else's", {"owner": True}, owned("x", "bob"), False),
    ("owner, no owner label", {"owner": True}, container("x"), False),
    ("owner, case-sensitive identity", {"owner": True}, owned("x", "Alice"), False),
    ("owner, identity prefix", {"owner": True}, owned("x", "alice2"), False),
    ("owner, empty owner", {"owner": True}, owned("x", ""), False),
    (
        "owner label in another key",
        {"owner": True},
        Resource("container", ID, "x", {"Dockguard.Owner": "alice"}),
        False,
    ),
    # alternatives: one match is enough
    ("name or label: name", {"names": ["web-*"], "labels": ["team=a"]}, container("web-1", team="b"), True),
    ("name or label: label", {"names": ["web-*"], "labels": ["team=a"]}, container("db", team="a"), True),
    ("name or label: neither", {"names": ["web-*"], "labels": ["team=a"]}, container("db", team="b"), False),
    ("name or owner: owner", {"names": ["web-*"], "owner": True}, owned("db", "alice"), True),
    ("name or owner: name, someone else's", {"names": ["web-*"], "owner": True}, owned("web-1", "bob"), True),
    ("label or owner: neither", {"labels": ["team"], "owner": True}, owned("db", "bob"), False),
    ("all three: none", {"names": ["web"], "labels": ["team"], "owner": True}, owned("db", "bob", other="x"), False),
]


@pytest.mark.parametrize(
    ("scope", "resource", "expected"), [case[1:] for case in HOLDS], ids=[case[0] for case in HOLDS]
)
def test_holds(scope: dict[str, Any], resource: Resource, expected: bool) -> None:
    assert Scope(**scope).holds(resource, "alice") is expected
    # whatever the kind of resource
    for kind in ("volume", "network"):
        assert Scope(**scope).holds(attrs.evolve(resource, kind=kind), "alice") is expected


@pytest.mark.parametrize(
    ("scope", "resource", "expected"), [case[1:] for case in HOLDS], ids=[case[0] for case in HOLDS]
)
def test_holds_without_names_judges_labels_and_owner_only(
    scope: dict[str, Any], resource: Resource, expected: bool
) -> None:
    by_labels = bool(scope.get("labels")) and Scope(labels=scope["labels"]).holds(resource, "alice")
    by_owner = bool(scope.get("owner")) and Scope(owner=True).holds(resource, "alice")
    assert Scope(**scope).holds(resource, "alice", by_name=False) is (by_labels or by_owner)
    # and by_name=False never holds more than by_name=True
    if Scope(**scope).holds(resource, "alice", by_name=False):
        assert expected


@pytest.mark.parametrize(
    ("scope", "resource"),
    [
        (Scope(names=["*"]), container("web")),
        (Scope(names=["web"]), container("web")),
        (Scope(names=["web-?", "db"]), container("db")),
    ],
)
def test_by_name_false_ignores_names(scope: Scope, resource: Resource) -> None:
    assert scope.holds(resource, "alice")
    assert not scope.holds(resource, "alice", by_name=False)


def test_the_owner_is_the_identity_asking() -> None:
    scope = Scope(owner=True)
    resource = owned("x", "alice")
    assert scope.holds(resource, "alice")
    assert not scope.holds(resource, "bob")
    assert not scope.holds(resource, "")
    assert Scope(owner=True).holds(owned("x", "bob"), "bob")


def test_owner_false_does_not_hold_owned_resources() -> None:
    assert not Scope(names=["web"], owner=False).holds(owned("x", "alice"), "alice")


def test_a_scope_label_on_the_owner_key_is_just_a_label() -> None:
    # A scope may name the owner label like any other; it then holds
    # whatever that label says, for whoever asks.
    scope = Scope(labels=[f"{OWNER_LABEL}=alice"])
    assert scope.holds(owned("x", "alice"), "bob")
    assert not scope.holds(owned("x", "bob"), "bob")


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "holds nothing"),
        ({"names": [], "labels": [], "owner": False}, "holds nothing"),
        ({"names": ()}, "holds nothing"),
        ({"names": [""]}, "name pattern"),
        ({"names": ["/web"]}, "leading /"),
        ({"names": ["web", "/db"]}, "leading /"),
        ({"labels": [""]}, "label"),
        ({"labels": ["=value"]}, "label"),
        ({"labels": ["="]}, "label"),
        ({"labels": [" team"]}, "label"),
        ({"labels": ["team "]}, "label"),
        ({"labels": ["team =a"]}, "label"),
        ({"labels": ["\tteam"]}, "label"),
        ({"labels": ["ok", "=bad"]}, "label"),
        ({"labels": ["ok"], "names": ["/bad"]}, "leading /"),
    ],
)
def test_invalid_scopes_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scope(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"names": ["web"]},
        {"names": ["a/b"]},  # a link name: the slash is inside
        {"labels": ["team"]},
        {"labels": ["team="]},
        {"labels": ["team= a "]},  # the value is taken as written
        {"labels": ["opt=a=b"]},
        {"owner": True},
        {"names": ["*"], "labels": ["x"], "owner": True},
    ],
)
def test_valid_scopes(kwargs: dict[str, Any]) -> None:
    scope = Scope(**kwargs)
    assert isinstance(scope.names, tuple) and isinstance(scope.labels, tuple)


def test_a_scope_takes_any_iterable_and_is_a_frozen_value() -> None:
    scope = Scope(names=iter(["web-*"]), labels=("team",))
    assert scope == Scope(names=["web-*"], labels=["team"])
    assert hash(scope) == hash(Scope(names=("web-*",), labels=("team",)))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        scope.owner = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        (Scope(names=["web-*", "db"]), "name web-*, name db"),
        (Scope(labels=["autoheal=true"]), "label autoheal=true"),
        (Scope(owner=True), "owner"),
        (Scope(names=["web"], labels=["team"], owner=True), "name web, label team, owner"),
    ],
)
def test_scope_describe(scope: Scope, text: str) -> None:
    assert scope.describe() == text


# --- Resource -------------------------------------------------------------------


def test_resource_labels_are_a_frozen_copy() -> None:
    labels = {"team": "a"}
    resource = Resource("volume", "data", "data", labels)
    labels["team"] = "b"
    labels[OWNER_LABEL] = "alice"
    assert dict(resource.labels) == {"team": "a"}
    assert resource.owner is None
    with pytest.raises(TypeError):
        resource.labels["team"] = "c"  # type: ignore[index]


@pytest.mark.parametrize(
    ("resource", "owner", "text"),
    [
        (Resource("container", ID, "web"), None, f"container web ({ID[:12]})"),
        (Resource("container", ID, ""), None, f"container {ID[:12]}"),
        (Resource("volume", "data", "data", {OWNER_LABEL: "alice"}), "alice", "volume data"),
        (Resource("network", "f" * 64, "front"), None, f"network front ({'f' * 12})"),
    ],
)
def test_resource_owner_and_describe(resource: Resource, owner: str | None, text: str) -> None:
    assert resource.owner == owner
    assert resource.describe() == text


# --- held ---------------------------------------------------------------------


def grant(group: str, scope: Scope, redact: frozenset[str] = NO_REDACTION) -> ScopedGrant:
    return ScopedGrant(group, "containers=read", scope, CLOSED, redact)


WEB = grant("web", Scope(names=["web-*"]))
TEAM = grant("team", Scope(labels=["team=a"]))
MINE = grant("mine", Scope(owner=True))


@pytest.mark.parametrize(
    ("resource", "by_name", "expected"),
    [
        (container("web-1"), True, [WEB]),
        (container("web-1"), False, []),
        (container("web-1", team="a"), True, [WEB, TEAM]),
        (container("web-1", team="a"), False, [TEAM]),
        (owned("web-1", "alice", team="a"), True, [WEB, TEAM, MINE]),
        (owned("web-1", "alice", team="a"), False, [TEAM, MINE]),
        (owned("db", "bob"), True, []),
        (container("db"), True, []),
    ],
)
def test_held_keeps_the_grants_that_hold_in_order(
    resource: Resource, by_name: bool, expected: list[ScopedGrant]
) -> None:
    assert held([WEB, TEAM, MINE], resource, "alice", by_name=by_name) == expected
    assert held(reversed([WEB, TEAM, MINE]), resource, "alice", by_name=by_name) == expected[::-1]


def test_held_of_nothing() -> None:
    assert held([], container("web-1"), "alice") == []
    assert held(iter([]), container("web-1"), "alice", by_name=False) == []


def test_held_is_per_identity() -> None:
    assert held([MINE], owned("x", "alice"), "alice") == [MINE]
    assert held([MINE], owned("x", "alice"), "bob") == []


def test_scoped_grant_carries_its_guard_allowance() -> None:
    assert ScopedGrant("admin", "containers=write", Scope(owner=True), OPEN).redact == NO_REDACTION


# --- redaction_of ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("redactions", "expected"),
    [
        ([], frozenset()),
        ([frozenset()], frozenset()),
        ([frozenset({"env"})], frozenset({"env"})),
        ([frozenset(REDACTABLE)], frozenset(REDACTABLE)),
        ([frozenset({"env", "mounts"}), frozenset({"env", "labels"})], frozenset({"env"})),
        ([frozenset({"env"}), frozenset({"labels"})], frozenset()),
        ([frozenset(REDACTABLE), frozenset()], frozenset()),  # one group sees everything: all do
        ([frozenset(), frozenset(REDACTABLE)], frozenset()),
        ([frozenset(REDACTABLE), frozenset({"mounts", "labels"}), frozenset({"labels", "env"})], frozenset({"labels"})),
    ],
)
def test_redaction_of_hides_only_what_every_group_hides(
    redactions: list[frozenset[str]], expected: frozenset[str]
) -> None:
    assert redaction_of(redactions) == expected
    assert redaction_of(iter(redactions)) == expected
    assert redaction_of(reversed(redactions)) == expected


def test_redaction_of_nothing_hides_nothing() -> None:
    assert redaction_of([]) is NO_REDACTION
    assert redaction_of(redact for redact in [frozenset[str]()][1:]) == frozenset()


def test_redactable() -> None:
    assert REDACTABLE == ("env", "mounts", "labels")
    assert OWNER_LABEL == "dockguard.owner"
