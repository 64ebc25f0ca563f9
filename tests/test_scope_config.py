"""Scopes and redactions in the configuration file, in ``dockguard explain`` and in ``dockguard suggest``.

The scope core (dockguard.scope, the groups' decisions) is tested with the
relay; here: ``[groups.NAME] scope = {...}`` and ``redact = [...]`` as read
from a file, extends, what explain prints, and the scope suggest proposes.
"""

from __future__ import annotations

import io
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from dockguard.cli import main
from dockguard.errors import ConfigError
from dockguard.groupconfig import policy_from_config
from dockguard.groups import Group, GroupPolicy
from dockguard.paths import canonicalise
from dockguard.presets import PRESETS
from dockguard.relay.verdict import Refuse, decide
from dockguard.routes import ROUTES, lookup
from dockguard.scope import Scope
from dockguard.suggest import suggest_groups

DOCS = Path(__file__).resolve().parent.parent / "docs"


def load(groups: dict[str, Any], identities: dict[str, Any] | None = None) -> GroupPolicy:
    policy = policy_from_config("dockguard.toml", {"groups": groups, "identities": identities or {}})
    assert policy is not None
    return policy


def _resolved(groups: dict[str, Any]) -> dict[str, Group]:
    """Every group of ``[groups]`` as resolved (an identity names them all)."""
    policy = load(groups, {"someone": list(groups)})
    return dict(policy.groups)


# --- reading scope and redact ---------------------------------------------------------

BAD: list[tuple[dict[str, Any], str, list[str]]] = [
    (
        {"ci": {"scope": {"ownr": True}}},
        "groups.ci.scope.ownr",
        ['unknown key (did you mean "owner"?)', "a scope takes: names, labels, owner"],
    ),
    ({"ci": {"scope": {"name": ["ci-*"]}}}, "groups.ci.scope.name", ['did you mean "names"?']),
    ({"ci": {"scope": {"Labels": ["a"]}}}, "groups.ci.scope.Labels", ['did you mean "labels"?']),
    ({"ci": {"scope": ["ci-*"]}}, "groups.ci.scope", ["must be a table", "names, labels, owner", "scope = {"]),
    ({"ci": {"scope": "owner"}}, "groups.ci.scope", ["must be a table"]),
    ({"ci": {"scope": {}}}, "groups.ci.scope", ["holds nothing", "names, labels or owner = true", "remove it"]),
    ({"ci": {"scope": {"owner": False}}}, "groups.ci.scope", ["holds nothing"]),
    ({"ci": {"scope": {"names": [], "labels": []}}}, "groups.ci.scope", ["holds nothing"]),
    ({"ci": {"scope": {"owner": "true"}}}, "groups.ci.scope.owner", ["true or false (without quotes)", "'true'"]),
    ({"ci": {"scope": {"owner": 1}}}, "groups.ci.scope.owner", ["true or false"]),
    ({"ci": {"scope": {"names": "ci-*"}}}, "groups.ci.scope.names", ['must be a list of strings: write ["ci-*"]']),
    ({"ci": {"scope": {"names": ["ci-*", 3]}}}, "groups.ci.scope.names", ["must be a list of strings"]),
    (
        {"ci": {"scope": {"names": ["/ci-*"]}}},
        "groups.ci.scope.names",
        ["'/ci-*' is not a name pattern", "without a leading /"],
    ),
    ({"ci": {"scope": {"names": [""]}}}, "groups.ci.scope.names", ["'' is not a name pattern"]),
    ({"ci": {"scope": {"names": ["ci-* "]}}}, "groups.ci.scope.names", ["'ci-* ' is not a name pattern"]),
    ({"ci": {"scope": {"labels": "autoheal=true"}}}, "groups.ci.scope.labels", ['write ["autoheal=true"]']),
    (
        {"ci": {"scope": {"labels": ["autoheal = true"]}}},
        "groups.ci.scope.labels",
        ["'autoheal = true' is not a label", '"key=value"', '(did you mean "autoheal=true"?)'],
    ),
    ({"ci": {"scope": {"labels": ["autoheal= true"]}}}, "groups.ci.scope.labels", ['did you mean "autoheal=true"?']),
    ({"ci": {"scope": {"labels": ["=true"]}}}, "groups.ci.scope.labels", ["'=true' is not a label"]),
    ({"ci": {"scope": {"labels": [""]}}}, "groups.ci.scope.labels", ["'' is not a label"]),
    (
        {"ci": {"redact": ["enf"]}},
        "groups.ci.redact",
        ['unknown redaction "enf" (did you mean "env"?)', '"env", "mounts", "labels"'],
    ),
    ({"ci": {"redact": ["ENV"]}}, "groups.ci.redact", ['did you mean "env"?']),
    ({"ci": {"redact": ["secrets"]}}, "groups.ci.redact", ['unknown redaction "secrets"']),
    ({"ci": {"redact": "env"}}, "groups.ci.redact", ['write ["env"]']),
    ({"ci": {"redact": {"env": True}}}, "groups.ci.redact", ["must be a list of strings"]),
    ({"ci": {"scopes": {"owner": True}}}, "groups.ci.scopes", ['did you mean "scope"?', "scope, redact"]),
    ({"ci": {"redacts": ["env"]}}, "groups.ci.redacts", ['did you mean "redact"?']),
    # extends: a scope is inherited only when every parent has the same one
    (
        {"a": {"scope": {"owner": True}}, "b": {"scope": {"names": ["x"]}}, "ci": {"extends": ["a", "b"]}},
        "groups.ci.extends",
        [
            '"a" and "b" have different scopes (owner; name x)',
            "write the scope in [groups.ci] itself",
            "scope = { owner = true }",
        ],
    ),
    (
        {"a": {"scope": {"owner": True}}, "b": {"sections": {"images": "read"}}, "ci": {"extends": ["a", "b"]}},
        "groups.ci.extends",
        ['"a" has a scope (owner) but "b" has none', "write the scope in [groups.ci] itself"],
    ),
    (
        {"a": {"scope": {"labels": ["x=1"]}}, "ci": {"extends": ["readonly", "a"]}},
        "groups.ci.extends",
        ['"a" has a scope (label x=1) but "readonly" has none', 'scope = { labels = ["x=1"] }'],
    ),
    # the same two parents deeper down
    (
        {
            "a": {"scope": {"owner": True}},
            "b": {"extends": ["a"]},
            "c": {"scope": {"names": ["c"]}},
            "ci": {"extends": ["b", "c"]},
        },
        "groups.ci.extends",
        ['"b" and "c" have different scopes'],
    ),
]


@pytest.mark.parametrize(("groups", "key", "fragments"), BAD, ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD)])
def test_scope_and_redact_mistakes_name_their_key(groups: dict[str, Any], key: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        policy_from_config("dockguard.toml", {"groups": groups})
    error = raised.value
    assert (error.source, error.key) == ("dockguard.toml", key), str(error)
    for fragment in fragments:
        assert fragment in error.reason, error.reason
    assert str(error).startswith(f"dockguard.toml: {key}: ")


def test_a_scope_and_a_redaction_as_written() -> None:
    groups = _resolved(
        {
            "autoheal": {
                "actions": ["container.restart"],
                "sections": {"containers": "read"},
                "scope": {"labels": ["autoheal=true"]},
                "redact": ["env"],
            },
            "ci": {
                "extends": ["readonly"],
                "sections": {"containers": "write"},
                "scope": {"owner": True, "names": ["ci-*"]},
            },
            "plain": {"sections": {"containers": "read"}},
            "everything": {"redact": ["env", "mounts", "labels"], "scope": {"names": ["a", "b*"], "labels": ["k"]}},
        }
    )
    assert groups["autoheal"].scope == Scope(labels=("autoheal=true",))
    assert groups["autoheal"].redact == frozenset({"env"})
    assert groups["ci"].scope == Scope(names=("ci-*",), owner=True)
    assert groups["ci"].redact == frozenset()
    assert groups["plain"].scope is None and groups["plain"].redact == frozenset()
    assert groups["everything"].scope == Scope(names=("a", "b*"), labels=("k",))
    assert groups["everything"].redact == frozenset({"env", "mounts", "labels"})
    assert "scope label autoheal=true" in groups["autoheal"].summary()
    assert "redacts env" in groups["autoheal"].summary()


def test_a_group_without_a_scope_inherits_the_one_its_parents_share() -> None:
    groups = _resolved(
        {
            "base": {"sections": {"containers": "read"}, "scope": {"names": ["a", "b"], "owner": True}},
            "same": {"actions": ["container.start"], "scope": {"owner": True, "names": ["b", "a"]}},
            "child": {"extends": ["base"], "actions": ["container.restart"]},
            "both": {"extends": ["base", "same"]},
            "grandchild": {"extends": ["child"]},
            "own": {"extends": ["base"], "scope": {"labels": ["x"]}},
            "unscoped": {"extends": ["readonly"]},
        }
    )
    base = groups["base"].scope
    assert groups["child"].scope == base
    assert groups["both"].scope is not None and set(groups["both"].scope.names) == {"a", "b"}
    assert groups["both"].scope.owner is True
    assert groups["grandchild"].scope == base
    assert groups["own"].scope == Scope(labels=("x",))  # its own replaces the parent's
    assert groups["unscoped"].scope is None
    # the inherited rights come with the scope
    assert "container.restart" in groups["child"].actions and groups["child"].level("containers") == "read"


def test_a_redaction_is_inherited_as_what_all_parents_hide() -> None:
    groups = _resolved(
        {
            "a": {"redact": ["env", "mounts"]},
            "b": {"redact": ["env", "labels"]},
            "none": {},
            "one": {"extends": ["a"]},
            "two": {"extends": ["a", "b"]},
            "with-none": {"extends": ["a", "none"]},
            "own": {"extends": ["a"], "redact": ["labels"]},
            "cleared": {"extends": ["a", "b"], "redact": []},
            "deeper": {"extends": ["two"]},
            "from-preset": {"extends": ["dozzle"], "actions": ["container.restart"]},
            "presets": {"extends": ["dozzle", "readonly"]},
        }
    )
    assert groups["one"].redact == {"env", "mounts"}
    assert groups["two"].redact == {"env"}
    assert groups["with-none"].redact == frozenset()
    assert groups["own"].redact == {"labels"}
    assert groups["cleared"].redact == frozenset()
    assert groups["deeper"].redact == {"env"}
    assert groups["from-preset"].redact == {"env"} and groups["from-preset"].scope is None
    assert groups["presets"].redact == frozenset()  # readonly shows the environment


def test_learn_and_scope_are_independent() -> None:
    groups = _resolved({"l": {"learn": True, "scope": {"owner": True}}, "child": {"extends": ["l"]}})
    assert groups["l"].learn and groups["l"].scope == Scope(owner=True)
    assert not groups["child"].learn and groups["child"].scope == Scope(owner=True)


def decide_for(policy: GroupPolicy, identity: str, method: str, target: bytes):
    path = canonicalise(target)
    return policy.decide(identity, method, path, lookup(method, path))


def test_the_scope_read_from_the_file_is_the_one_decisions_carry() -> None:
    policy = load(
        {
            "autoheal": {
                "actions": ["container.restart"],
                "sections": {"containers": "read"},
                "scope": {"labels": ["autoheal=true"]},
                "redact": ["env"],
            },
        },
        {"autoheal": ["autoheal"], "both": ["autoheal", "readonly"]},
    )
    decision = decide_for(policy, "autoheal", "POST", b"/containers/web/restart")
    assert decision.allowed
    assert [(g.group, g.grant, g.scope, g.redact) for g in decision.scoped] == [
        ("autoheal", "action container.restart", Scope(labels=("autoheal=true",)), frozenset({"env"}))
    ]
    assert decision.redact == {"env"} and decision.owner == "autoheal"
    # an unscoped group granting the same route: no scope, readonly's (empty) redaction
    both = decide_for(policy, "both", "GET", b"/containers/web/json")
    assert both.scoped == () and both.redact == frozenset()


# --- presets --------------------------------------------------------------------------


def test_no_preset_has_a_scope() -> None:
    assert all(preset.scope is None for preset in PRESETS.values())


# --- explain --------------------------------------------------------------------------

EXPLAINED = """
[identities]
autoheal = ["autoheal"]
ci = ["ci"]
both = ["ci", "autoheal"]
homepage = ["homepage"]
watcher = ["readonly"]

[groups.autoheal]
actions = ["container.restart"]
sections = { containers = "read", events = "read" }
scope = { labels = ["autoheal=true"] }
redact = ["env"]

[groups.ci]
extends = ["readonly"]
sections = { containers = "write" }
actions = ["container.prune", "network.connect", "image.commit"]
scope = { owner = true, names = ["ci-*"] }
"""


def explain(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    config = tmp_path / "dockguard.toml"
    config.write_text(EXPLAINED)
    out = io.StringIO()
    status = main(["explain", *args, "--config", str(config)], out)
    return status, out.getvalue().splitlines()


def rows(lines: list[str]) -> dict[str, str]:
    """``"METHOD TEMPLATE"`` -> its line, for explain's table."""
    table = {}
    for line in lines:
        words = line.split()
        if words and words[0] in ("allow", "deny", "learn"):
            table[f"{words[1]} {words[2]}"] = line
    return table


def test_explain_shows_each_groups_scope_and_redaction(tmp_path: Path) -> None:
    status, lines = explain(tmp_path, "both")
    assert status == 0
    assert lines[0] == "what both may do (allow):"
    assert lines[1] == "  group ci: scope name ci-*, owner; redacts nothing"
    assert lines[2] == "  group autoheal: scope label autoheal=true; redacts env"
    assert len(rows(lines)) == len(ROUTES)
    _, lines = explain(tmp_path, "watcher")
    assert lines[1] == "  group readonly: no scope (every container, volume and network); redacts nothing"
    _, lines = explain(tmp_path, "homepage")
    assert lines[1] == "  group homepage: no scope (every container, volume and network); redacts env"
    _, lines = explain(tmp_path, "stranger")
    assert lines[0] == "what stranger may do (nothing allowed):" and not lines[1].startswith("  group")


def test_explain_marks_what_only_scoped_groups_grant(tmp_path: Path) -> None:
    _, lines = explain(tmp_path, "autoheal")
    table = rows(lines)
    assert table["POST /containers/{id}/restart"].endswith(
        "group autoheal: action container.restart  (in scope: label autoheal=true)"
    )
    assert table["GET /containers/{id}/json"].endswith(
        "group autoheal: containers=read  (in scope: label autoheal=true; redacts env)"
    )
    assert table["GET /containers/json"].endswith("(in scope: label autoheal=true)")  # a list has no env
    assert table["GET /events"].endswith("group autoheal: events=read  (in scope: label autoheal=true)")
    assert table["POST /containers/{id}/stop"].split()[0] == "deny"

    _, lines = explain(tmp_path, "ci")
    table = rows(lines)
    assert table["POST /containers/create"].endswith("group ci: containers=write  (in scope: name ci-*, owner)")
    assert table["GET /volumes/{name}"].endswith("(in scope: name ci-*, owner)")
    assert table["GET /networks"].endswith("(in scope: name ci-*, owner)")
    # a scope does not restrict images, swarm or system routes: no note, no scope in the rule
    assert table["GET /images/json"].endswith("group ci: images=read")
    assert table["GET /services"].endswith("group ci: services=read")
    assert table["GET /info"].endswith("group ci: info=read")
    # calls that act across the board are refused under a scope
    for refused in (
        "POST /containers/prune",
        "GET /system/df",
        "POST /networks/{id}/connect",
        "POST /networks/{id}/disconnect",
    ):
        words = table[refused].split()
        assert words[0] == "deny" and words[3] == "scope", table[refused]
        assert "acts on resources across the board" in table[refused]
    # several scoped groups: each one's scope, and what one redacts beyond the others
    _, lines = explain(tmp_path, "both")
    table = rows(lines)
    assert table["POST /containers/{id}/restart"].endswith(
        "(in scope: group ci: name ci-*, owner; group autoheal: label autoheal=true)"
    )
    assert table["GET /containers/{id}/json"].endswith(
        "(in scope: group ci: name ci-*, owner; group autoheal: label autoheal=true (redacts env))"
    )


def test_explain_unscoped_rows_keep_their_style(tmp_path: Path) -> None:
    _, lines = explain(tmp_path, "watcher")
    table = rows(lines)
    assert table["GET /containers/json"].endswith("group readonly: containers=read")
    assert table["POST /containers/prune"].endswith("needs action container.prune or containers=write")
    _, lines = explain(tmp_path, "homepage")
    assert rows(lines)["GET /containers/{id}/json"].endswith("group homepage: action container.inspect  (redacts env)")


def test_explain_one_scoped_request(tmp_path: Path) -> None:
    status, lines = explain(tmp_path, "autoheal", "POST", "/v1.47/containers/web/restart")
    assert status == 0
    assert lines == [
        "allow autoheal POST /v1.47/containers/web/restart",
        "  rule: group autoheal: action container.restart, in scope label autoheal=true",
        "  why:  POST /containers/web/restart (route POST /containers/{id}/restart) is allowed for autoheal "
        "by group autoheal (action container.restart, in scope label autoheal=true)",
        "  scope: only for the containers, volumes and networks in scope (label autoheal=true); "
        "any other container answers 404, as if it did not exist",
    ]
    _, lines = explain(tmp_path, "autoheal", "GET", "/containers/web/json")
    assert lines[-1] == "  redact: env (environment variables' values, names kept)"
    _, lines = explain(tmp_path, "autoheal", "GET", "/containers/json")
    assert lines[-1].endswith("(label autoheal=true); the list shows only those")
    _, lines = explain(tmp_path, "ci", "POST", "/containers/create?name=ci-1")
    assert lines[-1].endswith("what it creates must be in scope; it is labelled dockguard.owner=ci")
    _, lines = explain(tmp_path, "ci", "GET", "/images/json")
    assert lines[-1] == "  scope: none applies: this route touches no container, volume or network"
    _, lines = explain(tmp_path, "homepage", "GET", "/containers/web/json")
    assert lines[-1] == "  redact: env (environment variables' values, names kept)"
    _, lines = explain(tmp_path, "homepage", "GET", "/containers/web/logs")
    assert len(lines) == 3  # logs are not redacted


@pytest.mark.parametrize(
    ("identity", "method", "target"),
    [
        ("ci", "POST", "/v1.47/containers/prune"),
        ("ci", "GET", "/system/df"),
        ("ci", "POST", "/networks/bridge/connect"),
        ("ci", "GET", "/containers/ci-1/unknown"),
        ("both", "POST", "/containers/prune"),
    ],
)
def test_explain_refuses_what_the_relay_refuses_under_a_scope(
    tmp_path: Path, identity: str, method: str, target: str
) -> None:
    status, lines = explain(tmp_path, identity, method, target)
    assert status == 1
    assert lines[:2] == [f"deny {identity} {method} {target}", "  rule: scope"]
    policy = load(tomllib.loads(EXPLAINED)["groups"], tomllib.loads(EXPLAINED)["identities"])
    verdict = decide(method.encode(), target.encode(), (), False, identity, policy, None)
    assert isinstance(verdict, Refuse) and verdict.rule == "scope"
    assert lines[2] == f"  why:  {verdict.reason}"


def test_explain_words_every_redaction() -> None:
    from dockguard.explain import _HIDES
    from dockguard.scope import REDACTABLE

    assert set(_HIDES) == set(REDACTABLE)


def test_explain_without_groups_has_no_group_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("CONTAINERS", "POST"):
        monkeypatch.delenv(variable, raising=False)
    out = io.StringIO()
    assert main(["explain", "anyone"], out) == 0
    lines = out.getvalue().splitlines()
    assert not lines[1].startswith("  group")


# --- suggest --------------------------------------------------------------------------

FULL_ID = "413eded950623f587e1db8387691c0f05f046543214cebe8f19cd0c6a39c3908"


def record(method: str, path: str, identity: str = "tool", decision: str = "would-deny") -> dict[str, Any]:
    return {"identity": identity, "method": method, "path": path, "decision": decision}


def suggested(records: list[dict[str, Any]], identity: str = "tool") -> dict[str, Any]:
    """The group suggest proposes for ``identity``, as the real loader reads it."""
    text = suggest_groups(records)
    data = tomllib.loads(text)
    policy = policy_from_config("suggested.toml", data)
    assert policy is not None
    return {"text": text, "group": policy.groups[f"learned-{identity}"]}


def test_suggest_scopes_to_the_names_it_saw() -> None:
    got = suggested(
        [
            record("GET", "/v1.41/containers/json?all=1"),
            record("POST", "/v1.41/containers/db/restart"),
            record("POST", "/containers/cache/restart", decision="allow"),
            record("GET", "/containers/db/json"),
            record("POST", "/containers/other/restart", decision="deny"),  # refused: not counted
        ]
    )
    assert got["group"].scope == Scope(names=("cache", "db"))
    assert 'scope = { names = ["cache", "db"] }' in got["text"]


def test_suggest_leaves_ids_out_and_says_so() -> None:
    got = suggested(
        [
            record("POST", "/containers/web/restart"),
            record("POST", f"/containers/{FULL_ID}/restart"),
            record("POST", "/containers/0123456789abcdef/stop"),
            record("POST", "/containers/abc123/stop"),  # short: it may be a name
        ]
    )
    assert got["group"].scope == Scope(names=("abc123", "web"))
    text = got["text"]
    assert "# the containers, volumes or networks it named by ID (0123456789ab, 413eded95062)" in text
    assert "# scope them by label (labels = [...]) or by name" in text
    assert FULL_ID not in text


def test_suggest_leaves_link_names_out() -> None:
    got = suggested([record("GET", "/containers/web/db/json"), record("GET", "/containers/web/json")])
    assert got["group"].scope == Scope(names=("web",))
    assert "it named by ID or by a link name (web/db) cannot be held by name" in got["text"]


def test_suggest_proposes_owner_for_what_it_created() -> None:
    # `docker run -d --name web ...; docker logs web; docker rm -f web`
    got = suggested(
        [
            record("GET", "/_ping", decision="allow"),
            record("POST", "/v1.41/containers/create?name=web"),
            record("POST", f"/v1.41/containers/{FULL_ID}/wait?condition=next-exit"),
            record("POST", f"/v1.41/containers/{FULL_ID}/start"),
            record("GET", "/v1.41/containers/web/logs"),
            record("DELETE", "/v1.41/containers/web?force=1"),
            record("POST", "/v1.41/containers/db/restart"),
        ]
    )
    # what it created is its own: held by owner, not by a name someone else could take
    assert got["group"].scope == Scope(names=("db",), owner=True)
    text = got["text"]
    assert "# web: created by it, so held by owner = true" in text
    assert "owner = true holds those it created" in text
    assert 'scope = { names = ["db"], owner = true }' in text


def test_suggest_owner_alone_and_volume_and_network_creates() -> None:
    got = suggested(
        [
            record("POST", "/volumes/create"),
            record("DELETE", f"/volumes/{FULL_ID}"),
            record("POST", "/networks/create"),
        ]
    )
    assert got["group"].scope == Scope(owner=True)


def test_suggest_scopes_volumes_and_networks_by_name_too() -> None:
    got = suggested([record("DELETE", "/volumes/data"), record("GET", "/networks/front")])
    assert got["group"].scope == Scope(names=("data", "front"))


def test_suggest_no_scope_when_it_named_nothing() -> None:
    got = suggested(
        [
            record("GET", "/containers/json"),
            record("GET", "/events"),
            record("GET", "/images/nginx/json"),
            record("POST", "/images/create?fromImage=nginx"),
            record("POST", "/exec/0123456789abcdef/start"),
        ]
    )
    assert got["group"].scope is None
    assert "scope" not in got["text"]


def test_suggest_no_scope_when_it_named_only_ids() -> None:
    got = suggested([record("POST", f"/containers/{FULL_ID}/restart")])
    assert got["group"].scope is None
    assert "# no scope: it named no container, volume or network by a name" in got["text"]
    assert "(413eded95062)" in got["text"]


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "/containers/prune", "POST /containers/prune"),
        ("GET", "/v1.41/system/df", "GET /system/df"),
        ("POST", "/networks/front/connect", "POST /networks/{id}/connect"),
        ("GET", "/containers/web/unknown", "GET /containers/web/unknown"),
    ],
)
def test_suggest_no_scope_when_a_scope_would_refuse_a_call(method: str, path: str, call: str) -> None:
    got = suggested([record("POST", "/containers/web/restart"), record(method, path)])
    assert got["group"].scope is None
    assert f"# no scope: it called {call}, which a scope refuses" in got["text"]


def test_suggest_scopes_each_identity_on_its_own() -> None:
    text = suggest_groups(
        [
            record("POST", "/containers/a/restart", identity="one"),
            record("POST", "/containers/b/restart", identity="two"),
            record("GET", "/containers/json", identity="three"),
        ]
    )
    policy = policy_from_config("s.toml", tomllib.loads(text))
    assert policy is not None
    assert policy.groups["learned-one"].scope == Scope(names=("a",))
    assert policy.groups["learned-two"].scope == Scope(names=("b",))
    assert policy.groups["learned-three"].scope is None


def test_suggest_command_prints_the_scope(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    log.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                record("POST", "/containers/create?name=ci-1"),
                record("POST", "/containers/ci-1/start"),
            ]
        )
        + "\n"
    )
    out = io.StringIO()
    assert main(["suggest", str(log)], out) == 0
    assert "scope = { owner = true }" in out.getvalue()


# --- the documentation ----------------------------------------------------------------


def _section(page: str, title: str) -> str:
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _indented_blocks(text: str) -> list[str]:
    """The indented (four spaces) code blocks of a Markdown text."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("    ") or (current and not line.strip()):
            current.append(line[4:])
        else:
            if current:
                blocks.append("\n".join(current).strip("\n"))
            current = []
    if current:
        blocks.append("\n".join(current).strip("\n"))
    return [b for b in blocks if b]


def test_every_configuration_of_the_scope_section_loads() -> None:
    section = _section("groups.md", "Scope, owners and redaction")
    configs = [
        b
        for b in _indented_blocks(section)
        if b.lstrip().startswith(("[groups", "[identities", "#")) and "=" in b and not b.lstrip().startswith("$")
    ]
    assert len(configs) >= 6
    for text in configs:
        data = tomllib.loads(text)
        policy = policy_from_config("groups.md", data)
        assert policy is not None, text
        for group in policy.groups.values():
            if group.name not in PRESETS:
                assert group.scope is not None or group.redact, f"{group.name}: {text}"


def _transcripts(block: str) -> list[tuple[str, str]]:
    """The ``$ command`` lines of a block, each with what follows it (blank lines between them dropped)."""
    found: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        elif found:
            found[-1][1].append(line)
    return [(command, "\n".join(lines).strip("\n")) for command, lines in found]


def test_the_scope_section_transcripts_are_what_explain_prints(tmp_path: Path) -> None:
    section = _section("groups.md", "Scope, owners and redaction")
    blocks = _indented_blocks(section)
    transcripts = [t for b in blocks for t in _transcripts(b)]
    assert len(transcripts) >= 4
    # the example file of the section: its first block, which defines the identities
    assert "[identities]" in blocks[0]
    config = tmp_path / "dockguard.toml"
    config.write_text(blocks[0] + "\n")
    for command, expected in transcripts:
        args = command.split()
        assert args[:2] == ["dockguard", "explain"] and args[-2:] == ["--config", "dockguard.toml"], command
        out = io.StringIO()
        main(["explain", *args[2:-2], "--config", str(config)], out)
        assert out.getvalue().rstrip("\n") == expected, command


def test_the_group_keys_table_lists_scope_and_redact() -> None:
    section = _section("groups.md", "Groups")
    assert "| `scope` |" in section and "| `redact` |" in section
    assert "a group\ntakes: extends, sections, actions, learn, description, guards, scope, redact" in section


def test_the_suggest_example_is_what_suggest_prints() -> None:
    section = _section("groups.md", "dockguard suggest")
    block = next(b for b in _indented_blocks(section) if b.startswith('[groups."learned-heal"]'))
    printed = suggest_groups(
        [
            record("POST", "/v1.47/containers/db/restart", identity="heal"),
            record("POST", "/v1.47/containers/cache/restart", identity="heal"),
        ]
    )
    assert printed.startswith(block + "\n\n[identities]\n")


def test_the_links_of_the_groups_page_resolve() -> None:
    text = (DOCS / "groups.md").read_text()
    anchors = set()
    for heading in re.findall(r"^#+ (.*)$", text, re.M):
        anchors.add(re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-"))
    for target in re.findall(r"\]\(#([^)\s]+)\)", text):
        assert target in anchors, target
