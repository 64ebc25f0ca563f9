"""Shared fixtures: a private real dockerd, test PKI and a clean docker CLI runner.

* ``dockerd`` (session): a started ``harness.dockerd.PrivateDaemon`` with the
  ``busybox:local`` image imported; stopped (and every trace removed) at the
  end of the session, whatever happened.  Its log is kept as
  ``<pytest basetemp>/dockerd.log``.
* ``pki`` (session): a ``harness.pki.TestPKI`` in a session temp directory.
* ``docker_cli`` (function): ``run(args, *, env, binary=..., input=None,
  timeout=60) -> subprocess.CompletedProcess`` (bytes stdout/stderr).
* ``docker_binary`` (function, parametrized over ``DOCKER_CLIS``).

Containers on the private daemon have no network: always ``--network none``.

No test module imports another (``from test_x import ...``): what tests share
lives in ``tests/harness/``; the session refuses to start otherwise
(``KNOWN_TEST_IMPORTS`` would list any still to be moved: none are).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# make ``import harness`` work whatever pytest's rootdir / import mode is
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from harness.dockerd import (  # noqa: E402
    DOCKER_CLIS,
    DockerdNotInstalled,
    PrivateDaemon,
    make_busybox_image,
)
from harness.pki import TestPKI  # noqa: E402

__all__ = ["DOCKER_CLIS", "BUSYBOX_IMAGE", "clean_cli_env"]

#: the image every session daemon has (static busybox, imported, no registry)
BUSYBOX_IMAGE = "busybox:local"

_CLI_IDS = {"/usr/local/bin/docker": "cli28", "/usr/bin/docker": "cli20"}

DockerCLI = Callable[..., "subprocess.CompletedProcess[bytes]"]


def clean_cli_env(home: str | os.PathLike[str], env: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for the docker CLI: nothing from the caller's
    environment leaks in (no DOCKER_HOST, no user config), HOME and
    DOCKER_CONFIG point into ``home``; ``env`` is applied on top."""
    home = os.fspath(home)
    config = os.path.join(home, ".docker")
    os.makedirs(config, exist_ok=True)
    base = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": home,
        "DOCKER_CONFIG": config,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        # no update checks, hints or telemetry from newer CLIs
        "DOCKER_CLI_HINTS": "false",
        "DOCKER_SCAN_SUGGEST": "false",
    }
    base.update(env or {})
    return base


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDaemon]:
    """A private real dockerd for the whole session, with busybox:local."""
    keep_log = tmp_path_factory.getbasetemp() / "dockerd.log"
    daemon = PrivateDaemon(keep_log_to=keep_log)
    try:
        daemon.start()
    except DockerdNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        make_busybox_image(daemon.socket_path, BUSYBOX_IMAGE)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    """CA, server certificate and client certificate factory."""
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def docker_cli(tmp_path_factory: pytest.TempPathFactory) -> DockerCLI:
    """Return ``run(args, *, env, binary=..., input=None, timeout=60)``.

    Runs ``binary args...`` with a clean environment (see ``clean_cli_env``;
    one fresh HOME per test) plus ``env``, captures stdout/stderr as bytes
    and never raises on a non-zero exit (check ``returncode``).  It blocks;
    ``run.deferred(...)`` (same arguments) runs it in a thread and returns a
    Deferred, for tests whose dockguard lives in this process's reactor.
    """
    home = tmp_path_factory.mktemp("cli-home")

    def run(
        args: list[str],
        *,
        env: dict[str, str],
        binary: str = "/usr/local/bin/docker",
        input: bytes | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [binary, *args],
            env=clean_cli_env(home, env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            cwd=home,
        )

    def deferred(*args, **kwargs):
        """``run`` in a thread, as a Deferred: use this from tests where
        dockguard runs in this process's reactor (a blocking ``run`` would
        starve it)."""
        from twisted.internet.threads import deferToThread

        return deferToThread(run, *args, **kwargs)

    run.deferred = deferred  # type: ignore[attr-defined]
    return run


@pytest.fixture(params=DOCKER_CLIS, ids=[_CLI_IDS.get(b, b) for b in DOCKER_CLIS])
def docker_binary(request: pytest.FixtureRequest) -> str:
    """Each docker CLI in turn (28.x, then 20.10)."""
    binary = request.param
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: run the README's test command, which installs it", pytrace=False)
    return binary


# -- dockguard processes -------------------------------------------------------

from harness.guard import Guard, free_port, start_guard  # noqa: E402

#: every Tecnativa/linuxserver switch on: the relay, not the policy, is under test
FULL_ACCESS_ENV = {
    **{
        s: "1"
        for s in (
            "AUTH BUILD COMMIT CONFIGS CONTAINERS DISTRIBUTION EVENTS EXEC GRPC IMAGES INFO "
            "NETWORKS NODES PING PLUGINS SECRETS SERVICES SESSION SWARM SYSTEM TASKS VERSION "
            "VOLUMES POST ALLOW_START ALLOW_STOP ALLOW_RESTARTS ALLOW_PAUSE ALLOW_UNPAUSE "
            "ALLOW_ARCHIVE ALLOW_CHANGES ALLOW_EXPORT ALLOW_LOGS ALLOW_TOP"
        ).split()
    },
}


@pytest.fixture
def guard_factory(tmp_path: Path, dockerd: PrivateDaemon) -> Iterator[Callable[..., Guard]]:
    """``start(listen=[...], env={...}, wait_for=...) -> Guard``; stopped after the test."""
    started: list[Guard] = []

    def start(listen: list[str], env: dict[str, str] | None = None, **kw) -> Guard:
        guard = start_guard(tmp_path, dockerd.socket_path, listen, env=env, **kw)
        started.append(guard)
        return guard

    start.daemon_socket = dockerd.socket_path  # type: ignore[attr-defined]
    yield start
    for guard in started:
        guard.stop()


def tls_listen(pki: TestPKI, port: int, host: str = "127.0.0.1") -> str:
    return f"tls://{host}:{port}?cert={pki.server_cert_path}&key={pki.server_key_path}&client_ca={pki.ca_path}"


@pytest.fixture(scope="module")
def tls_guard(tmp_path_factory: pytest.TempPathFactory, dockerd: PrivateDaemon, pki: TestPKI) -> Iterator[Guard]:
    """One full-access dockguard on a mutual-TLS listener for a test module."""
    port = free_port()
    guard = start_guard(
        tmp_path_factory.mktemp("guard"),
        dockerd.socket_path,
        [tls_listen(pki, port)],
        env=FULL_ACCESS_ENV,
        wait_for=("127.0.0.1", port),
    )
    yield guard
    guard.stop()


def tls_listener(pki: TestPKI, port: int) -> str:
    """A ``[[listeners]]`` table: mutual TLS on 127.0.0.1:``port`` with the test PKI."""
    return (
        f'[[listeners]]\ntype = "tls"\naddress = "127.0.0.1:{port}"\ncert = "{pki.server_cert_path}"\n'
        f'key = "{pki.server_key_path}"\nclient_ca = "{pki.ca_path}"\n'
    )


def tls_client_env(pki: TestPKI, port: int, name: str = "ops") -> dict[str, str]:
    """What the docker CLI needs to reach dockguard with mutual TLS as ``name``."""
    return {
        "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(pki.client(name)),
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """
    A test that uses the private daemon is an end-to-end test, marked or not,
    so ``-m "not e2e"`` is always the fast run without a daemon.
    """
    for item in items:
        if "dockerd" in getattr(item, "fixturenames", ()) and item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.e2e)


# -- test modules do not import each other ---------------------------------------------

#: Imports of one test module by another that are still to be moved into
#: ``tests/harness/``: none (the end-to-end ones went to harness/rawhttp.py).
#: The list only shrinks: an entry that no longer holds fails the session too.
KNOWN_TEST_IMPORTS: frozenset[tuple[str, str]] = frozenset()


def imports_between_test_modules(tests_dir: Path) -> set[tuple[str, str]]:
    """``(importer, imported)`` for each ``import test_...`` or ``from test_...
    import`` (at any depth, in functions too) in ``tests_dir/test_*.py``."""
    found: set[tuple[str, str]] = set()
    for path in sorted(tests_dir.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update((path.stem, n.split(".")[0]) for n in names if n.split(".")[0].startswith("test_"))
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    """
    Refuse to run while a test module imports another (issue 16): shared
    helpers live in ``tests/harness/``, so each module can be run, moved or
    deleted on its own.
    """
    found = imports_between_test_modules(Path(_TESTS_DIR))
    new = sorted(found - KNOWN_TEST_IMPORTS)
    gone = sorted(KNOWN_TEST_IMPORTS - found)
    problems = [f"tests/{a}.py imports {b}: move what it shares into tests/harness/" for a, b in new]
    problems += [f"{pair} no longer holds: remove it from KNOWN_TEST_IMPORTS in tests/conftest.py" for pair in gone]
    if problems:
        raise pytest.UsageError("test modules import each other:\n  " + "\n  ".join(problems))


# -- a private Podman service (issue 17) ---------------------------------------------

from harness.podman import PodmanNotAvailable, PrivatePodman, import_busybox  # noqa: E402


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePodman]:
    """
    A private ``podman system service`` for the session, with busybox:local;
    skips (with the reason) only if Podman cannot start here.
    """
    service = PrivatePodman(keep_log_to=tmp_path_factory.getbasetemp() / "podman.log")
    try:
        service.start()
    except PodmanNotAvailable as exc:
        pytest.skip(f"Podman cannot start here: {exc}")
    try:
        import_busybox(service, BUSYBOX_IMAGE)
        yield service
    finally:
        service.stop()


@pytest.fixture
def podman_guard_factory(tmp_path: Path, podman: PrivatePodman) -> Iterator[Callable[..., Guard]]:
    """``start(listen=[...], env={...}, wait_for=...) -> Guard`` in front of the private Podman."""
    started: list[Guard] = []

    def start(listen: list[str], env: dict[str, str] | None = None, **kw) -> Guard:
        guard = start_guard(tmp_path, podman.socket_path, listen, env=env, **kw)
        started.append(guard)
        return guard

    start.daemon_socket = podman.socket_path  # type: ignore[attr-defined]
    yield start
    for guard in started:
        guard.stop()
