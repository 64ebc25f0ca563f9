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
  which keeps writing until it closes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL.crypto import X509, X509StoreContext, X509StoreContextError, X509StoreFlags
from OpenSSL.SSL import Connection
from OpenSSL.SSL import Error as SSLError
from OpenSSL.SSL import WantReadError, ZeroReturnError
from twisted.internet.interfaces import IHalfCloseableProtocol, IOpenSSLServerConnectionCreator
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    TLSVersion,
    trustRootFromCertificates,
)
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer




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
    cert_path: Path, key_path: Path, ca_path: Path, crl_path: Path | None = None
) -> CertificateOptions:
    """
    Server-side options requiring a client certificate issued by a CA in
    C{ca_path}.  C{cert_path} may hold intermediates after the leaf.  With
    C{crl_path}, a client certificate listed there is refused during the
    handshake (OpenSSL checks the leaf against the CRL of its issuer).
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
    context = X509StoreContext(
        store, X509.from_cryptography(leaf), [X509.from_cryptography(c) for c in intermediates]
    )
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
    now = now or datetime.now(timezone.utc)
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


@implementer(IHalfCloseableProtocol)
class HalfCloseTLSProtocol(TLSMemoryBIOProtocol):
    """
    A server-side TLS protocol on which the peer can stop sending (by
    close_notify, or by a bare TCP half-close) while the wrapped protocol
    keeps writing its output.
    """

    _peerDoneSending = False
    _tcpReadClosed = False

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
        if self._peerDoneSending and self._handshakeDone:
            # Nothing may follow close_notify; whatever does is dropped.
            return
        super().dataReceived(data)  # type: ignore[no-untyped-call]  # unannotated in Twisted

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
    protocol = HalfCloseTLSProtocol
