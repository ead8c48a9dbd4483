"""The emulator's TLS: a CA made at run time (trustme), kept in the state dir when there is one."""

from __future__ import annotations

import base64
import hashlib
import ssl
from pathlib import Path

import trustme

__all__ = ["ensure_certs", "server_context", "client_context", "spki_sha256"]


def ensure_certs(state_dir: Path, hosts: tuple[str, ...]) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) in ``state_dir``, created once and reused after."""
    ca_file, cert_file, key_file = state_dir / "ca.pem", state_dir / "server.pem", state_dir / "server.key"
    if not (ca_file.exists() and cert_file.exists() and key_file.exists()):
        ca = trustme.CA(organization_name="livekit_lab emulator")
        cert = ca.issue_cert(*hosts)
        ca.cert_pem.write_to_path(str(ca_file))
        cert.private_key_pem.write_to_path(str(key_file))
        with open(cert_file, "wb") as f:
            for blob in cert.cert_chain_pems:
                f.write(blob.bytes())
        key_file.chmod(0o600)
    return ca_file, cert_file, key_file


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS server context with the emulator's certificate and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


def client_context(ca_file: Path | str) -> ssl.SSLContext:
    """A TLS client context that trusts the emulator's CA (``ca_file``)."""
    return ssl.create_default_context(cafile=str(ca_file))


def spki_sha256(cert_file: Path) -> str:
    """base64 SHA-256 of the leaf certificate's SubjectPublicKeyInfo (for Chromium's
    ``--ignore-certificate-errors-spki-list``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = cert_file.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    cert = x509.load_pem_x509_certificate(pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
