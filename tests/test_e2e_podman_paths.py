"""
End to end against a real ``podman system service`` (issue 17): no spelling
of a closed section's route reaches it through dockguard, whatever Podman's
router makes of it, and what Podman itself answers for each spelling shows
which ones are real attacks there. A libpod create the guards refuse really
is privileged when sent to Podman directly (Podman decides), and the same
group can run an ordinary libpod container.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import pytest

from harness.guard import free_port, start_guard, start_with_config
from harness.podman import COMPAT_ULIMITS, SPEC_RLIMITS, PrivatePodman

pytestmark = pytest.mark.e2e

Connect = Callable[[], socket.socket]


def exchange(connect: Connect, target: bytes, method: bytes = b"GET", body: bytes = b"") -> tuple[int, bytes]:
    with connect() as s:
        s.settimeout(20)
        head = method + b" " + target + b" HTTP/1.1\r\nHost: podman\r\nConnection: close\r\n"
        if body or method == b"POST":
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        s.sendall(head + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1]) if head_bytes.startswith(b"HTTP/1.") else 0
    if b"transfer-encoding: chunked" in head_bytes.lower():
        decoded = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2 :]
        rest = decoded
    return status, rest


def unix(path: str) -> Connect:
    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        return s

    return connect


def tcp(port: int) -> Connect:
    return lambda: socket.create_connection(("127.0.0.1", port))


def is_image_list(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(value, list)
        and bool(value)
        and all("RepoTags" in item or "Names" in item and "Digest" in item for item in value)
    )


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, podman: PrivatePodman) -> Iterator[Connect]:
    """Containers open (Docker's and libpod's), images closed (both)."""
    port = free_port()
    guard = start_guard(
        tmp_path_factory.mktemp("podman-paths"),
        podman.socket_path,
        [f"tcp://127.0.0.1:{port}?identity=tester"],
        env={"CONTAINERS": "1", "LIBPOD_CONTAINERS": "1", "IMAGES": "0", "LIBPOD_IMAGES": "0"},
        wait_for=("127.0.0.1", port),
    )
    yield tcp(port)
    guard.stop()


#: Spellings of "list the images", and what Podman 4.3.1 answers for each when asked directly
#: (``True``: the image list; ``False``: anything else).
SPELLINGS = [
    (b"/images/json", True),
    (b"/v1.41/images/json", True),
    (b"/v4.3.1/libpod/images/json", True),
    (b"/v5.0.0/libpod/images/json", True),
    # Podman's version pattern is [0-9][0-9A-Za-z.-]*: moby's is [0-9.]+
    (b"/v4.3.1-dev/libpod/images/json", True),
    (b"/v4x/images/json", True),
    (b"/v1.41abc/images/json", True),
    (b"/v./images/json", False),
    # Podman matches literal segments encoded (UseEncodedPath)
    (b"/%69mages/json", False),
    (b"/v4.3.1/libpod/%69mages/json", False),
    (b"/v4.3.1/%6Cibpod/images/json", False),
    (b"/%76%34.3.1/libpod/images/json", False),
    # dot segments and doubled slashes: Podman redirects
    (b"/v4.3.1/libpod/containers/../images/json", False),
    (b"/v4.3.1//libpod/images/json", False),
    (b"/libpod/images/json/", False),
    (b"/LIBPOD/images/json", False),
    (b"/v4.3.1/libpod/images%2fjson", False),
    (b"/v4.3.1/libpod/containers/json?/../../images/json", False),
]


@pytest.mark.parametrize(("target", "podman_lists"), SPELLINGS, ids=[t.decode() for t, _ in SPELLINGS])
def test_no_spelling_reaches_the_closed_images(
    guarded: Connect, podman: PrivatePodman, target: bytes, podman_lists: bool
) -> None:
    direct = exchange(unix(podman.socket_path), target)
    assert is_image_list(*direct) is podman_lists, f"Podman answered {direct[0]} {direct[1][:120]!r}"
    status, body = exchange(guarded, target)
    assert not is_image_list(status, body), f"{target!r} reached the image list through dockguard"
    assert status in (200, 301, 400, 403, 404), (status, body[:200])
    if status in (400, 403):
        assert "dockguard refused" in json.loads(body)["message"]


def test_the_open_sections_work(guarded: Connect) -> None:
    for target in (b"/v1.41/containers/json", b"/v4.3.1/libpod/containers/json", b"/libpod/_ping"):
        status, body = exchange(guarded, target)
        assert status == 200, (target, status, body[:200])


def test_query_names_podman_folds_are_refused(guarded: Connect, podman: PrivatePodman) -> None:
    # Podman reads ?Filters= as filters= (gorilla/schema), a parameter dockguard reads: one spelling only
    status, body = exchange(guarded, b"/v4.3.1/libpod/containers/json?all=true&Filters=%7B%7D")
    assert status in (400, 403) and "case-insensitively" in json.loads(body)["message"]


# --- the guards decide as Podman would -----------------------------------------------------------------


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory, podman: PrivatePodman) -> Iterator[Connect]:
    """A group that may create and run libpod containers, every escalation guard closed."""
    port = free_port()
    guard = start_with_config(
        tmp_path_factory.mktemp("podman-guards"),
        podman.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=runner"

[identities]
runner = ["podrun"]

[groups.podrun]
sections = {{ libpod_containers = "write", libpod_ping = "read" }}
""",
        wait_for=("127.0.0.1", port),
    )
    yield tcp(port)
    guard.stop()


def spec(name: str, **fields: object) -> bytes:
    return json.dumps(
        {
            "name": name,
            "image": "busybox:local",
            "command": ["echo", "ran"],
            "netns": {"nsmode": "none"},
            "r_limits": SPEC_RLIMITS,
            **fields,
        }
    ).encode()


def test_a_plain_libpod_container_runs_through_the_guard(runner: Connect) -> None:
    status, body = exchange(runner, b"/v4.3.1/libpod/containers/create", b"POST", spec("dgp-plain"))
    assert status == 201, body
    try:
        assert exchange(runner, b"/v4.3.1/libpod/containers/dgp-plain/start", b"POST")[0] == 204
        assert exchange(runner, b"/v4.3.1/libpod/containers/dgp-plain/wait", b"POST")[0] == 200
        status, logs = exchange(runner, b"/v4.3.1/libpod/containers/dgp-plain/logs?stdout=true")
        assert status == 200 and b"ran" in logs
    finally:
        exchange(runner, b"/v4.3.1/libpod/containers/dgp-plain?force=true", b"DELETE")


@pytest.mark.parametrize(
    ("fields", "shows"),
    [
        ({"privileged": True}, lambda c: c["HostConfig"]["Privileged"] is True),
        ({"Privileged": True}, lambda c: c["HostConfig"]["Privileged"] is True),
        ({"pidns": {"nsmode": "host"}}, lambda c: c["HostConfig"]["PidMode"] == "host"),
        (
            {"mounts": [{"destination": "/host", "type": "bind", "source": "/etc", "options": ["rbind"]}]},
            lambda c: any(m["Source"] == "/etc" and m["RW"] for m in c["Mounts"]),
        ),
        ({"cap_add": ["SYS_ADMIN"]}, lambda c: "CAP_SYS_ADMIN" in c["EffectiveCaps"]),
    ],
    ids=["privileged", "Privileged", "host-pid", "bind-etc", "sys-admin"],
)
def test_what_the_guards_refuse_is_what_podman_would_grant(
    runner: Connect, podman: PrivatePodman, fields, shows
) -> None:
    name = "dgp-" + next(iter(fields)).lower()
    status, body = exchange(runner, b"/v4.3.1/libpod/containers/create", b"POST", spec(name, **fields))
    assert status == 403, body
    direct = unix(podman.socket_path)
    status, body = exchange(direct, b"/v4.3.1/libpod/containers/create", b"POST", spec(name, **fields))
    assert status == 201, body
    try:
        status, body = exchange(direct, b"/v4.3.1/libpod/containers/" + name.encode() + b"/json")
        assert status == 200 and shows(json.loads(body)), body[:400]
    finally:
        exchange(direct, b"/v4.3.1/libpod/containers/" + name.encode() + b"?force=true", b"DELETE")


def test_a_secret_driver_that_runs_commands_is_refused(tmp_path, podman: PrivatePodman) -> None:
    """The shell secret driver runs the caller's command on the host: refused even with LIBPOD_SECRETS=1 POST=1."""
    from urllib.parse import quote

    port = free_port()
    guard = start_guard(
        tmp_path,
        podman.socket_path,
        [f"tcp://127.0.0.1:{port}?identity=tester"],
        env={"LIBPOD_SECRETS": "1", "POST": "1"},
        wait_for=("127.0.0.1", port),
    )
    try:
        witness = tmp_path / "ran-on-the-host"
        commands = {"store": f"touch {witness}; cat >/dev/null", "lookup": "true", "list": "true", "delete": "true"}
        target = (
            b"/v4.3.1/libpod/secrets/create?name=dgp-shell&driver=shell&driveropts="
            + quote(json.dumps(commands)).encode()
        )
        status, body = exchange(tcp(port), target, b"POST", b"secret")
        assert status == 403 and "shell driver" in json.loads(body)["message"]
        assert not witness.exists()
        # an ordinary secret passes
        status, _ = exchange(tcp(port), b"/v4.3.1/libpod/secrets/create?name=dgp-plain", b"POST", b"secret")
        assert status == 200
        # what Podman does with the refused one when asked directly: it runs the command
        direct = unix(podman.socket_path)
        status, body = exchange(direct, target, b"POST", b"secret")
        assert status == 200, body
        assert witness.exists()
    finally:
        guard.stop()
        for name in (b"dgp-shell", b"dgp-plain"):
            exchange(unix(podman.socket_path), b"/v4.3.1/libpod/secrets/" + name, b"DELETE")


def test_a_bind_mode_podman_acts_on_is_refused(tmp_path, podman: PrivatePodman) -> None:
    """Binds' :U makes Podman chown the host directory, even read-only (moby rejects the mode)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("x")
    port = free_port()
    guard = start_with_config(
        tmp_path,
        podman.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=runner"

[identities]
runner = ["binder"]

[groups.binder]
sections = {{ containers = "write" }}
guards = {{ bind_roots = ["{shared}"] }}
""",
        wait_for=("127.0.0.1", port),
    )

    def create(connect: Connect, name: str, mode: str) -> tuple[int, bytes]:
        body = {
            "Image": "busybox:local",
            "Cmd": ["true"],
            "User": "1234:1234",
            "HostConfig": {"Binds": [f"{shared}:/d:{mode}"], "NetworkMode": "none", "Ulimits": COMPAT_ULIMITS},
        }
        return exchange(connect, f"/v1.41/containers/create?name={name}".encode(), b"POST", json.dumps(body).encode())

    direct = unix(podman.socket_path)
    try:
        status, body = create(tcp(port), "dgp-u", "ro,U")
        assert status == 403 and "bind_write" in json.loads(body)["message"]
        assert create(tcp(port), "dgp-ro", "ro")[0] == 201
        # what Podman does with the refused one when asked directly
        assert create(direct, "dgp-u", "ro,U")[0] == 201
        assert exchange(direct, b"/v1.41/containers/dgp-u/start", b"POST")[0] == 204
        assert exchange(direct, b"/v1.41/containers/dgp-u/wait", b"POST")[0] == 200
        assert (shared / "file").stat().st_uid == 1234
    finally:
        guard.stop()
        for name in (b"dgp-u", b"dgp-ro"):
            exchange(direct, b"/v1.41/containers/" + name + b"?force=true", b"DELETE")


def test_a_namespace_by_path_is_refused(tmp_path, podman: PrivatePodman) -> None:
    """PidMode ns:<path> through Podman's compatible API joins that namespace: the service's is the host's."""
    port = free_port()
    guard = start_with_config(
        tmp_path,
        podman.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=runner"

[identities]
runner = ["plain"]

[groups.plain]
sections = {{ containers = "write" }}
""",
        wait_for=("127.0.0.1", port),
    )
    assert podman._proc is not None
    mode = f"ns:/proc/{podman._proc.pid}/ns/pid"
    body = {
        "Image": "busybox:local",
        "Cmd": ["sh", "-c", "ps -o pid | wc -l"],
        "HostConfig": {"PidMode": mode, "NetworkMode": "none", "Ulimits": COMPAT_ULIMITS},
    }
    direct = unix(podman.socket_path)
    try:
        status, answer = exchange(
            tcp(port), b"/v1.41/containers/create?name=dgp-ns", b"POST", json.dumps(body).encode()
        )
        assert status == 403 and "host_namespaces" in json.loads(answer)["message"]
        # asked directly, Podman runs it in the service's (the host's) PID namespace
        assert exchange(direct, b"/v1.41/containers/create?name=dgp-ns", b"POST", json.dumps(body).encode())[0] == 201
        assert exchange(direct, b"/v1.41/containers/dgp-ns/start", b"POST")[0] == 204
        assert exchange(direct, b"/v1.41/containers/dgp-ns/wait", b"POST")[0] == 200
        status, logs = exchange(direct, b"/v1.41/containers/dgp-ns/logs?stdout=1")
        seen = int(logs[8:].decode().strip())  # one multiplexed frame: an 8-byte header, then the count
        assert seen > 10, logs  # a private PID namespace shows 3 lines
    finally:
        guard.stop()
        exchange(direct, b"/v1.41/containers/dgp-ns?force=1", b"DELETE")


def test_a_log_path_is_a_host_file_written(tmp_path, podman: PrivatePodman) -> None:
    """LogConfig.Config.path through Podman's compatible API: Podman writes the container's output there."""
    port = free_port()
    guard = start_with_config(
        tmp_path,
        podman.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=runner"

[identities]
runner = ["plain"]

[groups.plain]
sections = {{ containers = "write" }}
""",
        wait_for=("127.0.0.1", port),
    )
    target = tmp_path / "cron-or-profile"
    body = {
        "Image": "busybox:local",
        "Cmd": ["echo", "written-by-podman"],
        "HostConfig": {
            "NetworkMode": "none",
            "Ulimits": COMPAT_ULIMITS,
            "LogConfig": {"Type": "k8s-file", "Config": {"Path": str(target)}},
        },
    }
    direct = unix(podman.socket_path)
    try:
        status, answer = exchange(
            tcp(port), b"/v1.41/containers/create?name=dgp-log", b"POST", json.dumps(body).encode()
        )
        assert status == 403 and "bind_roots" in json.loads(answer)["message"]
        assert exchange(direct, b"/v1.41/containers/create?name=dgp-log", b"POST", json.dumps(body).encode())[0] == 201
        assert exchange(direct, b"/v1.41/containers/dgp-log/start", b"POST")[0] == 204
        assert exchange(direct, b"/v1.41/containers/dgp-log/wait", b"POST")[0] == 200
        assert "written-by-podman" in target.read_text()
    finally:
        guard.stop()
        exchange(direct, b"/v1.41/containers/dgp-log?force=1", b"DELETE")


def test_a_mount_target_with_a_comma_is_refused(tmp_path, podman: PrivatePodman) -> None:
    """Podman joins a Mounts entry into type=..,source=..,target=.. and keeps the last source: '/d,source=/' binds /."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    port = free_port()
    guard = start_with_config(
        tmp_path,
        podman.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=runner"

[identities]
runner = ["binder"]

[groups.binder]
sections = {{ containers = "write" }}
guards = {{ bind_roots = ["{allowed}"] }}
""",
        wait_for=("127.0.0.1", port),
    )
    body = {
        "Image": "busybox:local",
        "Cmd": ["true"],
        "HostConfig": {
            "NetworkMode": "none",
            "Ulimits": COMPAT_ULIMITS,
            "Mounts": [{"Type": "bind", "Source": str(allowed), "Target": "/d,source=/", "ReadOnly": True}],
        },
    }
    direct = unix(podman.socket_path)
    try:
        status, answer = exchange(
            tcp(port), b"/v1.41/containers/create?name=dgp-comma", b"POST", json.dumps(body).encode()
        )
        assert status == 403 and "','" in json.loads(answer)["message"]
        # asked directly, Podman binds the host's / at /d
        assert (
            exchange(direct, b"/v1.41/containers/create?name=dgp-comma", b"POST", json.dumps(body).encode())[0] == 201
        )
        status, inspect = exchange(direct, b"/v1.41/containers/dgp-comma/json")
        assert [m["Source"] for m in json.loads(inspect)["Mounts"]] == ["/"]
    finally:
        guard.stop()
        exchange(direct, b"/v1.41/containers/dgp-comma?force=1", b"DELETE")


def test_a_volumes_key_podman_reads_as_a_bind_is_refused(tmp_path, podman: PrivatePodman) -> None:
    """Config.Volumes {"/:/host": {}}: an anonymous volume to moby, a bind of the host's / to Podman."""
    port = free_port()
    guard = start_with_config(
        tmp_path,
        podman.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{port}?identity=runner"

[identities]
runner = ["plain"]

[groups.plain]
sections = {{ containers = "write" }}
""",
        wait_for=("127.0.0.1", port),
    )
    body = {
        "Image": "busybox:local",
        "Cmd": ["true"],
        "Volumes": {"/:/host": {}},
        "HostConfig": {"NetworkMode": "none", "Ulimits": COMPAT_ULIMITS},
    }
    direct = unix(podman.socket_path)
    try:
        status, answer = exchange(
            tcp(port), b"/v1.41/containers/create?name=dgp-vol", b"POST", json.dumps(body).encode()
        )
        assert status == 403 and "HostConfig.Binds" in json.loads(answer)["message"]
        assert exchange(direct, b"/v1.41/containers/create?name=dgp-vol", b"POST", json.dumps(body).encode())[0] == 201
        status, inspect = exchange(direct, b"/v1.41/containers/dgp-vol/json")
        assert [(m["Source"], m["RW"]) for m in json.loads(inspect)["Mounts"]] == [("/", True)]
    finally:
        guard.stop()
        exchange(direct, b"/v1.41/containers/dgp-vol?force=1", b"DELETE")


def test_owner_scopes_hold_through_podmans_compatible_api(tmp_path, podman: PrivatePodman) -> None:
    """A scope { owner = true } group: each identity sees and touches its own containers only, on Podman too."""
    alice, bob = free_port(), free_port()
    guard = start_with_config(
        tmp_path,
        podman.socket_path,
        f"""
[[listeners]]
url = "tcp://127.0.0.1:{alice}?identity=alice"

[[listeners]]
url = "tcp://127.0.0.1:{bob}?identity=bob"

[identities]
alice = ["tenant"]
bob = ["tenant"]

[groups.tenant]
sections = {{ ping = "read", containers = "write", libpod_containers = "read" }}
scope = {{ owner = true }}
""",
        wait_for=("127.0.0.1", bob),
    )
    body = {
        "Image": "busybox:local",
        "Cmd": ["sleep", "30"],
        "HostConfig": {"NetworkMode": "none", "Ulimits": COMPAT_ULIMITS},
    }
    direct = unix(podman.socket_path)
    try:
        status, answer = exchange(
            tcp(alice), b"/v1.41/containers/create?name=dgp-alice", b"POST", json.dumps(body).encode()
        )
        assert status == 201, answer
        status, listed = exchange(tcp(alice), b"/v1.41/containers/json?all=1")
        assert status == 200 and [c["Names"] for c in json.loads(listed)] == [["/dgp-alice"]]
        status, listed = exchange(tcp(bob), b"/v1.41/containers/json?all=1")
        assert status == 200 and json.loads(listed) == []
        assert exchange(tcp(bob), b"/v1.41/containers/dgp-alice/json")[0] == 404
        assert exchange(tcp(bob), b"/v1.41/containers/dgp-alice/start", b"POST")[0] == 404
        assert exchange(tcp(alice), b"/v1.41/containers/dgp-alice/json")[0] == 200
        # the libpod API has no scope: refused to a scoped group, whatever its sections
        status, refused = exchange(tcp(alice), b"/v4.3.1/libpod/containers/json")
        assert status == 403 and "scope" in json.loads(refused)["message"], refused
    finally:
        guard.stop()
        exchange(direct, b"/v1.41/containers/dgp-alice?force=1", b"DELETE")
