"""Version prefixes and escapes as Podman's router reads them (issue 17); see tests/test_e2e_podman_paths.py."""

from __future__ import annotations

import pytest

from dockguard.groups import Group
from dockguard.guards import CLOSED, OPEN, Allowance
from dockguard.meaning import check_request
from dockguard.paths import PathRefused, canonicalise
from dockguard.routes import LITERAL_SEGMENTS, lookup


@pytest.mark.parametrize(
    ("target", "version", "path"),
    [
        (b"/v1.41/containers/json", "1.41", "/containers/json"),
        (b"/v4.3.1/libpod/containers/json", "4.3.1", "/libpod/containers/json"),
        (b"/v5.0.0/libpod/_ping", "5.0.0", "/libpod/_ping"),
        (b"/v01.41/_ping", "01.41", "/_ping"),
        (b"/v4/libpod/info", "4", "/libpod/info"),
        # an escape in a placeholder is decoded by both routers
        (b"/v4.3.1/libpod/containers/we%62/json", "4.3.1", "/libpod/containers/web/json"),
        (b"/va1.41/_ping", None, "/va1.41/_ping"),  # Podman's version needs a digit after the v
        # podman --remote escapes the '/' of an image name: Podman keeps it in the {name:.*} placeholder
        (
            b"/v4.3.1/libpod/images/localhost%2Fbusybox:local/json",
            "4.3.1",
            "/libpod/images/localhost/busybox:local/json",
        ),
        (b"/libpod/manifests/quay.io%2Fa%2Fb/json", None, "/libpod/manifests/quay.io/a/b/json"),
    ],
)
def test_one_reading(target: bytes, version: str | None, path: str) -> None:
    canonical = canonicalise(target)
    assert (canonical.version, canonical.path) == (version, path)


@pytest.mark.parametrize(
    "target",
    [
        # Podman reads these as a version prefix, moby does not (or the other way round)
        b"/v4.3.1-dev/libpod/_ping",
        b"/v4x/_ping",
        b"/v1.41abc/containers/json",
        b"/v4.3.1-rc1/containers/json",
        b"/v./_ping",
        b"/v.1/containers/json",
        b"/v1-2/_ping",
        # Podman matches literal segments encoded: no route there, a route for moby
        b"/%69mages/json",
        b"/%76%31.41/_ping",
        b"/v1.41/%69mages/json",
        b"/v4.3.1/%6Cibpod/containers/json",
        b"/v4.3.1/libpod/%63ontainers/json",
        b"/v4.3.1/libpod/containers/web/%6Aso%6E",
        b"/containers/web/%73tart",
        # an escaped '/' only where Podman's placeholders span segments, never empty or dot pieces
        b"/images/localhost%2Fbusybox/json",
        b"/v4.3.1/libpod/containers/a%2Fb/json",
        b"/v4.3.1/libpod%2Fimages/json",
        b"/v4.3.1/libpod/images/a%2F%2Fb/json",
        b"/v4.3.1/libpod/images/a%2F..%2Fb/json",
        b"/v4.3.1/libpod/images/a%2F/json",
    ],
)
def test_refused(target: bytes) -> None:
    with pytest.raises(PathRefused):
        canonicalise(target)


def test_every_literal_of_every_route_is_known() -> None:
    assert {"libpod", "containers", "json", "_ping", "pods", "kube", "play", "images", "start"} <= LITERAL_SEGMENTS
    assert not any("{" in literal for literal in LITERAL_SEGMENTS)


@pytest.mark.parametrize(
    ("method", "target", "allowed"),
    [
        ("POST", b"/v1.41/build?networkmode=default", True),
        # gorilla/schema folds names: Podman reads these as networkmode and fromImage
        ("POST", b"/v1.41/build?NetworkMode=host", False),
        ("POST", b"/v1.41/images/create?fromimage=evil/x&tag=1", False),
        ("POST", b"/v1.41/images/create?FROMSRC=http://x", False),
        ("GET", b"/v4.3.1/libpod/containers/json?all=1&Filters=%7B%7D", False),
        # podman --remote sends both detachKeys and detachkeys: dockguard reads neither
        ("POST", b"/v4.3.1/libpod/containers/web/attach?detachKeys=&detachkeys=&stream=true", True),
        # gorilla/schema reads the last of repeated values, Go's Form.Get the first
        ("POST", b"/v1.41/build?networkmode=none&networkmode=host", False),
        ("POST", b"/v1.41/build?networkmode=none&networkmode=none", True),
        ("POST", b"/v1.41/build?t=a&t=b", False),  # image_names closed, but not for the repetition
        ("POST", b"/v1.41/images/create?fromImage=busybox&fromImage=x", False),
        # Podman's own build options reach the host
        ("POST", b"/v1.41/build?addcaps=SYS_ADMIN", False),
        ("POST", b"/v4.3.1/libpod/build?secrets=%5B%22id=a,src=/etc/shadow%22%5D", False),
        ("POST", b"/v4.3.1/libpod/build?nsoptions=x", False),
        ("POST", b"/v4.3.1/libpod/build?networkmode=host", False),
        ("POST", b"/v4.3.1/libpod/build?t=x", False),  # image_names
    ],
)
def test_queries_as_podman_reads_them(method: str, target: bytes, allowed: bool) -> None:
    path = canonicalise(target)
    verdict = check_request(method, path, [], False, CLOSED, lookup(method, path))
    assert verdict.allowed is allowed, verdict


def test_podman_build_options_need_every_guard_open() -> None:
    path = canonicalise(b"/v1.41/build?addcaps=SYS_ADMIN&devices=x")
    assert check_request("POST", path, [], False, OPEN, lookup("POST", path)).allowed


@pytest.mark.parametrize(
    ("method", "target", "allowance", "guard"),
    [
        ("POST", b"/v4.3.1/libpod/images/load", CLOSED, "image_names"),
        ("POST", b"/v4.3.1/libpod/images/load", Allowance(image_names=("*",)), None),
        ("POST", b"/v4.3.1/libpod/images/busybox/tag?repo=victim&tag=latest", CLOSED, "image_names"),
        ("POST", b"/v4.3.1/libpod/images/busybox/tag?repo=ci/app&tag=1", Allowance(image_names=("ci/*",)), None),
        ("POST", b"/v4.3.1/libpod/commit?container=web&repo=victim", CLOSED, "image_names"),
        ("POST", b"/v4.3.1/libpod/images/import?reference=victim:latest", CLOSED, "image_names"),
        ("POST", b"/v4.3.1/libpod/images/import?url=http://10.0.0.1/x.tar", CLOSED, "remote_fetch"),
        ("POST", b"/v4.3.1/libpod/images/import?URL=http://10.0.0.1/x.tar", OPEN, ""),  # spelled otherwise
        ("POST", b"/v4.3.1/libpod/images/import", CLOSED, None),
        ("POST", b"/v4.3.1/libpod/manifests/victim", CLOSED, "image_names"),
        ("POST", b"/v4.3.1/libpod/images/pull?reference=docker.io/library/busybox", CLOSED, None),
    ],
)
def test_libpod_image_names(method: str, target: bytes, allowance: Allowance, guard: str | None) -> None:
    path = canonicalise(target)
    verdict = check_request(method, path, [], False, allowance, lookup(method, path))
    assert verdict.allowed is (guard is None), verdict
    if guard is not None:
        assert verdict.guard == guard


def test_redact_does_not_cover_libpod() -> None:
    with pytest.raises(ValueError, match="libpod"):
        Group(name="g", sections={"libpod_containers": "read"}, actions=(), redact={"env"})
    assert Group(name="g", sections={"containers": "read"}, actions=(), redact={"env"}).redact


@pytest.mark.parametrize(
    ("target", "env_ok", "closed_ok"),
    [
        (b"/v4.3.1/libpod/secrets/create?name=s", True, True),
        (b"/v4.3.1/libpod/secrets/create?name=s&driver=file", True, True),
        (b"/v4.3.1/libpod/secrets/create?name=s&driver=shell&driveropts=%7B%7D", False, False),
        (b"/v4.3.1/libpod/secrets/create?name=s&driveropts=%7B%22path%22%3A%22%2Fetc%22%7D", False, False),
        (b"/v4.3.1/libpod/secrets/create?name=s&driver=pass", False, False),
    ],
)
def test_secret_drivers_run_commands_on_the_host(target: bytes, env_ok: bool, closed_ok: bool) -> None:
    path = canonicalise(target)
    match = lookup("POST", path)
    assert check_request("POST", path, [], True, None, match).allowed is env_ok
    assert check_request("POST", path, [], True, CLOSED, match).allowed is closed_ok
    assert check_request("POST", path, [], True, OPEN, match).allowed


def test_podman_build_options_are_refused_under_environment_variables() -> None:
    for target in (b"/v1.41/build?secrets=x", b"/v4.3.1/libpod/build?volume=/:/host", b"/v1.41/build?ADDCAPS=x"):
        path = canonicalise(target)
        assert not check_request("POST", path, [], True, None, lookup("POST", path)).allowed
    path = canonicalise(b"/v1.41/build?t=x&networkmode=host")  # Docker's build, under env vars: as Tecnativa
    assert check_request("POST", path, [], True, None, lookup("POST", path)).allowed
