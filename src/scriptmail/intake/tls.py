"""The STARTTLS certificate and its TLS settings: the configured certificate (re-read when its files
change or on SIGHUP, so renewals need no restart), or a self-signed one made once for the default setup."""

from __future__ import annotations

import datetime
import logging
import os
import ssl
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def ensure_self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Create (once) and return a certificate and key for `hostname` in `directory`."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


log = logging.getLogger(__name__)

# TLS 1.2 suites of Mozilla's "intermediate" profile without the finite-field DHE ones: forward
# secrecy by ECDHE and AEAD ciphers only (no CBC, no RSA key exchange). TLS 1.3 suites are all AEAD.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)

# A renewal writes the files; a new connection looks at their mtimes at most this often.
CHECK_INTERVAL = 1.0


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context offering TLS 1.2+ with ECDHE and AEAD suites only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(cert, key)
    return context


def _stamp(paths: tuple[Path, Path]) -> tuple[tuple[int, int, int], ...]:
    stamps = []
    for path in paths:
        info = os.stat(path)
        stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(stamps)


class CertificateStore:
    """The current server context for a certificate and key, made again when the files change.

    Each connection asks for `context()`; at most once per CHECK_INTERVAL that costs two stat()
    calls. A pair that cannot be loaded (a renewal half written, a key that does not match) keeps
    the previous context in service and is tried again at the next check.
    """

    def __init__(self, cert: Path, key: Path, clock=time.monotonic) -> None:
        self.cert, self.key = cert, key
        self._clock = clock
        self._stamp = _stamp((cert, key))
        self._context = server_context(cert, key)  # a pair that cannot be loaded at start stops the start
        self._checked = clock()

    def context(self) -> ssl.SSLContext:
        now = self._clock()
        if now - self._checked >= CHECK_INTERVAL:
            self._checked = now
            self._reload_if_changed()
        return self._context

    def reload(self) -> bool:
        """Read the files again now (SIGHUP); False if they cannot be used and the old pair stays."""
        self._checked = self._clock()
        return self._load()

    def _reload_if_changed(self) -> None:
        try:
            stamp = _stamp((self.cert, self.key))
        except OSError as error:
            log.warning("cannot look at TLS certificate %s or key %s: %s; keeping the current one", self.cert, self.key, error)
            return
        if stamp != self._stamp:
            self._load()

    def _load(self) -> bool:
        try:
            stamp = _stamp((self.cert, self.key))
            context = server_context(self.cert, self.key)
        except (OSError, ssl.SSLError, ValueError) as error:
            log.warning("cannot load TLS certificate %s with key %s: %s; keeping the current one", self.cert, self.key, error)
            return False
        self._context, self._stamp = context, stamp
        log.info("TLS certificate %s loaded", self.cert)
        return True
