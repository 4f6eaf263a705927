"""A real rspamd for tests: its own process, ports, config, run and database directories.

It reuses Debian's rule set from /etc/rspamd but replaces the top-level config, so the system
service, its sockets and its local.d are never touched. Modules that need Redis, DNS or an HTTP map
are switched off and its resolver points at a closed loopback port: a scan never leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

CONFDIR = Path("/etc/rspamd")

# Modules that would ask DNS, fetch a map over HTTP, or want Redis; all are off in the tests.
NETWORK_MODULES = (
    "arc", "asn", "bimi", "dcc", "dkim", "dkim_signing", "dmarc", "emails", "fuzzy_check", "greylist",
    "history_redis", "hfilter", "mid", "mime_types", "multimap", "mx_check", "neural", "phishing",
    "ratelimit", "rbl", "replies", "reputation", "rspamd_update", "spf", "url_redirector",
    "whitelist", "clickhouse", "elastic", "metadata_exporter", "metric_exporter", "antivirus",
    "external_services", "p0f", "spamtrap", "aws_s3",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rspamd_binary() -> str:
    """The path of rspamd, or skip the calling test with the reason."""
    binary = shutil.which("rspamd")
    if binary is None or not CONFDIR.is_dir():
        pytest.skip("rspamd is not installed (apt-get install rspamd): the real-rspamd tests need it")
    return binary


class Rspamd:
    """One rspamd normal worker on 127.0.0.1:port, started in the foreground under `directory`.

    `start()` returns once `/ping` answers; `stop()` ends it by its own pid. Its log is `log`.
    """

    def __init__(self, directory: Path, binary: str = "rspamd", hyperscan_cache: Path | None = None) -> None:
        self.directory = directory
        self.binary = binary
        # Compiling the hyperscan matcher of the public-suffix list takes ~10 s; a cache kept between
        # runs (its files are named by a hash of their patterns) brings the start under a second.
        self.hyperscan_cache = hyperscan_cache or directory / "db"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = directory / "rspamd.log"
        self.started_in = 0.0  # seconds from spawn until /ping answered

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        local = self.directory / "local"
        for name in ("run", "db", "log", "tmp", "local/local.d", "local/override.d"):
            (self.directory / name).mkdir(parents=True, exist_ok=True)
        for module in NETWORK_MODULES:
            (local / "override.d" / f"{module}.conf").write_text("enabled = false;\n")
        # Without Redis the bayes classifier has no backend: it stays idle (rspamd says so once at start).
        closed_dns = free_port()  # nothing listens there: a lookup fails at once, on this machine
        (local / "override.d" / "options.inc").write_text(
            f'tempdir = "{self.directory / "tmp"}";\n'
            f'hs_cache_dir = "{self.hyperscan_cache}";\n'
            # Regexps then run on PCRE, and no hs_helper compiles in the background during the tests.
            "disable_hyperscan = true;\n"
            f'dns {{ nameserver = ["127.0.0.1:{closed_dns}"]; timeout = 0.2s; retransmits = 1; }}\n'
        )
        config = self.directory / "rspamd.conf"
        config.write_text(
            '.include "$CONFDIR/common.conf"\n'
            "options {\n"
            '    pidfile = "$RUNDIR/rspamd.pid";\n'
            '    .include "$CONFDIR/options.inc"\n'
            '    .include(priority=10) "$LOCAL_CONFDIR/override.d/options.inc"\n'
            "}\n"
            'logging { type = "console"; level = "notice"; }\n'
            f'worker "normal" {{ bind_socket = "127.0.0.1:{self.port}"; count = 1; mime = true; }}\n'
        )
        return config

    def start(self, timeout: float = 60.0) -> Rspamd:
        config = self.write_config()
        d = self.directory
        command = [
            self.binary, "--no-fork", "--config", str(config),
            f"--var=CONFDIR={CONFDIR}", f"--var=LOCAL_CONFDIR={d / 'local'}",
            f"--var=RUNDIR={d / 'run'}", f"--var=DBDIR={d / 'db'}", f"--var=LOGDIR={d / 'log'}",
        ]
        if os.geteuid() == 0:
            # As root rspamd wants to switch to _rspamd, who cannot read pytest's private tmp directory.
            command.append("--insecure")
        began = time.monotonic()
        # A session of its own, so the worker it forks can be ended with it by process group.
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=d, start_new_session=True,
            )
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rspamd exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
            if self.ping():
                self.started_in = time.monotonic() - began
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"rspamd did not answer /ping in {timeout:.0f} s: {self.log.read_text()[-3000:]}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                conn.settimeout(2)
                answer = b""
                while chunk := conn.recv(4096):
                    answer += chunk
        except OSError:
            return False
        return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0] and answer.rstrip().endswith(b"pong")

    def stop(self) -> None:
        """End the main process (it stops its workers), then anything left in its process group."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        try:
            # Its group id is its own pid (start_new_session): only our rspamd and its workers.
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
