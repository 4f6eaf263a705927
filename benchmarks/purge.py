#!/usr/bin/env python3
"""Purge benchmark: how long a purge of many held recipients takes, and what it does to the
accept latency of another hosting that keeps sending meanwhile (issue 3: target < 10 s for
100,000; the reference product takes 5-10 minutes).

Runs a real ``scriptmail serve`` (all parts) on a fresh store, relaying to Postfix's
``smtp-sink``. The blocked hosting's held mail is written straight into the store (as a busy day
would have left it); the other hosting sends over SMTP from a few client threads the whole time.
Prints a table and, as its last line, one JSON object. It reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # noqa: E402 - the throughput benchmark's helpers
    HOST,
    HOSTING,
    PG_ADMIN_URL,
    BenchError,
    PostgresDatabase,
    Sink,
    emit_json,
    ensure_tools,
    free_port,
    log,
    percentile,
    scriptmail_exe,
    stop_process,
    wait_for_banner,
    write_config,
)

BULK = "bulk.example"


def fill_held(database_url: str, count: int, per_message: int) -> float:
    """Create the blocked hosting and `count` held recipients; returns the seconds it took."""
    from scriptmail.control.states import Action, Actor
    from scriptmail.model import Origin, Submission
    from scriptmail.store import hostings, queue
    from scriptmail.store.engine import for_writing, open_engine
    from scriptmail.store.hosting_control import change_state

    began = time.monotonic()
    engine = open_engine(database_url)
    try:
        with for_writing(engine).begin() as connection:
            hosting = hostings.add_hosting(connection, BULK, f"owner@{BULK}", plan="unlimited")
            change_state(connection, BULK, Action.BLOCK, Actor.CUSTOMER, time.time())
        data = b"Subject: newsletter\r\n\r\n" + b"x" * 2000 + b"\r\n"
        chunk = 1000 * per_message
        for start in range(0, count, chunk):
            now = time.time()
            items = []
            for first in range(start, min(start + chunk, count), per_message):
                addresses = tuple(f"r{n}@far.test" for n in range(first, min(first + per_message, count)))
                items.append((Submission(hosting.id, f"news@{BULK}", addresses, data, Origin.SENDMAIL, "uid:1"), now))
            with for_writing(engine).begin() as connection:
                queue.insert_submissions(connection, items)
    finally:
        engine.dispose()
    return time.monotonic() - began


class Sender(threading.Thread):
    """One SMTP session of the other hosting, sending as fast as it is answered."""

    def __init__(self, port: int, number: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.number, self.stop = port, number, stop
        self.samples: list[tuple[float, float]] = []  # (when it was answered, latency)
        self.error: str | None = None

    def run(self) -> None:
        try:
            with smtplib.SMTP(HOST, self.port, timeout=60) as client:
                count = 0
                while not self.stop.is_set():
                    began = time.monotonic()
                    client.sendmail("web@shop.test", [f"c{self.number}-{count}@sink.test"], b"Subject: order\r\n\r\nthanks\r\n")
                    done = time.monotonic()
                    self.samples.append((done, done - began))
                    count += 1
        except Exception as error:  # noqa: BLE001 - reported in the figures
            self.error = f"{type(error).__name__}: {error}"


def latency_figures(samples: list[float], seconds: float) -> dict[str, float | int | None]:
    if not samples:
        return {"accepted": 0, "per_second": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "accepted": len(samples),
        "per_second": round(len(samples) / seconds, 1),
        "p50_ms": round(percentile(samples, 50) * 1000, 1),
        "p99_ms": round(percentile(samples, 99) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def run(args: argparse.Namespace) -> dict:
    tools = ensure_tools(install=False)
    workdir = Path(tempfile.mkdtemp(prefix="scriptmail-purge-"))
    database = PostgresDatabase(args.pg_admin_url) if args.store == "postgresql" else None
    sink = Sink(tools["smtp-sink"], free_port())
    server = None
    try:
        url = database.create() if database else f"sqlite:///{workdir / 'bench.db'}"
        port = free_port()
        config = write_config(workdir, url, port, sink.port)
        exe = scriptmail_exe()
        for command in (["db", "upgrade"], ["hosting", "add", HOSTING, "--owner", "ops@bench.test", "--plan", "unlimited"]):
            subprocess.run([exe, "--config", str(config), *command], check=True, capture_output=True, cwd=workdir)
        log(f"writing {args.held} held recipients ...")
        fill_seconds = fill_held(url, args.held, args.per_message)
        server = subprocess.Popen(
            [exe, "--config", str(config), "serve", "--no-demo"], cwd=workdir,
            stdout=(workdir / "scriptmail.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        def alive() -> None:
            if server.poll() is not None:
                raise BenchError(f"scriptmail exited: {(workdir / 'scriptmail.log').read_text()[-1000:]}")

        wait_for_banner(port, 30, alive)
        stop = threading.Event()
        senders = [Sender(port, number, stop) for number in range(args.sessions)]
        for sender in senders:
            sender.start()
        log(f"the other hosting sends for {args.baseline} s before the purge ...")
        time.sleep(args.baseline)
        purge_began = time.monotonic()
        done = subprocess.run(
            [exe, "--config", str(config), "hosting", "purge", BULK], capture_output=True, text=True, cwd=workdir, timeout=args.timeout
        )
        purge_ended = time.monotonic()
        time.sleep(1)
        stop.set()
        for sender in senders:
            sender.join(60)
        if done.returncode != 0:
            raise BenchError(f"purge failed: {done.stderr.strip()}")
        samples = [sample for sender in senders for sample in sender.samples]
        before = [latency for at, latency in samples if at < purge_began]
        during = [latency for at, latency in samples if purge_began <= at <= purge_ended]
        purge_seconds = purge_ended - purge_began
        return {
            "store": args.store,
            "held": args.held,
            "recipients_per_message": args.per_message,
            "fill_seconds": round(fill_seconds, 1),
            "purge_seconds": round(purge_seconds, 2),
            "purged_per_second": round(args.held / purge_seconds),
            "purge_output": done.stdout.strip(),
            "other_hosting_before": latency_figures(before, args.baseline),
            "other_hosting_during": latency_figures(during, purge_seconds),
            "sender_errors": [sender.error for sender in senders if sender.error],
        }
    finally:
        if server is not None:
            stop_process(server, "scriptmail")
            for line in (workdir / "scriptmail.log").read_text(errors="replace").splitlines():
                if "purge" in line or "WARNING" in line or "ERROR" in line:
                    log(f"scriptmail: {line[-300:]}")
        sink.stop()
        if database is not None:
            database.drop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--held", type=int, default=100_000, help="held recipients to purge")
    parser.add_argument("--per-message", type=int, default=10, help="recipients per held message")
    parser.add_argument("--sessions", type=int, default=4, help="SMTP sessions of the other hosting")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of sending before the purge")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except BenchError as error:
        print(f"purge benchmark failed: {error}", file=sys.stderr)
        return 1
    print(f"store {result['store']}: {result['held']} held recipients purged in {result['purge_seconds']} s "
          f"({result['purged_per_second']}/s)")  # fmt: skip
    for phase in ("before", "during"):
        figures = result[f"other_hosting_{phase}"]
        print(f"  other hosting {phase:>6} the purge: {figures['accepted']} accepted ({figures['per_second']}/s), "
              f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms")  # fmt: skip
    emit_json(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
