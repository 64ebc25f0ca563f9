"""The Engine API's sections, hijacking routes and container actions."""

from __future__ import annotations

import pytest

from dockguard.paths import canonicalise
from dockguard.sections import (
    SECTIONS,
    Section,
    container_action,
    is_hijack_route,
    section_of,
)


def test_every_top_level_section_of_the_engine_api() -> None:
    assert [(s.name, s.env, s.prefix) for s in SECTIONS] == [
        ("auth", "AUTH", "auth"),
        ("build", "BUILD", "build"),
        ("commit", "COMMIT", "commit"),
        ("configs", "CONFIGS", "configs"),
        ("containers", "CONTAINERS", "containers"),
        ("distribution", "DISTRIBUTION", "distribution"),
        ("events", "EVENTS", "events"),
        ("exec", "EXEC", "exec"),
        ("grpc", "GRPC", "grpc"),
        ("images", "IMAGES", "images"),
        ("info", "INFO", "info"),
        ("networks", "NETWORKS", "networks"),
        ("nodes", "NODES", "nodes"),
        ("ping", "PING", "_ping"),
        ("plugins", "PLUGINS", "plugins"),
        ("secrets", "SECRETS", "secrets"),
        ("services", "SERVICES", "services"),
        ("session", "SESSION", "session"),
        ("swarm", "SWARM", "swarm"),
        ("system", "SYSTEM", "system"),
        ("tasks", "TASKS", "tasks"),
        ("version", "VERSION", "version"),
        ("volumes", "VOLUMES", "volumes"),
    ]


def test_section_is_frozen() -> None:
    with pytest.raises(AttributeError):
        SECTIONS[0].env = "ANYTHING"  # type: ignore[misc]


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.name)
def test_each_section_is_found_by_its_prefix(section: Section) -> None:
    prefix = section.prefix.encode()
    assert section_of(canonicalise(b"/" + prefix)) == section
    assert section_of(canonicalise(b"/" + prefix + b"/abc/json")) == section
    assert section_of(canonicalise(b"/v1.41/" + prefix + b"/abc")) == section
    # case-sensitive and exact, as the daemon routes
    assert section_of(canonicalise(b"/" + prefix.upper())) is None
    assert section_of(canonicalise(b"/" + prefix + b"x")) is None


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (b"/containers/json", "containers"),
        (b"/v1.41/containers/json", "containers"),
        (b"/v01.41/containers/json", "containers"),
        (b"/_ping", "ping"),
        (b"/v1.41/_ping", "ping"),
        (b"/_ping?/containers/json", "ping"),
        (b"/%69mages/json", "images"),
        (b"/exec/abc/start", "exec"),
        (b"/containers/abc/exec", "containers"),
        (b"/session", "session"),
        (b"/grpc", "grpc"),
        (b"/system/df", "system"),
        # no section
        (b"/", None),
        (b"/v1.41", None),
        (b"/ping", None),
        (b"/foo", None),
        (b"/CONTAINERS/json", None),
        (b"/Containers/json", None),
        (b"/containersfoo/json", None),
        (b"/_pingx", None),
        (b"/V1.41/containers/json", None),
        (b"/v1.41abc/containers/json", None),
        (b"/v1.41/v1.41/containers/json", None),
        (b"/libpod/containers/json", None),
    ],
)
def test_section_of(target: bytes, name: str | None) -> None:
    section = section_of(canonicalise(target))
    assert (section.name if section else None) == name


@pytest.mark.parametrize(
    ("method", "target", "hijacked"),
    [
        ("POST", b"/containers/abc/attach", True),
        ("POST", b"/v1.41/containers/abc/attach?stream=1&stdin=1", True),
        ("POST", b"/exec/abc/start", True),
        ("POST", b"/v1.44/exec/0123abcd/start", True),
        # other methods: the daemon's router matches methods exactly
        ("GET", b"/containers/abc/attach", False),
        ("post", b"/containers/abc/attach", False),
        ("PUT", b"/exec/abc/start", False),
        # neighbouring routes that do not hijack without an Upgrade header
        ("GET", b"/containers/abc/attach/ws", False),
        ("POST", b"/containers/abc/attach/ws", False),
        ("POST", b"/containers/abc/start", False),
        ("POST", b"/containers/abc/exec", False),
        ("POST", b"/exec/abc/resize", False),
        ("GET", b"/exec/abc/json", False),
        ("POST", b"/containers/attach", False),
        ("POST", b"/exec/start", False),
        ("POST", b"/images/abc/attach", False),
        ("POST", b"/session", False),
        ("POST", b"/grpc", False),
    ],
)
def test_is_hijack_route(method: str, target: bytes, hijacked: bool) -> None:
    assert is_hijack_route(method, canonicalise(target)) is hijacked


@pytest.mark.parametrize(
    ("target", "action"),
    [
        (b"/containers/abc/start", "start"),
        (b"/v1.41/containers/abc/kill?signal=KILL", "kill"),
        (b"/containers/my.app/logs", "logs"),
        (b"/containers/json", None),
        (b"/containers/abc", None),
        (b"/containers/abc/attach/ws", None),
        (b"/images/abc/start", None),
        (b"/exec/abc/start", None),
        (b"/", None),
    ],
)
def test_container_action(target: bytes, action: str | None) -> None:
    assert container_action(canonicalise(target)) == action
