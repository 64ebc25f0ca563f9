"""
C{dockguard enroll}: on the host that is to use a client certificate, get
one from dockguard's enrolment listener (L{dockguard.enrolserver}) with a
one-time token, or renew the one it has (C{--renew}).

  1. The EC P-256 key is made here and written with mode 0600; only a CSR
     (its public key, signed) is sent.
  2. C{GET /dockguard/ca} over TLS without checking the server, then the
     CA's SHA-256 is compared with the fingerprint in the token: another
     CA, and nothing is sent.
  3. A second connection checks the server against that CA (its name or
     IP address as well) and posts the token and the CSR.
  4. C{ca.pem}, C{cert.pem}, C{key.pem} go to DIR, the layout the docker
     CLI reads from C{DOCKER_CERT_PATH}; the C{docker context create}
     command is printed, or run (C{--context}).

A one-shot command: blocking standard-library sockets, no reactor.
"""

from __future__ import annotations

import argparse
import hmac
import http.client
import json
import os
import shlex
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dockguard import certs
from dockguard.tokens import TokenError, fingerprint, parse_token

#: Bytes read of an answer at most (a certificate and a CA: about 2 KiB).
MAX_ANSWER = 65536
TIMEOUT = 30.0


class EnrolError(Exception):
    """The command cannot go on; C{str()} is the message for the user."""


def register(sub: Any) -> None:
    """Add C{enroll} to the C{dockguard} command's sub-parsers."""
    p = sub.add_parser(
        "enroll",
        help="get a client certificate from dockguard's enrolment listener with a one-time token (or --renew it)",
        description="Make a key here, send only a CSR, and write DIR/ca.pem, cert.pem and key.pem "
        "(the docker CLI's DOCKER_CERT_PATH layout).",
    )
    p.add_argument("url", metavar="https://HOST:PORT", help="dockguard's enrolment listener")
    p.add_argument("token", nargs="?", metavar="TOKEN", help="from `dockguard certs token` (not with --renew)")
    p.add_argument("--dir", type=Path, default=Path("~/.docker"), help="where to write (default: %(default)s)")
    p.add_argument("--context", metavar="NAME", help="also run `docker context create NAME` for it")
    p.add_argument("--name", metavar="NAME", help="refuse unless the token is for this identity")
    p.add_argument("--renew", action="store_true", help="renew DIR's certificate with itself (a new key)")
    p.add_argument("--force", action="store_true", help="replace an existing cert.pem and key.pem in DIR")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="do nothing (exit 0) when DIR already has cert.pem and key.pem: for a container's first start",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run C{dockguard enroll}; errors go to stderr, exit 1."""
    try:
        return _enroll(args, out)
    except (EnrolError, TokenError) as e:
        print(f"dockguard enroll: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"dockguard enroll: {e}", file=sys.stderr)
        return 1


def _enroll(args: argparse.Namespace, out: TextIO) -> int:
    directory: Path = args.dir.expanduser()
    host, port = parse_url(args.url)
    files = [directory / "cert.pem", directory / "key.pem"]
    if args.skip_existing and all(path.exists() for path in files):
        print(f"{directory} already has cert.pem and key.pem: nothing to do", file=out)
        return 0
    key = ec.generate_private_key(ec.SECP256R1())
    csr = make_csr(key)
    if args.renew:
        if args.token is not None:
            raise EnrolError("--renew uses DIR's certificate, not a token: leave the token out")
        ca_pem = (directory / "ca.pem").read_bytes()
        context = verifying_context(ca_pem)
        context.load_cert_chain(str(directory / "cert.pem"), str(directory / "key.pem"))
        answer = post(host, port, context, "/dockguard/renew", {"csr": csr})
    else:
        if args.token is None:
            raise EnrolError("give the token from `dockguard certs token` (or --renew)")
        token = parse_token(args.token)
        existing = [path for path in files if path.exists()]
        if existing and not args.force:
            raise EnrolError(f"{existing[0]} exists: refusing to overwrite (--force replaces it, --renew renews it)")
        ca_pem = fetch_ca(host, port)
        ca = _first_certificate(ca_pem, "the server's /dockguard/ca")
        shown = fingerprint(ca)
        if not hmac.compare_digest(shown, token.ca_fingerprint):
            raise EnrolError(
                f"the server at {args.url} shows a CA with sha256 {shown}, but the token is for the CA with "
                f"sha256 {token.ca_fingerprint}: refusing to send the token (a wrong address, or someone "
                "in between)"
            )
        body: dict[str, object] = {"token": token.text, "csr": csr}
        if args.name is not None:
            body["name"] = args.name
        answer = post(host, port, verifying_context(ca_pem), "/dockguard/enroll", body)
    cert = _check_answer(answer, key, ca_pem, args.name)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(directory / "key.pem", _key_pem(key), 0o600)
    _write(directory / "cert.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(directory / "ca.pem", ca_pem, 0o644)
    name = str(answer["name"])
    what = "renewed" if args.renew else "enrolled as"
    print(
        f"{what} {name}: serial {cert.serial_number:x}, until {cert.not_valid_after_utc:%Y-%m-%d}; "
        f"{directory}: ca.pem, cert.pem, key.pem (0600: made here, never sent)",
        file=out,
    )
    docker_port = answer.get("docker_port")
    endpoint = f"tcp://{_url_host(host)}:{docker_port if isinstance(docker_port, int) else certs.DOCKER_PORT}"
    path = directory.resolve()
    docker = f"host={endpoint},ca={path / 'ca.pem'},cert={path / 'cert.pem'},key={path / 'key.pem'}"
    if args.renew:
        return 0
    if args.context:
        return _create_context(args.context, docker, out)
    print(f"export DOCKER_HOST={endpoint}", file=out)
    print("export DOCKER_TLS_VERIFY=1", file=out)
    print(f"export DOCKER_CERT_PATH={shlex.quote(str(path))}", file=out)
    print(f"docker context create {certs.context_name(name)} --docker {certs.dquote(docker)}", file=out)
    return 0


def parse_url(url: str) -> tuple[str, int]:
    """HOST and PORT of C{https://HOST:PORT}."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "https" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise EnrolError(f"{url!r} is not https://HOST:PORT (the enrolment listener's address)")
    return parts.hostname, port


def make_csr(key: ec.EllipticCurvePrivateKey) -> str:
    """A CSR for C{key} (its subject does not matter: the server names the certificate)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockguard enrolment")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def fetch_ca(host: str, port: int, timeout: float = TIMEOUT) -> bytes:
    """The CA the server shows at C{/dockguard/ca}, over TLS not yet checked (the token's fingerprint checks it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    status, data = _request(host, port, context, "GET", "/dockguard/ca", None, timeout)
    if status != 200:
        raise EnrolError(f"https://{_url_host(host)}:{port}/dockguard/ca answered {status}: {_message(data)}")
    return data


def verifying_context(ca_pem: bytes) -> ssl.SSLContext:
    """TLS that checks the server against C{ca_pem}, its name or address included."""
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii", "replace"))
    context.check_hostname = True
    return context


def post(host: str, port: int, context: ssl.SSLContext, path: str, body: dict[str, object]) -> dict[str, Any]:
    """POST C{body} as JSON; the JSON answer, or L{EnrolError} with the server's message."""
    status, data = _request(host, port, context, "POST", path, json.dumps(body).encode(), TIMEOUT)
    if status != 200:
        raise EnrolError(f"the server refused (HTTP {status}): {_message(data)}")
    try:
        answer = json.loads(data)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise EnrolError(f"the server's answer is not a JSON object: {data[:200]!r}")
    return answer


def _request(
    host: str, port: int, context: ssl.SSLContext, method: str, path: str, body: bytes | None, timeout: float
) -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(MAX_ANSWER + 1)
        if len(data) > MAX_ANSWER:
            raise EnrolError(f"the answer of https://{_url_host(host)}:{port}{path} is too long")
        return response.status, data
    except ssl.SSLCertVerificationError as e:
        raise EnrolError(f"the server's certificate does not check out against the pinned CA: {e.verify_message}")
    except (OSError, http.client.HTTPException) as e:
        raise EnrolError(f"cannot talk to https://{_url_host(host)}:{port}: {e or type(e).__name__}")
    finally:
        connection.close()


def _message(data: bytes) -> str:
    try:
        message = json.loads(data).get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message) if message else data[:200].decode("utf-8", "replace").strip()


def _first_certificate(data: bytes, what: str) -> x509.Certificate:
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError:
        found = []
    if not found:
        raise EnrolError(f"{what} is not a PEM certificate")
    return found[0]


def _check_answer(
    answer: dict[str, Any], key: ec.EllipticCurvePrivateKey, ca_pem: bytes, name: str | None
) -> x509.Certificate:
    """The certificate answered, if it is for our key (and C{name}) and issued by the pinned CA."""
    cert = _first_certificate(str(answer.get("certificate", "")).encode(), "the certificate answered")
    ca = _first_certificate(ca_pem, "ca.pem")
    if cert.public_key() != key.public_key():
        raise EnrolError("the certificate answered is not for the key made here")
    if cert.issuer != ca.subject:
        raise EnrolError("the certificate answered is not issued by the pinned CA")
    if name is not None and answer.get("name") != name:
        raise EnrolError(f"the certificate answered is for {answer.get('name')!r}, not {name!r}")
    return cert


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace C{path} atomically with C{data}, mode C{mode} from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)
    os.replace(tmp, path)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _create_context(name: str, docker: str, out: TextIO) -> int:
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise EnrolError(
            f"no docker command here; create the context with: docker context create {name} "
            f"--docker {certs.dquote(docker)}"
        )
    done = subprocess.run([docker_cli, "context", "create", name, "--docker", docker], capture_output=True, text=True)
    if done.returncode != 0:
        raise EnrolError(f"docker context create {name} failed: {done.stderr.strip()}")
    print(f"docker context {name} created: docker --context {name} ps", file=out)
    return 0
