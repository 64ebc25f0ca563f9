"""Builds, image-name writes and plugin create: requests -> verdicts (dockguard.builds,
dockguard.images, dockguard.references, wired through dockguard.meaning.check_request)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockguard.guards import CLOSED, OPEN, Allowance, Verdict
from dockguard.meaning import check_request
from dockguard.paths import canonicalise
from dockguard.references import ReferenceRefused, matches, pattern_prefix, repository
from dockguard.routes import lookup

TAR = [b"application/x-tar"]


def check(target: bytes, allowance: Allowance | None, content_types: list[bytes] = TAR) -> Verdict:
    path = canonicalise(target)
    return check_request("POST", path, content_types, True, allowance, lookup("POST", path))


# --- references: the name the daemon writes -----------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("victim", "docker.io/library/victim"),
        ("victim:latest", "docker.io/library/victim"),
        ("library/victim", "docker.io/library/victim"),
        ("docker.io/victim", "docker.io/library/victim"),
        ("docker.io/library/victim:1.2", "docker.io/library/victim"),
        ("index.docker.io/library/victim", "docker.io/library/victim"),
        ("index.docker.io/victim", "docker.io/library/victim"),
        ("ci/app", "docker.io/ci/app"),
        ("ci/app@sha256:" + "a" * 64, "docker.io/ci/app"),
        ("localhost/app", "localhost/app"),
        ("localhost:5000/team/app:v1", "localhost:5000/team/app"),
        ("registry.local/app", "registry.local/app"),
        ("Registry.Local/app", "Registry.Local/app"),
        ("CI/app", "CI/app"),  # newer daemons read an upper-case first part as a registry
        ("[::1]:5000/app", "[::1]:5000/app"),
        ("a__b/c-d.e_f", "docker.io/a__b/c-d.e_f"),
    ],
)
def test_repository_is_the_daemons_reading(text: str, name: str) -> None:
    assert repository(text) == name


@pytest.mark.parametrize(
    "text",
    ["", "ci/App", "Victim", "a" * 64, "ci//app", "ci/app/", "/app", "ci/-app", "app:", "app:-x", "app@sha256:12",
     "ci/app:" + "x" * 129, "x/" + "a" * 260, "ci/app tag", "ci/\u00e4pp"],
)  # fmt: skip
def test_repository_refuses_what_the_daemon_rejects(text: str) -> None:
    with pytest.raises(ReferenceRefused):
        repository(text)


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("*", "*"),
        ("ci/*", "docker.io/ci/*"),
        ("ci/app", "docker.io/ci/app"),
        ("nginx", "docker.io/library/nginx"),
        ("ci*", "docker.io/library/ci*"),
        ("ci/app-*", "docker.io/ci/app-*"),
        ("ghcr.io/*", "ghcr.io/*"),
        ("localhost:5000/team/*", "localhost:5000/team/*"),
        ("docker.io/library/victim", "docker.io/library/victim"),
    ],
)
def test_pattern_prefix(pattern: str, prefix: str) -> None:
    assert pattern_prefix(pattern) == prefix


@pytest.mark.parametrize(
    ("name", "patterns", "matched"),
    [
        ("docker.io/ci/x", ("ci/*",), True),
        ("docker.io/ci/x/y", ("ci/*",), True),
        ("docker.io/library/ci", ("ci/*",), False),
        ("docker.io/ci-other/x", ("ci/*",), False),
        ("docker.io/library/victim", ("ci/*",), False),
        ("docker.io/library/victim", ("victim",), True),
        ("docker.io/library/victim", ("library/victim",), True),
        ("docker.io/library/victimx", ("victim",), False),
        ("docker.io/library/victim", ("*",), True),
        ("docker.io/library/victim", (), False),
        ("ghcr.io/ci/x", ("ci/*",), False),
        ("docker.io/library/victim", ("Bad Pattern", "victim"), True),
    ],
)
def test_matches(name: str, patterns: tuple[str, ...], matched: bool) -> None:
    assert matches(name, patterns) is matched


# --- image writes: tag, commit, import, load, pull --------------------------------

CI = Allowance(image_names=("ci/*",))
ANY_NAME = Allowance(image_names=("*",))
FETCH = Allowance(image_names=("ci/*",), remote_fetch=True)

IMAGE_CASES = [
    # (name, target, allowance, allowed, field, guard)
    (
        "tag over victim:latest",
        b"/images/busybox:local/tag?repo=victim&tag=latest",
        CI,
        False,
        "(query) repo",
        "image_names",
    ),
    (
        "tag: every spelling of victim",
        b"/images/x/tag?repo=docker.io/library/victim",
        CI,
        False,
        "(query) repo",
        "image_names",
    ),
    ("tag: index.docker.io", b"/images/x/tag?repo=index.docker.io%2Fvictim", CI, False, "(query) repo", "image_names"),
    ("tag: closed by default", b"/images/x/tag?repo=ci/x&tag=1", CLOSED, False, "(query) repo", "image_names"),
    ("tag into ci/", b"/v1.41/images/busybox:local/tag?repo=ci/x&tag=latest", CI, True, "", ""),
    ("tag: repo's own tag", b"/images/x/tag?repo=ci/x:v2", CI, True, "", ""),
    ("tag: ci prefix is a path", b"/images/x/tag?repo=ci-evil/x", CI, False, "(query) repo", "image_names"),
    (
        # (Podman reads the last of repeated values, the daemon the first: refused, issue 17)
        "tag: two repos",
        b"/images/x/tag?repo=victim&repo=ci/x",
        CI,
        False,
        "(query) repo",
        "",
    ),
    ("tag: two repos, other order", b"/images/x/tag?repo=ci/x&repo=victim", CI, False, "(query) repo", ""),
    ("tag: invalid name", b"/images/x/tag?repo=Victim", OPEN, False, "(query) repo", ""),
    ("tag: invalid tag", b"/images/x/tag?repo=ci/x&tag=-bad", OPEN, False, "(query) repo", ""),
    ("tag: no repo (the daemon rejects)", b"/images/x/tag", CLOSED, True, "", ""),
    ("tag: any with *", b"/images/x/tag?repo=victim", ANY_NAME, True, "", ""),
    ("commit to victim", b"/commit?container=c&repo=victim", CI, False, "(query) repo", "image_names"),
    ("commit to ci/", b"/commit?container=c&repo=ci/snap&tag=1", CI, True, "", ""),
    ("commit without repo", b"/commit?container=c", CLOSED, True, "", ""),
    (
        "import over victim",
        b"/images/create?fromSrc=-&repo=victim&tag=latest",
        CI,
        False,
        "(query) repo",
        "image_names",
    ),
    ("import into ci/", b"/images/create?fromSrc=-&repo=ci/rootfs", CI, True, "", ""),
    ("import untagged", b"/images/create?fromSrc=-", CLOSED, True, "", ""),
    (
        "import from a URL",
        b"/images/create?fromSrc=http://10.0.0.1/x.tar&repo=ci/x",
        CI,
        False,
        "(query) fromSrc",
        "remote_fetch",
    ),
    (
        "import from a bare host",
        b"/images/create?fromSrc=metadata.internal",
        CI,
        False,
        "(query) fromSrc",
        "remote_fetch",
    ),
    ("import from a URL, allowed", b"/images/create?fromSrc=http://10.0.0.1/x.tar&repo=ci/x", FETCH, True, "", ""),
    ("pull victim: its own provenance", b"/images/create?fromImage=victim&tag=latest", CLOSED, True, "", ""),
    ("pull with a repo ignored by the daemon", b"/images/create?fromImage=ci/x&repo=victim", CLOSED, True, "", ""),
    ("load", b"/images/load?quiet=1", CI, False, "(body)", "image_names"),
    ("load with *", b"/images/load", ANY_NAME, True, "", ""),
]


@pytest.mark.parametrize(
    ("target", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in IMAGE_CASES],
    ids=[case[0] for case in IMAGE_CASES],
)
def test_image_writes(target: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    verdict = check(target, allowance)
    assert verdict.allowed is allowed, verdict.reason
    assert (verdict.field, verdict.guard) == (field, guard)


def test_image_write_reasons() -> None:
    closed = check(b"/images/x/tag?repo=victim", CLOSED).reason
    assert "docker.io/library/victim" in closed and 'add a pattern such as "ci/*" to image_names' in closed
    assert "may write only ci/* (image_names)" in check(b"/images/x/tag?repo=victim", CI).reason
    assert 'needs "*" in image_names' in check(b"/images/load", CI).reason


# --- builds --------------------------------------------------------------------------

HOST_NET = Allowance(host_namespaces={"network"})
BUILDKIT = Allowance(buildkit=True)
B = b"/v1.41/build?rm=1&"

BUILD_CASES = [
    ("plain build, untagged", b"/build", CLOSED, True, "", ""),
    ("plain build, no network", B + b"networkmode=none", CLOSED, True, "", ""),
    ("default and host", B + b"networkmode=default&networkmode=host", CLOSED, False, "(query) networkmode", ""),
    ("host network", B + b"networkmode=host", CLOSED, False, "(query) networkmode", "host_namespaces"),
    ("host network, any case", B + b"networkmode=HOST", CLOSED, False, "(query) networkmode", "host_namespaces"),
    ("host network, escaped", B + b"network%6Dode=%68ost", CLOSED, False, "(query) networkmode", "host_namespaces"),
    (
        "two networkmodes (Podman reads the last)",
        B + b"networkmode=host&networkmode=none",
        CLOSED,
        False,
        "(query) networkmode",
        "",
    ),
    ("host network allowed", B + b"networkmode=host", HOST_NET, True, "", ""),
    ("another's network", B + b"networkmode=internal", CLOSED, False, "(query) networkmode", "networks"),
    ("the group's network", B + b"networkmode=ci-a", Allowance(networks=("ci-*",)), True, "", ""),
    (
        "another container's network",
        B + b"networkmode=container:web",
        HOST_NET,
        False,
        "(query) networkmode",
        "join_containers",
    ),
    ("remote URL", B + b"remote=http://169.254.169.254/latest/", CLOSED, False, "(query) remote", "remote_fetch"),
    ("remote git", B + b"remote=git@internal:team/repo.git", CLOSED, False, "(query) remote", "remote_fetch"),
    ("remote allowed", B + b"remote=https://example.org/ctx.tar", Allowance(remote_fetch=True), True, "", ""),
    ("client-session is no download", B + b"remote=client-session&version=2", BUILDKIT, True, "", ""),
    ("cgroupparent", B + b"cgroupparent=/", CLOSED, False, "(query) cgroupparent", "cgroup_parent"),
    ("cgroupparent allowed", B + b"cgroupparent=/ci", Allowance(cgroup_parent=True), True, "", ""),
    ("securityopt", B + b"securityopt=seccomp%3Dunconfined", CLOSED, False, "(query) securityopt", "unconfined"),
    ("an empty securityopt is still one", B + b"securityopt=", CLOSED, False, "(query) securityopt", "unconfined"),
    ("extrahosts is not guarded", B + b"extrahosts=registry:10.0.0.9", CLOSED, True, "", ""),
    ("buildkit", B + b"version=2", CLOSED, False, "(query) version", "buildkit"),
    ("buildkit allowed", B + b"version=2&session=abc&remote=client-session", BUILDKIT, True, "", ""),
    ("version 1", B + b"version=1", CLOSED, True, "", ""),
    (
        "buildkit still judges the query",
        B + b"version=2&networkmode=host",
        BUILDKIT,
        False,
        "(query) networkmode",
        "host_namespaces",
    ),
    ("tag victim", B + b"t=victim", CI, False, "(query) t", "image_names"),
    ("tag ci/", B + b"t=ci/app:1&t=ci/app:latest", CI, True, "", ""),
    ("every t is judged", B + b"t=ci/app&t=victim:latest", CI, False, "(query) t", "image_names"),
    ("an empty t is skipped", B + b"t=&t=ci/app", CI, True, "", ""),
    ("a t with a digest", B + b"t=ci/app@sha256:" + b"a" * 64, OPEN, True, "", ""),
    ("an invalid t", B + b"t=Victim", OPEN, False, "(query) t", ""),
    ("multipart body", b"/build", OPEN, False, "(Content-Type)", ""),
    ("session", b"/session", CLOSED, False, "(route) /session", "buildkit"),
    ("grpc", b"/v1.41/grpc", CLOSED, False, "(route) /grpc", "buildkit"),
    ("session allowed", b"/session", BUILDKIT, True, "", ""),
    (
        "everything with OPEN",
        B + b"networkmode=host&remote=http://x/&cgroupparent=/&version=2&t=victim",
        OPEN,
        True,
        "",
        "",
    ),
    ("build prune is not judged", b"/build/prune", CLOSED, True, "", ""),
]


@pytest.mark.parametrize(
    ("target", "allowance", "allowed", "field", "guard"),
    [case[1:] for case in BUILD_CASES],
    ids=[case[0] for case in BUILD_CASES],
)
def test_builds(target: bytes, allowance: Allowance, allowed: bool, field: str, guard: str) -> None:
    types = [b"multipart/form-data; boundary=x"] if field == "(Content-Type)" else TAR
    verdict = check(target, allowance, types)
    assert verdict.allowed is allowed, verdict.reason
    assert (verdict.field, verdict.guard) == (field, guard)
    if guard:
        assert f"{guard} = true" in verdict.reason or guard in ("host_namespaces", "image_names", "networks")


def test_build_reasons() -> None:
    assert 'add "network" to host_namespaces' in check(B + b"networkmode=host", CLOSED).reason
    assert "DOCKER_BUILDKIT=0" in check(B + b"version=2", CLOSED).reason
    assert "169.254.169.254" in check(B + b"remote=http://169.254.169.254/", CLOSED).reason


# --- plugin create, and what environment variables see --------------------------------


def test_plugin_create_needs_privileged() -> None:
    refused = check(b"/plugins/create?name=x", CLOSED)
    assert (refused.allowed, refused.field, refused.guard) == (False, "(body)", "privileged")
    assert check(b"/plugins/create?name=x", Allowance(privileged=True)).allowed


@pytest.mark.parametrize(
    "target",
    [B + b"networkmode=host&remote=http://x/&version=2", b"/session", b"/images/x/tag?repo=victim", b"/images/load",
     b"/plugins/create?name=x", b"/commit?repo=victim"],
)  # fmt: skip
def test_environment_variables_relay_as_tecnativa_does(target: bytes) -> None:
    """Under environment variables (no allowance) BUILD/IMAGES/PLUGINS grant the calls whole."""
    assert check(target, None).allowed


# --- never raises ----------------------------------------------------------------------

PARAMS = ["networkmode", "remote", "cgroupparent", "securityopt", "version", "t", "repo", "tag", "fromSrc",
          "fromImage", "container", "extrahosts"]  # fmt: skip
ROUTES = [b"/build", b"/images/x/tag", b"/commit", b"/images/create", b"/images/load", b"/session", b"/grpc",
          b"/plugins/create"]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    route=st.sampled_from(ROUTES),
    pairs=st.lists(st.tuples(st.sampled_from(PARAMS), st.text(max_size=12)), max_size=5),
    allowance=st.sampled_from([CLOSED, OPEN, CI, BUILDKIT, HOST_NET]),
)
def test_never_raises(route: bytes, pairs: list[tuple[str, str]], allowance: Allowance) -> None:
    from urllib.parse import quote

    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs)
    verdict = check(route + b"?" + query.encode(), allowance)
    assert verdict.allowed == (verdict.field == verdict.guard == verdict.reason == "")
    if allowance is OPEN:
        assert verdict.allowed or verdict.guard == ""
