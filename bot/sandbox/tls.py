"""TLS for the fake Slack: a self-signed certificate for 127.0.0.1, so Firebreak's real HTTPS
path (certificate verification, the shared TLS context) runs against it in tests and benchmarks.
A client trusts it through ``SSL_CERT_FILE`` (OpenSSL's default verify paths)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certificate:
    certificate: Path
    """PEM; point ``SSL_CERT_FILE`` at it to trust the fake."""
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, self.key)
        return context


def self_signed(directory: Path, *, hours: int = 24) -> Certificate:
    """A certificate for ``127.0.0.1`` valid for ``hours``, written to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-slack.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=hours))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    found = Certificate(directory / "fake-slack.pem", directory / "fake-slack.key")
    found.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


def trust_store(certificate: Certificate, directory: Path) -> Path:
    """The system's CA bundle with ``certificate`` added, written to ``directory``: point
    ``SSL_CERT_FILE`` at it and a client trusts the fake while loading as many certificates as
    it does against the real Slack (the cost of loading them is part of what is measured)."""
    system = ssl.get_default_verify_paths().cafile
    bundle = directory / "trust-store.pem"
    bundle.write_bytes(
        (Path(system).read_bytes() if system else b"") + certificate.certificate.read_bytes()
    )
    return bundle
