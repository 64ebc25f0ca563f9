"""One route lookup per request: the policy, the meaning checks and the relay share one Match."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from dockguard import routes
from dockguard.envpolicy import EnvPolicy
from dockguard.groups import GroupPolicy
from dockguard.meaning import body_kind, check_request
from dockguard.paths import canonicalise
from dockguard.policy import Policy
from dockguard.presets import PRESETS
from dockguard.routes import ROUTES, Match, lookup, sample_path
from harness.relayworld import SHELL, World


class Lookups:
    """Counts route lookups, however a module imported :func:`dockguard.routes.lookup`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lookups = 0
        self.scans = 0
        real_lookup, real_scan = routes.lookup, routes._route_of

        def counting_lookup(method: str, path: routes.CanonicalPath) -> Match:
            self.lookups += 1
            return real_lookup(method, path)

        def counting_scan(method: str, segments: tuple[str, ...]) -> routes.Route | None:
            self.scans += 1
            return real_scan(method, segments)

        # The table scan under every lookup, and each module's own name for lookup.
        monkeypatch.setattr(routes, "_route_of", counting_scan)
        for name, module in list(sys.modules.items()):
            if (name == "dockguard" or name.startswith("dockguard.")) and getattr(
                module, "lookup", None
            ) is real_lookup:
                monkeypatch.setattr(module, "lookup", counting_lookup)

    @property
    def total(self) -> int:
        return self.lookups + self.scans


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lookups]:
    yield Lookups(monkeypatch)


def _requests() -> list[tuple[str, bytes]]:
    """Every route on its sample path (also as HEAD), and targets that match no route."""
    out = [(route.method, sample_path(route).path.encode()) for route in ROUTES]
    out += [("HEAD", sample_path(route).path.encode()) for route in ROUTES if route.method == "GET"]
    out += [
        ("GET", b"/v1.41/containers/web/alias/attach/ws?logs=1"),
        ("POST", b"/containers/x/start?checkpoint=c1"),
        ("POST", b"/services/s/update?rollback=previous"),
        ("POST", b"/networks/host/connect"),
        ("POST", b"/build?networkmode=host"),
        ("get", b"/containers/json"),
        ("GET", b"/CONTAINERS/json"),
        ("GET", b"/foo"),
        ("GET", b"/"),
    ]
    return out


POLICIES: list[Policy] = [
    EnvPolicy.from_environ({}),
    EnvPolicy.from_environ({"CONTAINERS": "1", "POST": "1", "ALLOW_LOGS": "0", "SERVICES": "1", "NETWORKS": "1"}),
    GroupPolicy(identities={"t": ("admin",)}, groups={"admin": PRESETS["admin"]}),
    GroupPolicy(identities={"t": ("readonly",)}, groups={"readonly": PRESETS["readonly"]}),
    GroupPolicy(identities={"t": ("shell",)}, groups={"shell": SHELL}),
]


def test_given_the_match_nothing_looks_the_route_up_again(counted: Lookups) -> None:
    requests = [(method, canonicalise(target)) for method, target in _requests()]
    matches = [routes.lookup(method, path) for method, path in requests]
    assert counted.lookups == len(requests)
    counted.lookups = counted.scans = 0
    for policy in POLICIES:
        for (method, path), match in zip(requests, matches):
            decision = policy.decide("t", method, path, match)
            check_request(method, path, [b"application/json"], True, decision.guard, match)
            body_kind(match, decision.guard)
            body_kind(match, None)
    assert counted.total == 0


def test_the_match_is_the_only_source_of_the_route() -> None:
    # A Match that says "no route, no section" is taken at its word, even for
    # a path that has both: the callees read the Match, not the path.
    path = canonicalise(b"/containers/x/start?checkpoint=c1")
    nothing = Match(route=None, section=None)
    assert check_request("POST", path, [], False, None, lookup("POST", path)).allowed is False
    assert check_request("POST", path, [], False, None, nothing).allowed is True
    assert body_kind(lookup("POST", path), None) == "container.start"
    assert body_kind(nothing, None) is None
    env = EnvPolicy.from_environ({"CONTAINERS": "1", "POST": "1"})
    assert env.decide("t", "POST", path, lookup("POST", path)).allowed
    assert env.decide("t", "POST", path, nothing).rule == "no section"
    groups = GroupPolicy(identities={"t": ("admin",)}, groups={"admin": PRESETS["admin"]})
    assert groups.decide("t", "POST", path, lookup("POST", path)).allowed
    assert groups.decide("t", "POST", path, nothing).rule == "no section"


@pytest.mark.parametrize(
    ("request_bytes", "policy"),
    [
        (b"GET /v1.41/containers/json HTTP/1.1\r\nHost: d\r\n\r\n", None),
        (b"HEAD /v1.41/containers/x/export HTTP/1.1\r\nHost: d\r\n\r\n", None),
        (b"GET /v1.41/secrets HTTP/1.1\r\nHost: d\r\n\r\n", None),  # refused
        (b"GET /nowhere HTTP/1.1\r\nHost: d\r\n\r\n", None),  # refused: no section
        (b"POST /v1.41/containers/x/attach?stream=1 HTTP/1.1\r\nHost: d\r\n\r\n", None),  # hijack
        (b"POST /v1.41/containers/x/start?checkpoint=c HTTP/1.1\r\nHost: d\r\n\r\n", None),  # meaning refuses
        (  # the body is inspected under groups
            b"POST /v1.41/containers/web/alias/exec HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
            b'Content-Length: 13\r\n\r\n{"Cmd":["id"]}',
            "shell",
        ),
    ],
    ids=["get", "head-on-a-get-route", "refused", "no-section", "hijack", "meaning-refuses", "inspected-body"],
)
def test_the_relay_looks_each_request_up_once(counted: Lookups, request_bytes: bytes, policy: str | None) -> None:
    world = World({"CONTAINERS": "1", "POST": "1"})
    if policy is not None:
        world.relay.policy = GroupPolicy(identities={"tester": ("shell",)}, groups={"shell": SHELL})
    client = world.client()
    client.send(request_bytes)
    world.clock.advance(0)
    assert counted.lookups == 1
