#!/usr/bin/env python3
"""Throughput benchmark: scriptmail against Postfix, on loopback, in one run.

Why this shape: DESIGN.md §9 states the goal relative to Postfix measured *in the same run on the
same machine* (accept >= 1.5x, deliver >= 1.2x), so absolute numbers from another day or box are
meaningless.  Both servers get the same load from Postfix's own ``smtp-source`` and relay to the
same ``smtp-sink``; the tools alone are measured first to prove they are not the bottleneck.

Phases (each waits until the sink has everything before the next starts, so they never overlap):

1. tools:      smtp-source -> smtp-sink directly
2. postfix:    smtp-source -> private Postfix instance -> smtp-sink, then a latency sample
3. scriptmail: smtp-source -> ``scriptmail serve`` -> smtp-sink, then a latency sample

Prints a plain table for people and, as the very last line, one JSON object for machines.
This is not a test: it never asserts the goals, it reports figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from footprint import Footprint
from stage_profile import Profiler, per_message_us, stage_shares
from web_load import WRK_CONNECTIONS, block_latency, parse_wrk, run_wrk, session_cookie, start_wrk, wrk_path

HOST = "127.0.0.1"
SENDER = "sender@bench.test"
RECIPIENT = "rcpt@sink.test"
HOSTING = "bench"
TOOLS = ("smtp-source", "smtp-sink", "postfix", "postconf")
INSTALL_HINT = "DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
# Extra places to look: sbin is often missing from a non-root PATH.
TOOL_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL_TEMPLATE = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A phase could not be measured; the message says why, the run goes on without it."""


def log(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the table and the JSON line."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Tools


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in TOOL_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def ensure_tools(install: bool) -> dict[str, str]:
    """Find Postfix's tools; install Debian's ``postfix`` package only when asked to.

    Installing is opt-in because it changes the machine (and starts a system Postfix on port 25
    where init scripts are allowed to run, which does not disturb us: we only use free ports).
    """
    paths = {name: find_tool(name) for name in TOOLS}
    missing = [name for name, path in paths.items() if path is None]
    if missing and install:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log(f"installing postfix ({', '.join(missing)} missing)")
        result = subprocess.run(["apt-get", "install", "-y", "postfix"], env=env)
        if result.returncode != 0:
            subprocess.run(["apt-get", "update"], env=env)
            subprocess.run(["apt-get", "install", "-y", "postfix"], env=env)
        paths = {name: find_tool(name) for name in TOOLS}
        missing = [name for name, path in paths.items() if path is None]
    if missing:
        sys.exit(
            f"missing: {', '.join(missing)} (from Debian's postfix package).\n"
            f"Install as root:  {INSTALL_HINT}\n"
            f"or run this benchmark with --install (as root)."
        )
    return {name: str(path) for name, path in paths.items()}


def free_port() -> int:
    """A port the kernel says is free now; the tiny race until it is bound is acceptable here."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_banner(port: int, timeout: float, alive: Any = None) -> None:
    """Wait until something on the port sends an SMTP 220 greeting.

    A bare TCP connect is not enough: a listener may accept before it can serve.
    ``alive`` is an optional callable that raises if the server process died meanwhile.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            with socket.create_connection((HOST, port), timeout=2) as sock:
                banner = sock.recv(512)
                if banner.startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
                last_error = BenchError(f"unexpected greeting {banner[:80]!r}")
        except OSError as exc:
            last_error = exc
        time.sleep(0.1)
    raise BenchError(f"nothing answers SMTP on {HOST}:{port} after {timeout:.0f}s ({last_error})")


# --------------------------------------------------------------------------------------------
# Sink


class Sink:
    """``smtp-sink -c`` on loopback, with its running message counter read from stdout.

    smtp-sink rewrites one status line ``sess=N quit=N mesg=N`` (ended by CR) each time a
    message's final dot arrives, so counting needs no dump files and no disk.  A reader thread
    keeps the latest count and wakes waiters; measured alone with smtp-source it handles
    several thousand messages per second, far above what any relay under test reaches.
    """

    _MESG = re.compile(rb"mesg=(\d+)")

    def __init__(self, exe: str, port: int) -> None:
        self.port = port
        cmd = [exe, "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # required by smtp-sink when started as root
        cmd += [f"{HOST}:{port}", "1000"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._count = 0
        self._cond = threading.Condition()
        self._tail = b""
        self._reader = threading.Thread(target=self._read, name="sink-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data = self._tail + chunk
            # Only complete status lines (CR or LF terminated) are trusted.
            cut = max(data.rfind(b"\r"), data.rfind(b"\n"))
            if cut < 0:
                self._tail = data[-4096:]
                continue
            complete, self._tail = data[:cut], data[cut + 1 :]
            matches = self._MESG.findall(complete[-512:])
            if matches:
                with self._cond:
                    self._count = int(matches[-1])
                    self._cond.notify_all()
            elif complete.strip():
                text = complete.decode(errors="replace").strip()
                if "mesg=" not in text:
                    log(f"smtp-sink: {text[-300:]}")

    @property
    def count(self) -> int:
        with self._cond:
            return self._count

    def wait_for(self, target: int, timeout: float) -> float | None:
        """Block until the sink has ``target`` messages; return the monotonic time it did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._count < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    return None
                self._cond.wait(min(remaining, 0.5))
            return time.monotonic()

    def stop(self) -> None:
        stop_process(self.proc, "smtp-sink")


def stop_process(proc: subprocess.Popen, name: str, grace: float = 10.0) -> bool:
    """SIGTERM by PID, SIGKILL after ``grace``; returns False when it had to kill."""
    if proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
        return True
    except subprocess.TimeoutExpired:
        log(f"{name} (pid {proc.pid}) ignored SIGTERM for {grace:.0f}s: killing it")
        proc.kill()
        proc.wait()
        return False


# --------------------------------------------------------------------------------------------
# Memory


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _proc_kb(path: str, key: str) -> int | None:
    """The kB figure on the line starting with `key` in a /proc file (None if gone)."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _vm_hwm_kb(pid: int) -> int | None:
    return _proc_kb(f"/proc/{pid}/status", "VmHWM:")


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system) of a process tree, including children it already reaped.

    cutime/cstime carry the time of reaped children, so the difference of two readings is
    right even for Postfix's short-lived daemons, provided each is reaped by a parent in the
    tree (master reaps all of them).
    """
    tree = _proc_children()
    pending, seen, ticks = [root_pid], set(), 0
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        pending.extend(tree.get(pid, ()))
    return ticks / os.sysconf("SC_CLK_TCK")


def _pss_kb(pid: int) -> int | None:
    return _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


class RssSampler(threading.Thread):
    """Memory of a process and all its descendants, sampled while the benchmark runs.

    Two figures, because they answer different questions for one process and for many:
    ``rss_mb`` sums each process's VmHWM (the kernel's own peak, so sampling only has to catch
    a process before it exits); it counts shared pages (libc, ...) once per process, which
    inflates a pre-forked server such as Postfix with its dozens of smtpd processes.
    ``pss_mb`` is the largest sum of Pss seen in one sample: shared pages split between
    sharers, so it is the fair cross-architecture comparison, at the sampling resolution.
    """

    def __init__(self, root_pid: int, interval: float = 0.25) -> None:
        super().__init__(name=f"rss-{root_pid}", daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.pss_peak_kb = 0
        self.max_processes = 0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        tree = _proc_children()
        pending, seen = [self.root_pid], set()
        pss_total = 0
        while pending:
            pid = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            hwm = _vm_hwm_kb(pid)
            if hwm is not None:
                self.peaks[pid] = max(self.peaks.get(pid, 0), hwm)
            pss_total += _pss_kb(pid) or 0
            pending.extend(tree.get(pid, ()))
        self.pss_peak_kb = max(self.pss_peak_kb, pss_total)
        self.max_processes = max(self.max_processes, len(seen))

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def finish(self) -> tuple[float | None, float | None]:
        """Take a last sample (call while the processes still live); return (rss_mb, pss_mb)."""
        self._stop_event.set()
        self.join()
        self.sample()
        if not self.peaks:
            return None, None
        return round(sum(self.peaks.values()) / 1024, 1), round(self.pss_peak_kb / 1024, 1)


# --------------------------------------------------------------------------------------------
# Load


@dataclass
class Figures:
    """What one server achieved; None means not measured (see ``errors``)."""

    accept_per_s: float | None = None
    delivered_per_s: float | None = None
    accept_p50_ms: float | None = None
    accept_p99_ms: float | None = None
    peak_rss_mb: float | None = None
    peak_pss_mb: float | None = None
    processes: int | None = None
    cpu_pct: float | None = None
    cpu_seconds: float | None = None  # of the throughput phase
    stage_us: dict[str, float] = field(default_factory=dict)  # --profile: CPU µs per message by stage
    errors: list[str] = field(default_factory=list)


def run_source(
    exe: str,
    port: int,
    args: argparse.Namespace,
    sink: Sink,
    fig: Figures,
    server_pid: int | None = None,
    deliver: bool = True,
) -> None:
    """The throughput half: smtp-source sends N messages over C parallel sessions.

    accepted/s = N / time until smtp-source exits (every message got its 250);
    delivered/s = N / time from the same start until the sink has counted all N.
    With ``server_pid``, the server's CPU use over that same span tells whether it was
    CPU-bound (100 % = one core busy) or waiting (fsync, locks, the network).
    ``deliver=False`` (a server run without its delivery part) stops at accepted/s.
    """
    base = sink.count
    cpu_start = tree_cpu_seconds(server_pid) if server_pid else None
    cmd = [
        exe, "-s", str(args.concurrency), "-m", str(args.messages), "-l", str(args.size),
        "-f", SENDER, "-t", RECIPIENT, f"{HOST}:{port}",
    ]  # fmt: skip
    start = time.monotonic()
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        fig.errors.append(f"smtp-source did not finish within {args.timeout:.0f}s")
        return
    accepted_at = time.monotonic()
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        fig.errors.append(f"smtp-source exited {result.returncode}: {' | '.join(detail)}")
        return
    fig.accept_per_s = round(args.messages / (accepted_at - start), 1)
    if not deliver:
        if server_pid and cpu_start is not None:
            used = tree_cpu_seconds(server_pid) - cpu_start
            fig.cpu_pct = round(100 * used / (accepted_at - start), 0)
            fig.cpu_seconds = used
        return
    remaining = args.timeout - (accepted_at - start)
    delivered_at = sink.wait_for(base + args.messages, max(remaining, 1.0))
    if delivered_at is None:
        got = sink.count - base
        fig.errors.append(
            f"sink received {got}/{args.messages} within {args.timeout:.0f}s of the start"
        )
        return
    fig.delivered_per_s = round(args.messages / (delivered_at - start), 1)
    if server_pid and cpu_start is not None:
        used = tree_cpu_seconds(server_pid) - cpu_start
        fig.cpu_pct = round(100 * used / (delivered_at - start), 0)
        fig.cpu_seconds = used


def _message(index: int, size: int) -> bytes:
    """A plain RFC 5322 message with ``size`` bytes of body in 78-byte lines, dot-safe."""
    head = (
        f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: latency sample {index}\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"Message-ID: <lat{index}.{secrets.token_hex(6)}@bench.test>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    body = line * (size // len(line)) + b"y" * (size % len(line)) + b"\r\n"
    return head + body


async def _reply(reader: asyncio.StreamReader, expect: int) -> None:
    while True:
        line = await reader.readline()
        if not line:
            raise BenchError(f"connection closed while waiting for {expect}")
        if line[3:4] != b"-":
            break
    if not line[:3].isdigit() or int(line[:3]) != expect:
        raise BenchError(f"expected {expect}, got {line.decode(errors='replace').strip()}")


async def _send_timed(port: int, index: int, size: int) -> float:
    """One SMTP session, one message; returns seconds from the end of DATA to the 250.

    Hand-written on asyncio streams rather than aiosmtplib so the clock starts exactly when
    the final dot has been handed to the kernel, and nothing but the server's reply is timed.
    """
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        await _reply(reader, 220)
        writer.write(b"EHLO latency.bench.test\r\n")
        await _reply(reader, 250)
        writer.write(f"MAIL FROM:<{SENDER}>\r\n".encode())
        await _reply(reader, 250)
        writer.write(f"RCPT TO:<{RECIPIENT}>\r\n".encode())
        await _reply(reader, 250)
        writer.write(b"DATA\r\n")
        await _reply(reader, 354)
        writer.write(_message(index, size) + b".\r\n")
        await writer.drain()
        started = time.perf_counter()
        await _reply(reader, 250)
        elapsed = time.perf_counter() - started
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return elapsed
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _latency_sample(port: int, count: int, concurrency: int, size: int) -> list[float]:
    queue = iter(range(count))
    samples: list[float] = []

    async def worker() -> None:
        for index in queue:
            samples.append(await _send_timed(port, index, size))

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return samples


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least pct% of values at or below."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def run_latency(
    port: int, args: argparse.Namespace, sink: Sink, fig: Figures, deliver: bool = True
) -> None:
    """Latency sample in its own phase, after the throughput run has drained."""
    if args.latency_sample <= 0:
        return
    base = sink.count
    try:
        samples = asyncio.run(
            asyncio.wait_for(
                _latency_sample(port, args.latency_sample, args.concurrency, args.size),
                args.timeout,
            )
        )
    except (BenchError, OSError, asyncio.TimeoutError) as exc:
        fig.errors.append(f"latency sample failed: {exc!r}")
        return
    fig.accept_p50_ms = round(percentile(samples, 50) * 1000, 2)
    fig.accept_p99_ms = round(percentile(samples, 99) * 1000, 2)
    if deliver and sink.wait_for(base + len(samples), args.timeout) is None:
        fig.errors.append("latency-sample messages were not all delivered to the sink")


# --------------------------------------------------------------------------------------------
# Postfix


MASTER_CF = """\
# Private benchmark instance: no chroot (nothing is copied into the queue directory),
# no local delivery; process limits are Postfix's defaults.
{host}:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixRelay:
    """A throw-away Postfix instance: own config, queue and data directories in ``workdir``.

    ``postfix -c DIR`` works as root without listing DIR in the system main.cf
    (alternate_config_directories only matters to set-gid tools such as postdrop), so the
    system configuration is never touched.  Logs go to a file because containers often have
    no syslog.  Everything else is Postfix's default, including its concurrency limits.
    """

    def __init__(self, tools: dict[str, str], workdir: Path, port: int, sink_port: int) -> None:
        self.postfix = tools["postfix"]
        self.port = port
        self.conf = workdir / "conf"
        self.queue = workdir / "queue"
        self.data = workdir / "data"
        self.maillog = workdir / "maillog"
        for directory in (self.conf, self.queue, self.data):
            directory.mkdir(parents=True)
        workdir.chmod(0o755)
        shutil.chown(self.data, user="postfix")
        main_cf = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "myhostname": "relay.bench.test",
            "mydomain": "bench.test",
            "inet_interfaces": HOST,
            "inet_protocols": "ipv4",
            "mydestination": "",
            "local_recipient_maps": "",
            "local_transport": "error:local delivery is disabled",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": f"[{HOST}]:{sink_port}",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": workdir,
            "biff": "no",
        }
        text = "".join(f"{key} = {value}\n" for key, value in main_cf.items())
        (self.conf / "main.cf").write_text(text)
        (self.conf / "master.cf").write_text(MASTER_CF.format(host=HOST, port=port))
        self.started = False

    def _postfix(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.postfix, "-c", str(self.conf), command], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    def master_pid(self) -> int | None:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.maillog.read_text().splitlines()[-lines:])
        except OSError:
            return "(no maillog)"

    def start(self, timeout: float) -> int:
        result = self._postfix("start")
        self.started = True
        if result.returncode != 0:
            raise BenchError(f"postfix start failed: {result.stderr.strip()} {self.log_tail()}")
        wait_for_banner(self.port, timeout)
        pid = self.master_pid()
        if pid is None:
            raise BenchError(f"postfix started but wrote no master.pid: {self.log_tail()}")
        return pid

    def stop(self) -> None:
        if not self.started:
            return
        pid = self.master_pid()
        self._postfix("stop")
        self.started = False
        # "postfix stop" returns before master has exited; wait so phases never overlap.
        deadline = time.monotonic() + 15
        while pid is not None and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        if pid is not None:
            log(f"postfix master {pid} still running after stop: SIGKILL")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def bench_postfix(tools: dict[str, str], workdir: Path, sink: Sink, args: argparse.Namespace) -> Figures:
    fig = Figures()
    if os.geteuid() != 0:
        fig.errors.append("postfix phase needs root (postfix start); skipped")
        return fig
    relay = PostfixRelay(tools, workdir, free_port(), sink.port)
    try:
        master = relay.start(args.timeout)
        measure("postfix", master, relay.port, tools, args, sink, fig)
    except BenchError as exc:
        fig.errors.append(str(exc))
    finally:
        relay.stop()
    return fig


def measure(
    name: str,
    pid: int,
    port: int,
    tools: dict[str, str],
    args: argparse.Namespace,
    sink: Sink,
    fig: Figures,
    deliver: bool = True,
    alive: Callable[[], None] = lambda: None,
) -> None:
    """The throughput phase, then the latency sample, with the server's memory sampled throughout."""
    sampler = RssSampler(pid)
    sampler.start()
    try:
        log(f"{name}: {args.messages} messages, concurrency {args.concurrency}")
        profiling = args.profile_dir is not None and name.startswith("scriptmail")
        profiler = Profiler(pid, args.profile_dir / "scriptmail.raw") if profiling else None
        try:
            run_source(tools["smtp-source"], port, args, sink, fig, pid, deliver)
        finally:
            if profiler is not None:
                profiler.stop()
        if profiler is not None and fig.cpu_seconds and profiler.output.exists():
            fig.stage_us = per_message_us(stage_shares(profiler.output.read_text()), fig.cpu_seconds, args.messages)
        alive()
        log(f"{name}: latency sample of {args.latency_sample}")
        run_latency(port, args, sink, fig, deliver)
        alive()
    finally:
        fig.peak_rss_mb, fig.peak_pss_mb = sampler.finish()
        fig.processes = sampler.max_processes


# --------------------------------------------------------------------------------------------
# scriptmail


class PostgresDatabase:
    """A fresh, uniquely named database per run, dropped at the end whatever happens."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"scriptmail_bench_{secrets.token_hex(4)}"
        self.created = False

    def _execute(self, sql: str) -> None:
        import psycopg  # scriptmail's own dependency; imported lazily for the sqlite runs

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> str:
        try:
            self._execute(f'CREATE DATABASE "{self.name}"')
        except Exception as exc:  # noqa: BLE001 - any driver error means: no PostgreSQL phase
            raise BenchError(f"cannot create database {self.name} via {self.admin_url}: {exc}") from exc
        self.created = True
        return PG_URL_TEMPLATE.format(db=self.name)

    def drop(self) -> None:
        if self.created:
            self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False


def _toml_str(value: Any) -> str:
    return json.dumps(str(value))  # a JSON string literal is a valid TOML basic string


def write_config(workdir: Path, database_url: str, port: int, sink_port: int, web_port: int = 0, sign: str = "none") -> Path:
    maildrop = workdir / "maildrop"
    maildrop.mkdir()
    text = (
        f"database_url = {_toml_str(database_url)}\n"
        "\n[intake]\n"
        f"listen = {_toml_str(f'{HOST}:{port}')}\n"
        f"socket = {_toml_str(workdir / 'intake.sock')}\n"
        f"maildrop = {_toml_str(maildrop)}\n"
        f'trusted_networks = {{"127.0.0.0/8" = {_toml_str(HOSTING)}}}\n'
        "\n[delivery]\n"
        f'routes = {{"sink.test" = {_toml_str(f"{HOST}:{sink_port}")}}}\n'
        "\n[web]\n"
        f"listen = {_toml_str(f'{HOST}:{web_port}')}\n"
        # The highest limit there is: every API call still pays for its count, none is refused.
        "api_rate_per_minute = 1000000\napi_burst = 100000\n"
        "\n[domains]\n"
        f"key_file = {_toml_str(workdir / 'dkim-master.key')}\n"
        f"ed25519 = {'true' if sign == 'rsa+ed25519' else 'false'}\n"
    )
    path = workdir / "scriptmail.toml"
    path.write_text(text)
    return path


def _mark_keys_found(database_url: str) -> None:
    """The benchmark has no DNS: record the bench domain's keys as found, as a DNS check would."""
    from scriptmail.domains.answers import Finding, Verdict
    from scriptmail.store import domains as domain_store
    from scriptmail.store.engine import for_writing, open_engine

    engine = open_engine(database_url, pool_size=1)
    try:
        with for_writing(engine).begin() as connection:
            for key in domain_store.keys_to_check(connection):
                domain_store.record_check(connection, key["id"], Verdict(Finding.MATCHES, "benchmark"), time.time(), 0)
    finally:
        engine.dispose()


def scriptmail_exe() -> str:
    """The venv's console script beside this interpreter, else whatever is on PATH."""
    local = Path(sys.executable).parent / "scriptmail"
    if local.exists():
        return str(local)
    found = shutil.which("scriptmail")
    if not found:
        raise BenchError("scriptmail is not installed (pip install -e . in the venv)")
    return found


def scan_log(path: Path, limit: int = 8) -> tuple[int, list[str]]:
    """Count warning/error lines in the server log and keep a few distinct ones to show."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, []
    pattern = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback|Exception)\b", re.IGNORECASE)
    hits = [line for line in lines if pattern.search(line)]
    distinct: list[str] = []
    for line in hits:
        key = re.sub(r"\d+", "N", line)[:160]
        if key not in {re.sub(r"\d+", "N", d)[:160] for d in distinct}:
            distinct.append(line[:300])
        if len(distinct) >= limit:
            break
    return len(hits), distinct


def bench_scriptmail(
    tools: dict[str, str], workdir: Path, sink: Sink, args: argparse.Namespace, backlog: int = 0
) -> tuple[Figures, dict[str, Any]]:
    """One scriptmail phase on a fresh store; with `backlog`, that many recipients wait or are held
    in it before the server starts (benchmarks/backlog.py)."""
    fig = Figures()
    extra: dict[str, Any] = {"log_problems": 0, "log_samples": []}
    database = PostgresDatabase(args.pg_admin_url) if args.store == "postgresql" else None
    proc: subprocess.Popen | None = None
    parts = ["serve", "--processes", str(args.processes)] + (["--parts", args.parts] if args.parts else [])
    parts += ["--split"] if args.split else []
    deliver = not args.parts or "delivery" in args.parts.split(",")
    log_path = workdir / "scriptmail.log"
    try:
        exe = scriptmail_exe()
        url = database.create() if database else f"sqlite:///{workdir / 'bench.db'}"
        port, web_port = free_port(), free_port()
        config = write_config(workdir, url, port, sink.port, web_port, args.sign)
        outputs = []
        commands = [["db", "upgrade"], ["hosting", "add", HOSTING, "--owner", "ops@bench.test", "--plan", "unlimited"]]
        if args.sign != "none":
            commands.append(["domain", "add", HOSTING, SENDER.rpartition("@")[2]])  # smtp-source writes From: <SENDER>
        commands += [["user", "add", "ops@bench.test", "--hosting", HOSTING], ["token", "create", "ops@bench.test"]]
        for command in commands:
            done = subprocess.run(
                [exe, "--config", str(config), *command],
                capture_output=True, text=True, timeout=args.timeout, cwd=workdir,
            )  # fmt: skip
            if done.returncode != 0:
                detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise BenchError(
                    f"'scriptmail {' '.join(command)}' exited {done.returncode}: {' | '.join(detail)}"
                )
            outputs.append(done.stdout)
        token = outputs[-1].strip().rpartition(" ")[2]
        password = outputs[-2].strip().rpartition(" ")[2]  # user add: "...; password (shown once): X"
        if args.sign != "none":
            _mark_keys_found(url)
        if backlog:
            from backlog import fill

            extra["backlog_fill_s"] = round(fill(url, backlog, log), 1)
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [exe, "--config", str(config), *parts],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir,
                start_new_session=True,  # our signals reach it only through stop_process()
            )  # fmt: skip

        def alive() -> None:
            if proc.poll() is not None:
                tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-5:])
                raise BenchError(f"scriptmail serve exited {proc.returncode}: {tail}")

        wait_for_banner(port, min(args.timeout, 60), alive)
        footprint = Footprint(url, None if database else workdir / "bench.db")
        footprint.start()
        label = args.store if args.sign == "none" else f"{args.store}, DKIM {args.sign}"
        label += f", {backlog:,} recipients queued" if backlog else ""
        measure(f"scriptmail ({label})", proc.pid, port, tools, args, sink, fig, deliver, alive)
        extra["footprint"] = footprint.finish(args.messages + args.latency_sample)
        if args.web:
            extra["web"] = bench_web(port, web_port, token, password, tools, args, sink, proc.pid, deliver, alive)
    except BenchError as exc:
        fig.errors.append(str(exc))
    finally:
        if proc is not None:
            started = time.monotonic()
            if not stop_process(proc, "scriptmail serve", grace=30):
                fig.errors.append("scriptmail serve did not stop within 30s of SIGTERM")
            extra["stop_s"] = round(time.monotonic() - started, 2)
            extra["exit_code"] = proc.returncode
        if database is not None:
            try:
                database.drop()
            except Exception as exc:  # noqa: BLE001 - report, never mask the figures
                fig.errors.append(f"could not drop {database.name}: {exc}")
    count, samples = scan_log(log_path)
    extra["log_problems"], extra["log_samples"] = count, samples
    return fig, extra


def bench_web(
    port: int, web_port: int, token: str, password: str, tools: dict[str, str], args: argparse.Namespace, sink: Sink, pid: int,
    deliver: bool, alive: Callable[[], None],
) -> dict[str, Any]:
    """The API, the Scripts e-mail page and /metrics alone under wrk, SMTP intake while wrk polls
    the counters, BLOCK's answer time."""
    if wrk_path() is None:
        raise BenchError("--web needs wrk (apt-get install wrk)")
    base = f"http://{HOST}:{web_port}"
    counters = f"{base}/1.0/hosting/web/{HOSTING}/email"
    result: dict[str, Any] = {}
    cookie = session_cookie(base, "ops@bench.test", password)
    targets = (("counters", counters, token), ("page", f"{base}/hostings/{HOSTING}", cookie), ("metrics", f"{base}/metrics", token))
    for name, url, credential in targets:
        log(f"web: wrk -c {WRK_CONNECTIONS} on {name} for {args.web_seconds:g} s")
        result[name] = vars(run_wrk(url, credential, args.web_seconds))
        alive()
    log(f"web: {args.messages} messages over SMTP while wrk polls the counters")
    polling = start_wrk(counters, token, 600)
    loaded = Figures()
    try:
        time.sleep(1)  # wrk is connected and at full rate
        run_source(tools["smtp-source"], port, args, sink, loaded, pid, deliver)
    finally:
        polling.send_signal(signal.SIGINT)  # wrk reports what it did so far
        output, _ = polling.communicate(timeout=60)
    alive()
    result["counters_during_smtp"] = vars(parse_wrk(output))
    result["accept_per_s_during_web_load"] = loaded.accept_per_s
    result["delivered_per_s_during_web_load"] = loaded.delivered_per_s
    log("web: BLOCK / UNBLOCK through the API")
    result.update(block_latency(base, HOSTING, token, args.block_rounds))
    return result




# --------------------------------------------------------------------------------------------
# Report


def print_web(web: dict[str, Any], sm: Figures) -> None:
    print(f"web (wrk, {WRK_CONNECTIONS} connections)   requests/s   p50 ms   p99 ms   errors")
    for name in ("counters", "page", "metrics", "counters_during_smtp"):
        if name not in web:
            continue
        row = web[name]
        print(f"  {name:<30} {row['requests_per_s']:>10,.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['errors']:>8}")
    during, alone = web["accept_per_s_during_web_load"], sm.accept_per_s
    change = f" ({during / alone:.2f}x of the rate without web load)" if during and alone else ""
    print(f"  SMTP accepted/s while wrk polls the counters: {_fmt(during)}{change}")
    print(f"  BLOCK answered (API, every node holds it): p50 {web['block_p50_ms']} ms, p99 {web['block_p99_ms']} ms")


def print_backlogs(backlogs: list[dict[str, Any]], empty: Figures) -> None:
    """Each queued-store phase beside the empty store of the same run (goal: within 10 %, RSS < 250 MB)."""
    print("queue already in the store       accepted/s (x empty)  delivered/s (x empty)   p99 ms   RSS MB   fill s")
    for row in backlogs:
        accept, deliver = row["accept_per_s"], row["delivered_per_s"]
        print(
            f"  {row['recipients']:>12,} recipients   {_fmt(accept):>8} ({_ratio(accept, empty.accept_per_s) or '-'}x)"
            f"      {_fmt(deliver):>8} ({_ratio(deliver, empty.delivered_per_s) or '-'}x)"
            f"   {_fmt(row['accept_p99_ms'], 1):>7} {_fmt(row['peak_rss_mb'], 1):>8} {_fmt(row['fill_s'], 0):>8}"
        )


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


COLUMNS = (  # (title, width, Figures attribute, decimals)
    ("accepted/s", 12, "accept_per_s", 0),
    ("delivered/s", 13, "delivered_per_s", 0),
    ("p50 ms", 9, "accept_p50_ms", 2),
    ("p99 ms", 9, "accept_p99_ms", 2),
    ("RSS MB", 9, "peak_rss_mb", 1),
    ("PSS MB", 9, "peak_pss_mb", 1),
    ("procs", 7, "processes", 0),
    ("CPU %", 7, "cpu_pct", 0),
)


def print_table(
    tools_rate: float | None, pf: Figures | None, sm: Figures | None, args: argparse.Namespace, fs: str
) -> None:
    """Plain text on purpose: it must read the same in a terminal, a CI log and a pasted issue."""
    print(
        f"scriptmail benchmark: {args.messages} messages of {args.size} B, concurrency "
        f"{args.concurrency}, store {args.store}, latency sample {args.latency_sample}, "
        f"work dir on {fs}"
    )
    header = f"{'':<22}" + "".join(f"{title:>{width}}" for title, width, _, _ in COLUMNS)
    print(header)
    print("-" * len(header))
    if tools_rate is not None:
        tools = Figures(accept_per_s=tools_rate, delivered_per_s=tools_rate)
        rows = [("tools alone", tools)]
    else:
        rows = []
    rows += [(name, fig) for name, fig in (("postfix", pf), (f"scriptmail/{args.store}" + (f" x{args.processes}" if args.processes > 1 else ""), sm)) if fig]
    for name, fig in rows:
        cells = "".join(
            f"{_fmt(getattr(fig, attr), digits):>{width}}" for _, width, attr, digits in COLUMNS
        )
        print(f"{name:<22}{cells}")
    if pf is not None and sm is not None:
        cells = ""
        for _, width, attr, _ in COLUMNS:
            ratio = None if attr == "processes" else _ratio(getattr(sm, attr), getattr(pf, attr))
            cells += f"{('-' if ratio is None else f'{ratio:.2f}x'):>{width}}"
        print(f"{'scriptmail / postfix':<22}{cells}")
        print("goal (DESIGN.md §9): accepted >= 1.50x, delivered >= 1.20x")
    print()
    print("accepted/s   N / seconds until smtp-source exits (every message answered 250)")
    print("delivered/s  N / seconds from the same start until smtp-sink counted all N")
    print("p50/p99      ms from end of DATA (final dot sent) to the 250, own asyncio client,")
    print("             separate phase: latency-sample one-message sessions at the same concurrency")
    print("RSS MB       sum of per-process peak RSS (VmHWM) of the server and its children")
    print("PSS MB       largest sampled sum of Pss (shared pages split): fair for multi-process")
    print("procs        most processes seen in the server's process tree at once")
    print("CPU %        server CPU time / wall time of the throughput phase (100 = one core)")
    for name, fig in (("postfix", pf), ("scriptmail", sm)):
        for error in fig.errors if fig else ():
            print(f"! {name}: {error}")


def filesystem_of(path: Path) -> str:
    """The mount's filesystem type: fsync costs differ wildly between tmpfs and a disk."""
    best, fstype = "", "?"
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                mount = parts[1]
                if str(path).startswith(mount.rstrip("/") + "/") or str(path) == mount:
                    if len(mount) >= len(best):
                        best, fstype = mount, parts[2]
    except OSError:
        pass
    return fstype


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare scriptmail with Postfix on loopback (smtp-source -> server -> smtp-sink)."
    )
    parser.add_argument("--messages", type=int, default=5000, help="messages per throughput phase (default 5000)")
    parser.add_argument("--concurrency", type=int, default=20, help="parallel SMTP sessions (default 20)")
    parser.add_argument("--size", type=int, default=4096, help="message payload bytes (default 4096)")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--skip-postfix", action="store_true", help="measure scriptmail only")
    parser.add_argument("--skip-scriptmail", action="store_true", help="measure Postfix (and the tools) only")
    parser.add_argument("--skip-tools", action="store_true", help="do not measure smtp-source -> smtp-sink alone")
    parser.add_argument("--latency-sample", type=int, default=200, help="messages in each latency sample (0: none)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed for each phase (default 300)")
    parser.add_argument(
        "--processes", type=int, default=1,
        help="scriptmail serve --processes: copies sharing the SMTP port (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--parts", default=None,
        help="passed to 'scriptmail serve --parts' (e.g. intake: accept only, no delivered/s)",
    )  # fmt: skip
    parser.add_argument(
        "--sign", choices=("none", "rsa", "rsa+ed25519"), default="none",
        help="DKIM-sign every message at intake: RSA 2048, or RSA 2048 plus a second Ed25519 signature (default none)",
    )  # fmt: skip
    parser.add_argument("--install", action="store_true", help="apt-get install postfix if its tools are missing")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="where to CREATE/DROP the fresh database")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temporary directory")
    parser.add_argument("--split", action="store_true", help="scriptmail serve --split: intake, delivery and web in processes of their own")
    parser.add_argument(
        "--web", action="store_true",
        help="also measure the API and /metrics under wrk, SMTP intake while wrk polls the counters, and BLOCK's answer time",
    )
    parser.add_argument("--web-seconds", type=float, default=10, help="length of each wrk run alone (default 10)")
    parser.add_argument("--block-rounds", type=int, default=50, help="BLOCK/UNBLOCK rounds timed with --web (default 50)")
    parser.add_argument(
        "--profile", action="store_true",
        help="sample scriptmail with py-spy during the throughput phase and print CPU µs per message by stage",
    )
    parser.add_argument(
        "--backlog", type=_sizes, default=[],
        help="after the empty-store phase, one phase per size with that many recipients already waiting or held, e.g. 100000,1000000",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, queue, config)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1 or args.size < 0:
        parser.error("--messages and --concurrency must be >= 1, --size >= 0")
    return args


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of counts") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("each backlog size must be >= 1")
    return sizes


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def core_speeds() -> dict[int, float]:
    """Milliseconds a fixed loop of Python takes on each core, best of three.

    On the virtual machines this is built on, a core's speed changes from one second to the next
    (this loop took 21 to 71 ms on the same core within a minute), and the same code has accepted
    from 727 to 1,149 messages a second in consecutive runs. Taken before and after a run, this
    says whether its figures came from a slow moment.
    """
    cores = sorted(os.sched_getaffinity(0))
    speeds: dict[int, float] = {}
    try:
        for core in cores:
            os.sched_setaffinity(0, {core})
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                sum(range(2_000_000))
                best = min(best, time.perf_counter() - started)
            speeds[core] = round(best * 1000, 1)
    finally:
        os.sched_setaffinity(0, cores)
    return speeds


def _speeds_text(speeds: dict[int, float]) -> str:
    return ", ".join(f"core {core} {ms:.1f} ms" for core, ms in speeds.items())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    speeds_before = core_speeds()
    tools = ensure_tools(args.install)
    # SIGTERM/SIGHUP unwind like Ctrl-C so every finally: below stops what it started.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)

    load_before = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    if load_before > 0.5 * cpus:
        log(f"warning: load average {load_before:.2f} on {cpus} CPUs: other work will skew figures")
    workdir = Path(tempfile.mkdtemp(prefix="scriptmail-bench-", dir=args.workdir))
    workdir.chmod(0o755)  # Postfix's unprivileged daemons must traverse it to their queue
    fs = filesystem_of(workdir)
    args.profile_dir = workdir if args.profile else None
    sink: Sink | None = None
    tools_rate: float | None = None
    pf: Figures | None = None
    sm: Figures | None = None
    sm_extra: dict[str, Any] = {}
    backlogs: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        sink_port = free_port()
        sink = Sink(tools["smtp-sink"], sink_port)
        wait_for_banner(sink_port, 10)
        if not args.skip_tools:
            log(f"tools alone: {args.messages} messages, concurrency {args.concurrency}")
            fig = Figures()
            run_source(tools["smtp-source"], sink_port, args, sink, fig)
            tools_rate = fig.delivered_per_s
            errors += [f"tools: {e}" for e in fig.errors]
        if not args.skip_postfix:
            pf = bench_postfix(tools, workdir / "postfix", sink, args)
            errors += [f"postfix: {e}" for e in pf.errors]
        if not args.skip_scriptmail:
            (workdir / "scriptmail").mkdir()
            sm, sm_extra = bench_scriptmail(tools, workdir / "scriptmail", sink, args)
            errors += [f"scriptmail: {e}" for e in sm.errors]
            for size in args.backlog:
                (workdir / f"scriptmail-{size}").mkdir()
                fig, extra = bench_scriptmail(tools, workdir / f"scriptmail-{size}", sink, args, backlog=size)
                backlogs.append({"recipients": size, "fill_s": extra.get("backlog_fill_s"), **vars(fig)})
                errors += [f"scriptmail with {size} queued: {e}" for e in fig.errors]
    except BenchError as exc:
        errors.append(str(exc))
    finally:
        if sink is not None:
            sink.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print_table(tools_rate, pf, sm, args, fs)
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}, {cpus} CPUs")
    speeds_after = core_speeds()
    print(f"a fixed Python loop took, before: {_speeds_text(speeds_before)}; after: {_speeds_text(speeds_after)}")
    if sm and sm.stage_us:
        print("scriptmail CPU µs per message by stage (py-spy samples x CPU seconds of the throughput phase / N):")
        for stage, micros in sm.stage_us.items():
            print(f"  {stage:<34} {micros:>8.1f}")
        print(f"  {'total':<34} {sum(sm.stage_us.values()):>8.1f}")
    if sm_extra.get("footprint"):
        shown = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in sm_extra["footprint"].items())
        print(f"scriptmail store after the run: {shown} (bodies of delivered mail are freed; log rows stay)")
    if backlogs and sm:
        print_backlogs(backlogs, sm)
    web = sm_extra.get("web")
    if web:
        print_web(web, sm)
    if sm_extra.get("log_problems"):
        print(f"! scriptmail log: {sm_extra['log_problems']} warning/error lines, e.g.:")
        for line in sm_extra["log_samples"]:
            print(f"    {line}")
    pf = pf or Figures()
    sm = sm or Figures()
    result = {
        "accept_per_s": sm.accept_per_s,
        "delivered_per_s": sm.delivered_per_s,
        "accept_p50_ms": sm.accept_p50_ms,
        "accept_p99_ms": sm.accept_p99_ms,
        "peak_rss_mb": sm.peak_rss_mb,
        "peak_pss_mb": sm.peak_pss_mb,
        "cpu_pct": sm.cpu_pct,
        "stage_us": sm.stage_us,
        "web": sm_extra.get("web"),
        "backlog": backlogs,
        "footprint": sm_extra.get("footprint"),
        "postfix_accept_per_s": pf.accept_per_s,
        "postfix_delivered_per_s": pf.delivered_per_s,
        "postfix_accept_p50_ms": pf.accept_p50_ms,
        "postfix_accept_p99_ms": pf.accept_p99_ms,
        "postfix_peak_rss_mb": pf.peak_rss_mb,
        "postfix_peak_pss_mb": pf.peak_pss_mb,
        "postfix_cpu_pct": pf.cpu_pct,
        "accept_ratio": _ratio(sm.accept_per_s, pf.accept_per_s),
        "delivered_ratio": _ratio(sm.delivered_per_s, pf.delivered_per_s),
        "p99_ratio": _ratio(sm.accept_p99_ms, pf.accept_p99_ms),
        "pss_ratio": _ratio(sm.peak_pss_mb, pf.peak_pss_mb),
        "tools_per_s": tools_rate,
        "messages": args.messages,
        "concurrency": args.concurrency,
        "size": args.size,
        "latency_sample": args.latency_sample,
        "store": args.store,
        "processes": args.processes,
        "filesystem": fs,
        "cpus": cpus,
        "loadavg_before": round(load_before, 2),
        "loadavg_after": round(load_after, 2),
        "core_ms_before": speeds_before,
        "core_ms_after": speeds_after,
        "scriptmail_log_problems": sm_extra.get("log_problems", 0),
        "scriptmail_stop_s": sm_extra.get("stop_s"),
        "scriptmail_exit_code": sm_extra.get("exit_code"),
        "errors": errors,
    }
    emit_json(result, args.json_out)
    return 1 if errors else 0


def emit_json(result: dict[str, Any], path: Path | None) -> None:
    """The result as the last line of stdout (for machines), and in `path` if given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; everything it started has been stopped")
        sys.exit(130)
