"""Test certificates made with ``cryptography`` (no openssl shell-outs).

``TestPKI(directory)`` creates, in ``directory``:

* ``ca.pem`` / ``ca-key.pem``: a self-signed CA;
* ``server-cert.pem`` / ``server-key.pem``: CN ``dockguard``, SANs
  ``DNS:localhost``, ``IP:127.0.0.1``, ``IP:::1``, EKU serverAuth.

Client certificates are written as docker-CLI style ``DOCKER_CERT_PATH``
directories (``ca.pem`` = the CA that signed the *server*, so the CLI trusts
the server; ``cert.pem``; ``key.pem``) under ``directory/clients/``:

* ``client(name)``: the good case, CN=name, EKU clientAuth;
* ``client_from_other_ca(name)``: signed by a different CA;
* ``client_without_client_auth(name)``: EKU serverAuth only;
* ``client_with_two_cns(name1, name2)``: two CN attributes in the subject;
* ``client_without_cn()``: subject without any CN;
* ``client_ca_flag(name)``: basicConstraints CA=true on the leaf;
* ``expired_client(name)``: validity ended yesterday.

All keys are ECDSA P-256 in PKCS#8 PEM, written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestPKI", "load_cert", "write_private", "cert_common_names"]

_ORG = "dockguard tests"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 (even if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(path: str | os.PathLike[str]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def cert_common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


class _CA:
    def __init__(self, common_name: str) -> None:
        self.key = _new_key()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        subject: x509.Name,
        *,
        eku: list[x509.ObjectIdentifier] | None,
        sans: list[x509.GeneralName] | None = None,
        ca: bool = False,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = _new_key()
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(days=1))
            .not_valid_after(not_after or now + datetime.timedelta(days=825))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


def _subject(*common_names: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG)]
    attrs += [x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names]
    return x509.Name(attrs)


class TestPKI:
    """A CA, a server certificate and client certificate directories.

    Server-side paths: ``ca_path``, ``ca_key_path``, ``server_cert_path``,
    ``server_key_path``.  The objects themselves: ``ca_cert``, ``ca_key``,
    ``server_cert``, ``server_key``.  Every ``client*`` method returns the
    ``DOCKER_CERT_PATH`` directory it wrote; calling one again with the same
    arguments returns the same directory.
    """

    __test__ = False  # not a pytest test class, despite the name

    SERVER_CN = "dockguard"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        server_dns_names: tuple[str, ...] = ("localhost",),
        server_ips: tuple[str, ...] = ("127.0.0.1", "::1"),
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._clients_dir = self.directory / "clients"
        self._clients_dir.mkdir(exist_ok=True)
        self._made: dict[tuple, Path] = {}
        self._other_ca: _CA | None = None

        self._ca = _CA("dockguard test CA")
        self.ca_cert = self._ca.cert
        self.ca_key = self._ca.key
        self.ca_path = self.directory / "ca.pem"
        self.ca_key_path = self.directory / "ca-key.pem"
        self.ca_path.write_bytes(_cert_pem(self.ca_cert))
        write_private(self.ca_key_path, _key_pem(self.ca_key))

        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in server_dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        self.server_cert, self.server_key = self._ca.issue(
            _subject(self.SERVER_CN), eku=[ExtendedKeyUsageOID.SERVER_AUTH], sans=sans
        )
        self.server_cert_path = self.directory / "server-cert.pem"
        self.server_key_path = self.directory / "server-key.pem"
        self.server_cert_path.write_bytes(_cert_pem(self.server_cert))
        write_private(self.server_key_path, _key_pem(self.server_key))

    # -- helpers --------------------------------------------------------------

    @property
    def other_ca(self) -> _CA:
        """A second, unrelated CA (made on first use)."""
        if self._other_ca is None:
            self._other_ca = _CA("dockguard test CA (untrusted)")
            (self.directory / "other-ca.pem").write_bytes(_cert_pem(self._other_ca.cert))
        return self._other_ca

    def _write_client(
        self, key: tuple, label: str, cert: x509.Certificate, private: ec.EllipticCurvePrivateKey
    ) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "client"
        path = self._clients_dir / slug
        n = 1
        while path.exists():
            n += 1
            path = self._clients_dir / f"{slug}-{n}"
        path.mkdir(mode=0o700)
        (path / "ca.pem").write_bytes(_cert_pem(self.ca_cert))
        (path / "cert.pem").write_bytes(_cert_pem(cert))
        write_private(path / "key.pem", _key_pem(private))
        self._made[key] = path
        return path

    def _client(self, key: tuple, label: str, issuer: _CA, subject: x509.Name, **kw) -> Path:
        if key in self._made:
            return self._made[key]
        kw.setdefault("eku", [ExtendedKeyUsageOID.CLIENT_AUTH])
        cert, private = issuer.issue(subject, **kw)
        return self._write_client(key, label, cert, private)

    # -- the client certificate kinds ------------------------------------------

    def client(self, name: str) -> Path:
        """A valid client certificate: CN=name, EKU clientAuth."""
        return self._client(("ok", name), name, self._ca, _subject(name))

    def client_from_other_ca(self, name: str) -> Path:
        """CN=name, EKU clientAuth, but signed by a CA the server does not trust."""
        return self._client(("other-ca", name), f"{name}.other-ca", self.other_ca, _subject(name))

    def client_without_client_auth(self, name: str) -> Path:
        """CN=name signed by the CA, but with EKU serverAuth only."""
        return self._client(
            ("no-client-auth", name),
            f"{name}.no-client-auth",
            self._ca,
            _subject(name),
            eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        )

    def client_with_two_cns(self, name1: str, name2: str) -> Path:
        """A subject carrying two CN attributes (name1 first)."""
        return self._client(
            ("two-cns", name1, name2),
            f"{name1}+{name2}.two-cns",
            self._ca,
            _subject(name1, name2),
        )

    def client_without_cn(self) -> Path:
        """A subject with an O but no CN at all."""
        return self._client(("no-cn",), "no-cn", self._ca, _subject())

    def client_ca_flag(self, name: str) -> Path:
        """A leaf with basicConstraints CA=true (and keyCertSign)."""
        return self._client(("ca-flag", name), f"{name}.ca-flag", self._ca, _subject(name), ca=True)

    def expired_client(self, name: str) -> Path:
        """CN=name, EKU clientAuth, validity ended a day ago."""
        now = _now()
        return self._client(
            ("expired", name),
            f"{name}.expired",
            self._ca,
            _subject(name),
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )

    def __repr__(self) -> str:
        return f"<TestPKI {self.directory}>"
