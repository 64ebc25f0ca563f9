"""EnvPolicy: Tecnativa's variables, linuxserver's switches, dockguard's decisions."""

from __future__ import annotations

import pytest

from dockguard.envpolicy import (
    ACTION_SWITCHES,
    GATES,
    KNOWN_VARIABLES,
    SECTION_DEFAULTS,
    EnvPolicy,
    Gate,
    Setting,
)
from dockguard.errors import ConfigError
from dockguard.paths import canonicalise
from dockguard.policy import READ_METHODS, Decision, Policy
from dockguard.routes import SECTIONS, Section, lookup

DEFAULT_ON = {"EVENTS", "PING", "VERSION"}


def decide(env: dict[str, str], method: str, target: bytes) -> Decision:
    policy: Policy = EnvPolicy.from_environ(env)
    path = canonicalise(target)
    return policy.decide("anyone", method, path, lookup(method, path))


def outcome(env: dict[str, str], method: str, target: bytes) -> tuple[bool, str]:
    decision = decide(env, method, target)
    return decision.allowed, decision.rule


#: libpod (issue 17): linuxserver's LIBPOD_* variables (and dockguard's LIBPOD_BUILD, LIBPOD_COMMIT).
LIBPOD_VARIABLES = {
    f"LIBPOD_{name}"
    for name in (
        "BUILD COMMIT CONTAINERS EVENTS EXEC GENERATE IMAGES INFO MANIFESTS NETWORKS PING PLAY PODS SECRETS "
        "SYSTEM VERSION VOLUMES ALLOW_START ALLOW_STOP ALLOW_RESTARTS ALLOW_PAUSE ALLOW_UNPAUSE "
        "ALLOW_POD_START ALLOW_POD_STOP ALLOW_POD_RESTARTS ALLOW_POD_PAUSE ALLOW_POD_UNPAUSE"
    ).split()
}


# ---- the basics ------------------------------------------------------------------


def test_read_methods_are_exactly_get_and_head() -> None:
    assert READ_METHODS == frozenset({"GET", "HEAD"})


def test_known_variables_and_defaults() -> None:
    gates = {"ALLOW_ARCHIVE", "ALLOW_CHANGES", "ALLOW_EXPORT", "ALLOW_LOGS", "ALLOW_TOP"}
    # unset, the gates are open (Tecnativa has none); the sections default as Tecnativa's
    assert {env for env, on in KNOWN_VARIABLES.items() if on} == DEFAULT_ON | gates | {"LIBPOD_PING", "LIBPOD_VERSION"}
    assert set(KNOWN_VARIABLES) == (
        {s.env for s in SECTIONS}
        | {"POST"}
        | {"ALLOW_START", "ALLOW_STOP", "ALLOW_RESTARTS", "ALLOW_PAUSE", "ALLOW_UNPAUSE"}
        | {"ALLOW_ARCHIVE", "ALLOW_CHANGES", "ALLOW_EXPORT", "ALLOW_LOGS", "ALLOW_TOP"}
        | LIBPOD_VARIABLES  # libpod (issue 17): tests/test_podman_env.py
    )
    assert {env for env, on in SECTION_DEFAULTS.items() if on} == DEFAULT_ON


def test_config_error_says_where_what_and_why() -> None:
    error = ConfigError("/etc/dockguard.toml", "listen", "no port given; write host:port")
    assert (error.source, error.key, error.reason) == (
        "/etc/dockguard.toml",
        "listen",
        "no port given; write host:port",
    )
    assert str(error) == "/etc/dockguard.toml: listen: no port given; write host:port"


# ---- every section's default and switch --------------------------------------------


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.env)
def test_section_defaults(section: Section) -> None:
    target = b"/" + section.prefix.encode() + b"/x"
    if section.env in DEFAULT_ON:
        assert outcome({}, "GET", target) == (True, f"{section.env}=1")
    else:
        assert outcome({}, "GET", target) == (False, f"{section.env}=0")


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.env)
def test_each_section_opens_and_closes_alone(section: Section) -> None:
    target = b"/v1.41/" + section.prefix.encode()
    assert outcome({section.env: "1"}, "GET", target) == (True, f"{section.env}=1")
    assert outcome({section.env: "1"}, "HEAD", target) == (True, f"{section.env}=1")
    assert outcome({section.env: "0"}, "GET", target) == (False, f"{section.env}=0")
    # opening one section opens no other
    others = [s for s in SECTIONS if s != section and s.env not in DEFAULT_ON]
    for other in others:
        assert outcome({section.env: "1"}, "GET", b"/" + other.prefix.encode())[0] is False


def test_a_closed_section_says_how_to_open_it() -> None:
    decision = decide({}, "GET", b"/containers/json")
    assert decision == Decision(
        allowed=False,
        rule="CONTAINERS=0",
        reason="the containers section is closed (CONTAINERS=0); set CONTAINERS=1 to open it",
    )


EVERYTHING = {env: "1" for env in KNOWN_VARIABLES}


@pytest.mark.parametrize(
    "target",
    [
        b"/",
        b"/v1.41",
        b"/foo",
        b"/ping",
        b"/CONTAINERS/json",
        b"/V1.41/containers/json",
        b"/va1.41/containers/json",
        b"/containersfoo",
        b"/libpod/foo",
    ],
)
def test_paths_without_a_section_are_refused_whatever_is_open(target: bytes) -> None:
    assert outcome(EVERYTHING, "GET", target) == (False, "no section")


def test_no_section_hints_at_case() -> None:
    reason = decide(EVERYTHING, "GET", b"/Containers/json").reason
    assert "case-sensitive" in reason and "/containers" in reason


# ---- versions, encodings and queries ---------------------------------------------------


@pytest.mark.parametrize(
    ("env", "method", "target", "expected"),
    [
        ({"CONTAINERS": "1"}, "GET", b"/v1.41/containers/json", (True, "CONTAINERS=1")),
        ({"CONTAINERS": "1"}, "GET", b"/v01.41/containers/json", (True, "CONTAINERS=1")),
        ({"CONTAINERS": "1"}, "GET", b"/v1.41.0/containers/json", (True, "CONTAINERS=1")),
        ({"CONTAINERS": "1"}, "GET", b"/V1.41/containers/json", (False, "no section")),
        ({"CONTAINERS": "1"}, "GET", b"/va1.41/containers/json", (False, "no section")),
        # /v1.41abc/... and /%69mages/json are refused by canonicalise: tests/test_podman_paths.py
        # a query that looks like a path does not choose the section
        ({}, "GET", b"/_ping?/containers/json", (True, "PING=1")),
        ({"PING": "0", "CONTAINERS": "1"}, "GET", b"/_ping?/containers/json", (False, "PING=0")),
        ({"CONTAINERS": "1"}, "GET", b"/containers/json?all=1", (True, "CONTAINERS=1")),
    ],
)
def test_versions_encodings_and_queries(
    env: dict[str, str], method: str, target: bytes, expected: tuple[bool, str]
) -> None:
    assert outcome(env, method, target) == expected


# ---- the POST gate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "method", "target", "expected"),
    [
        # reads pass the gate
        ({}, "GET", b"/_ping", (True, "PING=1")),
        ({}, "HEAD", b"/_ping", (True, "PING=1")),
        ({}, "GET", b"/events", (True, "EVENTS=1")),
        ({}, "GET", b"/version", (True, "VERSION=1")),
        # everything else is a write and needs POST=1
        ({"CONTAINERS": "1"}, "POST", b"/containers/create", (False, "POST=0")),
        ({"CONTAINERS": "1", "POST": "1"}, "POST", b"/containers/create", (True, "CONTAINERS=1")),
        ({"POST": "1"}, "POST", b"/containers/create", (False, "CONTAINERS=0")),
        ({"CONTAINERS": "1"}, "DELETE", b"/containers/abc", (False, "POST=0")),
        ({"CONTAINERS": "1", "POST": "1"}, "DELETE", b"/containers/abc", (True, "CONTAINERS=1")),
        ({"VOLUMES": "1"}, "PUT", b"/volumes/x", (False, "POST=0")),
        ({"VOLUMES": "1", "POST": "1"}, "PATCH", b"/volumes/x", (True, "VOLUMES=1")),
        ({}, "OPTIONS", b"/_ping", (False, "POST=0")),
        ({}, "POST", b"/_ping", (False, "POST=0")),
        # only the exact GET and HEAD are reads
        ({}, "get", b"/_ping", (False, "POST=0")),
        ({}, "head", b"/_ping", (False, "POST=0")),
        ({}, "Get", b"/_ping", (False, "POST=0")),
        ({"POST": "1"}, "get", b"/_ping", (True, "PING=1")),
        # Tecnativa's well-known consequences
        ({"EXEC": "1"}, "POST", b"/v1.41/exec/abc/start", (False, "POST=0")),
        ({"EXEC": "1", "POST": "1"}, "POST", b"/v1.41/exec/abc/start", (True, "EXEC=1")),
        ({"CONTAINERS": "1", "POST": "1"}, "POST", b"/containers/abc/exec", (True, "CONTAINERS=1")),
        ({"EXEC": "1", "POST": "1"}, "POST", b"/containers/abc/exec", (False, "CONTAINERS=0")),
        ({"CONTAINERS": "1", "POST": "1"}, "POST", b"/containers/abc/attach", (True, "CONTAINERS=1")),
    ],
)
def test_post_gate(env: dict[str, str], method: str, target: bytes, expected: tuple[bool, str]) -> None:
    assert outcome(env, method, target) == expected


def test_a_lowercase_method_is_explained() -> None:
    reason = decide({}, "get", b"/_ping").reason
    assert "case-sensitive" in reason and "POST=1" in reason


# ---- the ALLOW_* container actions ---------------------------------------------------------

ACTION_CASES = [
    ("ALLOW_START", "start"),
    ("ALLOW_STOP", "stop"),
    ("ALLOW_RESTARTS", "stop"),
    ("ALLOW_RESTARTS", "restart"),
    ("ALLOW_RESTARTS", "kill"),
    ("ALLOW_PAUSE", "pause"),
    ("ALLOW_UNPAUSE", "unpause"),
]


def test_the_action_switches() -> None:
    assert [(s.env, sorted(s.actions)) for s in ACTION_SWITCHES] == [
        ("ALLOW_START", ["start"]),
        ("ALLOW_STOP", ["stop"]),
        ("ALLOW_RESTARTS", ["kill", "restart", "stop"]),
        ("ALLOW_PAUSE", ["pause"]),
        ("ALLOW_UNPAUSE", ["unpause"]),
    ]


@pytest.mark.parametrize("post", ["0", "1"])
@pytest.mark.parametrize(("switch", "action"), ACTION_CASES)
def test_an_action_switch_works_whatever_post_says(switch: str, action: str, post: str) -> None:
    target = f"/v1.41/containers/abc123/{action}".encode()
    # on: allowed without CONTAINERS, with POST 0 or 1 (linuxserver's order)
    assert outcome({switch: "1", "POST": post}, "POST", target) == (True, f"{switch}=1")


@pytest.mark.parametrize(("switch", "action"), ACTION_CASES)
def test_an_action_switch_that_is_off_leaves_the_action_to_post_and_containers(switch: str, action: str) -> None:
    target = f"/containers/abc123/{action}".encode()
    assert outcome({switch: "0"}, "POST", target) == (False, "POST=0")
    assert outcome({switch: "0", "POST": "1"}, "POST", target) == (False, "CONTAINERS=0")
    assert outcome({switch: "0", "POST": "1", "CONTAINERS": "1"}, "POST", target) == (
        True,
        "CONTAINERS=1",
    )


@pytest.mark.parametrize(
    ("env", "method", "target", "expected"),
    [
        # a switch allows its own actions only
        ({"ALLOW_START": "1"}, "POST", b"/containers/abc/stop", (False, "POST=0")),
        ({"ALLOW_STOP": "1"}, "POST", b"/containers/abc/restart", (False, "POST=0")),
        ({"ALLOW_STOP": "1"}, "POST", b"/containers/abc/kill", (False, "POST=0")),
        ({"ALLOW_RESTARTS": "1"}, "POST", b"/containers/abc/start", (False, "POST=0")),
        ({"ALLOW_PAUSE": "1"}, "POST", b"/containers/abc/unpause", (False, "POST=0")),
        ({"ALLOW_UNPAUSE": "1"}, "POST", b"/containers/abc/pause", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "POST", b"/containers/create", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "DELETE", b"/containers/abc", (False, "POST=0")),
        # the exact route /containers/{id}/{action}, for POST only
        ({"ALLOW_START": "1"}, "DELETE", b"/containers/abc/start", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "PUT", b"/containers/abc/start", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "post", b"/containers/abc/start", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "POST", b"/containers/abc/startx", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "POST", b"/containers/abc/start/x", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "POST", b"/containers/start", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "POST", b"/images/abc/start", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "POST", b"/exec/abc/start", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "POST", b"/Containers/abc/start", (False, "no section")),
        # ids use the proxies' characters [a-zA-Z0-9_.-]
        ({"ALLOW_START": "1"}, "POST", b"/containers/my_app.1-x/start", (True, "ALLOW_START=1")),
        ({"ALLOW_START": "1"}, "POST", b"/containers/a:b/start", (False, "POST=0")),
        ({"ALLOW_START": "1"}, "POST", b"/containers/a%20b/start", (False, "POST=0")),
        # the query does not matter
        ({"ALLOW_RESTARTS": "1"}, "POST", b"/containers/abc/kill?signal=SIGKILL", (True, "ALLOW_RESTARTS=1")),
        # the reported rule is the most specific switch that is on
        ({"ALLOW_STOP": "1", "ALLOW_RESTARTS": "1"}, "POST", b"/containers/abc/stop", (True, "ALLOW_STOP=1")),
        ({"ALLOW_RESTARTS": "1"}, "POST", b"/containers/abc/stop", (True, "ALLOW_RESTARTS=1")),
        # the user's own words
        ({"ALLOW_START": "2"}, "POST", b"/containers/abc/start", (True, "ALLOW_START=2")),
    ],
)
def test_action_switch_boundaries(env: dict[str, str], method: str, target: bytes, expected: tuple[bool, str]) -> None:
    assert outcome(env, method, target) == expected


def test_an_action_refused_by_post_names_its_switch() -> None:
    reason = decide({}, "POST", b"/containers/abc/stop").reason
    assert "ALLOW_STOP=1" in reason and "ALLOW_RESTARTS=1" in reason and "POST=1" in reason


def test_an_action_allowed_with_post_0_says_so() -> None:
    assert decide({"ALLOW_START": "1"}, "POST", b"/containers/abc/start").reason == (
        "starting containers is allowed (ALLOW_START=1), even though other writes are closed (POST=0)"
    )


# ---- linuxserver's gates on container sub-resources ----------------------------------------


@pytest.mark.parametrize("gate", GATES, ids=lambda g: g.env)
def test_a_gate_closes_its_resource_even_with_containers_open(gate: Gate) -> None:
    env, resource = gate.env, gate.resource
    target = f"/v1.41/containers/abc/{resource}".encode()
    closed = {"CONTAINERS": "1", env: "0"}
    assert outcome(closed, "GET", target) == (False, f"{env}=0")
    assert outcome(closed, "HEAD", target) == (False, f"{env}=0")
    assert outcome({"CONTAINERS": "1", env: "1"}, "GET", target) == (True, f"{env}=1")
    # unset, the gate follows CONTAINERS, as with Tecnativa's proxy
    assert outcome({"CONTAINERS": "1"}, "GET", target)[0] is True
    # a gate opens nothing on its own
    assert outcome({env: "1"}, "GET", target) == (False, "CONTAINERS=0")
    # deeper paths under the resource stay gated
    assert outcome(closed, "GET", target + b"/x") == (False, f"{env}=0")


@pytest.mark.parametrize(
    ("env", "method", "target", "expected"),
    [
        ({"CONTAINERS": "1"}, "GET", b"/containers/json", (True, "CONTAINERS=1")),
        ({"CONTAINERS": "1"}, "GET", b"/containers/abc/json", (True, "CONTAINERS=1")),
        ({"CONTAINERS": "1"}, "GET", b"/containers/abc/stats", (True, "CONTAINERS=1")),
        ({"CONTAINERS": "1"}, "GET", b"/containers/logs", (True, "CONTAINERS=1")),
        ({"CONTAINERS": "1"}, "GET", b"/containers/abc/logsx", (True, "CONTAINERS=1")),
        (
            {"CONTAINERS": "1", "ALLOW_LOGS": "1", "ALLOW_TOP": "0"},
            "GET",
            b"/containers/abc/top",
            (False, "ALLOW_TOP=0"),
        ),
        # writes to a gated resource pass the POST gate first
        ({"CONTAINERS": "1", "ALLOW_ARCHIVE": "1"}, "PUT", b"/containers/abc/archive", (False, "POST=0")),
        (
            {"CONTAINERS": "1", "POST": "1", "ALLOW_ARCHIVE": "0"},
            "PUT",
            b"/containers/abc/archive",
            (False, "ALLOW_ARCHIVE=0"),
        ),
        (
            {"CONTAINERS": "1", "POST": "1", "ALLOW_ARCHIVE": "1"},
            "PUT",
            b"/containers/abc/archive",
            (True, "ALLOW_ARCHIVE=1"),
        ),
        # gates are not writes: POST=0 does not matter to them
        ({"CONTAINERS": "1", "ALLOW_LOGS": "1", "POST": "0"}, "GET", b"/containers/abc/logs", (True, "ALLOW_LOGS=1")),
        # other sections have no gates
        ({"IMAGES": "1"}, "GET", b"/images/abc/logs", (True, "IMAGES=1")),
        # a drop-in for Tecnativa: logs and docker save stay in their sections,
        # though groups count them as sensitive reads
        ({"CONTAINERS": "1"}, "GET", b"/v1.41/containers/abc/logs?follow=1", (True, "ALLOW_LOGS=1")),
        ({"SERVICES": "1"}, "GET", b"/services/abc/logs", (True, "ALLOW_LOGS=1")),
        ({"TASKS": "1", "ALLOW_LOGS": "0"}, "GET", b"/tasks/abc/logs", (False, "ALLOW_LOGS=0")),
        ({"IMAGES": "1"}, "GET", b"/v1.41/images/get?names=app", (True, "IMAGES=1")),
        ({"IMAGES": "1"}, "GET", b"/images/library/app:1/get", (True, "IMAGES=1")),
        # linuxserver's ALLOW_EXPORT is container export only, as there
        ({"IMAGES": "1", "ALLOW_EXPORT": "0"}, "GET", b"/images/app/get", (True, "IMAGES=1")),
        ({"IMAGES": "0"}, "GET", b"/images/app/get", (False, "IMAGES=0")),
    ],
)
def test_gate_boundaries(env: dict[str, str], method: str, target: bytes, expected: tuple[bool, str]) -> None:
    assert outcome(env, method, target) == expected


def test_a_closed_gate_and_a_closed_section_both_get_named() -> None:
    reason = decide({"ALLOW_LOGS": "0"}, "GET", b"/containers/abc/logs").reason
    assert "set CONTAINERS=1" in reason and "ALLOW_LOGS=1" in reason
    reason = decide({"CONTAINERS": "1", "ALLOW_LOGS": "0"}, "GET", b"/containers/abc/logs").reason
    assert reason == (
        "container logs are closed (ALLOW_LOGS=0) even though the containers section "
        "is open (CONTAINERS=1); set ALLOW_LOGS=1 to open them"
    )


# ---- truthiness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("0", False), ("2", True), ("10", True), ("00", False), ("01", True), ("007", True), ("", False)],
)
def test_numbers_are_read_as_haproxy_reads_them(value: str, on: bool) -> None:
    policy = EnvPolicy.from_environ({"CONTAINERS": value})
    assert policy.is_on("CONTAINERS") is on
    assert outcome({"CONTAINERS": value}, "GET", b"/containers/json")[0] is on


@pytest.mark.parametrize("env", sorted(DEFAULT_ON))
def test_an_empty_value_takes_the_default(env: str) -> None:
    policy = EnvPolicy.from_environ({env: ""})
    assert policy.setting(env) == Setting(env=env, on=True, written=None)
    assert EnvPolicy.from_environ({env: "0"}).is_on(env) is False


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("true", "'true' is not a number: Tecnativa reads it as 0 (off); write 1 to open or 0 to close"),
        ("TRUE", "'TRUE' is not a number: Tecnativa reads it as 0 (off); write 1 to open or 0 to close"),
        ("yes", "'yes' is not a number: Tecnativa reads it as 0 (off); write 1 to open or 0 to close"),
        ("on", "'on' is not a number: Tecnativa reads it as 0 (off); write 1 to open or 0 to close"),
        ("false", "'false' is not a number: Tecnativa reads it as 0 (off); write 1 to open or 0 to close"),
        ("no", "'no' is not a number: Tecnativa reads it as 0 (off); write 1 to open or 0 to close"),
        ("1abc", "'1abc' is not a number: Tecnativa reads it as 1 (on); write 1 to open or 0 to close"),
        ("1 ", "'1 ' is not a number: Tecnativa reads it as 1 (on); write 1 to open or 0 to close"),
        ("0.5", "'0.5' is not a number: Tecnativa reads it as 0 (off); write 1 to open or 0 to close"),
        ("1.0", "'1.0' is not a number: Tecnativa reads it as 1 (on); write 1 to open or 0 to close"),
        ("0x1", "'0x1' is not a number: Tecnativa reads it as 0 (off); write 1 to open or 0 to close"),
        (" 1", "' 1' is not a number dockguard accepts (only the digits 0-9); write 1 to open or 0 to close"),
        ("-1", "'-1' is not a number dockguard accepts (only the digits 0-9); write 1 to open or 0 to close"),
        ("+1", "'+1' is not a number dockguard accepts (only the digits 0-9); write 1 to open or 0 to close"),
        ("\u0661", "'\u0661' is not a number dockguard accepts (only the digits 0-9); write 1 to open or 0 to close"),
        ("é", "'é' is not a number dockguard accepts (only the digits 0-9); write 1 to open or 0 to close"),
    ],
)
def test_anything_else_is_refused_loudly(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as refused:
        EnvPolicy.from_environ({"CONTAINERS": value})
    assert (refused.value.source, refused.value.key, refused.value.reason) == (
        "environment",
        "CONTAINERS",
        reason,
    )
    assert str(refused.value) == f"environment: CONTAINERS: {reason}"


@pytest.mark.parametrize("env", ["POST", "EVENTS", "ALLOW_START", "ALLOW_UNPAUSE", "ALLOW_LOGS"])
def test_every_known_variable_is_checked(env: str) -> None:
    with pytest.raises(ConfigError) as refused:
        EnvPolicy.from_environ({env: "true"})
    assert refused.value.key == env


def test_unknown_variables_are_ignored() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "containers": "true",
        "CONTAINER": "yes",
        "LOG_LEVEL": "info",
        "SOCKET_PATH": "/var/run/docker.sock",
        "DISABLE_IPV6": "true",
    }
    assert EnvPolicy.from_environ(environ) == EnvPolicy.from_environ({})


# ---- the policy object --------------------------------------------------------------------


def test_identity_does_not_matter() -> None:
    policy = EnvPolicy.from_environ({"CONTAINERS": "1"})
    path = canonicalise(b"/containers/json")
    get, post = lookup("GET", path), lookup("POST", path)
    assert policy.decide("alice", "GET", path, get) == policy.decide("bob", "GET", path, get)
    assert policy.decide("", "POST", path, post) == policy.decide("alice", "POST", path, post)


def test_env_policy_is_a_frozen_value() -> None:
    one = EnvPolicy.from_environ({"CONTAINERS": "1"})
    assert one == EnvPolicy.from_environ({"CONTAINERS": "1"})
    assert hash(one) == hash(EnvPolicy.from_environ({"CONTAINERS": "1"}))
    assert one != EnvPolicy.from_environ({})
    with pytest.raises(AttributeError):
        one.settings = ()  # type: ignore[misc]


def test_env_policy_needs_every_variable() -> None:
    with pytest.raises(ValueError):
        EnvPolicy(settings=(Setting(env="POST", on=True),))


def test_setting_words() -> None:
    assert Setting(env="POST", on=True, written="1").words == "POST=1"
    assert Setting(env="POST", on=True, written="007").words == "POST=007"
    assert Setting(env="EVENTS", on=True).words == "EVENTS=1"
    assert Setting(env="AUTH", on=False).words == "AUTH=0"


# ---- describe -----------------------------------------------------------------------------


def test_describe_the_defaults() -> None:
    lines = EnvPolicy.from_environ({}).describe()
    assert lines[0] == "open sections: events (EVENTS=1), ping (PING=1), version (VERSION=1)"
    assert lines[1].startswith("closed sections: auth, build, commit, configs, containers,")
    assert any(line.startswith("writes: closed (POST=0)") for line in lines)
    assert not any(line.startswith("warning:") for line in lines)


def test_describe_an_open_proxy() -> None:
    lines = EnvPolicy.from_environ(EVERYTHING).describe()
    assert "closed sections: none" in lines
    assert any(line.startswith("writes: open (POST=1)") for line in lines)
    assert any("logs open (ALLOW_LOGS=1)" in line for line in lines)
    assert not any(line.startswith(("warning:", "note:")) for line in lines)


@pytest.mark.parametrize("switch", [s.env for s in ACTION_SWITCHES])
def test_describe_warns_about_an_action_switch_with_post_0(switch: str) -> None:
    warnings = [line for line in EnvPolicy.from_environ({switch: "1"}).describe() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert f"{switch}=1" in warnings[0] and "POST=0" in warnings[0] and "Tecnativa" in warnings[0]

    quiet = EnvPolicy.from_environ({switch: "1", "POST": "1"}).describe()
    assert not any(line.startswith("warning:") for line in quiet)


def test_describe_does_not_warn_about_gates_but_notes_a_closed_containers_section() -> None:
    lines = EnvPolicy.from_environ({"ALLOW_LOGS": "1"}).describe()
    assert not any(line.startswith("warning:") for line in lines)
    assert "note: ALLOW_LOGS=1 has no effect while CONTAINERS=0" in lines
    assert not any(
        line.startswith("note:") for line in EnvPolicy.from_environ({"ALLOW_LOGS": "1", "CONTAINERS": "1"}).describe()
    )


def test_describe_lists_the_allowed_actions() -> None:
    lines = EnvPolicy.from_environ({"ALLOW_START": "1", "ALLOW_STOP": "1"}).describe()
    actions = [line for line in lines if line.startswith("container actions")]
    assert actions == [
        "container actions allowed whatever POST and CONTAINERS say: "
        "starting containers (ALLOW_START=1), stopping containers (ALLOW_STOP=1)"
    ]
