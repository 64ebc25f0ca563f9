"""
The enrolment listener (C{[enrol]} in the configuration): a TLS listener of
its own that serves three routes and nothing else, never the Docker API::

    GET  /dockguard/ca       the CA certificate (PEM), public
    POST /dockguard/enroll   {"token": ..., "csr": PEM[, "name": ...]}
                             -> {"name", "certificate", "ca", "docker_port"}
    POST /dockguard/renew    {"csr": PEM}, over a connection that presents
                             the current client certificate -> the same

It is a separate listener so that the Docker API listeners keep requiring a
client certificate in the handshake: nothing there becomes reachable without
one.  Here a client certificate is optional (asked for, verified against the
CA and its CRL when sent: renewal uses it).

Every refusal is a JSON error in Docker's shape (C{{"message": ...}}) and a
log line; failed attempts are rate-limited per peer address and overall
(L{Attempts}: token buckets on the reactor's clock, a bounded number of
peers).  A request body may have L{MAX_BODY} bytes, and a connection
L{CONNECTION_TIME} seconds from its first byte to its last, TLS handshake
included; at most L{MAX_CONNECTIONS} connections are open, L{PER_PEER} per
address.  What is checked and signed is L{dockguard.enrolment}.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import attrs
from cryptography import x509
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime, ITransport
from twisted.internet.protocol import connectionDone
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.web.http import Request as HTTPRequest
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from dockguard.ca import Busy
from dockguard.enrolment import Issued, enrol, pem, renew
from dockguard.interfaces import IAbortableTransport
from dockguard.listeners import EnrolConfig
from dockguard.relay.framing import json_error
from dockguard.tls import SwappableServerCreator, server_options
from dockguard.tokens import Refused

log = Logger(namespace="dockguard")

#: Bytes a request body may have (a token and a CSR need about 1 KiB).
MAX_BODY = 8192
#: Seconds a connection may last, handshake included.
CONNECTION_TIME = 15.0
MAX_CONNECTIONS, PER_PEER = 64, 4
#: Failed attempts a peer may make at once, and one more every this many
#: seconds; the same for every peer together.
PEER_BURST, PEER_EVERY = 10, 30.0
TOTAL_BURST, TOTAL_EVERY = 100, 1.0
#: Peers whose failures are remembered (the least recent are forgotten).
MAX_PEERS = 4096

_ROUTES = {b"/dockguard/ca": b"GET", b"/dockguard/enroll": b"POST", b"/dockguard/renew": b"POST"}
_NOT_FOUND = (
    "dockguard's enrolment listener serves GET /dockguard/ca, POST /dockguard/enroll and "
    "POST /dockguard/renew only; the Docker API is on the mutual-TLS listeners"
)


@attrs.define
class _Bucket:
    tokens: float
    at: float


class Attempts:
    """
    Failed attempts, limited per peer address and overall with token
    buckets on C{clock}: a peer may fail L{PEER_BURST} times at once and
    once more every L{PEER_EVERY} seconds; all peers together
    L{TOTAL_BURST} and one every L{TOTAL_EVERY}.  Only failures spend:
    an enrolment that succeeds costs nothing.
    """

    def __init__(
        self,
        clock: IReactorTime,
        peer_burst: int = PEER_BURST,
        peer_every: float = PEER_EVERY,
        total_burst: int = TOTAL_BURST,
        total_every: float = TOTAL_EVERY,
        max_peers: int = MAX_PEERS,
    ) -> None:
        self.clock = clock
        self.peer_burst, self.peer_every = peer_burst, peer_every
        self.total_burst, self.total_every = total_burst, total_every
        self.max_peers = max_peers
        self.peers: OrderedDict[str, _Bucket] = OrderedDict()
        self.total = _Bucket(float(total_burst), clock.seconds())

    def _fill(self, bucket: _Bucket, burst: int, every: float) -> _Bucket:
        now = self.clock.seconds()
        bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) / every)
        bucket.at = now
        return bucket

    def _peer(self, peer: str) -> _Bucket:
        bucket = self.peers.pop(peer, None) or _Bucket(float(self.peer_burst), self.clock.seconds())
        self.peers[peer] = bucket
        while len(self.peers) > self.max_peers:
            self.peers.popitem(last=False)
        return self._fill(bucket, self.peer_burst, self.peer_every)

    def refused(self, peer: str) -> str | None:
        """Why C{peer} may not try now, or L{None}."""
        if self._peer(peer).tokens < 1:
            return f"too many failed attempts from {peer}: one more every {self.peer_every:g} s"
        if self._fill(self.total, self.total_burst, self.total_every).tokens < 1:
            return "too many failed attempts from everyone: try again later"
        return None

    def failed(self, peer: str) -> None:
        """C{peer} failed once: spend one attempt of its bucket and of the total."""
        self._peer(peer).tokens -= 1
        self._fill(self.total, self.total_burst, self.total_every).tokens -= 1


class _BoundedRequest(Request):
    """A request whose body has a length, of at most L{MAX_BODY} bytes."""

    _refused = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length <= MAX_BODY:
            super().gotLength(length)  # type: ignore[no-untyped-call]  # unannotated in Twisted
            return
        self._refused = True
        status, why = (411, "send the body with a Content-Length") if length is None else (413, "body too large")
        log.warn("enrolment refused for {peer}: {why}", peer=_peer(self), why=why)
        transport = cast(IAbortableTransport, self.channel.transport)
        transport.write(json_error(status, f"{why} (at most {MAX_BODY} bytes)", close=True))
        transport.loseConnection()

    def handleContentChunk(self, data: bytes) -> None:
        if not self._refused:
            super().handleContentChunk(data)  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)  # type: ignore[no-untyped-call]  # unannotated in Twisted


def _peer(request: HTTPRequest) -> str:
    address = request.getClientAddress()
    return str(getattr(address, "host", address))


class Enrolment(Resource):
    """The three routes (every path is handled here: C{isLeaf})."""

    isLeaf = True

    def __init__(self, clock: IReactorTime, config: EnrolConfig, docker_port: int | None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.clock = clock
        self.config = config
        self.docker_port = docker_port
        self.attempts = Attempts(clock)

    def render(self, request: Request) -> bytes:
        path = request.path
        method = _ROUTES.get(path)
        if method is None:
            return _error(request, 404, _NOT_FOUND)
        if request.method != method:
            request.setHeader(b"allow", method)
            return _error(request, 405, f"{path.decode()} takes {method.decode()}")
        if path == b"/dockguard/ca":
            request.setHeader(b"content-type", b"application/x-pem-file")
            return (self.config.ca_dir / "ca.pem").read_bytes()
        peer = _peer(request)
        limited = self.attempts.refused(peer)
        if limited is not None:
            log.warn("enrolment refused for {peer}: {reason}", peer=peer, reason=limited)
            request.setHeader(b"retry-after", b"%d" % int(self.attempts.peer_every))
            return _error(request, 429, limited)
        now = datetime.fromtimestamp(self.clock.seconds(), UTC)
        try:
            body = _json_body(request)
            if path == b"/dockguard/enroll":
                issued = self._enrol(body, peer, now)
            else:
                issued = self._renew(request, body, peer)
        except Busy:
            return _error(request, 503, "the CA directory is busy with another command: try again in a moment")
        except Refused as e:
            self.attempts.failed(peer)
            log.warn("enrolment refused for {peer}: {reason}", peer=peer, reason=e.reason)
            return _error(request, e.status, e.message)
        log.info(
            "{what} {identity} for {peer}: certificate serial {serial}, until {until}",
            what="enrolled" if path == b"/dockguard/enroll" else "renewed",
            identity=issued.name,
            peer=peer,
            serial=f"{issued.certificate.serial_number:x}",
            until=f"{issued.certificate.not_valid_after_utc:%Y-%m-%d}",
            token=issued.token_id,
        )
        answer = {
            "name": issued.name,
            "certificate": pem(issued.certificate),
            "ca": pem(issued.ca),
            "docker_port": self.docker_port,
        }
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(answer).encode() + b"\n"

    def _enrol(self, body: dict[str, Any], peer: str, now: datetime) -> Issued:
        token, csr, name = body.get("token"), body.get("csr"), body.get("name")
        if not isinstance(token, str) or not token:
            raise Refused("no token", "no token: send {'token': ..., 'csr': ...}", 401)
        if not isinstance(csr, str):
            raise Refused("no CSR", "no csr: send {'token': ..., 'csr': ...}", 400)
        if name is not None and not isinstance(name, str):
            raise Refused("a name that is not a string", "name must be a string", 400)
        return enrol(self.config.ca_dir, token, csr, peer, now, self.config.days, expected=name)

    def _renew(self, request: Request, body: dict[str, Any], peer: str) -> Issued:
        handle = getattr(request.channel.transport, "getHandle", None)
        current = handle().get_peer_certificate(as_cryptography=True) if handle is not None else None
        if not isinstance(current, x509.Certificate):
            raise Refused(
                "renewal without a client certificate",
                "renewal needs the current certificate as the client certificate of the connection",
                401,
            )
        csr = body.get("csr")
        if not isinstance(csr, str):
            raise Refused("no CSR", "no csr: send {'csr': ...}", 400)
        return renew(self.config.ca_dir, current, csr, peer, self.config.days)


def _json_body(request: Request) -> dict[str, Any]:
    content = request.content
    data = content.read() if content is not None else b""
    try:
        body = json.loads(data)
    except ValueError:
        raise Refused("a body that is not JSON", "send a JSON object", 400)
    if not isinstance(body, dict):
        raise Refused("a body that is not a JSON object", "send a JSON object", 400)
    return body


def _error(request: Request, status: int, message: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps({"message": message}).encode() + b"\n"


class _Deadline(ProtocolWrapper):
    """Cuts the connection L{CONNECTION_TIME} seconds after it opened."""

    _timer: IDelayedCall | None = None
    peer = ""

    def makeConnection(self, transport: ITransport) -> None:
        factory = cast(_Limited, self.factory)
        self._timer = factory.clock.callLater(factory.deadline, cast(IAbortableTransport, transport).abortConnection)
        super().makeConnection(transport)  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]  # unannotated in Twisted


class _Limited(WrappingFactory):
    """At most C{total} connections, C{per_peer} per address, each for C{deadline} seconds."""

    protocol = _Deadline

    def __init__(
        self,
        clock: IReactorTime,
        wrapped: TLSMemoryBIOFactory,
        total: int = MAX_CONNECTIONS,
        per_peer: int = PER_PEER,
        deadline: float = CONNECTION_TIME,
    ) -> None:
        super().__init__(wrapped)  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.clock = clock
        self.total, self.per_peer, self.deadline = total, per_peer, deadline
        self.peers: dict[str, int] = {}

    # Twisted closes the connection when this answers None (its annotation says it never does).
    def buildProtocol(self, addr: IAddress | None) -> ProtocolWrapper | None:  # type: ignore[override]
        peer = str(getattr(addr, "host", addr))
        if len(self.protocols) >= self.total or self.peers.get(peer, 0) >= self.per_peer:
            log.warn("enrolment listener: connection from {peer} turned away (too many open)", peer=peer)
            return None
        protocol = cast(_Deadline, super().buildProtocol(addr))
        protocol.peer = peer
        self.peers[peer] = self.peers.get(peer, 0) + 1
        return protocol

    def unregisterProtocol(self, protocol: _Deadline) -> None:
        super().unregisterProtocol(protocol)  # type: ignore[no-untyped-call]  # unannotated in Twisted
        left = self.peers.get(protocol.peer, 1) - 1
        if left > 0:
            self.peers[protocol.peer] = left
        else:
            self.peers.pop(protocol.peer, None)


def tls_options(ca_dir: Path) -> CertificateOptions:
    """The CA directory's server certificate; a client certificate optional, checked against its CA and CRL."""
    return server_options(
        ca_dir / "server-cert.pem",
        ca_dir / "server-key.pem",
        ca_dir / "ca.pem",
        ca_dir / "crl.pem",
        require_client_certificate=False,
    )


class EnrolFactory(_Limited):
    """The enrolment listener's factory; L{reload} re-reads its certificate and CRL."""

    noisy = False

    def __init__(self, clock: IReactorTime, config: EnrolConfig, docker_port: int | None) -> None:
        self.config = config
        self.creator = SwappableServerCreator(tls_options(config.ca_dir))
        self.resource = Enrolment(clock, config, docker_port)
        site = _Site(self.resource, clock)
        super().__init__(clock, TLSMemoryBIOFactory(self.creator, False, site))

    def reload(self) -> None:
        """New connections get the CA directory's certificate and CRL as they are now."""
        self.creator.options = tls_options(self.config.ca_dir)


class _Site(Site):
    requestFactory = _BoundedRequest
    noisy = False

    def __init__(self, resource: Resource, clock: IReactorTime) -> None:
        super().__init__(resource, timeout=CONNECTION_TIME, reactor=clock)  # type: ignore[no-untyped-call]

    def log(self, request: HTTPRequest) -> None:
        # Each enrolment and refusal logs its own line.
        pass
