"""Remembered verdicts (L{dockguard.relay.verdict.Verdicts}): the same as deciding afresh."""

from __future__ import annotations

from dockguard.envpolicy import EnvPolicy
from dockguard.groups import GroupPolicy
from dockguard.paths import canonicalise
from dockguard.presets import PRESETS
from dockguard.relay.verdict import Forward, Refuse, Verdicts, decide

POLICY = GroupPolicy(identities={"reader": ("readonly",), "nobody": ()}, groups=dict(PRESETS))
LIST = (b"GET", b"/v1.41/containers/json", (), False)


def test_each_identity_gets_its_own_verdict() -> None:
    verdicts = Verdicts()
    assert type(verdicts.decide(*LIST, "reader", POLICY, None)) is Forward
    assert type(verdicts.decide(*LIST, "nobody", POLICY, None)) is Refuse
    assert type(verdicts.decide(*LIST, "reader", POLICY, None)) is Forward


def test_learn_mode_is_part_of_what_is_remembered() -> None:
    verdicts = Verdicts()
    assert type(verdicts.decide(*LIST, "nobody", POLICY, None)) is Refuse
    learned = verdicts.decide(*LIST, "nobody", POLICY, "tcp://127.0.0.1:2375")
    assert type(learned) is Forward and learned.word == "would-deny"


def test_a_new_policy_forgets_what_the_old_one_decided() -> None:
    verdicts = Verdicts()
    closed, opened = EnvPolicy.from_environ({}), EnvPolicy.from_environ({"CONTAINERS": "1"})
    assert type(verdicts.decide(*LIST, "tool", closed, None)) is Refuse
    assert type(verdicts.decide(*LIST, "tool", opened, None)) is Forward


def test_what_is_remembered_is_what_deciding_afresh_gives() -> None:
    verdicts = Verdicts()
    for identity in ("reader", "nobody"):
        for target in (b"/v1.41/containers/json", b"/_ping", b"/v1.41/containers/x/export", b"/nope/%0a"):
            for method in (b"GET", b"POST", b"HEAD"):
                args = (method, target, (b"application/json",), method == b"POST", identity, POLICY, None)
                assert verdicts.decide(*args) == decide(*args) == verdicts.decide(*args)


def test_memory_is_bounded() -> None:
    verdicts = Verdicts(size=8)
    for n in range(20):
        verdicts.decide(b"GET", b"/v1.41/containers/c%d/json" % n, (), False, "reader", POLICY, None)
        assert len(verdicts._known) <= 8
    verdicts.decide(b"GET", b"/v1.41/containers/" + b"x" * 600 + b"/json", (), False, "reader", POLICY, None)
    assert all(len(key[1]) < 600 for key in verdicts._known), "a long target is not remembered"


# --- plans: what the relay does because of who a resource belongs to ----------------

from typing import Any  # noqa: E402

import pytest  # noqa: E402

from dockguard.groups import Group  # noqa: E402
from dockguard.relay.verdict import Inspect, Plan, Verdict  # noqa: E402
from dockguard.scope import Scope, ScopedGrant  # noqa: E402

_SCOPED_SECTIONS = {"containers": "write", "exec": "write", "volumes": "write", "networks": "write"}
_OTHER_SECTIONS = {"events": "read", "system": "read", "images": "read", "commit": "write", "info": "read"}


def _group(name: str, scope: Scope | None = None, redact: frozenset[str] = frozenset(), **sections: str) -> Group:
    return Group(name, {**_SCOPED_SECTIONS, **_OTHER_SECTIONS, **sections}, (), scope=scope, redact=redact)  # type: ignore[arg-type]


GROUPS = {
    "web": _group("web", Scope(names=["web-*"])),
    "mine": _group("mine", Scope(owner=True), frozenset({"env", "labels"})),
    "admin": _group("admin"),
    "hidden": _group("hidden", None, frozenset({"env", "mounts"})),
    "hidden2": _group("hidden2", None, frozenset({"env", "labels"})),
    "reader": Group("reader", {"containers": "read"}, (), scope=Scope(labels=["team=a"])),
    "imager": Group("imager", {"images": "write"}, ()),
}
SCOPED_POLICY = GroupPolicy(
    identities={
        "scoped": ("web",),
        "two": ("web", "mine"),
        "mixed": ("web", "admin"),
        "admin": ("admin",),
        "hidden": ("hidden",),
        "hidden2": ("hidden", "hidden2"),
        "scoped-hidden": ("mine",),
        "scoped-and-hidden": ("mine", "hidden"),
        "reader": ("reader", "imager"),
    },
    groups=GROUPS,
)
ENV_POLICY = EnvPolicy.from_environ(
    {"CONTAINERS": "1", "EXEC": "1", "POST": "1", "VOLUMES": "1", "NETWORKS": "1", "IMAGES": "1", "EVENTS": "1"}
)
JSON = (b"application/json",)


def verdict(identity: str, method: str, target: bytes, policy: Any = SCOPED_POLICY) -> Verdict:
    has_body = method in ("POST", "PUT")
    return decide(method.encode(), target, JSON if has_body else (), has_body, identity, policy, None)


def plan_of(identity: str, method: str, target: bytes, policy: Any = SCOPED_POLICY) -> Plan | None:
    result = verdict(identity, method, target, policy)
    assert type(result) in (Forward, Inspect), result
    assert type(result) is not Refuse
    return result.plan  # type: ignore[union-attr]


def named(kind: str, ref: str, before: bytes, after: bytes, **more: Any) -> Plan:
    return Plan(resolve=kind, ref=ref, before=before, after=after, resource=kind, **more)


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        # unversioned, versioned, with queries: the target around the name
        ("GET", b"/containers/web-1/json", named("container", "web-1", b"/containers/", b"/json")),
        ("GET", b"/v1.41/containers/web-1/json", named("container", "web-1", b"/v1.41/containers/", b"/json")),
        (
            "GET",
            b"/v1.47/containers/web-1/json?size=1",
            named("container", "web-1", b"/v1.47/containers/", b"/json?size=1"),
        ),
        (
            "GET",
            b"/v01.41/containers/abc/top?ps_args=aux",
            named("container", "abc", b"/v01.41/containers/", b"/top?ps_args=aux"),
        ),
        (
            "GET",
            b"/containers/web-1/logs?follow=1&stdout=1&tail=all",
            named("container", "web-1", b"/containers/", b"/logs?follow=1&stdout=1&tail=all"),
        ),
        (
            "GET",
            b"/containers/web-1/archive?path=%2Fetc",
            named("container", "web-1", b"/containers/", b"/archive?path=%2Fetc"),
        ),
        (
            "HEAD",
            b"/containers/web-1/archive?path=/etc",
            named("container", "web-1", b"/containers/", b"/archive?path=/etc"),
        ),
        (
            "PUT",
            b"/v1.44/containers/web-1/archive?path=/tmp",
            named("container", "web-1", b"/v1.44/containers/", b"/archive?path=/tmp"),
        ),
        ("POST", b"/containers/web-1/start", named("container", "web-1", b"/containers/", b"/start")),
        (
            "POST",
            b"/containers/web-1/kill?signal=SIGKILL",
            named("container", "web-1", b"/containers/", b"/kill?signal=SIGKILL"),
        ),
        (
            "POST",
            b"/containers/web-1/attach?stream=1&stdin=1",
            named("container", "web-1", b"/containers/", b"/attach?stream=1&stdin=1"),
        ),
        (
            "GET",
            b"/containers/web-1/attach/ws?stdin=1",
            named("container", "web-1", b"/containers/", b"/attach/ws?stdin=1"),
        ),
        ("POST", b"/containers/web-1/update", named("container", "web-1", b"/containers/", b"/update")),
        # a legacy link name spans segments
        ("GET", b"/containers/web/db/json", named("container", "web/db", b"/containers/", b"/json")),
        (
            "GET",
            b"/v1.41/containers/web/db/archive?path=/",
            named("container", "web/db", b"/v1.41/containers/", b"/archive?path=/"),
        ),
        # the path as the daemon reads it: decoded once, the rest re-encoded
        # (escaped literal segments such as %6Aso%6E are refused: tests/test_podman_paths.py)
        ("GET", b"/containers/we%62-1/json", named("container", "web-1", b"/containers/", b"/json")),
        # checkpoints: the container is the name
        ("GET", b"/containers/web-1/checkpoints", named("container", "web-1", b"/containers/", b"/checkpoints")),
        ("POST", b"/containers/web-1/checkpoints", named("container", "web-1", b"/containers/", b"/checkpoints")),
        (
            "DELETE",
            b"/containers/web-1/checkpoints/cp1",
            named("container", "web-1", b"/containers/", b"/checkpoints/cp1", forget=True),
        ),
        (
            "DELETE",
            b"/v1.41/containers/web-1/checkpoints/c@p:1?dir=x",
            named("container", "web-1", b"/v1.41/containers/", b"/checkpoints/c@p:1?dir=x", forget=True),
        ),
        (
            "DELETE",
            b"/containers/web-1/checkpoints/a%20b",
            named("container", "web-1", b"/containers/", b"/checkpoints/a%20b", forget=True),
        ),
        # removes and renames forget what was looked up
        ("DELETE", b"/containers/web-1", named("container", "web-1", b"/containers/", b"", forget=True)),
        (
            "DELETE",
            b"/v1.43/containers/web-1?force=1&v=1",
            named("container", "web-1", b"/v1.43/containers/", b"?force=1&v=1", forget=True),
        ),
        (
            "DELETE",
            b"/containers/web/db?link=1",
            named("container", "web/db", b"/containers/", b"?link=1", forget=True),
        ),
        (
            "POST",
            b"/containers/web-1/rename?name=web-2",
            named("container", "web-1", b"/containers/", b"/rename?name=web-2", forget=True, renamed="web-2"),
        ),
        (
            "POST",
            b"/containers/web-1/rename?name=%2Fdb",
            named("container", "web-1", b"/containers/", b"/rename?name=%2Fdb", forget=True, renamed="db"),
        ),
        # exec: create records the owner; the instance routes resolve the exec
        ("POST", b"/containers/web-1/exec", named("container", "web-1", b"/containers/", b"/exec", exec_create=True)),
        (
            "POST",
            b"/v1.41/containers/web/db/exec",
            named("container", "web/db", b"/v1.41/containers/", b"/exec", exec_create=True),
        ),
        ("POST", b"/exec/b2e7f1c6a9d8/start", named("exec", "b2e7f1c6a9d8", b"/exec/", b"/start")),
        (
            "POST",
            b"/v1.41/exec/b2e7f1c6a9d8/resize?h=40&w=120",
            named("exec", "b2e7f1c6a9d8", b"/v1.41/exec/", b"/resize?h=40&w=120"),
        ),
        ("GET", b"/exec/b2e7f1c6a9d8/json", named("exec", "b2e7f1c6a9d8", b"/exec/", b"/json")),
        # volumes and networks
        ("GET", b"/volumes/data", named("volume", "data", b"/volumes/", b"")),
        ("GET", b"/v1.41/volumes/data", named("volume", "data", b"/v1.41/volumes/", b"")),
        ("PUT", b"/volumes/data?version=3", named("volume", "data", b"/volumes/", b"?version=3")),
        ("DELETE", b"/volumes/data?force=1", named("volume", "data", b"/volumes/", b"?force=1", forget=True)),
        ("GET", b"/networks/front", named("network", "front", b"/networks/", b"")),
        (
            "GET",
            b"/networks/front?verbose=true&scope=local",
            named("network", "front", b"/networks/", b"?verbose=true&scope=local"),
        ),
        ("GET", b"/networks/a/b", named("network", "a/b", b"/networks/", b"")),
        ("DELETE", b"/v1.45/networks/front", named("network", "front", b"/v1.45/networks/", b"", forget=True)),
    ],
)
def test_a_scoped_request_naming_a_resource_is_looked_up(method: str, target: bytes, expected: Plan) -> None:
    result = verdict("scoped", method, target)
    assert type(result) in (Forward, Inspect)
    assert result.plan == expected  # type: ignore[union-attr]
    # the name's place: the relay sends before + full ID + after
    if b"%" not in target.partition(b"?")[0]:
        assert expected.before + expected.ref.encode() + expected.after == target


@pytest.mark.parametrize(
    ("target", "ref", "unresolvable"),
    [
        (
            b"/exec/b2e7f1c6a9d84d1c9e3f7a0b5c2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d/json",
            "b2e7f1c6a9d84d1c9e3f7a0b5c2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d",
            False,
        ),
        (b"/exec/abc/json", "abc", False),
        # exec IDs are random hexadecimal: the daemon cannot have these
        (b"/exec/a%20b/json", "a b", True),
        (b"/exec/-abc/json", "-abc", True),
        (b"/exec/_abc/json", "_abc", True),
        (b"/exec/.abc/json", ".abc", True),
        (b"/exec/a:b/json", "a:b", True),
        (b"/exec/a@b/json", "a@b", True),
        (b"/exec/a%22b/json", 'a"b', True),
        (b"/exec/a$b/json", "a$b", True),
        (b"/exec/a/-b/json", "a/-b", True),
        # names the daemon can have whatever characters they use, so they are
        # looked up: any network name but a blank one (moby only refuses
        # those), any volume name a volume driver plugin accepts (only the
        # local driver checks), and a legacy link alias (never checked)
        (b"/containers/web-1/json", "web-1", False),
        (b"/containers/a%20b/json", "a b", False),
        (b"/containers/web/a%20b/json", "web/a b", False),
        (b"/containers/-x/json", "-x", False),
        (b"/volumes/a:b", "a:b", False),
        (b"/volumes/a%20b", "a b", False),
        (b"/networks/my%20net", "my net", False),
        (b"/networks/%5E", "^", False),
        (b"/networks/bridge%20", "bridge ", False),
    ],
)
def test_unresolvable_names(target: bytes, ref: str, unresolvable: bool) -> None:
    method = "GET"
    plan = plan_of("scoped", method, target)
    assert plan is not None and plan.ref == ref and plan.unresolvable is unresolvable
    # whatever the name, the target around it stays ASCII and re-readable
    assert plan.before.isascii() and plan.after.isascii()


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("POST", b"/exec/abc/start", named("exec", "abc", b"/exec/", b"/start")),
        ("POST", b"/v1.41/exec/abc/resize?h=1&w=2", named("exec", "abc", b"/v1.41/exec/", b"/resize?h=1&w=2")),
        ("GET", b"/exec/abc/json", named("exec", "abc", b"/exec/", b"/json")),
        ("GET", b"/exec/a%20b/json", named("exec", "a b", b"/exec/", b"/json", unresolvable=True)),
        # a container's exec create records the owner, without a look-up
        (
            "POST",
            b"/containers/web-1/exec",
            Plan(ref="web-1", before=b"/containers/", after=b"/exec", resource="container", exec_create=True),
        ),
    ],
)
@pytest.mark.parametrize("identity", ["admin", "hidden", "env"])
def test_exec_instances_are_always_looked_up(identity: str, method: str, target: bytes, expected: Plan) -> None:
    policy = ENV_POLICY if identity == "env" else SCOPED_POLICY
    assert plan_of(identity, method, target, policy) == expected


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", b"/containers/web-1/json"),
        ("POST", b"/containers/web-1/start"),
        ("DELETE", b"/containers/web-1"),
        ("POST", b"/containers/web-1/rename?name=x"),
        ("GET", b"/volumes/data"),
        ("DELETE", b"/networks/front"),
        ("POST", b"/containers/prune"),
        ("GET", b"/system/df"),
        ("POST", b"/commit?container=web-1"),
        ("POST", b"/networks/bridge/connect"),
        ("POST", b"/volumes/prune"),
        ("GET", b"/containers/json"),
        ("GET", b"/volumes"),
        ("GET", b"/networks"),
        ("GET", b"/events"),
        ("GET", b"/images/nginx/json"),
    ],
)
@pytest.mark.parametrize("identity", ["admin", "mixed", "env"])
def test_without_a_scope_nothing_is_planned(identity: str, method: str, target: bytes) -> None:
    # an unscoped group granting the route too: no look-up, no refusal, no view
    policy = ENV_POLICY if identity == "env" else SCOPED_POLICY
    result = verdict(identity, method, target, policy)
    if identity == "env" and target.startswith((b"/commit", b"/system")):
        assert type(result) is Refuse and result.rule != "scope"  # closed sections
        return
    assert type(result) in (Forward, Inspect) and result.plan is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("method", "target", "section"),
    [
        ("POST", b"/containers/prune", "containers"),
        ("POST", b"/v1.41/containers/prune?filters=%7B%7D", "containers"),
        ("POST", b"/volumes/prune", "volumes"),
        ("POST", b"/networks/prune", "networks"),
        ("GET", b"/system/df", "system"),
        ("GET", b"/v1.47/system/df?type=volume", "system"),
        ("POST", b"/networks/bridge/connect", "networks"),
        ("POST", b"/networks/bridge/disconnect", "networks"),
        # a path in a scoped section with no known route: nothing to check a scope on
        ("GET", b"/containers/web-1/foo", "containers"),
        ("POST", b"/containers/web-1/start/now", "containers"),
        ("GET", b"/exec/abc/foo", "exec"),
        ("POST", b"/exec/start", "exec"),
        ("POST", b"/volumes/data/foo", "volumes"),
        ("DELETE", b"/volumes", "volumes"),
        ("POST", b"/networks/front/foo", "networks"),
        ("PUT", b"/networks/front", "networks"),
    ],
)
@pytest.mark.parametrize("identity", ["scoped", "two"])
def test_what_no_scope_can_hold_is_refused_under_scopes(
    identity: str, method: str, target: bytes, section: str
) -> None:
    result = verdict(identity, method, target)
    assert type(result) is Refuse
    assert (result.status, result.rule, result.section, result.word) == (403, "scope", section, "deny")
    groups = "web, mine" if identity == "two" else "web"
    assert f"only by scoped groups ({groups})" in result.reason
    assert result.message.startswith(f"dockguard refused {method} /")
    assert f" for {identity}: " in result.message and result.message.endswith("(rule: scope)")
    assert result.canonical == canonicalise(target).path


def test_an_unscoped_group_that_does_not_grant_the_route_does_not_lift_the_refusal() -> None:
    # reader: a scoped group with containers=read, and an unscoped one for images only
    result = verdict("reader", "GET", b"/containers/web-1/foo")
    assert type(result) is Refuse and result.rule == "scope"
    assert plan_of("reader", "GET", b"/images/foo/bar/baz") is None  # not a scoped section
    assert plan_of("reader", "GET", b"/containers/json") == Plan(view="list", resource="container")


@pytest.mark.parametrize(
    ("target", "resource"),
    [
        (b"/containers/json", "container"),
        (b"/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%22%5D%7D", "container"),
        (b"/volumes", "volume"),
        (b"/v1.41/volumes?filters=%7B%7D", "volume"),
        (b"/networks", "network"),
        (b"/networks?filters=%7B%22scope%22%3A%7B%22swarm%22%3Atrue%7D%7D", "network"),
    ],
)
@pytest.mark.parametrize(
    ("identity", "planned"),
    [
        ("scoped", True),
        ("two", True),
        ("scoped-hidden", True),
        ("hidden", True),
        ("hidden2", True),
        ("admin", False),
        ("mixed", False),
        ("env", False),
    ],
)
def test_lists_are_filtered_under_a_scope_or_a_redaction(
    target: bytes, resource: str, identity: str, planned: bool
) -> None:
    policy = ENV_POLICY if identity == "env" else SCOPED_POLICY
    expected = Plan(view="list", resource=resource) if planned else None
    assert plan_of(identity, "GET", target, policy) == expected


@pytest.mark.parametrize("target", [b"/events", b"/v1.41/events?since=1700000000&filters=%7B%7D"])
@pytest.mark.parametrize(
    ("identity", "planned"),
    [
        ("scoped", True),
        ("two", True),
        ("scoped-hidden", True),
        ("hidden", False),
        ("admin", False),
        ("mixed", False),
        ("env", False),
    ],
)
def test_events_are_filtered_under_a_scope_only(target: bytes, identity: str, planned: bool) -> None:
    policy = ENV_POLICY if identity == "env" else SCOPED_POLICY
    assert plan_of(identity, "GET", target, policy) == (Plan(view="events") if planned else None)


@pytest.mark.parametrize(
    ("identity", "target", "expected"),
    [
        # the intersection of what the granting groups hide
        (
            "hidden",
            b"/containers/web-1/json",
            Plan(ref="web-1", before=b"/containers/", after=b"/json", view="inspect", resource="container"),
        ),
        (
            "hidden2",
            b"/v1.41/containers/abc/json?size=1",
            Plan(ref="abc", before=b"/v1.41/containers/", after=b"/json?size=1", view="inspect", resource="container"),
        ),
        (
            "scoped-hidden",
            b"/containers/web-1/json",
            named("container", "web-1", b"/containers/", b"/json", view="inspect"),
        ),
        ("scoped", b"/containers/web-1/json", named("container", "web-1", b"/containers/", b"/json")),
        ("admin", b"/containers/web-1/json", None),
        ("env", b"/containers/web-1/json", None),
        # the unscoped group decides, and it hides env
        (
            "scoped-and-hidden",
            b"/containers/web-1/json",
            Plan(ref="web-1", before=b"/containers/", after=b"/json", view="inspect", resource="container"),
        ),
        # images are not scoped: only the redaction matters
        ("hidden", b"/images/nginx/json", Plan(view="inspect", resource="image")),
        ("hidden", b"/v1.41/images/ghcr.io/org/app:1.2/json", Plan(view="inspect", resource="image")),
        ("scoped-hidden", b"/images/nginx/json", Plan(view="inspect", resource="image")),
        ("scoped", b"/images/nginx/json", None),
        ("admin", b"/images/nginx/json", None),
        ("env", b"/images/nginx/json", None),
        # other reads are not rewritten
        ("hidden", b"/containers/web-1/top", None),
        ("hidden", b"/images/nginx/history", None),
        ("hidden", b"/volumes/data", None),
        ("hidden", b"/networks/front", None),
        ("hidden", b"/exec/abc/json", named("exec", "abc", b"/exec/", b"/json")),
    ],
)
def test_inspects_are_rewritten_only_under_a_redaction(identity: str, target: bytes, expected: Plan | None) -> None:
    policy = ENV_POLICY if identity == "env" else SCOPED_POLICY
    assert plan_of(identity, "GET", target, policy) == expected


def test_redactions_that_do_not_intersect_hide_nothing() -> None:
    policy = GroupPolicy(
        identities={"x": ("a", "b")},
        groups={"a": _group("a", None, frozenset({"env"})), "b": _group("b", None, frozenset({"labels"}))},
    )
    assert plan_of("x", "GET", b"/containers/web-1/json", policy) is None
    assert plan_of("x", "GET", b"/images/nginx/json", policy) is None
    assert plan_of("x", "GET", b"/containers/json", policy) is None


@pytest.mark.parametrize(
    ("target", "resource", "kind"),
    [
        (b"/containers/create?name=web-1", "container", "container.create"),
        (b"/v1.41/containers/create", "container", "container.create"),
        (b"/volumes/create", "volume", "volume.create"),
        (b"/v1.47/networks/create", "network", "network.create"),
    ],
)
@pytest.mark.parametrize("identity", ["scoped", "two", "admin", "mixed", "hidden"])
def test_creates_are_stamped_under_groups(target: bytes, resource: str, kind: str, identity: str) -> None:
    result = verdict(identity, "POST", target)
    assert type(result) is Inspect and result.kind == kind
    assert result.plan == Plan(create=True, resource=resource)
    assert result.decision.owner == identity


@pytest.mark.parametrize("target", [b"/containers/create?name=web-1", b"/volumes/create", b"/networks/create"])
def test_creates_are_not_stamped_under_environment_variables(target: bytes) -> None:
    result = verdict("env", "POST", target, ENV_POLICY)
    assert type(result) is Forward and result.plan is None and result.decision.owner is None


def test_scoped_decisions_carry_the_grants_of_every_scoped_group() -> None:
    result = verdict("two", "GET", b"/containers/web-1/json")
    assert type(result) is Forward
    scoped = result.decision.scoped
    assert [grant.group for grant in scoped] == ["web", "mine"]
    assert all(type(grant) is ScopedGrant for grant in scoped)
    assert scoped[1].redact == frozenset({"env", "labels"})
    assert result.decision.redact == frozenset()  # web hides nothing
    mixed = verdict("mixed", "GET", b"/containers/web-1/json")
    assert type(mixed) is Forward and mixed.decision.scoped == ()


@pytest.mark.parametrize("identity", ["scoped", "admin"])
def test_refusals_come_before_plans(identity: str) -> None:
    # the policy and the meaning checks refuse first: a plan is never made for them
    closed = GroupPolicy(
        identities={"x": ("c",)}, groups={"c": Group("c", {"containers": "read"}, (), scope=Scope(owner=True))}
    )
    result = verdict("x", "POST", b"/containers/web-1/start", closed)
    assert type(result) is Refuse and result.rule.startswith("needs")
    query = verdict(identity, "GET", b"/containers/web-1/json?a=1;b=2")
    assert type(query) is Refuse and query.rule == "meaning"


def test_plans_are_remembered_with_their_verdicts() -> None:
    verdicts = Verdicts()
    for identity in ("scoped", "mixed", "hidden"):
        for target in (b"/containers/web-1/json", b"/containers/prune", b"/containers/json", b"/exec/abc/start"):
            for method in (b"GET", b"POST"):
                args = (method, target, JSON, method == b"POST", identity, SCOPED_POLICY, None)
                assert verdicts.decide(*args) == decide(*args) == verdicts.decide(*args)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            b"/commit?container=web-1",
            Plan(resolve="container", ref="web-1", before=b"/commit?container=", resource="container"),
        ),
        (
            b"/v1.41/commit?container=web-1&comment=x&pause=1",
            Plan(
                resolve="container",
                ref="web-1",
                before=b"/v1.41/commit?comment=x&pause=1&container=",
                resource="container",
            ),
        ),
        # every container= goes: the one relayed is the full ID judged
        (
            b"/commit?container=web-1&author=a&container=db",
            Plan(resolve="container", ref="web-1", before=b"/commit?author=a&container=", resource="container"),
        ),
        (
            b"/commit?contain%65r=web-1",
            Plan(resolve="container", ref="web-1", before=b"/commit?container=", resource="container"),
        ),
        (
            b"/commit?container=we%62-1",
            Plan(resolve="container", ref="web-1", before=b"/commit?container=", resource="container"),
        ),
        (
            b"/commit?container=web/db",
            Plan(resolve="container", ref="web/db", before=b"/commit?container=", resource="container"),
        ),
        # no container, or one that is no name: nothing to look up
        (b"/commit", Plan(resolve="container", unresolvable=True, before=b"/commit?container=", resource="container")),
        (
            b"/commit?comment=x",
            Plan(resolve="container", unresolvable=True, before=b"/commit?comment=x&container=", resource="container"),
        ),
        (
            b"/commit?container=..%2F..%2Fimages%2Fx",
            Plan(
                resolve="container",
                ref="../../images/x",
                unresolvable=True,
                before=b"/commit?container=",
                resource="container",
            ),
        ),
        (
            b"/commit?container=%E2%98%83",
            Plan(
                resolve="container", ref="\u2603", unresolvable=True, before=b"/commit?container=", resource="container"
            ),
        ),
    ],
)
@pytest.mark.parametrize("identity", ["scoped", "two"])
def test_commit_names_its_container_in_its_query(identity: str, target: bytes, expected: Plan) -> None:
    assert plan_of(identity, "POST", target) == expected
    assert plan_of("admin", "POST", target) is None
    assert plan_of("mixed", "POST", target) is None
