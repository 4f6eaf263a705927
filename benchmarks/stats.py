#!/usr/bin/env python3
"""Counters benchmark: how fast a hosting's counters, volumes, bounces and scripts are read when
its log holds many recipients (issue 4: milliseconds, not a scan; issue 5: the customer page and
the API under 150 ms p95 with 1,000,000 logged recipients).

Fills a fresh store with one busy hosting (N recipients over 30 days, 5 % of them bounced, from a
handful of scripts) plus a small one, then times each read of `store/stats.py` many times. Prints a
table and, as its last line, one JSON object. It reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # noqa: E402
    PG_ADMIN_URL,
    BenchError,
    PostgresDatabase,
    emit_json,
    free_port,
    log,
    percentile,
    scriptmail_exe,
    stop_process,
)

PASSWORD = "benchmark password"


def fill(database_url: str, count: int, per_message: int) -> float:
    from sqlalchemy import text

    from scriptmail.model import Origin, Submission
    from scriptmail.store import activity, hostings, queue
    from scriptmail.store.engine import for_writing, open_engine
    from scriptmail.store.migrate import upgrade

    began = time.monotonic()
    engine = open_engine(database_url)
    upgrade(engine)
    now = time.time()
    chance = random.Random(1)
    try:
        with for_writing(engine).begin() as connection:
            busy = hostings.add_hosting(connection, "busy.example", "owner@busy.example", plan="unlimited").id
            hostings.add_hosting(connection, "small.example", "owner@small.example", plan="unlimited")
        data = b"Subject: order confirmation\r\n\r\n" + b"x" * 1000 + b"\r\n"
        scripts = [f"1000:{name}.php" for name in ("checkout", "contact", "forgot", "newsletter", "cron")]
        chunk = 20_000
        for start in range(0, count, chunk):
            items = []
            for first in range(start, min(start + chunk, count), per_message):
                at = now - chance.random() * 30 * 86400
                recipients = tuple(f"r{n}@far{n % 50}.test" for n in range(first, min(first + per_message, count)))
                items.append((Submission(busy, "web@busy.example", recipients, data, Origin.SENDMAIL, "uid:1", subject="order",
                                         script=chance.choice(scripts)), at))  # fmt: skip
            with for_writing(engine).begin() as connection:
                queue.insert_submissions(connection, items)
            log(f"{min(start + chunk, count)} recipients written")
        # Delivered: 95 % sent, 5 % bounced, each a little after it arrived; bodies gone.
        with for_writing(engine).begin() as connection:
            connection.execute(text(
                "UPDATE recipients SET status = CASE WHEN id % 20 = 0 THEN 'bounced' ELSE 'sent' END, "
                "attempts = 1, last_code = CASE WHEN id % 20 = 0 THEN 550 ELSE 250 END, "
                "last_text = CASE WHEN id % 20 = 0 THEN '5.1.1 user unknown' ELSE '2.0.0 ok' END, "
                "updated_at = queued_at + 2, next_attempt_at = queued_at + 2"
            ))  # fmt: skip
            connection.execute(text("DELETE FROM bodies"))
            rows = connection.execute(text(
                "SELECT hosting_id, CAST(updated_at / 60 AS INTEGER) AS minute, "
                "SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), SUM(CASE WHEN status = 'bounced' THEN 1 ELSE 0 END) "
                "FROM recipients GROUP BY hosting_id, CAST(updated_at / 60 AS INTEGER)"
            )).all()  # fmt: skip
            activity.bump(connection, [(h, m * 60.0, {"dispatched": s + b, "sent": s, "bounced": b}) for h, m, s, b in rows])
        if engine.dialect.name == "postgresql":
            # What autovacuum does soon after a bulk load in production: fresh planner statistics.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return time.monotonic() - began


def measure(database_url: str, rounds: int) -> dict[str, dict[str, float]]:
    from zoneinfo import ZoneInfo

    from scriptmail.config import PlanSettings
    from scriptmail.store import stats
    from scriptmail.store.engine import open_engine

    engine = open_engine(database_url)
    plan, zone = PlanSettings(max_per_day=5000), ZoneInfo("UTC")
    reads = {
        "counters": lambda c, now: stats.counters(c, 1, plan, now),
        "status_counts": lambda c, now: stats.status_counts(c, 1),
        "daily_volumes_30d": lambda c, now: stats.daily_volumes(c, 1, now),
        "hourly_volumes_48h": lambda c, now: stats.hourly_volumes(c, 1, now, zone),
        "bounces_100": lambda c, now: stats.bounces(c, 1, limit=100),
        "bounces_offset_5000": lambda c, now: stats.bounces(c, 1, limit=100, offset=5000),
        "scripts": lambda c, now: stats.scripts(c, 1),
    }
    figures = {}
    try:
        with engine.connect() as connection:
            for name, read in reads.items():
                samples = []
                for _ in range(rounds):
                    began = time.perf_counter()
                    read(connection, time.time())
                    samples.append(time.perf_counter() - began)
                figures[name] = {
                    "p50_ms": round(percentile(samples, 50) * 1000, 2),
                    "p95_ms": round(percentile(samples, 95) * 1000, 2),
                    "max_ms": round(max(samples) * 1000, 2),
                }
    finally:
        engine.dispose()
    return figures


class _Client:
    """A logged-in customer over real HTTP. The session cookie is Secure and this is plain HTTP
    on loopback (behind the provider's TLS proxy in production), so cookies are kept by hand."""

    def __init__(self, base: str) -> None:
        import httpx2

        self.http = httpx2.Client(base_url=base, timeout=30, follow_redirects=False)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs):
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "Origin": str(self.http.base_url).rstrip("/"),
        }
        response = self.http.request(method, path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response

    def login(self, email: str) -> None:
        import re

        form = self.request("GET", "/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        answer = self.request("POST", "/login", data={"email": email, "password": PASSWORD, "csrf": csrf})
        if answer.status_code != 303:
            raise BenchError(f"login failed: {answer.status_code}")


def measure_http(database_url: str, rounds: int, workdir: Path) -> dict[str, dict[str, float]]:
    """The pages and API routes a customer and an operator use, answered by a real
    `scriptmail serve --parts web` over HTTP: what the 150 ms p95 of issue 5 is about."""
    import subprocess

    from scriptmail.store import accounts
    from scriptmail.store.engine import for_writing, open_engine

    engine = open_engine(database_url)
    with for_writing(engine).begin() as connection:
        owner = accounts.add_user(connection, "owner@busy.example", PASSWORD)
        accounts.grant(connection, owner, "busy.example")
        accounts.add_user(connection, "ops@busy.example", PASSWORD, operator=True)
        _, token = accounts.create_token(connection, owner, "benchmark")
        first_id = connection.execute(__import__("sqlalchemy").text("SELECT MAX(id) FROM recipients")).scalar()
    engine.dispose()
    port = free_port()
    config = workdir / "web.toml"
    config.write_text(f'database_url = "{database_url}"\n\n[web]\nlisten = "127.0.0.1:{port}"\n')
    server = subprocess.Popen(
        [scriptmail_exe(), "--config", str(config), "serve", "--parts", "web", "--no-demo"], cwd=workdir,
        stdout=(workdir / "web.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        customer, operator = _Client(base), _Client(base)
        deadline = time.monotonic() + 30
        while True:
            try:
                customer.request("GET", "/login")
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"the web part did not start: {(workdir / 'web.log').read_text()[-1000:]}") from None
                time.sleep(0.2)
        customer.login("owner@busy.example")
        operator.login("ops@busy.example")
        api = {"Authorization": f"Bearer {token}"}
        web = "/1.0/hosting/web/busy.example/email"
        reads = {
            "page: scripts e-mail": (customer, "/hostings/busy.example", {}),
            "page: my hostings": (customer, "/hostings", {}),
            "page: message log": (customer, "/hostings/busy.example/log", {}),
            # Bounced mail to one domain: one bounced recipient in five goes there, so a page fills fast.
            "page: log, filtered": (customer, "/hostings/busy.example/log?status=bounced&recipient=far9", {}),
            # No bounced recipient goes to far7: the worst case, every bounced row is read to be sure.
            "page: log, no match": (customer, "/hostings/busy.example/log?status=bounced&recipient=far7", {}),
            "page: message detail": (customer, f"/hostings/busy.example/log/{first_id}", {}),
            "page: held mail": (customer, "/hostings/busy.example/held", {}),
            "page: scripts": (customer, "/hostings/busy.example/scripts", {}),
            "page: operator hostings": (operator, "/operator", {}),
            "page: operator queue": (operator, "/operator/queue", {}),
            "api: counters": (customer, web, api),
            "api: bounces 100": (customer, f"{web}/bounces?limit=100", api),
            "api: volumes": (customer, f"{web}/volumes", api),
            "api: messages": (customer, f"{web}/messages", api),
        }
        figures = {}
        for name, (client, path, headers) in reads.items():
            samples = []
            status = client.request("GET", path, headers=headers).status_code  # warm-up, and is it there?
            if status != 200:
                figures[name] = {"status": status}
                continue
            for _ in range(rounds):
                began = time.perf_counter()
                client.request("GET", path, headers=headers)
                samples.append(time.perf_counter() - began)
            figures[name] = {
                "p50_ms": round(percentile(samples, 50) * 1000, 2),
                "p95_ms": round(percentile(samples, 95) * 1000, 2),
                "max_ms": round(max(samples) * 1000, 2),
            }
    finally:
        stop_process(server, "scriptmail web")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--per-message", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--no-http", action="store_true", help="time the store's reads only, not the pages and the API")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="scriptmail-stats-"))
    database = PostgresDatabase(args.pg_admin_url) if args.store == "postgresql" else None
    try:
        url = database.create() if database else f"sqlite:///{workdir / 'stats.db'}"
        fill_seconds = fill(url, args.recipients, args.per_message)
        figures = measure(url, args.rounds)
        http = {} if args.no_http else measure_http(url, args.rounds, workdir)
    finally:
        if database is not None:
            database.drop()
    result = {
        "store": args.store,
        "recipients": args.recipients,
        "fill_seconds": round(fill_seconds, 1),
        "reads": figures,
        "http": http,
    }
    print(f"store {args.store}, one hosting with {args.recipients} logged recipients:")
    for name, values in figures.items():
        print(f"  {name:<20} p50 {values['p50_ms']:>8} ms   p95 {values['p95_ms']:>8} ms   max {values['max_ms']:>8} ms")
    if http:
        print("over HTTP (scriptmail serve --parts web, sequential requests):")
    for name, values in http.items():
        if "status" in values:
            print(f"  {name:<26} answered {values['status']}")
        else:
            print(f"  {name:<26} p50 {values['p50_ms']:>8} ms   p95 {values['p95_ms']:>8} ms   max {values['max_ms']:>8} ms")
    emit_json(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
