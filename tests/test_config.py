"""
Configuration: every mistake stops start-up with the file (or option), the
key and the reason; what is valid becomes the listeners a user expects.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dockguard.config import build_config, load_config
from dockguard.errors import ConfigError
from dockguard.listeners import parse_listen
from dockguard.paths import canonicalise
from dockguard.routes import lookup

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "dockguard.toml"


@pytest.fixture
def pem_files(tmp_path: Path) -> Path:
    for name in ("server-cert.pem", "server-key.pem", "ca.pem"):
        (tmp_path / name).write_text("placeholder")
    return tmp_path


def test_default_is_loopback_tcp_with_a_fixed_identity() -> None:
    config = build_config({})
    (listener,) = config.listeners
    assert (listener.kind, listener.host, listener.port, listener.identity) == ("tcp", "127.0.0.1", 2375, "local")
    assert config.upstream == "/var/run/docker.sock"


@pytest.mark.parametrize(
    "environ, upstream",
    [
        ({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, "/run/user/1000/docker.sock"),
        ({"DOCKER_HOST": "tcp://10.0.0.1:2375", "SOCKET_PATH": "/srv/docker.sock"}, "/srv/docker.sock"),
        ({"SOCKET_PATH": "/srv/docker.sock"}, "/srv/docker.sock"),
        ({}, "/var/run/docker.sock"),
    ],
)
def test_upstream_defaults(environ, upstream) -> None:
    assert build_config(environ).upstream == upstream


def test_option_beats_environment() -> None:
    assert build_config({"SOCKET_PATH": "/a.sock"}, upstream="/b.sock").upstream == "/b.sock"


def test_listen_urls(pem_files: Path) -> None:
    tls = parse_listen(
        f"tls://0.0.0.0:2376?cert={pem_files}/server-cert.pem&key={pem_files}/server-key.pem"
        f"&client_ca={pem_files}/ca.pem"
    )
    assert (tls.kind, tls.host, tls.port, tls.identity) == ("tls", "0.0.0.0", 2376, None)
    tcp = parse_listen("tcp://[::1]:2375?identity=me&allow=10.0.0.0/8,192.168.1.0/24")
    assert tcp.host == "::1" and tcp.allow == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.0/24"),
    )
    unix = parse_listen("unix:///run/dg.sock?identity=traefik&mode=0600")
    assert (unix.path, unix.mode, unix.identity) == ("/run/dg.sock", 0o600, "traefik")


@pytest.mark.parametrize(
    "spec, key, words",
    [
        ("tcp://127.0.0.1:2375", "--listen.identity", "fixed identity"),
        ("tcp://0.0.0.0:2375?identity=x", "--listen.insecure", "non-loopback"),
        ("tcp://127.0.0.1:2375?identity=has space", "--listen.identity", "plain name"),
        ("tcp://127.0.0.1:99999?identity=x", "--listen.address", "HOST:PORT"),
        ("tcp://example.com:2375?identity=x", "--listen.address", "not an IP"),
        ("tcp://127.0.0.1:2375?identity=x&allow=10.0.0.0/33", "--listen.allow", "network"),
        ("tcp://127.0.0.1:2375?identity=x&cert=a", "--listen.cert", "unknown key"),
        ("tcp://127.0.0.1:2375?identity=x&identity=y", "--listen.identity", "twice"),
        ("tls://127.0.0.1:2376?cert=/nope.pem", "--listen.cert", "does not exist"),
        ("tls://127.0.0.1:2376", "--listen.cert", "needs cert, key and client_ca"),
        ("unix://relative?identity=x", "--listen", "three slashes"),
        ("unix:///run/x.sock?identity=x&mode=999", "--listen.mode", "octal"),
        ("http://127.0.0.1:2375", "--listen", "is not"),
    ],
)
def test_bad_listeners_name_key_and_reason(spec, key, words) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_listen(spec)
    assert raised.value.source == "--listen"
    assert raised.value.key == key
    assert words in raised.value.reason


@pytest.mark.parametrize(
    "text, key, words",
    [
        ("bogus = 1", "bogus", "unknown key"),
        ("upstream = 'relative.sock'", "upstream", "absolute path"),
        ("[[listeners]]\ntype = 'tcp'\naddress = '127.0.0.1:1'", "listeners[0].identity", "fixed identity"),
        ("[[listeners]]\naddress = '127.0.0.1:1'", "listeners[0].type", "missing"),
        ("[[listeners]]\ntype = 'udp'\naddress = '127.0.0.1:1'", "listeners[0].type", "unknown listener type"),
        ("[[listeners]]\nurl = 'tcp://127.0.0.1:1?identity=a'\nidentity = 'b'", "listeners[0].identity", "not both"),
        ("[timeouts]\nheader = -1", "timeouts.header", "positive"),
        ("[timeouts]\nheadr = 5", "timeouts.headr", "unknown key"),
        ("listeners = [", "(syntax)", ""),
        ("[limits]\nmax_connections = 10.5", "limits.max_connections", "whole number"),
        ("[limits]\nmax_headers = 0", "limits.max_headers", "positive"),
        ("[limits]\nmax_conections = 5", "limits.max_conections", "unknown key"),
        (
            "[limits]\nmax_connections = 100\nmax_plain_connections = 100",
            "limits.max_plain_connections",
            "leave some for Unix socket callers",
        ),
        (
            "[limits]\nmax_tls_handshakes = 2000",
            "limits.max_tls_handshakes",
            "take all of limits.max_connections (2048)",
        ),
        (
            "[limits]\nmax_plain_connections = 50\nmax_tls_handshakes = 50\nmax_connections = 100",
            "limits.max_plain_connections",
            "TLS callers with a valid certificate",
        ),
        ("[limits]\nmax_drain_bytes = -1", "limits.max_drain_bytes", "positive"),
        ("[timeouts]\ndrain = 0", "timeouts.drain", "positive"),
        ("[admin]\nlisten = 'http://127.0.0.1:9180'", "admin.listen", "tcp://HOST:PORT"),
        ("[admin]\nlisten = 'tcp://127.0.0.1:9180'\nport = 1", "admin", "one key"),
        ("[admin]\nlisten = 'unix://relative.sock'", "admin.listen", "three slashes"),
        ("[admin]\nlisten = 'tcp://127.0.0.1:9180?allow=1'", "admin.listen", "tcp://HOST:PORT"),
        ("admin = 'tcp://127.0.0.1:9180'", "admin", "table"),
    ],
)
def test_bad_files_name_file_key_and_reason(tmp_path: Path, text, key, words) -> None:
    path = tmp_path / "dockguard.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.source == str(path)
    assert raised.value.key == key
    assert words in raised.value.reason
    assert str(raised.value).startswith(f"{path}: {key}: ")


def test_the_documented_example_loads(tmp_path: Path, pem_files: Path) -> None:
    shutil.copytree(pem_files, tmp_path / "certs", dirs_exist_ok=True)
    shutil.copy(EXAMPLE, tmp_path / "dockguard.toml")
    config = build_config({}, config_file=tmp_path / "dockguard.toml")
    assert [listener.name for listener in config.listeners] == [
        "tls://0.0.0.0:2376",
        "unix:///run/dockguard/traefik.sock",
        "tcp://127.0.0.1:2375",
    ]
    assert config.listeners[0].cert == tmp_path / "certs" / "server-cert.pem"
    assert (config.header_timeout, config.idle_timeout, config.max_head_bytes) == (30, 120, 262144)
    assert config.decision_log == tmp_path / "decisions.jsonl"
    # each identity gets the groups the example names
    assert dict(config.policy.identities) == {
        "traefik": ("traefik",),
        "ops": ("admin",),
        "ci-runner": ("ci",),
        "local": ("readonly",),
    }

    def allowed(identity: str, method: str, target: bytes) -> bool:
        path = canonicalise(target)
        return config.policy.decide(identity, method, path, lookup(method, path)).allowed

    assert allowed("traefik", "GET", b"/v1.41/containers/json")
    assert not allowed("traefik", "POST", b"/v1.41/containers/abc/start")
    assert allowed("ops", "POST", b"/v1.41/containers/create")
    assert allowed("local", "GET", b"/v1.41/images/json")
    assert not allowed("local", "POST", b"/v1.41/containers/abc/start")
    # ci extends readonly, adds image actions and lowers secrets/configs/swarm
    assert allowed("ci-runner", "GET", b"/v1.41/containers/json")
    assert allowed("ci-runner", "POST", b"/v1.41/build")
    assert allowed("ci-runner", "POST", b"/v1.41/images/registry.example/app/push")
    assert not allowed("ci-runner", "GET", b"/v1.41/secrets")
    assert not allowed("ci-runner", "POST", b"/v1.41/containers/create")
    assert not config.policy.groups["ci"].learn
    assert not allowed("someone-else", "GET", b"/_ping")


def test_check_config_command(tmp_path: Path, pem_files: Path) -> None:
    shutil.copytree(pem_files, tmp_path / "certs", dirs_exist_ok=True)
    shutil.copy(EXAMPLE, tmp_path / "dockguard.toml")
    cmd = [sys.executable, "-m", "dockguard.cli", "check-config"]
    good = subprocess.run([*cmd, str(tmp_path / "dockguard.toml")], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert 'fixed identity "traefik"' in good.stdout
    (tmp_path / "certs" / "ca.pem").unlink()
    bad = subprocess.run([*cmd, str(tmp_path / "dockguard.toml")], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "listeners[0].client_ca" in bad.stderr and "does not exist" in bad.stderr


def test_a_listener_can_be_set_to_learn() -> None:
    listener = parse_listen("tcp://127.0.0.1:2375?identity=tool&learn=1")
    assert listener.learn is True
    assert "LEARN MODE" in listener.describe()
    assert parse_listen("unix:///run/x.sock?identity=tool").learn is False
    with pytest.raises(ConfigError) as raised:
        parse_listen("tcp://127.0.0.1:2375?identity=tool&learn=maybe")
    assert raised.value.key == "--listen.learn"


def test_limits_and_admin_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "dockguard.toml"
    path.write_text(
        "[limits]\nmax_connections = 100\nmax_connections_per_peer = 10\nmax_headers = 50\n"
        "[admin]\nlisten = 'tcp://127.0.0.1:9180'\n"
    )
    config = build_config({}, config_file=path)
    assert (config.max_connections, config.max_connections_per_peer, config.max_headers) == (100, 10, 50)
    assert config.admin is not None and config.admin.name == "tcp://127.0.0.1:9180"
    assert (
        build_config({}, config_file=path, admin="unix:///run/dg-admin.sock").admin.name == "unix:///run/dg-admin.sock"
    )
    assert build_config({}).admin is None  # off by default


def test_the_admin_listener_cannot_share_an_address_with_a_listener() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config({}, listen=["tcp://127.0.0.1:2375?identity=a"], admin="tcp://127.0.0.1:2375")
    assert "given twice" in raised.value.reason


def test_dos_limits_from_a_file_reach_the_relay(tmp_path: Path) -> None:
    from dockguard.service import limits_of

    path = tmp_path / "dockguard.toml"
    path.write_text(
        "[limits]\nmax_connections = 100\nmax_plain_connections = 40\nmax_tls_handshakes = 10\n"
        "max_drain_bytes = 1000\n[timeouts]\ndrain = 2.5\n"
    )
    config = build_config({}, config_file=path)
    limits = limits_of(config)
    assert (limits.plainBudget, limits.handshakeBudget, limits.drain_bytes) == (40, 10, 1000)
    assert config.drain_timeout == 2.5
    defaults = limits_of(build_config({}))
    assert (defaults.connections, defaults.connections_per_peer, defaults.plainBudget, defaults.handshakeBudget) == (
        2048,
        128,
        1024,
        256,
    )
