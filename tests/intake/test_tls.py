"""Intake's TLS as a scanner and a client see it: TLS 1.2+ with ECDHE and AEAD suites only, and a
renewed certificate served to the next client without a restart."""

from __future__ import annotations

import os
import queue
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scriptmail.intake.tls import server_context
from tests.support.certificates import serial_of, write_certificate
from tests.support.gateway import RunningGateway, node_settings

pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")

CBC_SUITES = ["ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256"]
RSA_KEY_EXCHANGE = ["AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256"]
AEAD_SUITES = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"]


def client_context(ciphers: str | None = None, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client that offers exactly what it is told, old protocols included (security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


def starttls(port: int, context: ssl.SSLContext) -> tuple[str, str, int]:
    """STARTTLS on intake; the protocol, the suite and the serial of the certificate served."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.starttls(context=context)
        sock = client.sock
        assert isinstance(sock, ssl.SSLSocket)
        version, cipher = sock.version(), sock.cipher()
        der = sock.getpeercert(binary_form=True)
        assert version and cipher and der
        return version, cipher[0], serial_of(der)


def handshake_with_anything_goes_server(cert: Path, key: Path, context: ssl.SSLContext) -> str:
    """The same client against a server that allows everything: proves the client can offer it."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1
    server.set_ciphers("ALL:@SECLEVEL=0")
    server.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with server.wrap_socket(connection, server_side=True) as tls:
            tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with socket.create_connection(("127.0.0.1", port)) as raw, context.wrap_socket(raw) as tls:
        cipher = tls.cipher()
        tls.sendall(b"x")
    thread.join(5)
    listener.close()
    assert cipher
    return cipher[0]


class OutputReader:
    """A process's output line by line, waited for with a deadline instead of blocking for ever."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} never came; the output was:\n{self.text()}")

    def text(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    write_certificate(cert, key, kind="rsa")
    return cert, key


@pytest.fixture
def intake(tmp_path: Path, certificate: tuple[Path, Path]) -> Iterator[RunningGateway]:
    """A gateway's SMTP intake on SQLite with an RSA certificate (RSA key exchange would be possible)."""
    settings = node_settings(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    cert, key = certificate
    settings.intake = settings.intake.model_copy(update={"tls_cert": cert, "tls_key": key})
    running = RunningGateway(settings, ("smtp",)).start()
    yield running
    running.stop()


@pytest.mark.parametrize("suite", CBC_SUITES + RSA_KEY_EXCHANGE)
def test_cbc_suites_and_rsa_key_exchange_are_refused(intake: RunningGateway, certificate, suite: str) -> None:
    context = client_context(suite, ssl.TLSVersion.TLSv1_2)
    if "ECDSA" not in suite:  # the client can negotiate it where a server allows it
        assert handshake_with_anything_goes_server(*certificate, context) == suite
    with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
        starttls(intake.smtp_port, context)


def test_tls_1_1_and_1_0_are_refused(intake: RunningGateway, certificate) -> None:
    for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        context = client_context(None, version)
        assert handshake_with_anything_goes_server(*certificate, context)
        with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
            starttls(intake.smtp_port, context)


@pytest.mark.parametrize("suite", AEAD_SUITES)
def test_ecdhe_aead_suites_are_accepted_over_tls_1_2(intake: RunningGateway, suite: str) -> None:
    version, cipher, _ = starttls(intake.smtp_port, client_context(suite, ssl.TLSVersion.TLSv1_2))
    assert (version, cipher) == ("TLSv1.2", suite)


def test_a_default_client_gets_tls_1_3(intake: RunningGateway) -> None:
    version, cipher, _ = starttls(intake.smtp_port, client_context())
    assert version == "TLSv1.3"
    assert cipher in {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"}


def test_every_tls_1_2_suite_offered_is_ecdhe_with_aead(certificate) -> None:
    offered = [suite for suite in server_context(*certificate).get_ciphers() if suite["protocol"] == "TLSv1.2"]
    assert offered
    for suite in offered:
        assert suite["kea"] == "kx-ecdhe", suite["name"]
        assert suite["aead"], suite["name"]


def test_openssl_s_client_is_refused_each_cbc_and_rsa_suite_and_gets_each_aead_one(intake: RunningGateway) -> None:
    """The scanner's view, one suite per handshake, with openssl's own client."""

    def s_client(*args: str) -> subprocess.CompletedProcess[str]:
        command = ["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{intake.smtp_port}", *args]
        return subprocess.run(command, input="", capture_output=True, text=True, timeout=20)

    for suite in CBC_SUITES + RSA_KEY_EXCHANGE + ["ECDHE-RSA-AES256-SHA", "DHE-RSA-AES128-GCM-SHA256"]:
        offered = subprocess.run(["openssl", "ciphers", "-tls1_2", f"{suite}:@SECLEVEL=0"], capture_output=True, text=True)
        assert suite in offered.stdout.strip().split(":"), f"this openssl cannot offer {suite}: the refusal would prove nothing"
        refused = s_client("-tls1_2", "-cipher", f"{suite}:@SECLEVEL=0")
        assert refused.returncode != 0, suite
        assert f"Cipher is {suite}" not in refused.stdout
    for old in ("-tls1", "-tls1_1"):
        assert s_client(old, "-cipher", "ALL:@SECLEVEL=0").returncode != 0, old
    for suite in AEAD_SUITES:
        accepted = s_client("-tls1_2", "-cipher", suite)
        assert accepted.returncode == 0, accepted.stderr
        assert f"Cipher is {suite}" in accepted.stdout, suite
    for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"):
        accepted = s_client("-tls1_3", "-ciphersuites", suite)
        assert accepted.returncode == 0, accepted.stderr
        assert f"Cipher is {suite}" in accepted.stdout, suite


def test_a_certificate_renewed_while_running_is_served_to_the_next_client(intake: RunningGateway, certificate) -> None:
    cert, key = certificate
    _, _, first = starttls(intake.smtp_port, client_context())
    renewed = write_certificate(cert, key, kind="ec")
    time.sleep(1.1)  # the files are looked at, at most once a second
    _, _, served = starttls(intake.smtp_port, client_context())
    assert served == renewed != first


def test_a_half_written_renewal_keeps_the_old_certificate_until_it_is_complete(
    intake: RunningGateway, certificate, tmp_path
) -> None:
    cert, key = certificate
    _, _, first = starttls(intake.smtp_port, client_context())
    other_cert, other_key = tmp_path / "other.pem", tmp_path / "other.key"
    renewed = write_certificate(other_cert, other_key, kind="rsa")
    os.replace(other_cert, cert)  # the certificate is new, its key not yet: they do not match
    time.sleep(1.1)
    assert starttls(intake.smtp_port, client_context())[2] == first
    os.replace(other_key, key)
    time.sleep(1.1)
    assert starttls(intake.smtp_port, client_context())[2] == renewed


def test_sighup_makes_serve_read_the_certificate_again(tmp_path: Path, certificate) -> None:
    """No connection comes between the renewal and the signal, so only SIGHUP can load it."""
    cert, key = certificate
    config = tmp_path / "scriptmail.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "store.db"}"\nhostname = "gateway.test"\nnode = "hup"\n'
        f'[intake]\nlisten = "127.0.0.1:0"\nsocket = "{tmp_path / "intake.sock"}"\n'
        f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
    )
    command = [sys.executable, "-m", "scriptmail", "--config", str(config), "serve", "--parts", "smtp", "--no-demo"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = OutputReader(process)
    try:
        line = output.until("SMTP submission on")
        port = int(line.split("SMTP submission on ")[1].split(",")[0].rsplit(":", 1)[1])
        _, _, first = starttls(port, client_context())
        renewed = write_certificate(cert, key, kind="ec")
        process.send_signal(signal.SIGHUP)
        output.until(f"TLS certificate {cert} loaded")
        assert process.poll() is None, output.text()
        _, _, served = starttls(port, client_context())
        assert served == renewed != first
    finally:
        process.terminate()
        process.wait(20)
    assert process.returncode == 0


def test_the_bounce_listener_offers_starttls_with_the_same_suites(tmp_path: Path, certificate) -> None:
    settings = node_settings(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    cert, key = certificate
    settings.intake = settings.intake.model_copy(update={"tls_cert": cert, "tls_key": key})
    settings.bounces = settings.bounces.model_copy(update={"domain": "bounces.gateway.test", "listen": "127.0.0.1:0"})
    running = RunningGateway(settings, ("bounces",)).start()
    try:
        port = running.gateway.bounce_port
        assert port
        assert starttls(port, client_context("ECDHE-RSA-AES128-GCM-SHA256", ssl.TLSVersion.TLSv1_2))[1] == (
            "ECDHE-RSA-AES128-GCM-SHA256"
        )
        with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
            starttls(port, client_context("ECDHE-RSA-AES128-SHA256", ssl.TLSVersion.TLSv1_2))
    finally:
        running.stop()
