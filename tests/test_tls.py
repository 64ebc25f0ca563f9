"""
Tests of L{dockguard.tls}: who a client certificate names, half-close under
TLS, and a plain-HTTP client of a TLS listener.

The half-close tests run in memory over C{twisted.test.iosim}, with real TLS:
a server made of L{HalfCloseTLSFactory} and L{server_options} around
L{ShoutWhenDone}, a protocol that answers only once the peer has stopped
sending, which is exactly the docker CLI's C{echo hi | docker exec -i c cat}
pattern: stdin ends (close_notify, or a bare TCP half-close from older
clients), and the output is written afterwards.  The client (L{TLSClient}) is
Python's C{ssl} module on a memory BIO; L{Wire} adds TCP's half-close to
iosim's transport.  The plain-HTTP tests still use loopback sockets: what they
check (no reset while the client is still sending) is the kernel's.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.test.iosim import FakeAddress, FakeTransport, IOPump, connectedServerAndClient
from zope.interface import implementer

from dockguard.identities import IdentityRefused, identity_from_certificate
from dockguard.tls import (
    PLAIN_HTTP_DRAIN,
    PLAIN_HTTP_MESSAGE,
    SNIFF_BYTES,
    HalfCloseTLSFactory,
    HalfCloseTLSProtocol,
    plain_http,
    refused_now,
    server_options,
)
from harness.pki import TestPKI, load_cert

# -- identity_from_certificate --------------------------------------------------------

_KEY = ec.generate_private_key(ec.SECP256R1())
_DEFAULT = object()


def make_cert(
    *common_names: str,
    ca: bool | None = False,
    eku: list[x509.ObjectIdentifier] | None | object = _DEFAULT,
    digital_signature: bool | None = True,
) -> x509.Certificate:
    """
    A certificate whose subject has C{common_names} as CN attributes.
    C{None} leaves an extension out.  Signature and issuer do not matter to
    L{identity_from_certificate}: TLS has verified the chain already.
    """
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dockguard tests")]
        + [x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
        .public_key(_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if eku is _DEFAULT:
        eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)  # type: ignore[arg-type]
    if digital_signature is not None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=False,
                key_encipherment=not digital_signature,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(_KEY, hashes.SHA256())


ACCEPTED = [
    pytest.param(make_cert("alice"), "alice", id="one-cn"),
    pytest.param(make_cert("ci-bot.prod_1+x@example.org"), "ci-bot.prod_1+x@example.org", id="cn-punctuation"),
    pytest.param(make_cert("a" * 64), "a" * 64, id="cn-64-chars"),
    # RFC 5280 4.2.1.12: without the extension the key is not restricted to
    # any purpose, and OpenSSL's client-purpose check accepts it too.
    pytest.param(make_cert("alice", eku=None), "alice", id="no-eku"),
    pytest.param(make_cert("alice", digital_signature=None), "alice", id="no-key-usage"),
    pytest.param(make_cert("alice", ca=None), "alice", id="no-basic-constraints"),
    pytest.param(
        make_cert("alice", eku=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        "alice",
        id="eku-server-and-client",
    ),
]


@pytest.mark.parametrize(("cert", "identity"), ACCEPTED)
def test_certificate_naming_one_identity_is_accepted(cert: x509.Certificate, identity: str) -> None:
    assert identity_from_certificate(cert) == identity


REFUSED = [
    pytest.param(make_cert(), ["0 common names", "exactly one"], id="no-cn"),
    pytest.param(make_cert("alice", "bob"), ["2 common names", "exactly one"], id="two-cns"),
    pytest.param(make_cert("alice", "alice"), ["2 common names"], id="same-cn-twice"),
    pytest.param(make_cert("alice smith"), ["'alice smith'", "not a plain name"], id="cn-with-space"),
    pytest.param(make_cert("alice\nadmin"), ["'alice\\nadmin'", "not a plain name"], id="cn-with-newline"),
    pytest.param(make_cert("alice\n"), ["not a plain name"], id="cn-with-trailing-newline"),
    pytest.param(make_cert("alice\x00"), ["'alice\\x00'", "not a plain name"], id="cn-with-nul"),
    pytest.param(make_cert("ålice"), ["not a plain name"], id="cn-non-ascii"),
    pytest.param(make_cert("\u0430lice"), ["not a plain name"], id="cn-cyrillic-lookalike"),
    pytest.param(make_cert("-alice"), ["not a plain name"], id="cn-leading-dash"),
    pytest.param(make_cert('alice"'), ["not a plain name"], id="cn-with-quote"),
    pytest.param(make_cert("alice", ca=True), ["'alice'", "CA certificate"], id="ca-true"),
    pytest.param(
        make_cert("alice", eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
        ["'alice'", "client authentication", "clientAuth"],
        id="eku-without-client-auth",
    ),
    pytest.param(
        make_cert("alice", eku=[ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
        ["clientAuth"],
        id="eku-other-purposes",
    ),
    pytest.param(
        make_cert("alice", digital_signature=False),
        ["'alice'", "digitalSignature"],
        id="key-usage-without-digital-signature",
    ),
]


@pytest.mark.parametrize(("cert", "fragments"), REFUSED)
def test_certificate_not_naming_one_client_identity_is_refused(cert: x509.Certificate, fragments: list[str]) -> None:
    with pytest.raises(IdentityRefused) as caught:
        identity_from_certificate(cert)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message


def test_identities_of_the_test_pki_certificates(pki: TestPKI) -> None:
    def cert(directory: Path) -> x509.Certificate:
        return load_cert(directory / "cert.pem")

    assert identity_from_certificate(cert(pki.client("carol"))) == "carol"
    for refused in (
        pki.client_with_two_cns("carol", "root"),
        pki.client_without_cn(),
        pki.client_ca_flag("carol"),
        pki.client_without_client_auth("carol"),
    ):
        with pytest.raises(IdentityRefused):
            identity_from_certificate(cert(refused))


# -- refused_now: would a handshake under the reloaded CA and CRL still accept it? ----------


def write_crl(pki: TestPKI, path: Path, *revoked: x509.Certificate) -> Path:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=1))
        .next_update(now + datetime.timedelta(days=1))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build()
        )
    path.write_bytes(builder.sign(pki.ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path


def test_refused_now_judges_an_accepted_certificate_by_the_current_ca_and_crl(pki: TestPKI, tmp_path: Path) -> None:
    alice = load_cert(pki.client("alice") / "cert.pem")
    bob = load_cert(pki.client("bob") / "cert.pem")

    def options(ca: Path, *revoked: x509.Certificate, crl: bool = True):
        path = write_crl(pki, tmp_path / f"crl-{len(list(tmp_path.iterdir()))}.pem", *revoked) if crl else None
        return server_options(pki.server_cert_path, pki.server_key_path, ca, path)

    assert refused_now(options(pki.ca_path, crl=False), alice) is None
    assert refused_now(options(pki.ca_path), alice) is None
    revoking_alice = options(pki.ca_path, alice)
    refusal = refused_now(revoking_alice, alice)
    assert refusal == f"its certificate (serial {alice.serial_number:x}) is now refused: certificate revoked"
    assert refused_now(revoking_alice, bob) is None
    # the client CA changed to one that did not issue it
    pki.other_ca  # noqa: B018 - made on first use: other-ca.pem exists from here on
    refusal = refused_now(options(pki.directory / "other-ca.pem", crl=False), alice)
    assert refusal is not None and "unable to get local issuer certificate" in refusal
    # expired since its handshake
    expired = load_cert(pki.expired_client("alice") / "cert.pem")
    refusal = refused_now(options(pki.ca_path), expired)
    assert refusal is not None and "certificate has expired" in refusal


# -- half-close under TLS, in memory --------------------------------------------------


@implementer(IHalfCloseableProtocol)
class ShoutWhenDone(Protocol):
    """
    Writes C{greeting} at once; collects what the peer sends; once the peer
    has stopped sending, answers all of it upper-cased and closes.
    """

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.received = b""
        self.readClosed = False
        self.lost = False
        self.gone: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        if self.greeting:
            self.transport.write(self.greeting)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def readConnectionLost(self) -> None:
        self.readClosed = True
        self.transport.write(self.received.upper())
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: object = None) -> None:
        self.lost = True
        self.gone.callback(None)


class Collect(Protocol):
    """Not half-closeable: collects what the peer sends, never writes."""

    def __init__(self) -> None:
        self.received = b""
        self.lost = False

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: object = None) -> None:
        self.lost = True


class ShoutFactory(Factory):
    def __init__(self, greeting: bytes = b"", protocol: type[Protocol] | None = None) -> None:
        self.greeting = greeting
        self.kind = protocol
        self.protocols: list[Protocol] = []

    def buildProtocol(self, addr: object) -> Protocol:
        proto = self.kind() if self.kind is not None else ShoutWhenDone(self.greeting)
        proto.factory = self
        self.protocols.append(proto)
        return proto


class Wire(FakeTransport):
    """
    An iosim transport that hands the pump one write at a time (so a write
    of one byte arrives as one segment) and models TCP's half-close:
    L{loseWriteConnection} is a FIN that reaches the peer after the bytes
    written before it (see L{TLSPair.flush}).
    """

    writeClosed = False
    finDelivered = False

    def getOutBuffer(self) -> bytes:
        return self.stream.pop(0) if self.stream else b""

    def write(self, data: bytes) -> None:
        assert not self.writeClosed, "written after its FIN"
        super().write(data)

    def loseWriteConnection(self) -> None:
        self.writeClosed = True


class TLSClient(Protocol):
    """
    A TLS client made of Python's C{ssl} module on a memory BIO, driven by
    the bytes iosim delivers, so it can send close_notify (C{unwrap()} once,
    which sends it and then wants to read) and keep reading the server's
    output afterwards.  Calling C{unwrap()} again would make OpenSSL read,
    and drop, that output, so it is called once only.
    """

    def __init__(self, pki: TestPKI, cert_dir: Path | None, maximum: ssl.TLSVersion | None, hello_bytewise: int = 0):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=str(pki.ca_path))
        if cert_dir is not None:
            context.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
        if maximum is not None:
            context.maximum_version = maximum
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.hello_bytewise = hello_bytewise
        self.handshake = False
        self.received = b""
        #: how the server's sending ended: "close_notify", "eof" (the
        #: connection closed without one), or "error"
        self.ending: str | None = None
        self.error: Exception | None = None
        self.lost = False

    def _flush(self) -> None:
        data = self.outgoing.read()
        while self.hello_bytewise and data:
            self.transport.write(data[:1])
            data, self.hello_bytewise = data[1:], self.hello_bytewise - 1
        if data:
            self.transport.write(data)

    def connectionMade(self) -> None:
        self._advance()

    def dataReceived(self, data: bytes) -> None:
        self.incoming.write(data)
        self._advance()

    def _advance(self) -> None:
        try:
            if not self.handshake:
                try:
                    self.tls.do_handshake()
                except ssl.SSLWantReadError:
                    return
                self.handshake = True
            while self.ending is None:
                try:
                    data = self.tls.read(65536)
                except ssl.SSLWantReadError:
                    return
                except ssl.SSLZeroReturnError:
                    self.ending = "close_notify"
                    return
                if not data:
                    self.ending = "close_notify"
                    return
                self.received += data
        except ssl.SSLError as e:
            self.ending, self.error = "error", e
        finally:
            self._flush()

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def stopSending(self, end: str) -> None:
        """C{"close_notify"}: TLS's own end of sending; C{"tcp-fin"}: a bare TCP half-close."""
        if end == "close_notify":
            with pytest.raises(ssl.SSLWantReadError):  # sent; the server's close_notify is not here yet
                self.tls.unwrap()
            self._flush()
        elif end == "tcp-fin":
            self.transport.loseWriteConnection()
        else:
            raise ValueError(end)

    def connectionLost(self, reason: object = None) -> None:
        self.lost = True
        if self.ending is None:
            self.ending = "eof"


@dataclass
class TLSPair:
    """A L{TLSClient} and a L{HalfCloseTLSFactory} server connected by iosim."""

    client: TLSClient
    server: HalfCloseTLSProtocol
    shout: ShoutFactory
    pump: IOPump

    @property
    def wrapped(self) -> Protocol:
        """The server's application protocol."""
        [proto] = self.shout.protocols
        return proto

    def flush(self) -> None:
        """
        Move bytes both ways until nothing moves; a FIN reaches the peer once
        the bytes written before it have: a half-closeable protocol gets
        C{readConnectionLost}, another loses the connection (as Twisted's
        TCP transport does).
        """
        while True:
            self.pump.flush()
            for wire, peer in ((self.pump.clientIO, self.pump.serverIO), (self.pump.serverIO, self.pump.clientIO)):
                if wire.writeClosed and not wire.finDelivered and not wire.stream and not peer.disconnected:
                    wire.finDelivered = True
                    half = IHalfCloseableProtocol(peer.protocol, None)
                    if half is not None:
                        half.readConnectionLost()
                    else:
                        peer.loseConnection()
                    break
            else:
                return


def tls_pair(
    pki: TestPKI,
    cert_dir: Path | None,
    *,
    maximum: ssl.TLSVersion | None = None,
    greeting: bytes = b"",
    protocol: type[Protocol] | None = None,
    hello_bytewise: int = 0,
    flush: bool = True,
) -> TLSPair:
    """Connect, and (with C{flush}) flush: the handshake is done (or failed) on return."""
    shout = ShoutFactory(greeting, protocol)
    options = server_options(pki.server_cert_path, pki.server_key_path, pki.ca_path)
    factory = HalfCloseTLSFactory(options, False, shout)
    client, server, pump = connectedServerAndClient(
        lambda: factory.buildProtocol(FakeAddress()),
        lambda: TLSClient(pki, cert_dir, maximum, hello_bytewise),
        clientTransportFactory=lambda proto: Wire(proto, isServer=False),
        serverTransportFactory=lambda proto: Wire(proto, isServer=True),
        greet=False,
    )
    assert isinstance(server, HalfCloseTLSProtocol)
    pair = TLSPair(client, server, shout, pump)
    if flush:
        pair.flush()
    return pair


TLS_VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
]


@pytest.mark.parametrize("maximum", TLS_VERSIONS)
@pytest.mark.parametrize("end", ["close_notify", "tcp-fin"])
def test_output_written_after_the_client_stops_sending_arrives(pki: TestPKI, end: str, maximum: ssl.TLSVersion) -> None:
    pair = tls_pair(pki, pki.client("alice"), maximum=maximum)
    assert pair.client.handshake and pair.client.error is None
    pair.client.send(b"hello")
    pair.flush()
    wrapped = pair.wrapped
    assert isinstance(wrapped, ShoutWhenDone)
    assert wrapped.received == b"hello" and not wrapped.readClosed
    assert pair.client.received == b"" and pair.client.ending is None, "nothing is answered before the end"

    pair.client.stopSending(end)
    pair.flush()
    assert wrapped.readClosed, "the client's end of sending is a read half-close of the server's protocol"
    assert pair.client.error is None, pair.client.error
    assert pair.client.received == b"HELLO", "what the server wrote afterwards arrived"
    assert pair.client.ending == "close_notify", "the server ends its output cleanly"
    assert wrapped.lost and pair.client.lost, "and the connection closes without waiting for the client"


@pytest.mark.parametrize("maximum", TLS_VERSIONS)
def test_the_server_may_write_many_times_after_close_notify(pki: TestPKI, maximum: ssl.TLSVersion) -> None:
    """The docker exec -i stream: output keeps coming, over several writes, after stdin ended."""

    @implementer(IHalfCloseableProtocol)
    class Stream(Collect):
        readClosed = False

        def readConnectionLost(self) -> None:
            self.readClosed = True

        def writeConnectionLost(self) -> None:
            pass

    pair = tls_pair(pki, pki.client("alice"), maximum=maximum, protocol=Stream)
    pair.client.stopSending("close_notify")
    pair.flush()
    stream = pair.wrapped
    assert isinstance(stream, Stream) and stream.readClosed and not stream.lost
    for chunk in (b"one ", b"two ", b"three"):
        stream.transport.write(chunk)
        pair.flush()
        assert pair.client.ending is None and not pair.client.lost
    assert pair.client.received == b"one two three"
    stream.transport.loseConnection()
    pair.flush()
    assert pair.client.ending == "close_notify" and stream.lost


def test_close_notify_to_a_protocol_that_cannot_half_close_closes_the_connection(pki: TestPKI) -> None:
    pair = tls_pair(pki, pki.client("alice"), protocol=Collect)
    pair.client.send(b"hello")
    pair.client.stopSending("close_notify")
    pair.flush()
    collect = pair.wrapped
    assert isinstance(collect, Collect)
    assert collect.received == b"hello" and collect.lost
    assert pair.client.ending == "close_notify" and pair.client.lost


def test_a_fin_during_the_handshake_closes_the_connection(pki: TestPKI) -> None:
    """A client that stops sending inside its hello gets nothing; the connection closes."""
    pair = tls_pair(pki, pki.client("alice"), hello_bytewise=3, flush=False)
    for _ in range(3):
        assert pair.pump.pump()
    pair.pump.clientIO.stream.clear()  # the rest of the hello is never sent
    pair.client.stopSending("tcp-fin")
    pair.flush()
    wrapped = pair.wrapped
    assert isinstance(wrapped, ShoutWhenDone)
    assert not pair.server._handshakeDone
    assert wrapped.received == b"" and not wrapped.readClosed and wrapped.lost
    assert pair.client.received == b"" and pair.client.lost


@pytest.mark.parametrize("maximum", TLS_VERSIONS)
@pytest.mark.parametrize(
    ("client", "greeted"),
    [
        pytest.param(lambda pki: pki.client("alice"), True, id="trusted-client"),
        pytest.param(lambda pki: None, False, id="no-certificate"),
        pytest.param(lambda pki: pki.client_from_other_ca("mallory"), False, id="other-ca"),
        pytest.param(lambda pki: pki.expired_client("old"), False, id="expired"),
    ],
)
def test_only_a_trusted_client_certificate_gets_application_bytes(
    pki: TestPKI, client, greeted: bool, maximum: ssl.TLSVersion
) -> None:
    pair = tls_pair(pki, client(pki), maximum=maximum, greeting=b"WELCOME\n")
    if pair.client.ending is None:  # TLS 1.3: the client finished its side before the server judged it
        pair.client.send(b"hello")
        pair.client.stopSending("close_notify")
        pair.flush()
    wrapped = pair.wrapped
    assert isinstance(wrapped, ShoutWhenDone)
    if greeted:
        assert pair.client.error is None, pair.client.error
        assert pair.client.received == b"WELCOME\nHELLO"
        assert wrapped.received == b"hello"
    else:
        assert pair.client.received == b""
        assert pair.client.ending in ("error", "eof")
        assert wrapped.received == b"" and not wrapped.readClosed
    assert pair.client.lost and wrapped.lost


def test_a_tls_client_whose_hello_comes_in_pieces_still_gets_tls(pki: TestPKI) -> None:
    """The first bytes held back to tell TLS from HTTP reach OpenSSL whole."""
    pair = tls_pair(pki, pki.client("alice"), hello_bytewise=3)
    assert pair.client.handshake and pair.client.error is None
    pair.client.send(b"hello")
    pair.client.stopSending("close_notify")
    pair.flush()
    assert pair.client.received == b"HELLO"
    assert pair.wrapped.received == b"hello"  # type: ignore[attr-defined]


# -- a plain-HTTP client on a TLS listener --------------------------------------------------


class Server:
    """A HalfCloseTLSFactory listener on 127.0.0.1 around a ShoutFactory."""

    def __init__(self, port: object, shout: ShoutFactory) -> None:
        self._port = port
        self.shout = shout
        self.number: int = port.getHost().port  # type: ignore[attr-defined]

    @classmethod
    async def start(cls, pki: TestPKI, greeting: bytes = b"", plainHttp=None) -> Server:
        from twisted.internet import reactor

        shout = ShoutFactory(greeting)
        options = server_options(pki.server_cert_path, pki.server_key_path, pki.ca_path)
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        port = await endpoint.listen(HalfCloseTLSFactory(options, False, shout, plainHttp=plainHttp))
        return cls(port, shout)

    async def connection_gone(self) -> ShoutWhenDone:
        """The one server-side connection, once it has closed."""
        from twisted.internet import reactor

        [proto] = self.shout.protocols
        await proto.gone.addTimeout(5, reactor)
        return proto

    async def stop(self) -> None:
        await self._port.stopListening()  # type: ignore[attr-defined]


def client_hello(maximum: ssl.TLSVersion | None = None) -> bytes:
    """The first bytes a real TLS client sends."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if maximum is not None:
        context.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    ("first", "plain"),
    [
        pytest.param(client_hello(), False, id="client-hello"),
        pytest.param(client_hello(ssl.TLSVersion.TLSv1_2), False, id="client-hello-tls1.2"),
        pytest.param(client_hello()[:1], False, id="client-hello-first-byte"),
        pytest.param(b"\x80\x2e\x01\x03\x01", False, id="sslv2-style-hello"),
        pytest.param(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n", True, id="get"),
        pytest.param(b"HEAD /_ping HTTP/1.1\r\n", True, id="head"),
        pytest.param(b"POST ", True, id="post-and-its-space"),
        pytest.param(b"OPTIONS * HTTP/1.1\r\n", True, id="options"),
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", True, id="http2-preface"),
        pytest.param(b"M-SEARCH * HTTP/1.1\r\n", True, id="token-punctuation"),
        pytest.param(b"A" * (SNIFF_BYTES - 1) + b" ", True, id="longest-method"),
        pytest.param(b"", None, id="nothing-yet"),
        pytest.param(b"G", None, id="one-byte"),
        pytest.param(b"DELETE", None, id="method-without-its-space"),
        pytest.param(b"A" * (SNIFF_BYTES - 1), None, id="longest-method-without-its-space"),
        pytest.param(b"A" * SNIFF_BYTES, False, id="too-long-for-a-method"),
        pytest.param(b"A" * SNIFF_BYTES + b" / HTTP/1.1\r\n", False, id="space-after-the-bound"),
        pytest.param(b" GET / HTTP/1.1\r\n", False, id="space-first"),
        pytest.param(b"GET\t/", False, id="not-a-space"),
        pytest.param(b"\r\nGET / HTTP/1.1\r\n", False, id="crlf-first"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", False, id="ssh"),
    ],
)
def test_plain_http_is_told_from_tls_by_the_first_bytes(first: bytes, plain: bool | None) -> None:
    assert plain_http(first) is plain


def plain_exchange(port: int, *pieces: bytes, pause: float = 0.05) -> bytes:
    """Send C{pieces} over plain TCP (one segment each), then read until the server closes."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        while chunk := sock.recv(65536):
            received += chunk
    return received


def answer_of(received: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    return status, headers, body


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param([b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"], id="one-segment"),
        pytest.param([b"G", b"E", b"T /_ping HTTP/1.1\r\n", b"Host: docker\r\n\r\n"], id="method-in-pieces"),
        pytest.param(
            [b"POST /containers/create HTTP/1.1\r\nContent-Length: 30000\r\n\r\n", b"x" * 30000],
            id="body-still-coming",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_plain_http_client_of_a_tls_listener_is_told_to_use_tls(pki: TestPKI, pieces: list[bytes]) -> None:
    """
    It gets a 400 in clear text, in Docker's error shape, that says what to
    set, even if it is still sending; the wrapped protocol (which counts
    the connection) sees the connection begin and end, never a byte.
    """
    told: list[object] = []
    server = await Server.start(pki, plainHttp=told.append)
    try:
        received = await deferToThread(plain_exchange, server.number, *pieces)
        proto = await server.connection_gone()
    finally:
        await server.stop()
    status, headers, body = answer_of(received)
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    message = json.loads(body)["message"]
    assert message == PLAIN_HTTP_MESSAGE
    for fix in ("TLS", "client certificate", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH", "https://"):
        assert fix in message
    assert proto.received == b"" and not proto.readClosed
    assert [peer.host for peer in told] == ["127.0.0.1"]  # type: ignore[attr-defined]


@pytest.mark.timeout(20)
@pytest_twisted.ensureDeferred
async def test_a_plain_head_request_gets_the_400_head_only(pki: TestPKI) -> None:
    server = await Server.start(pki)
    try:
        received = await deferToThread(plain_exchange, server.number, b"HEAD /_ping HTTP/1.1\r\n\r\n")
        await server.connection_gone()
    finally:
        await server.stop()
    status, headers, body = answer_of(received)
    assert status == "HTTP/1.1 400 Bad Request" and int(headers["content-length"]) > 0
    assert body == b""


@pytest.mark.timeout(20)
@pytest_twisted.ensureDeferred
async def test_a_plain_http_client_may_go_on_sending_after_its_400_without_a_reset(pki: TestPKI) -> None:
    """
    After the 400 the listener stops sending but still reads (and drops)
    what the client sends, so that a reset cannot cost a client that is
    still sending its request the answer; the client's close ends it.
    """

    def late_body(port: int) -> tuple[bytes, str | None]:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /containers/create HTTP/1.1\r\nContent-Length: 40000\r\n\r\n")
            received = b""
            while chunk := sock.recv(65536):  # the whole 400, then the listener's FIN
                received += chunk
            try:
                for _ in range(4):
                    sock.sendall(b"x" * 10000)
                    time.sleep(0.05)
            except OSError as e:
                return received, repr(e)
            return received, None

    server = await Server.start(pki)
    try:
        received, error = await deferToThread(late_body, server.number)
        proto = await server.connection_gone()
    finally:
        await server.stop()
    assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert error is None, f"the listener reset the connection: {error}"
    assert proto.received == b""


@pytest.mark.timeout(20)
@pytest_twisted.ensureDeferred
async def test_a_plain_http_client_that_keeps_sending_is_cut_off(pki: TestPKI) -> None:
    """What is read after the 400 is bounded: past PLAIN_HTTP_DRAIN the connection closes."""

    def flood(port: int) -> int:
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            try:
                sock.sendall(b"POST / HTTP/1.1\r\n\r\n")
                while sent < 100 * PLAIN_HTTP_DRAIN:
                    sent += sock.send(b"x" * 65536)
            except OSError:
                return sent
        raise AssertionError(f"{sent} bytes went in and the connection is still open")

    server = await Server.start(pki)
    try:
        sent = await deferToThread(flood, server.number)
        proto = await server.connection_gone()
    finally:
        await server.stop()
    assert sent < 100 * PLAIN_HTTP_DRAIN
    assert proto.received == b""


#: The Twisted methods L{dockguard.tls.HalfCloseTLSProtocol} overrides or
#: calls, as they were when it was written (Twisted 26.10): the sha256 of
#: their source.  A new Twisted that changes one fails here, by name, before
#: the half-close of C{docker exec -i} over TLS breaks in the field.
_TWISTED_TLS_PINS = {
    "_flushReceiveBIO": "2105d14b4edd4c1de946ff49931adec36148b8d20f80c4702619c106d2749768",
    "_shutdownTLS": "756ea13b9a5c720bb5ebd48aec1e05134bab01b4596d66c4b45aa78495d95c6c",
    "_tlsShutdownFinished": "a231389b8f3b24dd32ceab55c1026ad1153e7a4629df68872003f8b5e1c3c653",
}


@pytest.mark.parametrize("name", sorted(_TWISTED_TLS_PINS))
def test_the_private_twisted_tls_code_the_half_close_shim_relies_on_is_unchanged(name: str) -> None:
    import hashlib
    import inspect
    import textwrap

    from twisted.protocols.tls import TLSMemoryBIOProtocol

    source = textwrap.dedent(inspect.getsource(getattr(TLSMemoryBIOProtocol, name)))
    assert hashlib.sha256(source.encode()).hexdigest() == _TWISTED_TLS_PINS[name], (
        f"Twisted changed TLSMemoryBIOProtocol.{name}: re-read it, bring "
        "dockguard.tls.HalfCloseTLSProtocol in line, run the TLS half-close tests "
        "(test_output_written_after_the_client_stops_sending_arrives and the e2e exec -i ones) "
        "and record the new hash here"
    )
