"""
End to end: enrolment with a one-time token, from a second network
namespace.  A CA and a server certificate (`dockguard certs`), dockguard
with a mutual-TLS listener and the enrolment listener on the host end of a
veth pair (10.213.N.1/30), a token made with `dockguard certs token`; then,
in the namespace (10.213.N.2), `dockguard enroll` and `docker ps` over
mutual TLS with the new certificate, renewal, revocation, and the attacks:
a replayed token, an expired one, one for another name, a CSR asking for
another CN, CA:TRUE and SANs, no token, a wrong CA fingerprint (the client
refuses), guesses at rate (rate-limited).  Only the addresses made here are
used; the namespace and its link are removed afterwards.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from cryptography import x509

from dockguard import tokens
from harness.enrol import csr_for
from harness.guard import free_port
from harness.rawhttp import certs, wait_for_log

pytestmark = pytest.mark.e2e


@attrs.frozen
class Namespace:
    name: str
    host_ip: str
    inside_ip: str

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *args], capture_output=True, text=True, env=env, timeout=60
        )


@pytest.fixture
def netns() -> Iterator[Namespace]:
    """A network namespace joined to this one by a veth pair: 10.213.N.1 here, 10.213.N.2 there."""
    n = random.randrange(1, 250)
    name = f"dgenrol{os.getpid() % 10000}{n}"
    outside, inside = f"{name[:12]}a", f"{name[:12]}b"
    net = ipaddress.ip_network(f"10.213.{n}.0/30")
    host_ip, inside_ip = str(net[1]), str(net[2])
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
        ["ip", "link", "set", inside, "netns", name],
        ["ip", "addr", "add", f"{host_ip}/30", "dev", outside],
        ["ip", "link", "set", outside, "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", f"{inside_ip}/30", "dev", inside],
        ["ip", "netns", "exec", name, "ip", "link", "set", inside, "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(step)}: {done.stderr}", pytrace=False)
        yield Namespace(name, host_ip, inside_ip)
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "DOCKER_HOST")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def enroll(ns: Namespace, *args: str) -> subprocess.CompletedProcess[str]:
    """`dockguard enroll ARGS` in the namespace."""
    return ns.run(sys.executable, "-m", "dockguard.cli", "enroll", *args, env=cli_env())


def docker_ps(ns: Namespace, port: int, cert_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(cert_dir.parent),
        "DOCKER_CONFIG": str(cert_dir.parent / ".docker-config"),
        "DOCKER_HOST": f"tcp://{ns.host_ip}:{port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(cert_dir),
    }
    return ns.run("/usr/local/bin/docker", "ps", env=env)


def new_token(pki: Path, name: str, ttl: str = "15m") -> str:
    return certs("token", str(pki), name, "--ttl", ttl).stdout.splitlines()[0]


def serial_of(cert_dir: Path) -> int:
    return x509.load_pem_x509_certificate((cert_dir / "cert.pem").read_bytes()).serial_number


def post(host: str, port: int, ca: Path, path: str, body: object) -> tuple[int, dict[str, object]]:
    """A POST to the enrolment listener from this namespace, the server checked against C{ca}."""
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=10)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_enrol_from_another_namespace_then_docker_ps_renew_revoke_and_attacks(
    tmp_path: Path, guard_factory, netns: Namespace
) -> None:
    pki = tmp_path / "pki"
    certs("init", str(pki))
    certs("server", str(pki), "--name", netns.host_ip)
    port, enrol_port = free_port(), free_port()
    config = tmp_path / "dockguard.toml"
    config.write_text(
        f"""
[[listeners]]
url = "tls://{netns.host_ip}:{port}?cert={pki}/server-cert.pem&key={pki}/server-key.pem&client_ca={pki}/ca.pem&crl={pki}/crl.pem"

[enrol]
listen = "tcp://{netns.host_ip}:{enrol_port}"
ca = "{pki}"

[identities]
alice = ["readonly"]
bob = ["readonly"]
"""
    )
    guard = guard_factory([], extra_args=["--config", str(config)], wait_for=(netns.host_ip, enrol_port))
    url = f"https://{netns.host_ip}:{enrol_port}"
    alice = tmp_path / "alice"

    # --- enrolment, then docker ps over mutual TLS from the namespace -----
    token = new_token(pki, "alice")
    done = enroll(netns, url, token, "--dir", str(alice), "--name", "alice")
    assert done.returncode == 0, done.stderr
    assert f"export DOCKER_HOST=tcp://{netns.host_ip}:{port}" in done.stdout
    assert "docker context create alice" in done.stdout
    assert {p.name for p in alice.iterdir()} == {"ca.pem", "cert.pem", "key.pem"}
    assert (alice / "key.pem").stat().st_mode & 0o777 == 0o600
    wait_for_log(guard, f"enrolled alice for {netns.inside_ip}")
    ps = docker_ps(netns, port, alice)
    assert ps.returncode == 0, ps.stderr
    assert "CONTAINER ID" in ps.stdout
    first_serial = serial_of(alice)
    listed = certs("list", str(pki)).stdout
    assert f"{first_serial:x}" in listed

    # --- renewal: a new key and certificate, the old one kept aside -------
    old = tmp_path / "alice-old"
    old.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (old / name).write_bytes((alice / name).read_bytes())
    old_key = (alice / "key.pem").read_bytes()
    renewed = enroll(netns, url, "--renew", "--dir", str(alice))
    assert renewed.returncode == 0, renewed.stderr
    assert serial_of(alice) != first_serial
    assert (alice / "key.pem").read_bytes() != old_key
    assert docker_ps(netns, port, alice).returncode == 0

    # --- revocation of the first certificate ------------------------------
    certs("revoke", str(pki), f"{first_serial:x}")
    os.kill(guard.pid, signal.SIGHUP)
    wait_for_log(guard, "reloaded")
    refused = docker_ps(netns, port, old)
    assert refused.returncode != 0
    assert docker_ps(netns, port, alice).returncode == 0
    # the revoked certificate renews nothing either
    again = enroll(netns, url, "--renew", "--dir", str(old))
    assert again.returncode == 1 and "dockguard enroll:" in again.stderr and "Traceback" not in again.stderr

    # --- attacks -----------------------------------------------------------
    # a replayed token
    replay = enroll(netns, url, token, "--dir", str(tmp_path / "replay"))
    assert replay.returncode == 1 and "already used" in replay.stderr
    assert not (tmp_path / "replay" / "cert.pem").exists()
    # an expired token
    expired = new_token(pki, "alice", ttl="1s")
    time.sleep(1.5)
    late = enroll(netns, url, expired, "--dir", str(tmp_path / "late"))
    assert late.returncode == 1 and "expired" in late.stderr
    # a token for another name than the one expected
    other = enroll(netns, url, new_token(pki, "bob"), "--dir", str(tmp_path / "other"), "--name", "alice")
    assert other.returncode == 1 and "not for 'alice'" in other.stderr
    # a wrong CA fingerprint: the client refuses before it sends the token
    elsewhere = tmp_path / "elsewhere"
    certs("init", str(elsewhere))
    forged = tokens.parse_token(new_token(pki, "alice"))
    foreign = tokens.fingerprint(x509.load_pem_x509_certificate((elsewhere / "ca.pem").read_bytes()))
    pinned = enroll(netns, url, tokens.Token(foreign, forged.id, forged.secret).text, "--dir", str(tmp_path / "x"))
    assert pinned.returncode == 1 and "refusing to send the token" in pinned.stderr
    assert forged.id not in guard.log()
    assert not (tmp_path / "x").exists()
    # a CSR asking for another CN, CA:TRUE and SANs gets a plain certificate for the token's name
    status, body = post(
        netns.host_ip,
        enrol_port,
        pki / "ca.pem",
        "/dockguard/enroll",
        {
            "token": new_token(pki, "bob"),
            "csr": csr_for(
                cn="alice",
                extensions=[
                    x509.BasicConstraints(ca=True, path_length=None),
                    x509.SubjectAlternativeName([x509.DNSName("docker.example")]),
                ],
            ),
        },
    )
    assert status == 200, body
    cert = x509.load_pem_x509_certificate(str(body["certificate"]).encode())
    assert cert.subject.rfc4514_string() == "CN=bob"
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # no token
    status, body = post(netns.host_ip, enrol_port, pki / "ca.pem", "/dockguard/enroll", {"csr": csr_for()})
    assert status == 401 and "no token" in str(body["message"])
    # guesses at rate: the peer is limited after a burst
    guess = new_token(pki, "alice").rsplit("-", 1)[0] + "-" + "a" * 52
    statuses = [
        post(netns.host_ip, enrol_port, pki / "ca.pem", "/dockguard/enroll", {"token": guess, "csr": csr_for()})[0]
        for _ in range(14)
    ]
    assert 429 in statuses and set(statuses) <= {403, 429}, statuses
    assert "too many failed attempts from" in guard.log()

    # --- the enrolment listener serves no Docker API; the TLS one wants a certificate
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    connection = http.client.HTTPSConnection(netns.host_ip, enrol_port, context=context, timeout=10)
    connection.request("GET", "/containers/json")
    response = connection.getresponse()
    assert response.status == 404 and b"Docker API is on the mutual-TLS listeners" in response.read()
    connection.close()
    without = http.client.HTTPSConnection(netns.host_ip, port, context=context, timeout=10)
    with pytest.raises((ssl.SSLError, OSError, http.client.HTTPException)):
        without.request("GET", "/containers/json")
        without.getresponse().read()
    for what in ("a replay", "expired at", "is for bob, not 'alice'", "no token"):
        assert what in guard.log(), what
