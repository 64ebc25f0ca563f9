"""
Service wiring: one listening service per configured listener, all sharing
one L{Relay} (policy, upstream pool, limits).
"""

from __future__ import annotations

import resource
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IAddress, IReactorFromThreads
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import deferLater
from twisted.logger import Logger, globalLogPublisher
from twisted.protocols.tls import TLSMemoryBIOProtocol

from dockguard.config import Config, exposure_warnings
from dockguard.decisionlog import DecisionLog
from dockguard.endpoints import (
    CannotListen,
    admission_of,
    cannot_listen_reason,
    endpoint_for,
    one_line_for_cannot_listen,
)
from dockguard.errors import ConfigError
from dockguard.interfaces import IAbortableTransport, IReactor
from dockguard.listeners import ListenerConfig
from dockguard.metrics import Metrics, NoMetrics, PrometheusMetrics
from dockguard.policy import Policy
from dockguard.relay import ClientFactory, ClientProtocol, DaemonPool, Limits, Listener, Relay, Timeouts
from dockguard.relay.admission import format_peer
from dockguard.tls import (
    HalfCloseTLSFactory,
    SwappableServerCreator,
    expiry_warnings,
    load_certificates,
    refused_now,
    server_options,
)

if TYPE_CHECKING:
    from dockguard.enrolserver import EnrolFactory

log = Logger(namespace="dockguard")


def load_tls(config: Config) -> dict[str, CertificateOptions]:
    """
    The TLS server options of every tls listener, by listener name.

    @raise ConfigError: a certificate, key, CA bundle or CRL cannot be used.
    """
    loaded = {}
    for listener in config.listeners:
        if listener.kind != "tls":
            continue
        assert listener.cert and listener.key and listener.client_ca
        try:
            loaded[listener.name] = server_options(listener.cert, listener.key, listener.client_ca, listener.crl)
        except Exception as e:
            raise ConfigError(
                config.source if config.source != "defaults" else "--listen",
                listener.name,
                f"cannot load its certificate, key, client CA or CRL: {e}",
            )
    return loaded


def certificate_warnings(config: Config) -> list[str]:
    paths = []
    for listener in config.listeners:
        if listener.kind == "tls":
            paths += [listener.cert, listener.client_ca]
    return expiry_warnings([p for p in paths if p is not None])


def record_certificate_expiry(metrics: Metrics, config: Config) -> None:
    for listener in config.listeners:
        if listener.kind != "tls":
            continue
        for role, path in (("server", listener.cert), ("client_ca", listener.client_ca)):
            assert path is not None
            for cert in load_certificates(path)[:1]:
                metrics.certificateExpiry(listener.name, role, cert.not_valid_after_utc.timestamp())


#: Seconds open connections get to close at shutdown before they are cut.
SHUTDOWN_GRACE = 2.0


def open_files_for(connections: int) -> str | None:
    """
    Raise this process's open-file limit to what C{connections} client
    connections need (each has a daemon connection too); say so when the
    hard limit does not allow it.
    """
    wanted = 2 * connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return None
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        return (
            f"limits.max_connections = {connections} needs about {wanted} open files, but this "
            f"process may open {target} (ulimit -n / LimitNOFILE / the container's nofile ulimit); "
            "beyond that new connections fail"
        )
    return None


def limits_of(config: Config) -> Limits:
    return Limits(
        head_bytes=config.max_head_bytes,
        headers=config.max_headers,
        inspected_body=config.max_inspected_body,
        connections=config.max_connections,
        connections_per_peer=config.max_connections_per_peer,
        plain_connections=config.max_plain_connections,
        tls_handshakes=config.max_tls_handshakes,
        drain_bytes=config.max_drain_bytes,
    )


def _listener(listener: ListenerConfig) -> Listener:
    return Listener(
        name=listener.name,
        identity=listener.identity,
        admit=admission_of(listener),
        learn=listener.learn,
    )


def no_longer_admitted(connection: ClientProtocol, policy: Policy, tls: CertificateOptions | None) -> str | None:
    """
    Why an open connection would not be let in under the state a reload
    just applied, or L{None}: C{tls} is its listener's TLS options now
    (L{None} for plain listeners), C{policy} the new policy.

    - A TLS connection's certificate is checked as a new handshake would
      check it: the new CRL, the new client CA, its expiry.
    - A TLS connection still in its handshake began it under the old CA and
      CRL, which OpenSSL will use to its end: it is refused too (the client
      connects again, under the new ones).
    - Every identity (from a certificate or a listener) must still be one
      the policy lets make some request (L{Policy.shut_out}).
    """
    if tls is not None:
        # A TLS listener's connections run over TLS: ITransport has neither
        # disconnecting nor getHandle.
        transport = cast(TLSMemoryBIOProtocol, connection.transport)
        leaf = connection.certificate
        if leaf is None:
            if connection.identity is None and not transport.disconnecting:
                return "its TLS handshake began under the previous client CA and CRL"
            return None
        sent = transport.getHandle().get_peer_cert_chain(as_cryptography=True) or []
        refusal = refused_now(tls, leaf, [cert for cert in sent if cert != leaf])
        if refusal is not None:
            return refusal
    if connection.identity is not None:
        shut = policy.shut_out(connection.identity)
        if shut is not None:
            return shut.reason
    return None


def _plain_http_refused(relay: Relay, listener: str) -> Callable[[IAddress], None]:
    """Count and (now and then) log a plain-HTTP client a TLS listener answered 400."""

    def refused(peer: IAddress) -> None:
        relay.admission.turnAway(
            "plain-http",
            "the client sent plain HTTP to this TLS listener (answered 400: use TLS with a client certificate)",
            format_peer(peer),
            listener,
        )

    return refused


#: What a reload rebuilds: the configuration, the policy and its log lines,
#: and the TLS options (it raises ConfigError when something is wrong).
Rebuild = Callable[[], tuple[Config, Policy, list[str], dict[str, CertificateOptions]]]


def make_service(
    reactor: IReactor,
    config: Config,
    policy: Policy,
    policy_lines: list[str],
    tls: dict[str, CertificateOptions] | None = None,
    rebuild: Rebuild | None = None,
) -> MultiService:
    """
    The whole dockguard service for C{config}: listeners over one relay.
    C{rebuild}, when given, is what SIGHUP runs to reload.
    """
    if tls is None:
        tls = load_tls(config)
    pool = DaemonPool.unix(reactor, config.upstream)
    metrics: Metrics = NoMetrics()
    if config.admin is not None:
        metrics = PrometheusMetrics(lambda: list(relay.connections))
    relay = Relay(
        reactor=reactor,
        pool=pool,
        policy=policy,
        timeouts=Timeouts(header=config.header_timeout, idle=config.idle_timeout, drain=config.drain_timeout),
        limits=limits_of(config),
        metrics=metrics,
    )
    record_certificate_expiry(metrics, config)
    top = _DockguardService(reactor, relay, config, policy_lines, rebuild)
    for listener in config.listeners:
        factory = ClientFactory(relay, _listener(listener))
        top.factories[listener.name] = factory
        wrapped: object = factory
        if listener.kind == "tls":
            creator = SwappableServerCreator(tls[listener.name])
            top.creators[listener.name] = creator
            wrapped = HalfCloseTLSFactory(creator, False, factory, plainHttp=_plain_http_refused(relay, listener.name))
        service = StreamServerEndpointService(endpoint_for(reactor, listener), wrapped)
        service._raiseSynchronously = True
        service.setName(listener.name)
        service.setServiceParent(top)
    if config.admin is not None:
        # Imported only with an admin listener: it brings twisted.web and
        # prometheus_client, which the idle process does without.
        from dockguard.admin import admin_site

        assert isinstance(metrics, PrometheusMetrics)
        service = StreamServerEndpointService(
            endpoint_for(reactor, config.admin), admin_site(reactor, config.upstream, metrics)
        )
        service._raiseSynchronously = True
        service.setName("admin " + config.admin.name)
        service.setServiceParent(top)
    if config.enrol is not None:
        # Imported only with an enrolment listener (twisted.web, the CA).
        from dockguard.enrolserver import EnrolFactory

        docker_port = next((listener.port for listener in config.listeners if listener.kind == "tls"), None)
        top.enrol = EnrolFactory(reactor, config.enrol, docker_port)
        service = StreamServerEndpointService(endpoint_for(reactor, config.enrol.listener), top.enrol)
        service._raiseSynchronously = True
        service.setName("enrol " + config.enrol.listener.name)
        service.setServiceParent(top)
    return top


class _DockguardService(MultiService):
    def __init__(
        self,
        reactor: IReactorFromThreads,
        relay: Relay,
        config: Config,
        policy_lines: list[str],
        rebuild: Rebuild | None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.reactor = reactor
        self.relay = relay
        self.config = config
        self.policy_lines = policy_lines
        self.rebuild = rebuild
        self.factories: dict[str, ClientFactory] = {}
        self.creators: dict[str, SwappableServerCreator] = {}
        #: The enrolment listener's factory (dockguard.enrolserver.EnrolFactory), if any.
        self.enrol: EnrolFactory | None = None

    def reload(self) -> bool:
        """
        Re-read the configuration, certificates and CRLs.  Everything is
        built and checked first; only then is anything swapped, so a bad
        configuration leaves the running one in place.  Open connections
        keep going, except those of callers the new state no longer admits
        (a revoked certificate, an identity without groups), which are
        closed; new requests are judged by the new policy, new TLS
        connections get the new certificates and CRL.
        """
        if self.rebuild is None:
            return False
        try:
            config, policy, lines, tls = self.rebuild()
        except ConfigError as e:
            log.error("reload failed, the running configuration stays: {error}", error=str(e))
            self.relay.metrics.reloaded(False)
            return False
        except Exception as e:  # an unreadable file, a bad key: say so, keep serving
            log.error("reload failed, the running configuration stays: {error}", error=repr(e))
            self.relay.metrics.reloaded(False)
            return False
        old = {listener.name for listener in self.config.listeners}
        new = {listener.name for listener in config.listeners}
        if (
            old != new
            or config.upstream != self.config.upstream
            or (config.admin, config.enrol)
            != (
                self.config.admin,
                self.config.enrol,
            )
        ):
            log.warn(
                "reload: listeners or upstream changed ({old} -> {new}); those need a restart, "
                "everything else is applied",
                old=", ".join(sorted(old)),
                new=", ".join(sorted(new)),
            )
        for listener in config.listeners:
            if listener.name in self.factories:
                self.factories[listener.name].listener = _listener(listener)
            if listener.name in self.creators:
                self.creators[listener.name].options = tls[listener.name]
        if self.enrol is not None:
            try:
                self.enrol.reload()
            except Exception as e:  # its files are checked again at the next reload
                log.error("reload: the enrolment listener keeps its certificate and CRL: {error}", error=repr(e))
        self.relay.policy = policy
        self.relay.timeouts = Timeouts(
            header=config.header_timeout, idle=config.idle_timeout, drain=config.drain_timeout
        )
        self.relay.limits = limits_of(config)
        self.config = config
        self.relay.metrics.reloaded(True)
        record_certificate_expiry(self.relay.metrics, config)
        log.info("reloaded {source}", source=config.source)
        self._judgeOpenConnections()
        for line in lines:
            log.info("policy: {line}", line=line)
        for warning in certificate_warnings(config) + exposure_warnings(config):
            log.warn("{warning}", warning=warning)
        return True

    def _judgeOpenConnections(self) -> None:
        """
        Close every open connection whose caller the reloaded state no
        longer admits (L{no_longer_admitted}), hijacked sessions included.
        """
        for connection in list(self.relay.connections):
            creator = self.creators.get(connection.listener.name)
            reason = no_longer_admitted(connection, self.relay.policy, creator.options if creator is not None else None)
            if reason is not None:
                connection.cutOff(reason)

    def _onHangup(self, signum: int, frame: object) -> None:
        self.reactor.callFromThread(self.reload)

    def privilegedStartService(self) -> None:
        """
        Bind every listener (twistd does this before it drops privileges).
        One that cannot bind ends the start with one line naming it and
        why (L{CannotListen}), not Twisted's traceback.
        """
        for service in self:
            try:
                service.privilegedStartService()
            except CannotListenError as e:
                failed = CannotListen(f"cannot listen on {service.name}: {cannot_listen_reason(e)}")
                log.critical("dockguard: {line}", line=str(failed))
                sys.excepthook = one_line_for_cannot_listen(sys.excepthook)
                raise failed from None

    def startService(self) -> None:
        problem = open_files_for(self.config.max_connections)
        if problem is not None:
            log.warn("{problem}", problem=problem)
        if self.rebuild is not None:
            signal.signal(signal.SIGHUP, self._onHangup)
        if self.config.decision_log is not None:
            self._decisions = DecisionLog(self.config.decision_log)
            globalLogPublisher.addObserver(self._decisions)
            log.info("writing decisions to {path}", path=str(self.config.decision_log))
        log.info("dockguard relaying to the Docker daemon at {upstream}", upstream=self.config.upstream)
        for listener in self.config.listeners:
            if listener.kind == "tcp" and not listener.loopback:
                log.warn(
                    "INSECURE: plain TCP listener {listener} on a non-loopback address: "
                    "anyone who can reach it acts as {identity}",
                    listener=listener.name,
                    identity=listener.identity,
                )
            if listener.learn:
                log.warn(
                    "LEARN MODE on {listener}: every request passes; refusals are only logged",
                    listener=listener.name,
                )
            log.info("listening on {description}", description=listener.describe(), listener=listener.name)
        if self.config.admin is not None:
            log.info(
                "admin listener on {name}: /health and /metrics (plain HTTP; no Docker API)",
                name=self.config.admin.name,
            )
        if self.config.enrol is not None:
            log.info(
                "enrolment listener on {name}: /dockguard/ca, /dockguard/enroll, /dockguard/renew "
                "(tokens and CA in {ca}; no Docker API)",
                name=self.config.enrol.listener.name,
                ca=str(self.config.enrol.ca_dir),
            )
        for line in self.policy_lines:
            log.info("policy: {line}", line=line)
        for warning in certificate_warnings(self.config) + exposure_warnings(self.config):
            log.warn("{warning}", warning=warning)
        super().startService()  # type: ignore[no-untyped-call]  # unannotated in Twisted

    _decisions: DecisionLog | None = None

    def stopService(self) -> Deferred[None]:
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        """
        Stop listening, then close every client connection (streams and
        hijacked sessions included) and the pool; whatever has not closed
        after L{SHUTDOWN_GRACE} seconds is cut.
        """
        await super().stopService()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        connections = list(self.relay.connections)
        if connections:
            log.info("closing {count} open connection(s)", count=len(connections))
        for connection in connections:
            cast(IAbortableTransport, connection.transport).loseConnection()
        self.relay.pool.closeIdle()
        clock = self.relay.reactor
        deadline = clock.seconds() + SHUTDOWN_GRACE
        while self.relay.connections and clock.seconds() < deadline:
            await deferLater(clock, 0.05)
        for connection in list(self.relay.connections):
            cast(IAbortableTransport, connection.transport).abortConnection()
        if self._decisions is not None:
            globalLogPublisher.removeObserver(self._decisions)
            self._decisions.close()
