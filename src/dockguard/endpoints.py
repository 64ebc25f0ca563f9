"""
Where a listener listens: its endpoint (a stale Unix socket removed first,
IPv4 or IPv6), whom it admits (its C{allow} list), and a listener that
cannot bind said in one line, not a traceback.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import stat
from collections.abc import Callable
from types import TracebackType

from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint, UNIXServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint

from dockguard.interfaces import IReactor
from dockguard.listeners import ListenerConfig

__all__ = ["CannotListen", "admission_of", "endpoint_for", "one_line_for_cannot_listen", "cannot_listen_reason"]


def admission_of(listener: ListenerConfig) -> Callable[[object], bool]:
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


def cannot_listen_reason(error: CannotListenError) -> str:
    """What the system said, in words: C{address already in use}."""
    cause = error.socketError
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    return str(cause)


def endpoint_for(reactor: IReactor, listener: ListenerConfig) -> IStreamServerEndpoint:
    if listener.kind == "unix":
        _remove_stale_socket(listener.path)
        return UNIXServerEndpoint(reactor, listener.path, mode=listener.mode, wantPID=False)
    if ":" in listener.host:
        return TCP6ServerEndpoint(reactor, listener.port, interface=listener.host)
    return TCP4ServerEndpoint(reactor, listener.port, interface=listener.host)


class CannotListen(Exception):
    """
    A listener cannot listen (its port is taken, its socket's directory is
    missing, ...): C{str()} says which and why (logged as C{dockguard: ...}).
    """


def one_line_for_cannot_listen(previous: Callable[..., object]) -> Callable[..., object]:
    """
    A C{sys.excepthook} under which L{CannotListen} ends the process with
    status 1 and its logged line, without a traceback; anything else goes
    to C{previous}.  (twistd lets the exception of a service that cannot
    start end the process, after removing its PID file and telling a
    daemonizing parent why: raising it keeps that, the hook the rest.)
    """

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> object:
        if isinstance(value, CannotListen):
            return None
        return previous(kind, value, tb)

    return hook
