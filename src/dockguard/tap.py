"""
The C{twistd dockguard} command: options and service construction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from twisted.application.service import IService, MultiService
from twisted.internet.ssl import CertificateOptions
from twisted.logger import FileLogObserver, ILogObserver
from twisted.python import usage
from twisted.python.components import Componentized
from twisted.scripts._twistd_unix import UnixAppLogger

from dockguard.config import DEFAULT_LISTEN, Config, build_config, choose_policy
from dockguard.envpolicy import EnvPolicy
from dockguard.errors import ConfigError
from dockguard.groups import GroupPolicy
from dockguard.interfaces import IReactor
from dockguard.logs import ClassicText
from dockguard.service import load_tls, make_service


class Options(usage.Options):
    synopsis = "[--config FILE] [--listen URL ...] [--upstream SOCKET] [--admin URL]"
    longdesc = (
        "Relay the Docker Engine API from mutual-TLS, TCP or Unix listeners to "
        "the daemon's Unix socket, authorising every request first. With no "
        f"options it listens on {DEFAULT_LISTEN} only, with Tecnativa's default "
        "permissions (EVENTS, PING, VERSION). Permissions come from the "
        "configuration file's [identities] and [groups] (docs/groups.md) or, "
        "without them, from the Tecnativa / linuxserver environment variables "
        "(CONTAINERS=1, POST=1, ALLOW_START=1, ...)."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file (see docs/configuration.md)."],
        [
            "upstream",
            "u",
            None,
            "The Docker daemon's Unix socket path. Default: a unix:// DOCKER_HOST, "
            "else SOCKET_PATH, else /var/run/docker.sock.",
        ],
        [
            "admin",
            None,
            None,
            "Serve /health and /metrics (Prometheus) here: tcp://HOST:PORT or "
            "unix:///PATH. Off by default; overrides the file's [admin] listen.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self["listen"] = []

    def opt_listen(self, url: str) -> None:
        """
        Listen here (repeatable): tls://HOST:PORT?cert=F&key=F&client_ca=F,
        tcp://HOST:PORT?identity=NAME[&allow=CIDR,...][&insecure=1],
        unix:///PATH?identity=NAME[&mode=0660].
        """
        self["listen"].append(url)

    opt_l = opt_listen

    def rebuild(self) -> tuple[Config, GroupPolicy | EnvPolicy, list[str], dict[str, CertificateOptions]]:
        """
        The configuration, policy, its log lines and TLS options, from the
        same options and files: at start, and again at every SIGHUP.
        """
        config = build_config(
            os.environ,
            config_file=Path(self["config"]) if self["config"] else None,
            listen=self["listen"],
            upstream=self["upstream"],
            admin=self["admin"],
        )
        policy, lines = choose_policy(config.policy, os.environ, config.source)
        return config, policy, lines, load_tls(config)

    def postOptions(self) -> None:
        try:
            self["built"], self["policy"], self["policy_lines"], self["tls"] = self.rebuild()
        except ConfigError as e:
            raise usage.UsageError(str(e))


def makeService(options: Options) -> IService:
    # Imported here, not at the top: importing the reactor installs the
    # default one, and twistd installs the one its --reactor names first.
    from twisted.internet import reactor

    service = make_service(
        # Twisted annotates its global reactor with an interface that lacks
        # IReactorUNIX (and IReactorFromThreads); the reactor has both.
        cast(IReactor, reactor),
        options["built"],
        options["policy"],
        options["policy_lines"],
        tls=options["tls"],
        rebuild=options.rebuild,
    )
    observer = text_observer(getattr(options, "parent", None))
    if observer is None:
        return service
    return _LoggingTo(observer, service)


def text_observer(twistd: Mapping[str, Any] | None) -> FileLogObserver | None:
    """
    The log observer twistd itself would make (its C{--logfile}, C{-n} and
    rotation on SIGUSR1), writing its classic text lines with
    L{dockguard.logs.ClassicText}: one line per decision costs a fifth of
    what twistd's formatter takes.  L{None} when twistd was told to log
    otherwise (C{--logger}, C{--syslog}): then that is used.
    """
    if twistd is None or twistd.get("logger") or twistd.get("syslog"):
        return None
    observer = UnixAppLogger(twistd)._getLogObserver()
    if not isinstance(observer, FileLogObserver):
        return None
    observer.formatEvent = ClassicText()
    return observer


class _LoggingTo(MultiService):
    """
    The service, and the log observer twistd is to use: twistd takes an
    L{ILogObserver} component of its application when no C{--logger} was
    given, and starts logging only after the service joined the application.
    """

    def __init__(self, observer: FileLogObserver, service: IService) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.observer = observer
        service.setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        if isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.observer)
        super().setServiceParent(parent)  # type: ignore[no-untyped-call]  # unannotated in Twisted
