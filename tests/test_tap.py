"""
Unit tests of L{dockguard.tap}, the C{twistd dockguard} command, in memory:
its options as twistd parses them (through the plugin, as a user runs it),
the one line a user gets for a mistake, the service tree L{makeService}
builds (bound to a L{MemoryReactorClock}, never to a real port), and the log
observer it hands twistd.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import twisted.internet
from twisted.application import app
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Application, IService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint, UNIXServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import FileLogObserver, ILogObserver, LogLevel, formatEventAsClassicLogText
from twisted.python import usage
from twisted.scripts.twistd import ServerOptions

from dockguard.config import DEFAULT_LISTEN
from dockguard.envpolicy import EnvPolicy
from dockguard.groups import GroupPolicy
from dockguard.logs import ClassicText
from dockguard.relay import ClientFactory
from dockguard.tap import Options, _LoggingTo, makeService
from dockguard.tls import HalfCloseTLSFactory
from harness.pki import TestPKI

UPSTREAM = "/run/test-docker.sock"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DOCKER_HOST, SOCKET_PATH or Tecnativa variable of the test run leaks in."""
    for name in ("DOCKER_HOST", "SOCKET_PATH", "CONTAINERS", "POST", "ALLOW_START", "IMAGES", "EXEC"):
        monkeypatch.delenv(name, raising=False)


def twistd(*args: str, before: tuple[str, ...] = ()) -> Options:
    """The dockguard options as C{twistd -n --pidfile= BEFORE dockguard ARGS} parses them."""
    server = ServerOptions()
    server.parseOptions(["-n", "--pidfile=", *before, "dockguard", *args])
    assert server.subCommand == "dockguard"
    options = server.subOptions
    assert isinstance(options, Options)
    return options


def parse(*args: str) -> Options:
    """The options without twistd around them."""
    options = Options()
    options.parseOptions(list(args))
    return options


# -- options ------------------------------------------------------------------------------


def test_twistd_finds_the_plugin() -> None:
    names = {name: module for name, _, module, _ in ServerOptions().subCommands}
    assert "dockguard" in names


def test_with_no_options_it_listens_on_the_default_with_the_environment_policy() -> None:
    options = twistd()
    config = options["built"]
    assert [listener.name for listener in config.listeners] == [DEFAULT_LISTEN.split("?")[0]]
    assert config.listeners[0].kind == "tcp" and config.listeners[0].loopback
    assert config.upstream == "/var/run/docker.sock"
    assert config.admin is None and config.source == "defaults"
    assert isinstance(options["policy"], EnvPolicy)
    assert options["tls"] == {}


@pytest.mark.parametrize("flag", ["--upstream", "-u"])
def test_upstream(flag: str) -> None:
    assert twistd(flag, UPSTREAM)["built"].upstream == UPSTREAM


@pytest.mark.parametrize(
    ("environ", "upstream"),
    [
        ({"DOCKER_HOST": "unix:///run/host.sock"}, "/run/host.sock"),
        ({"DOCKER_HOST": "tcp://10.0.0.1:2375"}, "/var/run/docker.sock"),
        ({"SOCKET_PATH": "/run/tecnativa.sock"}, "/run/tecnativa.sock"),
        ({"DOCKER_HOST": "unix:///run/host.sock", "SOCKET_PATH": "/run/tecnativa.sock"}, "/run/host.sock"),
    ],
)
def test_upstream_default_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], upstream: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert twistd()["built"].upstream == upstream
    assert twistd("--upstream", UPSTREAM)["built"].upstream == UPSTREAM


@pytest.mark.parametrize("flag", ["--listen", "-l"])
def test_listen_is_repeatable_and_keeps_its_order(flag: str, tmp_path: Path) -> None:
    urls = [
        "tcp://127.0.0.1:2376?identity=ci",
        f"unix://{tmp_path}/dockguard.sock?identity=local&mode=0600",
        "tcp://[::1]:2377?identity=v6",
    ]
    args = [arg for url in urls for arg in (flag, url)]
    listeners = twistd(*args)["built"].listeners
    assert [listener.name for listener in listeners] == [
        "tcp://127.0.0.1:2376",
        f"unix://{tmp_path}/dockguard.sock",
        "tcp://[::1]:2377",
    ]
    assert [listener.identity for listener in listeners] == ["ci", "local", "v6"]
    assert listeners[1].mode == 0o600


def test_admin() -> None:
    admin = twistd("--admin", "tcp://127.0.0.1:9100")["built"].admin
    assert admin is not None and (admin.kind, admin.host, admin.port) == ("tcp", "127.0.0.1", 9100)


CONFIG = """\
upstream = "/run/from-file.sock"

[[listeners]]
type = "tcp"
address = "127.0.0.1:2380"
identity = "ci"

[admin]
listen = "tcp://127.0.0.1:9200"

[identities]
ci = ["readers"]

[groups.readers]
extends = ["readonly"]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "dockguard.toml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("flag", ["--config", "-c"])
def test_config_file(flag: str, config_file: Path) -> None:
    options = twistd(flag, str(config_file))
    config = options["built"]
    assert config.source == str(config_file)
    assert config.upstream == "/run/from-file.sock"
    assert [listener.name for listener in config.listeners] == ["tcp://127.0.0.1:2380"]
    assert config.admin is not None and config.admin.port == 9200
    assert isinstance(options["policy"], GroupPolicy)
    assert options["policy_lines"], "the policy says what it is at start"


def test_options_override_the_config_file(config_file: Path) -> None:
    config = twistd(
        "--config",
        str(config_file),
        "--listen",
        "tcp://127.0.0.1:2390?identity=ci",
        "--upstream",
        UPSTREAM,
        "--admin",
        "tcp://127.0.0.1:9300",
    )["built"]
    assert [listener.name for listener in config.listeners] == ["tcp://127.0.0.1:2390"]
    assert config.upstream == UPSTREAM
    assert config.admin is not None and config.admin.port == 9300


def test_rebuild_reads_the_files_again(config_file: Path) -> None:
    """What SIGHUP runs: the same options, the files as they are now."""
    options = twistd("--config", str(config_file))
    config_file.write_text(CONFIG.replace("2380", "2381"))
    config, policy, _, tls = options.rebuild()
    assert [listener.name for listener in config.listeners] == ["tcp://127.0.0.1:2381"]
    assert isinstance(policy, GroupPolicy) and tls == {}
    assert [listener.port for listener in options["built"].listeners] == [2380], "the running one is left alone"


def test_tls_listener_options_are_loaded(pki: TestPKI) -> None:
    url = f"tls://127.0.0.1:2443?cert={pki.server_cert_path}&key={pki.server_key_path}&client_ca={pki.ca_path}"
    options = twistd("--listen", url)
    assert list(options["tls"]) == ["tls://127.0.0.1:2443"]
    assert options["built"].listeners[0].client_ca == pki.ca_path


# -- what a user sees for a mistake -------------------------------------------------------------


def run_twistd(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """
    Run twistd's own front end (L{app.run}) as C{twistd dockguard ARGS} does,
    up to where it would start the application: the exit status and the
    last line it printed.
    """
    monkeypatch.setattr(sys, "argv", ["twistd", "dockguard", *args])
    started: list[object] = []
    with pytest.raises(SystemExit) as exited:
        app.run(started.append, ServerOptions)
    assert started == []
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return exited.value.code, out.rstrip("\n").split("\n")[-1]  # type: ignore[return-value]


def _bad_toml(tmp_path: Path) -> list[str]:
    path = tmp_path / "bad.toml"
    path.write_text("upstream = \n")
    return ["--config", str(path)]


def _unknown_key(tmp_path: Path) -> list[str]:
    path = tmp_path / "typo.toml"
    path.write_text('upstreams = "/run/docker.sock"\n')
    return ["--config", str(path)]


MISTAKES = [
    pytest.param(lambda tmp: ["--bogus"], ["--bogus", "not recognized"], id="unknown-option"),
    pytest.param(lambda tmp: ["--listen"], ["--listen", "requires argument"], id="listen-without-url"),
    pytest.param(lambda tmp: ["--listen", "http://127.0.0.1:1"], ["'http://127.0.0.1:1'", "tls://"], id="bad-scheme"),
    pytest.param(
        lambda tmp: ["--listen", "tcp://127.0.0.1:1?identity=a", "--listen", "tcp://127.0.0.1:1?identity=b"],
        ["tcp://127.0.0.1:1 is given twice"],
        id="same-listener-twice",
    ),
    pytest.param(
        lambda tmp: ["--listen", "tcp://0.0.0.0:2375?identity=a"], ["non-loopback", "insecure"], id="exposed-tcp"
    ),
    pytest.param(
        lambda tmp: ["--listen", f"tls://127.0.0.1:1?cert={tmp}/no.pem&key={tmp}/no.pem&client_ca={tmp}/no.pem"],
        ["--listen.cert", "no.pem does not exist"],
        id="tls-files-missing",
    ),
    pytest.param(lambda tmp: ["--admin", "http://127.0.0.1:9100"], ["'http://127.0.0.1:9100'"], id="bad-admin"),
    pytest.param(
        lambda tmp: ["--config", f"{tmp}/missing.toml"], ["missing.toml", "No such file"], id="config-missing"
    ),
    pytest.param(lambda tmp: ["--config", str(tmp)], ["Is a directory"], id="config-is-a-directory"),
    pytest.param(_bad_toml, ["bad.toml", "(syntax)"], id="config-not-toml"),
    pytest.param(_unknown_key, ["typo.toml", "upstreams"], id="config-unknown-key"),
]


@pytest.mark.parametrize(("args", "fragments"), MISTAKES)
def test_a_mistake_is_one_usage_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, args, fragments: list[str]
) -> None:
    code, line = run_twistd(monkeypatch, capsys, *args(tmp_path))
    assert code == 1
    assert line.startswith("twistd dockguard: ")
    for fragment in fragments:
        assert fragment in line


def test_a_configuration_error_becomes_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(usage.UsageError) as raised:
        parse("--config", str(tmp_path / "missing.toml"))
    assert "\n" not in str(raised.value)


def test_a_tls_key_that_is_not_a_key_is_a_usage_error(pki: TestPKI, tmp_path: Path) -> None:
    """load_tls runs at parse time: a broken key is caught before twistd starts anything."""
    key = tmp_path / "key.pem"
    key.write_text("not a key\n")
    url = f"tls://127.0.0.1:2443?cert={pki.server_cert_path}&key={key}&client_ca={pki.ca_path}"
    with pytest.raises(usage.UsageError) as raised:
        parse("--listen", url)
    assert "tls://127.0.0.1:2443" in str(raised.value) and "cannot load" in str(raised.value)


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        twistd("--help")
    out = capsys.readouterr().out
    for option in ("--config", "--listen", "--upstream", "--admin", "tls://HOST:PORT", "-l,", "-c,", "-u,"):
        assert option in out


# -- the service tree ---------------------------------------------------------------------------


@pytest.fixture
def reactor(monkeypatch: pytest.MonkeyPatch) -> MemoryReactorClock:
    """The reactor makeService imports: a MemoryReactorClock, which binds nothing."""
    memory = MemoryReactorClock()
    monkeypatch.setattr(twisted.internet, "reactor", memory, raising=False)
    return memory


def children(service: IService) -> dict[str, StreamServerEndpointService]:
    return {child.name: child for child in service}  # type: ignore[attr-defined]


def test_make_service_builds_one_listening_service_per_listener(
    reactor: MemoryReactorClock, pki: TestPKI, tmp_path: Path
) -> None:
    tls = f"tls://127.0.0.1:2443?cert={pki.server_cert_path}&key={pki.server_key_path}&client_ca={pki.ca_path}"
    sock = tmp_path / "dockguard.sock"
    options = parse(
        "--listen",
        tls,
        "--listen",
        "tcp://127.0.0.1:2375?identity=ci",
        "--listen",
        "tcp://[::1]:2376?identity=v6",
        "--listen",
        f"unix://{sock}?identity=local",
        "--upstream",
        UPSTREAM,
    )
    service = makeService(options)
    assert not isinstance(service, _LoggingTo), "no twistd around it: no observer to hand over"
    services = children(service)
    assert list(services) == [
        "tls://127.0.0.1:2443",
        "tcp://127.0.0.1:2375",
        "tcp://[::1]:2376",
        f"unix://{sock}",
    ]
    endpoints = {name: child.endpoint for name, child in services.items()}
    assert type(endpoints["tls://127.0.0.1:2443"]) is TCP4ServerEndpoint
    assert type(endpoints["tcp://[::1]:2376"]) is TCP6ServerEndpoint
    assert type(endpoints[f"unix://{sock}"]) is UNIXServerEndpoint

    tls_factory = services["tls://127.0.0.1:2443"].factory
    assert isinstance(tls_factory, HalfCloseTLSFactory) and tls_factory.plainHttp is not None
    assert isinstance(tls_factory.wrappedFactory, ClientFactory)
    assert tls_factory.wrappedFactory.listener.identity is None, "TLS callers are named by their certificate"
    plain = services["tcp://127.0.0.1:2375"].factory
    assert isinstance(plain, ClientFactory) and plain.listener.identity == "ci"

    # The daemon is where --upstream says; nothing is connected yet.
    assert service.relay.pool.address == UPSTREAM  # type: ignore[attr-defined]
    assert reactor.unixClients == [] and reactor.tcpClients == []

    # Binding is twistd's privileged start: here, into the MemoryReactorClock.
    assert reactor.tcpServers == [] and reactor.unixServers == []
    service.privilegedStartService()
    assert [(port, interface) for port, _, _, interface in reactor.tcpServers] == [
        (2443, "127.0.0.1"),
        (2375, "127.0.0.1"),
        (2376, "::1"),
    ]
    assert reactor.tcpServers[0][1] is tls_factory and reactor.tcpServers[1][1] is plain
    [(path, factory, _, mode, _)] = reactor.unixServers
    assert path == str(sock) and mode == 0o660 and isinstance(factory, ClientFactory)
    assert factory.listener.identity == "local"
    assert not sock.exists()


def test_make_service_with_an_admin_listener(reactor: MemoryReactorClock) -> None:
    service = makeService(parse("--admin", "tcp://127.0.0.1:9100", "--upstream", UPSTREAM))
    services = children(service)
    assert list(services) == ["tcp://127.0.0.1:2375", "admin tcp://127.0.0.1:9100"]
    service.privilegedStartService()
    assert [(port, interface) for port, _, _, interface in reactor.tcpServers] == [
        (2375, "127.0.0.1"),
        (9100, "127.0.0.1"),
    ]
    admin_factory = reactor.tcpServers[1][1]
    assert not isinstance(admin_factory, ClientFactory), "the admin listener never relays the Docker API"


def test_make_service_reloads_with_the_options_rebuild(reactor: MemoryReactorClock, config_file: Path) -> None:
    options = parse("--config", str(config_file))
    service = makeService(options)
    assert service.rebuild == options.rebuild  # type: ignore[attr-defined]
    config_file.write_text(CONFIG.replace('extends = ["readonly"]', 'actions = ["container.start"]'))
    assert service.reload()  # type: ignore[attr-defined]
    assert service.relay.policy is not options["policy"]  # type: ignore[attr-defined]


# -- the log observer ---------------------------------------------------------------------------


def test_under_twistd_the_service_hands_over_a_classic_text_observer(
    reactor: MemoryReactorClock, tmp_path: Path
) -> None:
    logfile = tmp_path / "dockguard.log"
    options = twistd("--upstream", UPSTREAM, before=(f"--logfile={logfile}",))
    service = makeService(options)
    assert isinstance(service, _LoggingTo)
    [inner] = list(service)  # type: ignore[call-overload]
    assert list(children(inner)) == ["tcp://127.0.0.1:2375"]

    application = Application("dockguard")
    service.setServiceParent(application)
    observer = application.getComponent(ILogObserver)
    assert observer is service.observer
    assert isinstance(observer, FileLogObserver) and isinstance(observer.formatEvent, ClassicText)
    event = dict(log_format="listening on {where}", where="here", log_time=0.0, log_namespace="dockguard")
    observer(dict(event, log_level=LogLevel.info))
    assert logfile.read_text() == formatEventAsClassicLogText(dict(event, log_level=LogLevel.info))
    assert logfile.read_text().endswith(" [dockguard#info] listening on here\n")


@pytest.mark.parametrize("logging", [["--logger", "dockguard.logs.json"], ["--syslog"]])
def test_a_logger_or_syslog_of_the_user_is_left_to_twistd(reactor: MemoryReactorClock, logging: list[str]) -> None:
    service = makeService(twistd("--upstream", UPSTREAM, before=tuple(logging)))
    assert not isinstance(service, _LoggingTo)
    application = Application("dockguard")
    service.setServiceParent(application)
    assert application.getComponent(ILogObserver) is None


def test_logging_to_sets_no_component_on_a_plain_parent() -> None:
    """A parent that is not an application (a MultiService) just gets the child."""
    from twisted.application.service import MultiService, Service

    observer = FileLogObserver(io.StringIO(), ClassicText())
    inner = Service()
    wrapper = _LoggingTo(observer, inner)
    parent = MultiService()
    wrapper.setServiceParent(parent)
    assert list(parent) == [wrapper] and list(wrapper) == [inner]
