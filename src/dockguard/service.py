"""
Service wiring: one listening service per configured listener, all sharing
one L{Relay} (policy, upstream pool, limits).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import stat

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
)
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger

from dockguard.config import Config, ListenerConfig
from dockguard.policy import Policy
from dockguard.relay import ClientFactory, Listener, Relay, Timeouts
from dockguard.tls import HalfCloseTLSFactory, server_options
from dockguard.upstream import UpstreamPool

log = Logger(namespace="dockguard")


def _admit(listener: ListenerConfig):
    if not listener.allow:
        return lambda peer: True
    networks = listener.allow

    def admit(peer: object) -> bool:
        host = getattr(peer, "host", None)
        if host is None:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in networks)

    return admit


def _remove_stale_socket(path: str) -> None:
    """
    A Unix socket left behind by a process that died blocks binding; one
    that still answers belongs to a live process and is left alone.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)
    finally:
        probe.close()


def endpoint_for(reactor, listener: ListenerConfig) -> IStreamServerEndpoint:
    if listener.kind == "unix":
        _remove_stale_socket(listener.path)
        return UNIXServerEndpoint(reactor, listener.path, mode=listener.mode, wantPID=False)
    if ":" in listener.host:
        return TCP6ServerEndpoint(reactor, listener.port, interface=listener.host)
    return TCP4ServerEndpoint(reactor, listener.port, interface=listener.host)


def factory_for(relay: Relay, listener: ListenerConfig):
    factory = ClientFactory(
        relay,
        Listener(
            name=listener.name,
            identity=listener.identity,
            admit=_admit(listener),
            learn=listener.learn,
        ),
    )
    if listener.kind != "tls":
        return factory
    assert listener.cert and listener.key and listener.client_ca
    options = server_options(listener.cert, listener.key, listener.client_ca)
    return HalfCloseTLSFactory(options, False, factory)


def make_service(reactor, config: Config, policy: Policy, policy_lines: list[str]) -> MultiService:
    """
    The whole dockguard service for C{config}: listeners over one relay.
    """
    pool = UpstreamPool(reactor, config.upstream)
    relay = Relay(
        reactor=reactor,
        pool=pool,
        policy=policy,
        timeouts=Timeouts(header=config.header_timeout, idle=config.idle_timeout),
        maxHeadBytes=config.max_head_bytes,
        maxInspectedBody=config.max_inspected_body,
    )
    top = _DockguardService(relay, config, policy_lines)
    for listener in config.listeners:
        service = StreamServerEndpointService(
            endpoint_for(reactor, listener), factory_for(relay, listener)
        )
        service._raiseSynchronously = True
        service.setName(listener.name)
        service.setServiceParent(top)
    return top


class _DockguardService(MultiService):
    def __init__(self, relay: Relay, config: Config, policy_lines: list[str]) -> None:
        super().__init__()
        self.relay = relay
        self.config = config
        self.policy_lines = policy_lines

    def startService(self) -> None:
        if self.config.decision_log is not None:
            from twisted.logger import globalLogPublisher

            from dockguard.decisionlog import DecisionLog

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
        for line in self.policy_lines:
            log.info("policy: {line}", line=line)
        super().startService()

    _decisions = None

    def stopService(self):
        d = super().stopService()
        self.relay.pool.closeIdle()
        if self._decisions is not None:
            from twisted.logger import globalLogPublisher

            globalLogPublisher.removeObserver(self._decisions)
            self._decisions.close()
        return d
