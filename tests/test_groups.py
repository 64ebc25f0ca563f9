"""Per-identity permission groups: decide, configuration, extends, explain."""

from __future__ import annotations

from typing import Any

import pytest

from dockguard.envpolicy import EnvPolicy
from dockguard.errors import ConfigError
from dockguard.groupconfig import policy_from_config
from dockguard.groups import ACCESS_LEVELS, ACTIONS, Group, GroupPolicy
from dockguard.paths import canonicalise
from dockguard.policy import Decision, explain
from dockguard.presets import PRESETS
from dockguard.routes import ROUTES, lookup

READ = Group(name="r", sections={"containers": "read"}, actions=frozenset())
WRITE = Group(name="w", sections={"containers": "write"}, actions=frozenset())
NONE = Group(name="n", sections={}, actions=frozenset())
START = Group(name="a", sections={}, actions=frozenset({"container.start"}))
EXEC = Group(name="x", sections={}, actions=frozenset({"container.exec"}))
ARCHIVE = Group(name="cp", sections={}, actions=frozenset({"container.archive"}))
ATTACH = Group(name="at", sections={}, actions=frozenset({"container.attach"}))
LEARNER = Group(name="learner", sections={}, actions=frozenset(), learn=True)
LIST = Group(name="l", sections={}, actions=frozenset({"container.list"}))

ALL_GROUPS = {g.name: g for g in (READ, WRITE, NONE, START, EXEC, ARCHIVE, ATTACH, LEARNER, LIST)}


def policy(**identities: list[str]) -> GroupPolicy:
    return GroupPolicy(identities={k: tuple(v) for k, v in identities.items()}, groups=ALL_GROUPS)


def decide(p: GroupPolicy, identity: str, method: str, target: bytes) -> Decision:
    path = canonicalise(target)
    return p.decide(identity, method, path, lookup(method, path))


# --- one group: section levels x methods, actions, sensitive reads ----------

ONE_GROUP = [
    # section "read": GET/HEAD routes that are not sensitive
    ("r", "GET", b"/containers/json", True, "group r: containers=read"),
    ("r", "GET", b"/v1.41/containers/abc/json", True, "group r: containers=read"),
    # logs and image exports are sensitive: "read" does not give them
    ("r", "GET", b"/containers/abc/logs?follow=1", False, "needs action container.logs or containers=write"),
    ("r", "HEAD", b"/containers/abc/logs", False, "needs action container.logs or containers=write"),
    ("r", "GET", b"/images/get?names=app", False, "needs action image.export or images=write"),
    ("r", "GET", b"/images/library/app:1/get", False, "needs action image.export or images=write"),
    ("r", "GET", b"/services/s/logs", False, "needs action service.logs or services=write"),
    ("r", "GET", b"/tasks/t/logs", False, "needs action task.logs or tasks=write"),
    ("r", "GET", b"/containers/abc/stats", True, "group r: containers=read"),
    ("r", "HEAD", b"/containers/json", True, "group r: containers=read"),
    ("r", "GET", b"/containers", True, "group r: containers=read"),
    ("r", "GET", b"/containers/abc/archive?path=/", False, "needs action container.archive or containers=write"),
    ("r", "HEAD", b"/containers/abc/archive?path=/", False, "needs action container.archive or containers=write"),
    ("r", "GET", b"/containers/abc/export", False, "needs action container.export or containers=write"),
    ("r", "HEAD", b"/containers/abc/export", False, "needs action container.export or containers=write"),
    ("r", "GET", b"/containers/abc/attach/ws", False, "needs action container.attach or containers=write"),
    ("r", "GET", b"/containers/web/db/archive", False, "needs action container.archive or containers=write"),
    ("r", "POST", b"/containers/abc/start", False, "needs action container.start or containers=write"),
    ("r", "POST", b"/containers/abc/wait", False, "needs action container.start or containers=write"),
    ("r", "DELETE", b"/containers/abc", False, "needs action container.delete or containers=write"),
    ("r", "POST", b"/containers", False, "needs containers=write"),
    ("r", "get", b"/containers/json", False, "needs containers=write"),
    ("r", "GET", b"/images/json", False, "needs images=read or action image.list"),
    ("r", "GET", b"/exec/abc/json", False, "needs exec=read or action container.exec"),
    # section "write": every route and method of the section
    ("w", "POST", b"/containers/abc/start", True, "group w: containers=write"),
    ("w", "POST", b"/containers/create", True, "group w: containers=write"),
    ("w", "GET", b"/containers/abc/archive", True, "group w: containers=write"),
    ("w", "PUT", b"/containers/abc/archive?path=/", True, "group w: containers=write"),
    ("w", "GET", b"/containers/abc/attach/ws", True, "group w: containers=write"),
    ("w", "DELETE", b"/containers/abc?force=1", True, "group w: containers=write"),
    ("w", "POST", b"/containers", True, "group w: containers=write"),
    ("w", "get", b"/containers/json", True, "group w: containers=write"),
    ("w", "POST", b"/exec/abc/start", False, "needs action container.exec or exec=write"),
    ("w", "POST", b"/images/create", False, "needs action image.pull or images=write"),
    # section "none"
    ("n", "GET", b"/containers/json", False, "needs containers=read or action container.list"),
    ("n", "HEAD", b"/_ping", False, "needs ping=read"),
    ("n", "GET", b"/swarm/unlockkey", False, "needs swarm=write"),
    # an action opens exactly its routes, whatever the section level
    ("a", "POST", b"/containers/abc/start", True, "group a: action container.start"),
    ("a", "POST", b"/v1.47/containers/web/db/start", True, "group a: action container.start"),
    ("a", "POST", b"/containers/abc/stop", False, "needs action container.stop or containers=write"),
    ("a", "GET", b"/containers/json", False, "needs containers=read or action container.list"),
    ("a", "GET", b"/containers", False, "needs containers=read"),
    ("a", "POST", b"/containers/abc/start/x", False, "needs containers=write"),
    # a plain read's action opens that read alone
    ("l", "GET", b"/v1.41/containers/json?all=1", True, "group l: action container.list"),
    ("l", "HEAD", b"/containers/json", True, "group l: action container.list"),
    ("l", "GET", b"/containers/abc/json", False, "needs containers=read or action container.inspect"),
    ("l", "GET", b"/containers/abc/top", False, "needs containers=read or action container.top"),
    ("x", "POST", b"/containers/abc/exec", True, "group x: action container.exec"),
    ("x", "POST", b"/exec/abc/start", True, "group x: action container.exec"),
    ("x", "POST", b"/exec/abc/resize?h=1&w=1", True, "group x: action container.exec"),
    ("x", "GET", b"/exec/abc/json", True, "group x: action container.exec"),
    ("x", "POST", b"/containers/abc/attach", False, "needs action container.attach or containers=write"),
    ("cp", "GET", b"/containers/abc/archive?path=/", True, "group cp: action container.archive"),
    ("cp", "HEAD", b"/containers/abc/archive?path=/", True, "group cp: action container.archive"),
    ("cp", "PUT", b"/containers/abc/archive?path=/", True, "group cp: action container.archive"),
    ("cp", "GET", b"/containers/abc/export", False, "needs action container.export or containers=write"),
    ("at", "POST", b"/containers/abc/attach?stream=1", True, "group at: action container.attach"),
    ("at", "GET", b"/containers/abc/attach/ws", True, "group at: action container.attach"),
    ("at", "POST", b"/containers/abc/resize?h=1&w=1", True, "group at: action container.attach"),
    # no section at all
    ("w", "GET", b"/foo", False, "no section"),
    ("w", "GET", b"/CONTAINERS/json", False, "no section"),
]


@pytest.mark.parametrize(("group", "method", "target", "allowed", "rule"), ONE_GROUP)
def test_decide_one_group(group: str, method: str, target: bytes, allowed: bool, rule: str) -> None:
    decision = decide(policy(someone=[group]), "someone", method, target)
    assert (decision.allowed, decision.rule, decision.learned) == (allowed, rule, False)
    if allowed:
        assert f"group {group}" in decision.reason
    else:
        assert "someone" in decision.reason or decision.rule == "no section"


def test_deny_reason_says_what_would_open_the_call() -> None:
    decision = decide(policy(mon=["r", "a"]), "mon", "POST", b"/containers/abc/exec")
    assert not decision.allowed
    assert 'add action "container.exec" or containers = "write" to one of: r, a' in decision.reason
    assert "mon" in decision.reason
    read = decide(policy(mon=["n"]), "mon", "GET", b"/images/json")
    assert 'add images = "read" (or action "image.list" for this route alone) to one of: n' in read.reason
    sensitive = decide(policy(mon=["r"]), "mon", "GET", b"/swarm/unlockkey")
    assert 'swarm = "write"' in sensitive.reason and "sensitive" in sensitive.reason


def test_no_section_reason_hints_at_case() -> None:
    decision = decide(policy(u=["w"]), "u", "GET", b"/Containers/json")
    assert "case-sensitive" in decision.reason and "/containers" in decision.reason


# --- several groups ----------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "method", "target", "allowed", "rule"),
    [
        (["n", "r", "a"], "GET", b"/containers/json", True, "group r: containers=read"),
        (["n", "r", "a"], "POST", b"/containers/abc/start", True, "group a: action container.start"),
        (["n", "r", "a"], "POST", b"/containers/abc/stop", False, "needs action container.stop or containers=write"),
        (["r", "cp"], "GET", b"/containers/abc/archive", True, "group cp: action container.archive"),
        # the first group that allows is named
        (["w", "r"], "GET", b"/containers/json", True, "group w: containers=write"),
        (["r", "w"], "GET", b"/containers/json", True, "group r: containers=read"),
        (["a", "w"], "POST", b"/containers/abc/start", True, "group a: action container.start"),
    ],
)
def test_decide_union_of_groups(groups: list[str], method: str, target: bytes, allowed: bool, rule: str) -> None:
    decision = decide(policy(u=groups), "u", method, target)
    assert (decision.allowed, decision.rule) == (allowed, rule)


def test_unknown_identity_and_no_groups() -> None:
    p = policy(known=["w"], empty=[])
    unknown = decide(p, "stranger", "GET", b"/_ping")
    assert (unknown.allowed, unknown.rule, unknown.learned) == (False, "unknown identity", False)
    assert "stranger" in unknown.reason and "[identities]" in unknown.reason
    empty = decide(p, "empty", "GET", b"/containers/json")
    assert (empty.allowed, empty.rule) == (False, "no groups")
    assert "empty" in empty.reason


@pytest.mark.parametrize(
    ("identity", "rule"),
    [("stranger", "unknown identity"), ("empty", "no groups"), ("known", None), ("learning", None)],
)
def test_shut_out_is_the_refusal_of_every_request(identity: str, rule: str | None) -> None:
    # what a reload asks of each open connection's identity: the same
    # decision decide() gives for any request, before any route is looked at
    p = policy(known=["n"], empty=[], learning=["learner"])
    refusal = p.shut_out(identity)
    assert (refusal.rule if refusal else None) == rule
    if refusal is not None:
        assert refusal == decide(p, identity, "GET", b"/_ping") == decide(p, identity, "POST", b"/nowhere")


def test_env_policy_shuts_out_nobody() -> None:
    assert EnvPolicy.from_environ({}).shut_out("anyone") is None


# --- learn mode ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "learned", "rule"),
    [
        ("GET", b"/containers/json", False, "group r: containers=read"),
        (
            "POST",
            b"/containers/abc/start",
            True,
            "learn (group learner): would deny: needs action container.start or containers=write",
        ),
        (
            "GET",
            b"/containers/abc/archive",
            True,
            "learn (group learner): would deny: needs action container.archive or containers=write",
        ),
        ("GET", b"/foo", True, "learn (group learner): would deny: no section"),
    ],
)
def test_learn_lets_denied_requests_through_and_marks_them(
    method: str, target: bytes, learned: bool, rule: str
) -> None:
    decision = decide(policy(tool=["r", "learner"]), "tool", method, target)
    assert (decision.allowed, decision.learned, decision.rule) == (True, learned, rule)
    if learned:
        assert "learn mode" in decision.reason and "learner" in decision.reason


def test_learn_does_not_apply_without_a_learn_group() -> None:
    p = policy(tool=["r", "learner"], other=["r"])
    assert not decide(p, "other", "POST", b"/containers/abc/start").allowed
    stranger = decide(p, "stranger", "POST", b"/containers/abc/start")
    assert (stranger.allowed, stranger.learned) == (False, False)


# --- the combination from the issue -----------------------------------------

COMBO = {
    "identities": {"ops-bot": ["restarter"]},
    "groups": {
        "restarter": {
            "sections": {"containers": "read"},
            "actions": ["container.start", "container.stop", "container.restart"],
        }
    },
}


@pytest.mark.parametrize(
    ("method", "target", "allowed"),
    [
        ("GET", b"/v1.45/containers/json?all=1", True),
        ("GET", b"/v1.45/containers/abc/json", True),
        ("POST", b"/v1.45/containers/abc/start", True),
        ("POST", b"/v1.45/containers/abc/stop?t=10", True),
        ("POST", b"/v1.45/containers/abc/restart", True),
        ("POST", b"/v1.45/containers/create", False),
        ("POST", b"/v1.45/containers/abc/exec", False),
        ("POST", b"/v1.45/exec/abc/start", False),
        ("DELETE", b"/v1.45/containers/abc", False),
        ("POST", b"/v1.45/containers/abc/attach", False),
        ("GET", b"/v1.45/containers/abc/attach/ws", False),
        ("GET", b"/v1.45/containers/abc/archive?path=/", False),
        ("PUT", b"/v1.45/containers/abc/archive?path=/", False),
        ("POST", b"/v1.45/containers/abc/kill", False),
    ],
)
def test_read_plus_start_stop_restart(method: str, target: bytes, allowed: bool) -> None:
    p = policy_from_config("dockguard.toml", COMBO)
    assert p is not None
    assert decide(p, "ops-bot", method, target).allowed is allowed


# --- policy_from_config: validation --------------------------------------------

BAD_CONFIGS: list[tuple[dict[str, Any], str, list[str]]] = [
    ({"identities": ["x"]}, "identities", ["table"]),
    ({"groups": ["x"]}, "groups", ["table"]),
    ({"groups": {"web": "x"}}, "groups.web", ["must be a table"]),
    ({"groups": {"web": {"sectons": {}}}}, "groups.web.sectons", ["unknown key", '"sections"']),
    (
        {"groups": {"web": {"sections": {"contaners": "read"}}}},
        "groups.web.sections.contaners",
        ["unknown section", 'did you mean "containers"', "known: auth"],
    ),
    (
        {"groups": {"web": {"sections": {"CONTAINERS": "read"}}}},
        "groups.web.sections.CONTAINERS",
        ['did you mean "containers"'],
    ),
    (
        {"groups": {"web": {"sections": {"containers": "reed"}}}},
        "groups.web.sections.containers",
        ['unknown access level "reed"', 'did you mean "read"', '"none", "read", "write"'],
    ),
    (
        {"groups": {"web": {"sections": {"containers": 1}}}},
        "groups.web.sections.containers",
        ["unknown access level 1"],
    ),
    ({"groups": {"web": {"sections": ["containers"]}}}, "groups.web.sections", ["must be a table"]),
    (
        {"groups": {"web": {"actions": ["contianer.start"]}}},
        "groups.web.actions",
        ['unknown action "contianer.start"', 'did you mean "container.start"'],
    ),
    ({"groups": {"web": {"actions": "container.start"}}}, "groups.web.actions", ["must be a list"]),
    ({"groups": {"web": {"learn": "true"}}}, "groups.web.learn", ["true or false"]),
    ({"groups": {"web": {"learn": 1}}}, "groups.web.learn", ["true or false"]),
    ({"groups": {"web": {"description": 5}}}, "groups.web.description", ["string"]),
    (
        {"groups": {"web": {"extends": ["readonyl"]}}},
        "groups.web.extends",
        ['unknown group or preset "readonyl"', 'did you mean "readonly"'],
    ),
    ({"groups": {"web": {"extends": [1]}}}, "groups.web.extends", ["must be a list"]),
    ({"groups": {"traefik": {"sections": {}}}}, "groups.traefik", ["preset names are reserved", "extends"]),
    ({"groups": {"bad name": {}}}, "groups.bad name", ["group name"]),
    ({"identities": {"x": ["nope"]}}, "identities.x", ['unknown group or preset "nope"']),
    ({"identities": {"x": ["readonyl"]}}, "identities.x", ['did you mean "readonly"']),
    ({"identities": {"x": 3}}, "identities.x", ["must be a list"]),
    ({"identities": {"x": ["readonly", 3]}}, "identities.x", ["must be a list"]),
    ({"identities": {"bad name": ["readonly"]}}, "identities.bad name", ["identity name"]),
    ({"identities": {"-x": ["readonly"]}}, "identities.-x", ["identity name"]),
    ({"identities": {"a" * 129: ["readonly"]}}, "identities." + "a" * 129, ["identity name"]),
    (
        {"groups": {"a": {"extends": ["b"]}, "b": {"extends": ["a"]}}},
        "groups.b.extends",
        ["extends cycle: a -> b -> a"],
    ),
    ({"groups": {"a": {"extends": ["a"]}}}, "groups.a.extends", ["extends cycle: a -> a"]),
    (
        {"groups": {"a": {"extends": ["b"]}, "b": {"extends": ["c"]}, "c": {"extends": ["b"]}}},
        "groups.c.extends",
        ["extends cycle: b -> c -> b"],
    ),
]


@pytest.mark.parametrize(("data", "key", "fragments"), BAD_CONFIGS, ids=[c[1] for c in BAD_CONFIGS])
def test_policy_from_config_refuses(data: dict[str, Any], key: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        policy_from_config("dockguard.toml", data)
    error = raised.value
    assert (error.source, error.key) == ("dockguard.toml", key)
    for fragment in fragments:
        assert fragment in error.reason
    assert str(error).startswith(f"dockguard.toml: {key}: ")


def test_policy_from_config_none_without_identities_or_groups() -> None:
    assert policy_from_config("f", {}) is None
    assert policy_from_config("f", {"listeners": [], "upstream": {}}) is None
    assert policy_from_config("f", {"groups": {}}) is not None
    assert policy_from_config("f", {"identities": {}}) is not None


def test_policy_from_config_accepts_strings_presets_and_deduplicates() -> None:
    p = policy_from_config(
        "f",
        {
            "identities": {"traefik": "traefik", "ci@example.com": ["builder", "readonly", "builder"]},
            "groups": {"builder": {"extends": "readonly", "actions": ["image.build"], "description": "CI"}},
            "listeners": [{"ignored": True}],
        },
    )
    assert p is not None
    assert p.identities == {"traefik": ("traefik",), "ci@example.com": ("builder", "readonly")}
    assert p.groups["traefik"] == PRESETS["traefik"]
    assert p.groups["builder"].description == "CI"
    assert decide(p, "ci@example.com", "POST", b"/build").allowed
    assert not decide(p, "traefik", "POST", b"/build").allowed


# --- extends -------------------------------------------------------------------


def test_extends_takes_the_union_then_own_entries_override() -> None:
    p = policy_from_config(
        "f",
        {
            "identities": {"u": ["child"], "v": ["grandchild"]},
            "groups": {
                "p1": {
                    "sections": {"containers": "read", "images": "write"},
                    "actions": ["container.start"],
                    "learn": True,
                },
                "p2": {"sections": {"containers": "write", "volumes": "read"}, "actions": ["container.stop"]},
                "child": {
                    "extends": ["p1", "p2"],
                    "sections": {"images": "none", "networks": "read", "volumes": "write"},
                    "actions": ["container.kill"],
                    "description": "child",
                },
                "grandchild": {"extends": ["child"], "sections": {"containers": "read"}},
            },
        },
    )
    assert p is not None
    child = p.groups["child"]
    assert dict(child.sections) == {"containers": "write", "networks": "read", "volumes": "write"}
    assert child.actions == {"container.start", "container.stop", "container.kill"}
    assert child.learn is False  # learn is not inherited
    grandchild = p.groups["grandchild"]
    assert dict(grandchild.sections) == {"containers": "read", "networks": "read", "volumes": "write"}
    assert grandchild.actions == child.actions
    assert decide(p, "v", "POST", b"/containers/abc/kill").allowed
    assert not decide(p, "v", "POST", b"/containers/abc/pause").allowed


def test_extending_a_preset_may_lower_it() -> None:
    p = policy_from_config(
        "f",
        {
            "identities": {"u": ["almost-admin"]},
            "groups": {"almost-admin": {"extends": ["admin"], "sections": {"containers": "read", "swarm": "none"}}},
        },
    )
    assert p is not None
    assert decide(p, "u", "POST", b"/images/create").allowed
    assert decide(p, "u", "GET", b"/containers/json").allowed
    assert not decide(p, "u", "POST", b"/containers/abc/start").allowed
    assert not decide(p, "u", "GET", b"/swarm").allowed


def test_learn_group_from_config() -> None:
    p = policy_from_config("f", {"identities": {"tool": ["learner"]}, "groups": {"learner": {"learn": True}}})
    assert p is not None
    decision = decide(p, "tool", "POST", b"/containers/create")
    assert (decision.allowed, decision.learned) == (True, True)


# --- Group and GroupPolicy checks ------------------------------------------------


@pytest.mark.parametrize(
    ("sections", "actions"),
    [
        ({"contaners": "read"}, []),
        ({"containers": "reed"}, []),
        ({}, ["container.strat"]),
    ],
)
def test_group_refuses_unknown_names(sections: dict[str, str], actions: list[str]) -> None:
    with pytest.raises(ValueError):
        Group(name="g", sections=sections, actions=frozenset(actions))


def test_group_policy_refuses_undefined_groups() -> None:
    with pytest.raises(ValueError):
        GroupPolicy(identities={"u": ("missing",)}, groups={})
    with pytest.raises(ValueError):
        GroupPolicy(identities={}, groups={"x": READ})


def test_constants() -> None:
    assert ACCESS_LEVELS == ("none", "read", "write")
    assert "container.exec" in ACTIONS and "image.build" in ACTIONS
    assert len(ACTIONS) == 53 + 46  # libpod (issue 17): its own actions, tests/test_podman_routes.py


def test_decision_learned_defaults_to_false() -> None:
    assert Decision(allowed=True, rule="r", reason="x").learned is False
    env = EnvPolicy.from_environ({"CONTAINERS": "1"})
    path = canonicalise(b"/containers/json")
    assert env.decide("x", "GET", path, lookup("GET", path)).learned is False


# --- describe and explain ----------------------------------------------------------


def test_describe_lists_identities_and_flags_learn_mode() -> None:
    lines = policy(tool=["r", "learner"], ops=["w"], nobody=[]).describe()
    text = "\n".join(lines)
    assert "identity ops: groups w" in lines
    assert "identity tool: groups r, learner" in lines
    assert any(line.startswith("identity nobody: no groups") for line in lines)
    assert any(line.startswith("group r: sections containers=read") for line in lines)
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert len(warnings) == 1
    assert "LEARN MODE" in warnings[0] and "learner" in warnings[0] and "tool" in warnings[0]
    assert "learn = false" in text
    assert not any(line.startswith("WARNING") for line in policy(ops=["w"]).describe())
    assert "refused" in GroupPolicy(identities={}, groups={}).describe()[0]


def test_explain_judges_every_route() -> None:
    p = policy_from_config("f", {"identities": {"watcher": ["readonly"]}})
    assert p is not None
    rows = explain(p, "watcher")
    assert [route for route, _ in rows] == list(ROUTES)
    assert all(isinstance(decision, Decision) for _, decision in rows)
    verdicts = {(route.method, route.template): decision.allowed for route, decision in rows}
    assert verdicts[("GET", "/containers/json")] is True
    assert verdicts[("GET", "/images/{name}/json")] is True
    assert verdicts[("POST", "/containers/create")] is False
    assert verdicts[("GET", "/containers/{id}/archive")] is False
    assert verdicts[("GET", "/containers/{id}/attach/ws")] is False
    assert all(not d.allowed and d.rule == "unknown identity" for _, d in explain(p, "stranger"))


def test_explain_works_with_the_env_policy() -> None:
    rows = explain(EnvPolicy.from_environ({"CONTAINERS": "1"}), "anyone")
    verdicts = {(route.method, route.template): decision.allowed for route, decision in rows}
    assert verdicts[("GET", "/containers/json")] is True
    assert verdicts[("POST", "/containers/create")] is False


def test_exec_root_false_survives_extends() -> None:
    policy = policy_from_config(
        "test.toml",
        {
            "identities": {"dev": ["child"]},
            "groups": {
                "parent": {"sections": {"containers": "write"}, "guards": {"exec_root": False}},
                "child": {"extends": ["parent"], "guards": {"privileged": True}},
            },
        },
    )
    assert policy is not None
    guards = policy.groups["child"].guards
    assert guards.exec_root is False and guards.privileged is True


def test_explain_command_needs_no_certificate_files(tmp_path) -> None:
    import io

    from dockguard.cli import main

    config = tmp_path / "dockguard.toml"
    config.write_text(
        '[[listeners]]\nurl = "tls://0.0.0.0:2376?cert=missing.pem&key=missing.pem&client_ca=missing.pem"\n'
        '[identities]\nwatcher = ["readonly"]\n'
    )
    out = io.StringIO()
    assert main(["explain", "watcher", "GET", "/containers/json", "--config", str(config)], out) == 0
    assert out.getvalue().startswith("allow watcher GET /containers/json")
    # check-config, whose job is the whole file, still names the missing file.
    assert main(["check-config", str(config)], io.StringIO()) == 2


def test_explain_names_what_cluster_admin_routes_amount_to(tmp_path) -> None:
    import io

    from dockguard.cli import main

    config = tmp_path / "dockguard.toml"
    config.write_text('[identities]\nops = ["admin"]\nweb = ["portainer"]\n')
    out = io.StringIO()
    assert main(["explain", "ops", "--config", str(config)], out) == 0
    lines = {line.split()[2]: line for line in out.getvalue().splitlines()[1:] if line.split()[1] == "POST"}
    assert lines["/swarm/leave"].endswith("(equivalent to cluster admin)")
    assert "cluster admin" not in lines["/containers/create"]
    out = io.StringIO()
    main(["explain", "web", "--config", str(config)], out)
    assert "cluster admin" not in out.getvalue()  # portainer is not granted them
