"""
Mutual TLS for dockguard's listeners.

Two things live here (who a verified certificate names is
L{dockguard.identities}):

- L{server_options}: a server context that requires a client certificate
  chaining to the configured CA bundle, TLS 1.2 at least.
- L{HalfCloseTLSFactory}: Twisted's TLS protocol treats a peer's
  close_notify (what the docker CLI sends once stdin ends in
  C{echo hi | docker exec -i c cat}) as the end of the whole connection, and
  output written afterwards is lost.  Here close_notify, and a bare TCP
  half-close underneath TLS, become a read half-close of the wrapped protocol,
  which keeps writing until it closes.  It also answers a client that speaks
  plain HTTP to the TLS listener (L{plain_http}) with a 400 in clear text
  that says how to connect, where OpenSSL would only drop the connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL.crypto import X509, X509StoreContext, X509StoreContextError, X509StoreFlags
from OpenSSL.SSL import Connection, WantReadError, ZeroReturnError
from OpenSSL.SSL import Error as SSLError
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
    IReactorTime,
    ITCPTransport,
)
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    TLSVersion,
    trustRootFromCertificates,
)
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from dockguard.relay.framing import json_error


def load_certificates(path: Path) -> list[x509.Certificate]:
    """
    Every certificate in a PEM file.

    @raise ValueError: the file holds no certificate.
    """
    certs = x509.load_pem_x509_certificates(path.read_bytes())
    if not certs:
        raise ValueError(f"{path} holds no PEM certificate")
    return certs


def server_options(
    cert_path: Path,
    key_path: Path,
    ca_path: Path,
    crl_path: Path | None = None,
    require_client_certificate: bool = True,
) -> CertificateOptions:
    """
    Server-side options requiring a client certificate issued by a CA in
    C{ca_path}.  C{cert_path} may hold intermediates after the leaf.  With
    C{crl_path}, a client certificate listed there is refused during the
    handshake (OpenSSL checks the leaf against the CRL of its issuer).
    With C{require_client_certificate=False} (the enrolment listener) a
    client may send none; one it sends is checked all the same.
    """
    chain = load_certificates(cert_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    cas = [Certificate(X509.from_cryptography(c)) for c in load_certificates(ca_path)]
    # pyOpenSSL takes cryptography's objects (its own X509/PKey are deprecated);
    # Twisted's annotations still name only pyOpenSSL's.
    options = CertificateOptions(
        privateKey=key,  # type: ignore[arg-type]  # a cryptography key; see above
        certificate=chain[0],  # type: ignore[arg-type]  # a cryptography certificate
        extraCertChain=chain[1:],  # type: ignore[arg-type]  # cryptography certificates
        trustRoot=trustRootFromCertificates(cas),
        raiseMinimumTo=TLSVersion.TLSv1_2,
        # Clients that offer ALPN (curl, urllib3/docker-py) get HTTP/1.1;
        # without a list here the handshake fails with an internal error.
        acceptableProtocols=[b"http/1.1"],
    )
    # A trustRoot makes Twisted require a certificate; the context, made at
    # the first getContext(), reads this attribute then.
    options.requireCertificate = require_client_certificate
    if crl_path is not None:
        crl = x509.load_pem_x509_crl(crl_path.read_bytes())
        # CertificateOptions keeps the context it makes: configure that one.
        store = options.getContext().get_cert_store()
        assert store is not None  # an SSL context always has a certificate store
        store.add_crl(crl)
        store.set_flags(X509StoreFlags.CRL_CHECK)
    return options


def refused_now(
    options: CertificateOptions,
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate] = (),
) -> str | None:
    """
    Why a handshake under C{options} would refuse, now, a client certificate
    that an earlier handshake accepted: revoked by the CRL, no longer chaining
    to the client CA, expired (OpenSSL's words), or L{None} when it would
    pass.  The check is OpenSSL's own, against the very store new handshakes
    use; C{intermediates} are those the client sent with its certificate.
    """
    store = options.getContext().get_cert_store()
    assert store is not None
    context = X509StoreContext(store, X509.from_cryptography(leaf), [X509.from_cryptography(c) for c in intermediates])
    try:
        context.verify_certificate()
    except X509StoreContextError as e:
        return f"its certificate (serial {leaf.serial_number:x}) is now refused: {e}"
    return None


@implementer(IOpenSSLServerConnectionCreator)
class SwappableServerCreator:
    """
    Makes each new server connection from the options it holds now, so a
    reload can swap certificates and CRL for new connections while existing
    ones keep theirs.
    """

    def __init__(self, options: CertificateOptions) -> None:
        self.options = options

    def serverConnectionForTLS(self, tlsProtocol: object) -> Connection:
        return Connection(self.options.getContext(), None)


def expiry_warnings(paths: list[Path], within_days: int = 30, now: datetime | None = None) -> list[str]:
    """
    A sentence for every certificate in C{paths} (PEM files) that expires
    within C{within_days}, or has expired.
    """
    now = now or datetime.now(UTC)
    warnings = []
    for path in paths:
        for cert in load_certificates(path):
            left = cert.not_valid_after_utc - now
            if left.days < within_days:
                subject = cert.subject.rfc4514_string()
                if left.total_seconds() <= 0:
                    warnings.append(f"certificate {subject} in {path} EXPIRED on {cert.not_valid_after_utc:%Y-%m-%d}")
                else:
                    warnings.append(
                        f"certificate {subject} in {path} expires in {left.days} days "
                        f"({cert.not_valid_after_utc:%Y-%m-%d})"
                    )
    return warnings


#: The bytes of an HTTP method token (RFC 9110's tchar); a TLS record starts
#: with 0x16 (handshake), an SSLv2-style hello with a byte >= 0x80: neither is one.
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: The longest method token told apart from TLS.
_METHOD_MAX = 16
#: The most bytes a TLS listener holds back before it can tell: a method and its space.
SNIFF_BYTES = _METHOD_MAX + 1
#: What a plain-HTTP client of a TLS listener is told (Docker's error shape;
#: the docker CLI shows it as "Error response from daemon: ...").
PLAIN_HTTP_MESSAGE = (
    "dockguard: client sent an HTTP request to a TLS listener, which wants TLS with a client "
    "certificate: for the docker CLI set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to a directory "
    "with ca.pem, cert.pem and key.pem (`dockguard certs client` makes one); other clients use "
    "https:// with a client certificate"
)
#: At most this many bytes of a plain-HTTP client are read (and dropped)
#: after its answer, waiting for it to close, so that what it is still
#: sending does not reset the connection before the answer is read.
PLAIN_HTTP_DRAIN = 65536


def plain_http(first: bytes) -> bool | None:
    """
    Whether the first bytes a client sent to a TLS listener start a plain
    HTTP request line (a method token and a space) rather than a TLS
    record: L{None} while too few bytes have come to tell (a method without
    its space yet; never more than L{SNIFF_BYTES}).  A ClientHello (0x16
    0x03 ...) is told from its first byte.
    """
    for i, byte in enumerate(first[:SNIFF_BYTES]):
        if byte == 0x20:
            return i > 0
        if byte not in _TOKEN:
            return False
    return None if len(first) < SNIFF_BYTES else False


@implementer(IHalfCloseableProtocol)
class HalfCloseTLSProtocol(TLSMemoryBIOProtocol):
    """
    A server-side TLS protocol on which the peer can stop sending (by
    close_notify, or by a bare TCP half-close) while the wrapped protocol
    keeps writing its output.
    """

    _peerDoneSending = False
    _tcpReadClosed = False
    #: The first bytes, until they tell TLS from plain HTTP (L{plain_http});
    #: L{None} once they told TLS.
    _first: bytes | None = b""
    #: Bytes of a plain-HTTP client still to drop after its 400, or -1.
    _plainLeft = -1

    def _peerStoppedSending(self) -> None:
        if self._peerDoneSending:
            return
        self._peerDoneSending = True
        half: IHalfCloseableProtocol | None = IHalfCloseableProtocol(self.wrappedProtocol, None)
        if half is not None:
            half.readConnectionLost()
        else:
            self.loseConnection()  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def _flushReceiveBIO(self) -> None:
        # The loop of TLSMemoryBIOProtocol._flushReceiveBIO with one change:
        # a close_notify from the peer before we started to close is a read
        # half-close, not the end of the connection.
        while not self._lostTLSConnection and not self._peerDoneSending:
            try:
                data = self._tlsConnection.recv(2**16)
            except WantReadError:
                break
            except ZeroReturnError:
                if self.disconnecting:
                    self._shutdownTLS()
                    self._tlsShutdownFinished(None)  # type: ignore[no-untyped-call]  # unannotated in Twisted
                else:
                    self._peerStoppedSending()
                break
            except SSLError:
                self._tlsShutdownFinished(Failure())  # type: ignore[no-untyped-call]  # unannotated in Twisted
                break
            else:
                if not self._aborted:
                    self.wrappedProtocol.dataReceived(data)
        self._flushSendBIO()  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def dataReceived(self, data: bytes) -> None:
        if self._handshakeDone:
            if self._peerDoneSending:
                # Nothing may follow close_notify; whatever does is dropped
                # here, before OpenSSL buffers it: _flushReceiveBIO stops
                # reading after close_notify anyway, so what this saves is
                # memory (a peer that keeps sending after its close_notify).
                return
        elif self._first is not None:
            # The first bytes (a TLS client's first chunk decides at once).
            data = self._first + data
            plain = plain_http(data)
            if plain is None:
                self._first = data
                return
            self._first = None
            if plain:
                self._answerPlainHttp(data)
                return
        elif self._plainLeft >= 0:
            self._dropPlainHttp(data)
            return
        super().dataReceived(data)  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def _answerPlainHttp(self, data: bytes) -> None:
        """
        The client speaks plain HTTP: answer 400 with L{PLAIN_HTTP_MESSAGE}
        in clear text, as dockerd does, and stop sending; what it still
        sends is dropped (at most L{PLAIN_HTTP_DRAIN} bytes) until it closes.
        The wrapped protocol sees only the connection's end.
        """
        transport = self.transport
        assert transport is not None
        factory = self.factory
        if isinstance(factory, HalfCloseTLSFactory) and factory.plainHttp is not None:
            factory.plainHttp(transport.getPeer())
        transport.write(json_error(400, PLAIN_HTTP_MESSAGE, close=True, head_only=data.startswith(b"HEAD ")))
        self._plainLeft = PLAIN_HTTP_DRAIN
        self._dropPlainHttp(data)
        if self._plainLeft >= 0:
            # The 400 goes out, then a FIN; readConnectionLost closes.
            cast(ITCPTransport, transport).loseWriteConnection()

    def _dropPlainHttp(self, data: bytes) -> None:
        self._plainLeft -= len(data)
        if self._plainLeft < 0:
            assert self.transport is not None
            self.transport.loseConnection()

    def _shutdownTLS(self) -> None:
        super()._shutdownTLS()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        if self._tcpReadClosed or self._peerDoneSending:
            # The peer will not (or cannot) answer our close_notify: closing
            # must not wait for it.
            assert self.transport is not None
            self.transport.loseConnection()

    def readConnectionLost(self) -> None:
        # TCP FIN under TLS.  Older docker CLIs half-close the TCP socket
        # under TLS instead of sending close_notify.
        self._tcpReadClosed = True
        if not self._handshakeDone:
            assert self.transport is not None
            self.transport.loseConnection()
            return
        self._peerStoppedSending()

    def writeConnectionLost(self) -> None:
        pass


class HalfCloseTLSFactory(TLSMemoryBIOFactory):
    """
    L{HalfCloseTLSProtocol}s; C{plainHttp}, when given, is told the peer of
    every plain-HTTP client answered 400.
    """

    protocol = HalfCloseTLSProtocol

    def __init__(
        self,
        contextFactory: IOpenSSLServerConnectionCreator | CertificateOptions,
        isClient: bool,
        wrappedFactory: IProtocolFactory,
        clock: IReactorTime | None = None,
        plainHttp: Callable[[IAddress], None] | None = None,
    ) -> None:
        super().__init__(contextFactory, isClient, wrappedFactory, clock)
        self.plainHttp = plainHttp
