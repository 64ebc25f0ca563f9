"""
Asking the daemon what a name means, before a scoped request is judged.

A L{Fetch} sends one C{GET} on a pooled daemon connection and collects the
answer (bounded).  The L{Resolver} turns a name from a request's path into
the L{Resource} the daemon resolves it to (full ID, name, labels) and an
exec ID into the container it runs in, and remembers what it learnt:

  - by the name asked for, for L{CACHE_SECONDS}: labels and owners never
    change, so a remembered description holds for them; a name can change
    (a rename), so a judgement that needs the name looks the resource up
    afresh (C{fresh=True});
  - what is renamed or removed through dockguard is forgotten at once.

The request is then relayed to the full ID that was judged, so a rename or a
new container under the old name between the look-up and the daemon's action
cannot point the request elsewhere.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from dockguard.relay.daemon import DaemonConnection, DaemonPool, ResponseHead
from dockguard.scope import Resource

__all__ = ["CACHE_SECONDS", "Fetch", "LookupFailed", "Resolver"]

#: How long a look-up is remembered.
CACHE_SECONDS = 1.0
#: The largest answer a look-up reads (a container's inspect with many labels).
MAX_ANSWER = 4 * 1024 * 1024
#: How long the daemon has to answer a look-up.
LOOKUP_TIMEOUT = 10.0

_PATHS = {
    "container": "/containers/{}/json",
    "volume": "/volumes/{}",
    "network": "/networks/{}",
    "exec": "/exec/{}/json",
}


class LookupFailed(Exception):
    """The daemon could not be asked, or answered what cannot be read."""


class Fetch:
    """One C{GET} to the daemon; fires C{done} with (status, body)."""

    def __init__(self, pool: DaemonPool, clock: IReactorTime, path: bytes) -> None:
        self.pool = pool
        self.path = path
        self.done: Deferred[tuple[int, bytes]] = Deferred()
        self._status = 0
        self._body = bytearray()
        self._daemon: DaemonConnection | None = None
        self._retried = False
        self._timer: IDelayedCall | None = clock.callLater(LOOKUP_TIMEOUT, self._timedOut)
        self._send()

    def _send(self) -> None:
        daemon = self.pool.take()
        if daemon is not None:
            self._connected(daemon)
            return
        self.pool.connect().addCallbacks(self._connected, self._fail)

    def _connected(self, daemon: DaemonConnection) -> None:
        if self.done.called:
            self.pool.release(daemon)
            return
        self._daemon = daemon
        daemon.request(self, b"GET", b"GET %s HTTP/1.1\r\nHost: docker\r\n\r\n" % self.path)

    def _finish(self, result: tuple[int, bytes] | Failure) -> None:
        if self.done.called:
            return
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        if isinstance(result, Failure):
            self.done.errback(result)
        else:
            self.done.callback(result)

    def _fail(self, failure: Failure) -> None:
        self._finish(Failure(LookupFailed(f"cannot reach the Docker daemon: {failure.getErrorMessage()}")))

    def _timedOut(self) -> None:
        self._timer = None
        daemon, self._daemon = self._daemon, None
        if daemon is not None:
            daemon.close(abort=True)
        self._finish(Failure(LookupFailed(f"the Docker daemon did not answer within {LOOKUP_TIMEOUT:g} s")))

    # What the daemon connection reports (DaemonOwner):

    def responseHead(self, head: ResponseHead) -> None:
        self._status = head.status

    def responseBody(self, data: bytes) -> None:
        if len(self._body) + len(data) > MAX_ANSWER:
            daemon, self._daemon = self._daemon, None
            if daemon is not None:
                daemon.close(abort=True)
            self._finish(Failure(LookupFailed(f"the daemon's answer is larger than {MAX_ANSWER} bytes")))
            return
        self._body += data

    def responseEnd(self) -> None:
        daemon, self._daemon = self._daemon, None
        if daemon is not None:
            if daemon.reusable():
                daemon.release()
            else:
                daemon.close()
        self._finish((self._status, bytes(self._body)))

    def daemonLost(self, reason: Failure | None) -> None:
        daemon, self._daemon = self._daemon, None
        if daemon is not None and daemon.reused and not self._retried and not self._status:
            # A pooled connection the daemon had closed meanwhile: ask again once.
            self._retried = True
            self._send()
            return
        message = reason.getErrorMessage() if reason is not None else "connection closed"
        self._finish(Failure(LookupFailed(f"the Docker daemon closed the connection ({message})")))


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _resource(kind: str, data: Any) -> Resource:
    """The L{Resource} an inspect answer describes."""
    if not isinstance(data, dict):
        raise LookupFailed(f"the daemon's {kind} inspect is not an object")
    if kind == "container":
        ident, name = data.get("Id"), data.get("Name")
        config = data.get("Config")
        labels = _labels(config.get("Labels")) if isinstance(config, dict) else {}
    elif kind == "volume":
        ident = name = data.get("Name")
        driver = data.get("Driver")
        if not isinstance(ident, str) or not ident or not isinstance(driver, str):
            raise LookupFailed("the daemon's volume inspect has no name or driver")
        return Resource(kind, ident, ident, _labels(data.get("Labels")), driver, _labels(data.get("Options")))
    else:
        ident, name = data.get("Id"), data.get("Name")
        labels = _labels(data.get("Labels"))
    if not isinstance(ident, str) or not ident or not isinstance(name, str):
        raise LookupFailed(f"the daemon's {kind} inspect has no ID or name")
    return Resource(kind, ident, name.lstrip("/"), labels)


class Resolver:
    """Names to resources, through the daemon, remembered briefly (see the module docstring)."""

    def __init__(self, pool: DaemonPool, clock: IReactorTime, size: int = 4096) -> None:
        self.pool = pool
        self.clock = clock
        self.size = size
        self._known: dict[tuple[str, str], tuple[float, Resource]] = {}
        self._execs: dict[str, str] = {}
        #: Look-ups sent to the daemon (for tests and metrics; scoping tells a
        #: fresh answer from a remembered one by it).
        self.asked = 0

    def resource(self, kind: str, ref: str, fresh: bool = False) -> Deferred[Resource | None]:
        """The C{kind} resource C{ref} names, or C{None} when the daemon knows none."""
        key = (kind, ref)
        if not fresh:
            known = self._known.get(key)
            if known is not None and self.clock.seconds() - known[0] < CACHE_SECONDS:
                return succeed(known[1])
        return self._ask(kind, ref).addCallback(self._learnt, key)

    def _learnt(self, found: tuple[int, Any], key: tuple[str, str]) -> Resource | None:
        status, data = found
        if status == 404:
            self._known.pop(key, None)
            return None
        resource = _resource(key[0], data)
        if len(self._known) >= self.size:
            self._known.clear()
        self._known[key] = (self.clock.seconds(), resource)
        return resource

    def exec_container(self, exec_id: str) -> Deferred[str | None]:
        """The ID of the container exec C{exec_id} runs in, or C{None}: an exec never moves."""
        known = self._execs.get(exec_id)
        if known is not None:
            return succeed(known)
        return self._ask("exec", exec_id).addCallback(self._execLearnt, exec_id)

    def _execLearnt(self, found: tuple[int, Any], exec_id: str) -> str | None:
        status, data = found
        if status == 404:
            return None
        container = data.get("ContainerID") if isinstance(data, dict) else None
        if not isinstance(container, str) or not container:
            raise LookupFailed("the daemon's exec inspect names no container")
        if len(self._execs) >= self.size:
            self._execs.clear()
        self._execs[exec_id] = container
        return container

    def forget(self, ident: str) -> None:
        """Forget every look-up that found C{ident} (renamed or removed)."""
        stale = [key for key, (_, resource) in self._known.items() if resource.id == ident or key[1] == ident]
        for key in stale:
            del self._known[key]

    def _ask(self, kind: str, ref: str) -> Deferred[tuple[int, Any]]:
        self.asked += 1
        path = _PATHS[kind].format(quote(ref, safe="/")).encode("ascii")
        return Fetch(self.pool, self.clock, path).done.addCallback(_read)


def _read(found: tuple[int, bytes]) -> tuple[int, Any]:
    status, body = found
    if status == 404:
        return status, None
    if status != 200:
        raise LookupFailed(f"the daemon answered the look-up with {status}: {body[:200]!r}")
    try:
        return status, json.loads(body)
    except ValueError:
        raise LookupFailed("the daemon's answer to the look-up is not JSON") from None
