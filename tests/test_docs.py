"""
The user documentation, run: the quickstart's commands and configuration,
every transcript quoted in the docs (``dockguard explain``, ``check-config``),
every recipe's configuration, the Dockerfile's built-in configuration and
commands, the compose files' wiring, and the links between pages.

Commands and configuration are taken from the Markdown itself (blocks marked
``<!-- docs-test: NAME -->``, see docs_blocks.py), so the pages and the tests
cannot drift apart.  Unit-level tests need no daemon; the ``e2e`` ones run
the quickstart and the image's drop-in configuration against the private
daemon of tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from docs_blocks import DOCS, REPO, Block, block, blocks, shell_commands, transcript

from dockguard.envpolicy import KNOWN_VARIABLES

SRC = REPO / "src"
RECIPES = DOCS / "examples" / "recipes"
TOOLS = sorted(p.name for p in RECIPES.iterdir() if p.is_dir())
MY_PAGES = ["quickstart.md", "migration.md", "recipes.md", "threat-model.md", "index.md"]

#: Variables that must not leak from the test runner's environment into a
#: documented command: they change what dockguard decides or where it relays.
_LEAKY = set(KNOWN_VARIABLES) | {"DOCKER_HOST", "SOCKET_PATH", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"}


# -- running documented commands ---------------------------------------------


def _env(extra: dict[str, str] | None = None, path_first: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


_SHIM_DIR: list[Path] = []


def _shim() -> Path:
    """A bin directory whose ``dockguard`` is this checkout's (src/), run by this Python."""
    if not _SHIM_DIR:
        import atexit
        import shutil
        import tempfile

        bin_dir = Path(tempfile.mkdtemp(prefix="docs-shim-"))
        atexit.register(shutil.rmtree, bin_dir, True)
        shim = bin_dir / "dockguard"
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m dockguard.cli "$@"\n')
        shim.chmod(0o755)
        _SHIM_DIR.append(bin_dir)
    return _SHIM_DIR[0]


def run_shell(text: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A documented ``sh`` block, run by bash with ``dockguard`` on PATH."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", text],
        cwd=cwd,
        env=_env(env, _shim()),
        capture_output=True,
        text=True,
        timeout=120,
    )


def dockguard(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockguard.cli", *args],
        cwd=cwd,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def check_config(path: Path, cwd: Path | None = None) -> str:
    done = dockguard(["check-config", str(path)], cwd or path.parent)
    assert done.returncode == 0, f"{path}: {done.stderr}"
    assert done.stdout.startswith(f"{path}: OK\n"), done.stdout
    return done.stdout


def make_certs(page: str, name: str, cwd: Path) -> str:
    done = run_shell(block(page, name).text, cwd)
    assert done.returncode == 0, f"{block(page, name).where}: {done.stderr}"
    return done.stdout


# -- the quickstart ------------------------------------------------------------


def quickstart_workspace(tmp_path: Path, port: int | None = None, enrol_port: int | None = None) -> Path:
    """pki/, alice.token and dockguard.toml made exactly as the quickstart says."""
    work = tmp_path / "quickstart"
    work.mkdir()
    make_certs("quickstart.md", "quickstart-certs", work)
    config = block("quickstart.md", "quickstart-config").text
    if port is not None:
        assert ":2376?" in config
        config = config.replace(":2376?", f":{port}?")
    if enrol_port is not None:
        assert ':2378"' in config
        config = config.replace(':2378"', f':{enrol_port}"')
    (work / "dockguard.toml").write_text(config + "\n")
    return work


def test_quickstart_certs_are_what_mutual_tls_and_enrolment_need(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from dockguard.tokens import fingerprint, load_tokens, parse_token

    work = tmp_path / "quickstart"
    work.mkdir()
    make_certs("quickstart.md", "quickstart-certs", work)
    pki = work / "pki"

    ca = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((pki / "server-cert.pem").read_bytes())
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # alice.token holds the token alone, for alice, pinning this CA; kept hashed
    token = parse_token((work / "alice.token").read_text())
    assert token.ca_fingerprint == fingerprint(ca)
    assert [(r.id, r.name) for r in load_tokens(pki)] == [(token.id, "alice")]
    assert token.secret not in (pki / "tokens.json").read_text()
    for private in (pki / "ca-key.pem", pki / "server-key.pem", pki / "tokens.json"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_quickstart_config_loads(tmp_path: Path) -> None:
    work = quickstart_workspace(tmp_path)
    out = check_config(Path("dockguard.toml"), work)
    assert "identity from client certificate CN" in out


# -- transcripts: `$ dockguard …` and what it prints ----------------------------


def _transcripts() -> list[Block]:
    return [b for page in MY_PAGES for b in blocks(page) if b.name == "transcript"]


def _workspace_for(page: str, tmp_path: Path) -> Path:
    """Where a page's transcripts run: docs/ reachable as in the repository,
    the page's file= blocks written out, and the quickstart's files for it."""
    if page == "quickstart.md":
        work = quickstart_workspace(tmp_path)
    else:
        work = tmp_path / "work"
        work.mkdir()
    (work / "docs").symlink_to(DOCS)
    for b in blocks(page):
        if "file" in b.args:
            (work / b.args["file"]).write_text(b.text + "\n")
    return work


@pytest.mark.parametrize("transcript_block", _transcripts(), ids=lambda b: b.where)
def test_transcript_matches_what_the_command_prints_now(transcript_block: Block, tmp_path: Path) -> None:
    work = _workspace_for(transcript_block.page, tmp_path)
    steps = transcript(transcript_block)
    assert steps, transcript_block.where
    for step in steps:
        assert step.argv[0] == "dockguard", f"{step.where}: only dockguard commands are run here"
        done = dockguard(step.argv[1:], work, step.env)
        assert done.stderr == "", f"{step.where}: {done.stderr}"
        assert done.stdout.rstrip("\n") == step.expected, f"{step.where}: $ {shlex.join(step.argv)}"


def test_the_pages_have_their_marked_blocks() -> None:
    names = {(b.page, b.name) for page in MY_PAGES for b in blocks(page)}
    for wanted in [
        ("quickstart.md", "quickstart-certs"),
        ("quickstart.md", "quickstart-config"),
        ("quickstart.md", "quickstart-enroll"),
        ("quickstart.md", "quickstart-ps"),
        ("quickstart.md", "quickstart-context"),
        ("quickstart.md", "quickstart-refused"),
        ("recipes.md", "recipes-homepage-certs"),
        ("recipes.md", "recipes-remote-certs"),
        ("migration.md", "transcript"),
        ("recipes.md", "transcript"),
    ]:
        assert wanted in names
    assert len(_transcripts()) >= 10


def test_every_toml_block_of_the_pages_is_run() -> None:
    """A configuration shown on these pages is one the tests load."""
    for page in MY_PAGES:
        shown = len(re.findall(r"^\s*```toml$", (DOCS / page).read_text(), re.M))
        marked = len([b for b in blocks(page) if b.lang == "toml"])
        assert shown == marked, f"{page}: {shown - marked} toml block(s) not marked for the tests"


def test_file_blocks_load(tmp_path: Path) -> None:
    for page in MY_PAGES:
        for b in blocks(page):
            if "file" in b.args:
                path = tmp_path / b.args["file"]
                path.write_text(b.text + "\n")
                check_config(path)


# -- recipes -------------------------------------------------------------------


def _listeners(config: dict) -> list[str]:
    return [table["url"] for table in config.get("listeners", [])]


def test_there_is_a_recipe_per_tool() -> None:
    assert TOOLS == sorted(
        [
            "autoheal",
            "beszel",
            "caddy-docker-proxy",
            "crowdsec",
            "diun",
            "dockman",
            "dozzle",
            "homarr",
            "homepage",
            "netdata",
            "ofelia",
            "portainer",
            "remote",
            "traefik",
            "uptime-kuma",
            "watchtower",
            "woodpecker",
            "wud",
        ]
    )
    for tool in TOOLS:
        assert (RECIPES / tool / "compose.yaml").is_file()
        assert (RECIPES / tool / "dockguard.toml").is_file()
        assert f"(examples/recipes/{tool}/compose.yaml)" in (DOCS / "recipes.md").read_text()


@pytest.mark.parametrize("tool", TOOLS)
def test_recipe_config_passes_check_config(tool: str, tmp_path: Path) -> None:
    work = tmp_path / tool
    work.mkdir()
    (work / "dockguard.toml").write_bytes((RECIPES / tool / "dockguard.toml").read_bytes())
    config = tomllib.loads((work / "dockguard.toml").read_text())
    if any(url.startswith("tls://") for url in _listeners(config)):
        make_certs("recipes.md", f"recipes-{tool}-certs", work)
    out = check_config(Path("dockguard.toml"), work)
    assert "admin tcp://127.0.0.1:9180: /health and /metrics" in out, "the image's HEALTHCHECK needs [admin]"
    # every fixed identity has rights
    for url in _listeners(config):
        fixed = re.search(r"[?&]identity=([^&]+)", url)
        if fixed:
            assert fixed.group(1) in config["identities"], url


def _service(compose: str, name: str) -> str:
    """The text of one service of a compose file (two-space indented)."""
    match = re.search(rf"^  {re.escape(name)}:\n(.*?)(?=^  \S|^\S|\Z)", compose, re.M | re.S)
    assert match, f"no service {name}"
    return match.group(1)


def _check_dockguard_service(text: str, where: str) -> None:
    for needle in [
        "- /var/run/docker.sock:/var/run/docker.sock",
        "read_only: true",
        "- ALL",
        "- no-new-privileges:true",
        '"${DOCKER_GID:?',
        '["CMD", "dockguard", "healthcheck", "--config", "/etc/dockguard/dockguard.toml"]',
    ]:
        assert needle in text, f"{where}: dockguard service lacks {needle}"
    assert "\n    ports:" not in text or "2376:2376" in text, f"{where}: only the TLS port may be published"
    assert "privileged: true" not in text


@pytest.mark.parametrize("tool", TOOLS)
def test_recipe_compose_wires_what_the_config_says(tool: str) -> None:
    compose = (RECIPES / tool / "compose.yaml").read_text()
    config = tomllib.loads((RECIPES / tool / "dockguard.toml").read_text())
    guard = _service(compose, "dockguard")
    _check_dockguard_service(guard, f"recipes/{tool}")
    assert "- ./dockguard.toml:/etc/dockguard/dockguard.toml:ro" in guard
    for url in _listeners(config):
        if url.startswith("unix://"):
            socket_path = url[len("unix://") :].split("?")[0]
            directory = os.path.dirname(socket_path)
            mounts = re.findall(rf"- ([\w-]+):{re.escape(directory)}\n", compose)
            assert len(mounts) == 2, f"{tool}: {directory} must be mounted by dockguard and the tool only"
            volume = mounts[0]
            assert mounts == [volume, volume]
            assert f"\n  {volume}:\n" in compose.split("\nvolumes:\n")[1]
            assert f"uid={DOCKERFILE_UID},gid={DOCKERFILE_UID}" in compose
            assert f"unix://{socket_path}" in compose, f"{tool}: the tool is not pointed at {socket_path}"
            assert "network_mode: none" in guard
        else:
            # read-only, unless the enrolment listener writes its tokens there
            assert (
                "- ./pki:/etc/dockguard/pki:ro" if "enrol" not in config else "- ./pki:/etc/dockguard/pki\n"
            ) in guard
            assert "cert=pki/server-cert.pem" in url


def test_recipe_certificates_name_the_server_the_tools_connect_to(tmp_path: Path) -> None:
    """Homepage connects to the compose service `dockguard`: the server
    certificate of its recipe must be for that name."""
    from cryptography import x509

    make_certs("recipes.md", "recipes-homepage-certs", tmp_path)
    server = x509.load_pem_x509_certificate((tmp_path / "pki" / "server-cert.pem").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "dockguard" in sans.get_values_for_type(x509.DNSName)
    assert "host: dockguard" in (DOCS / "recipes.md").read_text()
    assert (tmp_path / "pki" / "clients" / "homepage" / "cert.pem").is_file()
    assert "./pki/clients/homepage:/app/config/tls:ro" in (RECIPES / "homepage" / "compose.yaml").read_text()


def test_example_compose_is_the_hardened_drop_in() -> None:
    compose = (DOCS / "examples" / "compose.yaml").read_text()
    guard = _service(compose, "dockguard")
    _check_dockguard_service(guard, "examples/compose.yaml")
    assert "\n    ports:" not in guard, "the plain port must not be published"
    assert re.search(r"^  docker-api:\n    internal: true$", compose, re.M)
    assert (DOCS / "examples" / "compose.yaml").parent.joinpath("../..").resolve() == REPO
    assert "build: ../.." in guard and (REPO / "Dockerfile").is_file()
    # values the drop-in accepts: numbers, never true/false
    for name, value in re.findall(r"^      ([A-Z_]+): (\S+)", guard, re.M):
        assert value.isdigit(), f"{name}: {value}"
    assert "tcp://dockguard:2375" in compose


# -- the Dockerfile --------------------------------------------------------------

DOCKERFILE = (REPO / "Dockerfile").read_text()


def _instruction(name: str) -> str:
    """The (last) instruction NAME, continuation lines joined."""
    joined = DOCKERFILE.replace("\\\n", " ")
    found = re.findall(rf"^{name} (.*)$", joined, re.M)
    assert found, name
    return found[-1]


def _exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


DOCKERFILE_UID = _instruction("USER").split(":")[0]


def builtin_config() -> tuple[str, str]:
    """Where the image's built-in configuration goes, and its text."""
    match = re.search(r"^COPY (docker/\S+\.toml) (\S+)$", DOCKERFILE, re.M)
    assert match, "the built-in configuration: COPY docker/….toml /etc/…"
    return match.group(2), (REPO / match.group(1)).read_text()


def test_dockerfile_builds_with_any_builder() -> None:
    """No `# syntax=` line (BuildKit would fetch that frontend image) and no
    heredoc (the classic builder refuses it): one instruction per line."""
    assert not re.search(r"^#\s*syntax\s*=", DOCKERFILE, re.M | re.I)
    assert "<<" not in DOCKERFILE.replace("\\\n", " ")
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for source in re.findall(r"^COPY (?!--from)(.*) \S+$", DOCKERFILE, re.M):
        for path in source.split():
            assert (REPO / path).exists(), path
            assert not any(path == i or path.startswith(i.rstrip("/") + "/") for i in ignored), path


def test_dockerfile_runs_exec_form_as_non_root() -> None:
    entrypoint = _exec_form(_instruction("ENTRYPOINT"))
    cmd = _exec_form(_instruction("CMD"))
    health = _instruction("HEALTHCHECK")
    health_cmd = _exec_form(health[health.index("CMD ") + 4 :])
    target, _ = builtin_config()
    assert entrypoint == ["twistd", "-n", "--pidfile=", "dockguard"]
    assert cmd == ["--config", target]
    assert health_cmd == ["dockguard", "healthcheck", "--config", target]
    assert DOCKERFILE_UID.isdigit() and int(DOCKERFILE_UID) != 0
    assert _instruction("USER") == f"{DOCKERFILE_UID}:{DOCKERFILE_UID}"
    # the venv is built and copied at the same path, so its shebangs hold
    assert "RUN python -m venv /opt/dockguard" in DOCKERFILE
    assert "COPY --from=build /opt/dockguard /opt/dockguard" in DOCKERFILE
    assert "PATH=/opt/dockguard/bin:$PATH" in DOCKERFILE
    # what the build copies exists and is not ignored
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for source in ("pyproject.toml", "README.md", "src", "twisted"):
        assert (REPO / source).exists() and source not in ignored
    assert (REPO / "twisted" / "plugins" / "dockguard_plugin.py").is_file()


def test_dockerfile_builtin_config_is_the_drop_in(tmp_path: Path) -> None:
    target, text = builtin_config()
    assert target == "/etc/dockguard/dockguard.toml"
    config = tomllib.loads(text)
    assert "upstream" not in config, "SOCKET_PATH must keep choosing the daemon socket"
    assert "identities" not in config and "groups" not in config, "the variables must decide"
    assert config["admin"]["listen"].startswith("tcp://127.0.0.1:")
    path = tmp_path / "dockguard.toml"
    path.write_text(text)
    out = check_config(path)
    assert 'listen tcp://0.0.0.0:2375: fixed identity "socket-proxy"' in out
    # with the drop-in, a Tecnativa-style `true` stops it, as migration.md says
    refused = dockguard(["check-config", str(path)], tmp_path, {"CONTAINERS": "true"})
    assert refused.returncode == 2 and "CONTAINERS: 'true' is not a number" in refused.stderr


# -- migration: every variable -------------------------------------------------------


def test_migration_maps_every_variable() -> None:
    text = (DOCS / "migration.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z_]+)` \|", text, re.M))
    # libpod (issue 17): the LIBPOD_* variables are mapped in podman.md
    rows |= set(re.findall(r"^\| `(LIBPOD_[A-Z_]+)` \|", (DOCS / "podman.md").read_text(), re.M))
    assert set(KNOWN_VARIABLES) <= rows, set(KNOWN_VARIABLES) - rows
    others = (
        "SOCKET_PATH LOG_LEVEL DISABLE_IPV6 TZ LIBPOD_ DELETE PUT PATCH ALLOW_EXEC ALLOW_KILL ALLOW_ATTACH BIND_CONFIG"
    )
    for name in others.split():
        assert f"`{name}" in text, name


#: Calls each tool makes (from permissions.md#common-setups), to check the
#: "unchanged" claims of migration.md's table against its variables.
_TOOL_CALLS = {
    "Traefik": [
        "HEAD /_ping",
        "GET /v1.24/version",
        "GET /v1.24/containers/json?all=1",
        "GET /v1.24/containers/c/json",
        "GET /v1.24/events",
        "GET /services",
        "GET /tasks",
        "GET /nodes/n",
        "GET /networks",
    ],
    "Homepage": ["GET /containers/json?all=true", "GET /containers/c/json", "GET /containers/c/stats?stream=false"],
    "Portainer": [
        "GET /info",
        "GET /system/df",
        "POST /containers/create",
        "POST /containers/c/exec",
        "POST /exec/e/start",
        "POST /images/create",
        "POST /networks/create",
        "POST /volumes/create",
    ],
    "Watchtower": [
        "GET /images/i/json",
        "POST /images/create",
        "POST /containers/c/kill?signal=SIGTERM",
        "DELETE /containers/c?force=1",
        "POST /containers/create?name=c",
        "POST /networks/n/connect",
        "POST /containers/c/start",
        "POST /containers/c/rename",
        "DELETE /images/i?force=1",
    ],
    "Dozzle": [
        "HEAD /_ping",
        "GET /info",
        "GET /containers/json?all=1",
        "GET /containers/c/logs?follow=1",
        "GET /containers/c/stats?stream=1",
        "GET /events",
    ],
    "Dockman": [
        "POST /containers/c/stop",
        "POST /containers/create",
        "POST /images/create",
        "POST /volumes/create",
        "POST /networks/create",
        "GET /system/df",
        "POST /exec/e/start",
        "POST /images/prune",
    ],
}


def _allowed(environ: dict[str, str], request: str) -> bool:
    from dockguard.envpolicy import EnvPolicy
    from dockguard.paths import canonicalise
    from dockguard.routes import lookup

    method, target = request.split(" ", 1)
    path = canonicalise(target.encode())
    return EnvPolicy.from_environ(environ).decide("tool", method, path, lookup(method, path)).allowed


def test_migration_common_setups_allow_every_call_of_the_tools_trace() -> None:
    """Each tool of migration.md's table with a preset: its variables allow every call of
    the preset's trace (tests/traces/<preset>.toml), Swarm variables included."""
    from harness.traces import load_trace

    text = (DOCS / "migration.md").read_text()
    table = text[text.index("## Common setups") : text.index("One proxy per tool")]
    checked = set()
    for row in re.finditer(r"^\| (.+?) \| (.*?) \|.*\| preset `([\w-]+)`[^|]*\|$", table, re.M):
        tool, variables, preset = row.groups()
        if preset == "portainer":
            continue  # its row names the variables with an ellipsis
        environ = dict(re.findall(r"\b([A-Z_]+)=(\d+)", variables))
        for call in load_trace(preset).calls:
            assert _allowed(environ, f"{call.method} {call.path}"), f"{tool} with {environ}: {call.method} {call.path}"
        checked.add(preset)
    assert len(checked) >= 18, checked


def test_migration_common_setups_work_unchanged() -> None:
    text = (DOCS / "migration.md").read_text()
    table = text[text.index("## Common setups") : text.index("One proxy per tool")]
    for tool, calls in _TOOL_CALLS.items():
        row = re.search(rf"^\| {tool} \| (.*?) \|", table, re.M)
        assert row, tool
        environ = dict(re.findall(r"\b([A-Z_]+)=(\d+)", row.group(1)))
        assert environ, tool
        for call in calls:
            assert _allowed(environ, call), f"{tool} with {environ}: {call}"
        assert not _allowed(environ, "POST /plugins/pull"), tool
    # Homepage's buttons: ALLOW_START=1 ALLOW_RESTARTS=1, without POST=1
    buttons = {"CONTAINERS": "1", "ALLOW_START": "1", "ALLOW_RESTARTS": "1"}
    assert "`ALLOW_START=1 ALLOW_RESTARTS=1`, without `POST=1`" in table
    for call in ("POST /containers/c/start", "POST /containers/c/stop", "POST /containers/c/restart"):
        assert _allowed(buttons, call)
    assert not _allowed(buttons, "POST /containers/create")
    # Dozzle: logs need no ALLOW_LOGS=1 here
    assert _allowed({"CONTAINERS": "1"}, "GET /containers/c/logs")


# -- commands and links named in the pages -------------------------------------------


def _code(text: str) -> str:
    """The commands of a page: fenced blocks (not output: no ``text`` blocks,
    only the ``$`` lines of ``console`` ones) and inline code spans."""
    fenced = []
    for lang, body in re.findall(r"```([^\n]*)\n(.*?)```", text, re.S):
        if lang == "console":
            body = "\n".join(line for line in body.splitlines() if line.startswith("$ "))
        if lang != "text":
            fenced.append(re.sub(r"(^|\s)#.*", "", body))  # not comments
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(fenced + inline)


def test_dockguard_commands_in_the_pages_exist() -> None:
    usage = dockguard(["--help"], REPO).stdout
    commands = set(re.search(r"\{([a-z,-]+)\}", usage).group(1).split(","))
    certs_help = dockguard(["certs", "--help"], REPO).stdout
    for page in MY_PAGES:
        code = _code((DOCS / page).read_text())
        # (`docker compose exec dockguard dockguard certs ...`: the service, then the command)
        for sub in re.findall(r"(?:^|[\s`$(])dockguard (?!dockguard )([a-z][a-z-]*)", code, re.M):
            assert sub in commands, f"{page}: dockguard {sub}"
        for sub in re.findall(r"dockguard certs ([a-z]+)", code):
            assert f"    {sub} " in certs_help, f"{page}: dockguard certs {sub}"
        for flag in re.findall(r"dockguard healthcheck (--[a-z]+)", code):
            assert flag in dockguard(["healthcheck", "--help"], REPO).stdout, f"{page}: {flag}"
    # the JSON logger the pages name is importable
    from dockguard.logs import json as json_logger

    assert callable(json_logger)


def _slug(heading: str) -> str:
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("page", MY_PAGES)
def test_links_resolve(page: str) -> None:
    source = DOCS / page
    text = re.sub(r"```.*?```", "", source.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (source.parent / path).resolve() if path else source
        assert resolved.exists(), f"{page}: {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page}: {target}"


# -- end to end: against a real daemon ------------------------------------------------


def _docker_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Nothing from the runner's environment: no DOCKER_HOST, no user config."""
    (home / ".docker").mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        "LANG": "C.UTF-8",
        "DOCKER_CLI_HINTS": "false",
    }
    env.update(extra or {})
    return env


def _run_docker_block(text: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", text],
        cwd=cwd,
        env=_docker_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.e2e
def test_quickstart_end_to_end(tmp_path: Path, dockerd) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from harness.guard import free_port, start_guard

    port, enrol_port = free_port(), free_port()
    work = quickstart_workspace(tmp_path, port, enrol_port)
    home = tmp_path / "home"
    guard = start_guard(
        work,
        dockerd.socket_path,
        [],
        extra_args=["--config", str(work / "dockguard.toml")],
        wait_for=("127.0.0.1", enrol_port),
    )
    try:
        enroll = block("quickstart.md", "quickstart-enroll").text.replace(":2378", f":{enrol_port}")
        done = run_shell(enroll, work)
        assert done.returncode == 0, done.stderr
        alice = work / "alice"
        client = x509.load_pem_x509_certificate((alice / "cert.pem").read_bytes())
        assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
        eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
        assert (alice / "ca.pem").read_bytes() == (work / "pki" / "ca.pem").read_bytes()
        assert stat.S_IMODE((alice / "key.pem").stat().st_mode) == 0o600
        # the context command in the quickstart is the one `dockguard enroll` printed
        printed = [line for line in done.stdout.splitlines() if line.startswith("docker context create ")]
        documented = shell_commands(block("quickstart.md", "quickstart-context"))[0]
        assert printed == [documented.replace("$PWD", str(work.resolve())).replace(":2376", f":{port}")]
        # the token is spent
        again = run_shell(enroll.replace("--dir alice", "--dir again"), work)
        assert again.returncode == 1 and "already used" in again.stderr

        ps = block("quickstart.md", "quickstart-ps").text.replace(":2376", f":{port}")
        done = _run_docker_block(ps, work, home)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("CONTAINER ID")

        context = block("quickstart.md", "quickstart-context").text.replace(":2376", f":{port}")
        done = _run_docker_block(context, work, home)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1].startswith("CONTAINER ID")

        refused = transcript(block("quickstart.md", "quickstart-refused"))[0]
        done = _run_docker_block(shlex.join(refused.argv), work, home)
        assert done.returncode != 0
        assert refused.expected.splitlines()[0] in done.stderr.splitlines()

        log = guard.log()
        assert "enrolled alice for 127.0.0.1" in log
        assert "allow alice GET /v1." in log and "deny alice POST /v1." in log
    finally:
        guard.stop()


@pytest.mark.e2e
def test_image_entrypoint_with_its_builtin_config_is_a_drop_in(tmp_path: Path, dockerd) -> None:
    """The Dockerfile's ENTRYPOINT + CMD and HEALTHCHECK, outside a container,
    with the built-in configuration (ports moved to free loopback ones) and
    the daemon chosen by Tecnativa's SOCKET_PATH."""
    from harness.guard import Guard, free_port, twistd_command

    port, admin = free_port(), free_port()
    _, text = builtin_config()
    text = text.replace("tcp://0.0.0.0:2375?", f"tcp://127.0.0.1:{port}?")
    text = re.sub(r'listen = "tcp://127\.0\.0\.1:\d+"', f'listen = "tcp://127.0.0.1:{admin}"', text)
    config = tmp_path / "dockguard.toml"
    config.write_text(text)

    entrypoint = _exec_form(_instruction("ENTRYPOINT"))
    cmd = [str(config) if arg == "/etc/dockguard/dockguard.toml" else arg for arg in _exec_form(_instruction("CMD"))]
    log_path = tmp_path / "dockguard.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "SOCKET_PATH": dockerd.socket_path,
        "CONTAINERS": "1",
    }
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [*twistd_command(), *entrypoint[1:], *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=tmp_path,
        )
    guard = Guard(process=process, log_path=log_path)
    try:
        import socket
        import time

        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, guard.log()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, guard.log()
                time.sleep(0.05)
        home = tmp_path / "home"
        host = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
        ps = subprocess.run(["docker", "ps"], env=_docker_env(home, host), capture_output=True, text=True, timeout=60)
        assert ps.returncode == 0, ps.stderr
        images = subprocess.run(
            ["docker", "images"], env=_docker_env(home, host), capture_output=True, text=True, timeout=60
        )
        assert "dockguard refused GET /images/json for socket-proxy" in images.stderr
        assert f"relaying to the Docker daemon at {dockerd.socket_path}" in guard.log()

        health = _exec_form(_instruction("HEALTHCHECK")[_instruction("HEALTHCHECK").index("CMD ") + 4 :])
        health = [str(config) if arg == "/etc/dockguard/dockguard.toml" else arg for arg in health]
        assert health[0] == "dockguard"
        checked = dockguard(health[1:], tmp_path)
        assert checked.returncode == 0, checked.stderr
    finally:
        guard.stop()
