"""
L{dockguard.enrolserver}, in memory: the enrolment site driven over a
L{StringTransport} on a L{MemoryReactorClock} (the TLS under it is the
end-to-end test's, tests/test_e2e_enrol.py).  Only the three routes answer;
every refusal is Docker's JSON error; failed attempts are rate-limited per
peer and overall; bodies, connections and their time are bounded.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure

from dockguard import certs, tokens
from dockguard.config import build_config
from dockguard.enrolserver import (
    CONNECTION_TIME,
    MAX_BODY,
    PEER_BURST,
    PEER_EVERY,
    PER_PEER,
    Attempts,
    EnrolFactory,
    _Site,
)
from dockguard.errors import ConfigError
from dockguard.listeners import EnrolConfig, ListenerConfig
from harness.enrol import NOW, Answer, csr_for, parse


class PeerTransport(StringTransport):
    """A connection from C{peer}, with the client certificate C{cert} (as TLS would tell)."""

    def __init__(self, peer: str, cert: x509.Certificate | None = None) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", peer, 40000))
        self.cert = cert
        self.aborted = False

    def getHandle(self) -> object:
        return self

    def get_peer_certificate(self, as_cryptography: bool = False) -> x509.Certificate | None:
        return self.cert

    def abortConnection(self) -> None:
        self.aborted = True

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass


class Server:
    """The enrolment site on a memory clock at L{NOW}."""

    def __init__(self, ca_dir: Path) -> None:
        self.ca_dir = ca_dir
        self.clock = MemoryReactorClock()
        self.clock.advance(NOW.timestamp())
        self.factory = EnrolFactory(self.clock, EnrolConfig(ListenerConfig(kind="tls"), ca_dir, 30), 2376)
        self.site = _Site(self.factory.resource, self.clock)

    def send(self, raw: bytes, peer: str = "10.0.0.2", cert: x509.Certificate | None = None) -> Answer:
        transport = PeerTransport(peer, cert)
        channel = self.site.buildProtocol(transport.getPeer())
        assert channel is not None
        channel.makeConnection(transport)
        channel.dataReceived(raw)
        return parse(transport.value())

    def post(self, path: str, body: object, peer: str = "10.0.0.2", cert: x509.Certificate | None = None) -> Answer:
        data = json.dumps(body).encode()
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        return self.send(head % (path.encode(), len(data)) + data, peer, cert)

    def token(self, name: str = "alice") -> str:
        return tokens.add_token(self.ca_dir, name, timedelta(minutes=15), NOW)[0].text


@pytest.fixture
def server(tmp_path: Path) -> Server:
    directory = tmp_path / "pki"
    certs.main(["certs", "init", str(directory)], out=io.StringIO())
    certs.main(["certs", "server", str(directory), "--name", "127.0.0.1"], out=io.StringIO())
    return Server(directory)


def message(answer: Answer) -> str:
    assert answer.headers[b"content-type"] == b"application/json"
    return str(json.loads(answer.body)["message"])


def test_enrol_answers_a_certificate_the_ca_and_the_docker_port(server: Server) -> None:
    with capturedLogs() as events:
        answer = server.post("/dockguard/enroll", {"token": server.token(), "csr": csr_for()})
    assert answer.status == 200, answer.body
    body = json.loads(answer.body)
    assert body["name"] == "alice" and body["docker_port"] == 2376
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    assert cert.subject.rfc4514_string() == "CN=alice"
    assert body["ca"] == (server.ca_dir / "ca.pem").read_text()
    assert any("enrolled alice for 10.0.0.2" in formatEvent(e) for e in events)


def test_the_ca_is_public(server: Server) -> None:
    answer = server.send(b"GET /dockguard/ca HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status == 200
    assert answer.body == (server.ca_dir / "ca.pem").read_bytes()


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /_ping",
        b"GET /v1.45/containers/json",
        b"GET /dockguard/ca/../../_ping",
        b"POST /containers/create",
        b"GET /dockguard",
        b"GET /dockguard/tokens",
        b"GET /metrics",
    ],
)
def test_nothing_but_enrolment_is_reachable(server: Server, request_line: bytes) -> None:
    answer = server.send(request_line + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert answer.status == 404
    assert "serves GET /dockguard/ca, POST /dockguard/enroll and POST /dockguard/renew only" in message(answer)


def test_a_route_with_another_method_is_405(server: Server) -> None:
    answer = server.send(b"GET /dockguard/enroll HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status == 405 and "takes POST" in message(answer)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"csr": "x"}, 401, "no token"),
        ({"token": "DGT1-nope", "csr": "x"}, 400, "not a dockguard enrolment token"),
        ([], 400, "JSON object"),
    ],
)
def test_refusals_are_json_errors_and_logged(server: Server, body: object, status: int, words: str) -> None:
    with capturedLogs() as events:
        answer = server.post("/dockguard/enroll", body)
    assert answer.status == status and words in message(answer)
    assert any("enrolment refused for 10.0.0.2" in formatEvent(e) for e in events)


def test_a_replayed_token_is_refused_and_logged(server: Server) -> None:
    token = server.token()
    assert server.post("/dockguard/enroll", {"token": token, "csr": csr_for()}).status == 200
    with capturedLogs() as events:
        again = server.post("/dockguard/enroll", {"token": token, "csr": csr_for()}, peer="10.0.0.9")
    assert again.status == 403 and "already used" in message(again)
    assert any("a replay" in formatEvent(e) for e in events)


def test_a_token_for_another_name_than_expected_gives_nothing(server: Server) -> None:
    token = server.token("bob")
    answer = server.post("/dockguard/enroll", {"token": token, "csr": csr_for(), "name": "alice"})
    assert answer.status == 403 and "not for 'alice'" in message(answer)
    assert b"CERTIFICATE" not in answer.body
    # not spent: its owner can still use it
    assert server.post("/dockguard/enroll", {"token": token, "csr": csr_for(), "name": "bob"}).status == 200


def test_a_body_without_length_or_too_long_is_refused_before_it_is_read(server: Server) -> None:
    big = b"x" * (MAX_BODY + 1)
    answer = server.send(b"POST /dockguard/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
    assert answer.status == 413 and "at most 8192 bytes" in message(answer)
    chunked = server.send(
        b"POST /dockguard/enroll HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert chunked.status == 411


def test_failed_attempts_are_rate_limited_per_peer(server: Server) -> None:
    guess = {"token": server.token().rsplit("-", 1)[0] + "-" + "a" * 52, "csr": csr_for()}
    statuses = [server.post("/dockguard/enroll", guess).status for _ in range(PEER_BURST + 3)]
    assert statuses == [403] * PEER_BURST + [429] * 3
    # even the right token waits: the peer is limited, not the token
    token = server.token()
    limited = server.post("/dockguard/enroll", {"token": token, "csr": csr_for()})
    assert limited.status == 429 and "too many failed attempts from 10.0.0.2" in message(limited)
    # another peer is not
    assert server.post("/dockguard/enroll", guess, peer="10.0.0.3").status == 403
    # one more attempt after PEER_EVERY seconds
    server.clock.advance(PEER_EVERY)
    assert server.post("/dockguard/enroll", {"token": token, "csr": csr_for()}).status == 200


def test_successes_cost_nothing() -> None:
    clock = MemoryReactorClock()
    attempts = Attempts(clock, peer_burst=2, total_burst=3, max_peers=2)
    for _ in range(10):
        assert attempts.refused("a") is None  # asking is free; failing spends
    attempts.failed("a")
    attempts.failed("a")
    assert attempts.refused("a") is not None
    attempts.failed("b")
    assert attempts.refused("c") is not None and "everyone" in str(attempts.refused("c"))
    # memory is bounded: the least recent peers are forgotten
    attempts.refused("d")
    assert len(attempts.peers) == 2


def test_renewal_needs_a_client_certificate(server: Server) -> None:
    answer = server.post("/dockguard/renew", {"csr": csr_for()})
    assert answer.status == 401 and "current certificate" in message(answer)
    first = server.post("/dockguard/enroll", {"token": server.token(), "csr": csr_for()})
    cert = x509.load_pem_x509_certificate(json.loads(first.body)["certificate"].encode())
    renewed = server.post("/dockguard/renew", {"csr": csr_for(cn="root")}, cert=cert)
    assert renewed.status == 200 and json.loads(renewed.body)["name"] == "alice"


def test_connections_are_bounded_per_peer_and_in_time(server: Server) -> None:
    address = IPv4Address("TCP", "10.0.0.2", 40000)
    protocols = [server.factory.buildProtocol(address) for _ in range(PER_PEER)]
    assert server.factory.buildProtocol(address) is None
    assert server.factory.buildProtocol(IPv4Address("TCP", "10.0.0.3", 40000)) is not None
    first = protocols[0]
    assert first is not None
    transport = PeerTransport("10.0.0.2")
    first.makeConnection(transport)
    server.clock.advance(CONNECTION_TIME - 1)
    assert not transport.aborted
    server.clock.advance(1)
    assert transport.aborted
    first.connectionLost(Failure(ConnectionDone()))
    assert server.factory.buildProtocol(address) is not None


def test_the_enrol_table(tmp_path: Path, server: Server) -> None:
    config = tmp_path / "dockguard.toml"
    config.write_text(f'[enrol]\nlisten = "tcp://127.0.0.1:2378"\nca = "{server.ca_dir}"\ndays = 30\n')
    built = build_config({}, config_file=config)
    assert built.enrol is not None and built.enrol.days == 30 and built.enrol.listener.port == 2378
    for table, key in (
        ('listen = "tcp://127.0.0.1:2378"\nca = "nowhere"', "enrol.ca"),
        (f'ca = "{server.ca_dir}"', "enrol.listen"),
        (f'listen = "unix:///x"\nca = "{server.ca_dir}"', "enrol.listen"),
        (f'listen = "tcp://127.0.0.1:2378"\nca = "{server.ca_dir}"\ndays = 0', "enrol.days"),
        (f'listen = "tcp://127.0.0.1:2378"\nca = "{server.ca_dir}"\nport = 1', "enrol.port"),
    ):
        config.write_text("[enrol]\n" + table + "\n")
        with pytest.raises(ConfigError) as raised:
            build_config({}, config_file=config)
        assert raised.value.key == key and raised.value.source == str(config)
