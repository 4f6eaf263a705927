"""CertificateStore on its own: when it reads the files again, and what it keeps when it cannot."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from scriptmail.intake.tls import CHECK_INTERVAL, CertificateStore
from tests.support.certificates import write_certificate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_files_are_looked_at_once_per_interval_and_a_deleted_file_keeps_the_current_pair(tmp_path: Path) -> None:
    cert, key, clock = tmp_path / "c.pem", tmp_path / "k.pem", Clock()
    write_certificate(cert, key, kind="ec")
    store = CertificateStore(cert, key, clock)
    first = store.context()
    write_certificate(cert, key, kind="ec")
    assert store.context() is first  # within the interval: not even a stat()
    clock.now += CHECK_INTERVAL
    renewed = store.context()
    assert renewed is not first
    clock.now += CHECK_INTERVAL
    assert store.context() is renewed  # unchanged files: the same context
    cert.unlink()
    clock.now += CHECK_INTERVAL
    assert store.context() is renewed
    garbage = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    cert.write_bytes(garbage)
    assert store.reload() is False and store.context() is renewed


def test_a_pair_that_does_not_load_at_start_stops_the_start(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    write_certificate(cert, key)
    other_cert, other_key = tmp_path / "o.pem", tmp_path / "ok.pem"
    write_certificate(other_cert, other_key)
    with pytest.raises(ssl.SSLError):
        CertificateStore(cert, other_key)
    with pytest.raises(FileNotFoundError):
        CertificateStore(tmp_path / "missing.pem", key)


def test_serve_with_a_missing_certificate_says_so_and_exits_71(tmp_path: Path) -> None:
    config = tmp_path / "scriptmail.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "store.db"}"\nnode = "tls-missing"\n[intake]\nlisten = "127.0.0.1:0"\n'
        f'socket = "{tmp_path / "intake.sock"}"\ntls_cert = "{tmp_path / "none.pem"}"\ntls_key = "{tmp_path / "none.key"}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "scriptmail", "--config", str(config), "serve", "--parts", "smtp", "--no-demo"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 71, result.stderr
    assert "none.pem" in result.stderr or "none.pem" in result.stdout
