"""The daily error report through a running gateway: built from the log, sent once, caught up
late, in the hosting's language (issue 4)."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from scriptmail.model import Origin, Submission
from scriptmail.reports.schedule import due_at
from scriptmail.scheduler.jobs import Scheduler
from scriptmail.store import activity, queue
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing, open_engine
from scriptmail.store.schema import messages, recipients, report_runs
from scriptmail.store.writer import Writer
from tests.e2e.test_sending_controls import cli
from tests.e2e.test_sending_policy import Clock
from tests.support.daemon import Daemon, free_port, write_config
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink

OWNER = "owner@sink.test"
UTC = ZoneInfo("UTC")


def _today() -> datetime:
    return datetime.now(timezone.utc)


def _failing_day(gateway: RunningGateway, sink: Sink) -> None:
    """Three recipients sent, two bounced, from a script the owner can recognise."""
    sink.behaviour = Behaviour(rcpt=lambda a: "550 5.1.1 no such user here" if a.startswith("bad") else "250 ok")
    message = b"Subject: Your password reset\r\nX-PHP-Originating-Script: 1000:forgot.php\r\n\r\nclick\r\n"
    submit(gateway.smtp_port, message, ["good1@sink.test", "good2@sink.test", "good3@sink.test", "bad1@sink.test", "bad2@sink.test"])
    wait_status(gateway.engine, "bounced", 2)
    wait_status(gateway.engine, "sent", 3)


def _reports(sink: Sink, count: int) -> list[email.message.EmailMessage]:
    deadline = time.monotonic() + 20
    while True:
        found = [m for m in sink.messages if OWNER in m.recipients]
        if len(found) >= count or time.monotonic() > deadline:
            return [email.message_from_bytes(m.data, policy=email.policy.default) for m in found]
        time.sleep(0.1)


def _clock_at(clock: Clock, at: float) -> None:
    clock.offset = at - time.time()


def test_a_day_with_failures_gets_one_report_with_its_rows(make_gateway, sink: Sink) -> None:
    clock = Clock()
    gateway = make_gateway(clock=clock)
    _failing_day(gateway, sink)
    scheduler = gateway.gateway.scheduler
    assert gateway.call(scheduler.send_due_reports()) == []  # not due before tomorrow 06:00
    _clock_at(clock, due_at(_today().date(), 6, UTC) + 60)
    assert len(gateway.call(scheduler.send_due_reports())) == 1
    assert gateway.call(scheduler.send_due_reports()) == []  # a second run the same day sends nothing
    (report,) = _reports(sink, 1)
    assert report["Subject"] == f"[{HOSTING}] Email errors on {_today().date().isoformat()} (2)"
    assert report["Auto-Submitted"] == "auto-generated"
    text = report.get_body(("plain",)).get_content()
    for expected in ("bad1@sink.test", "bad2@sink.test", "Your password reset", "1000:forgot.php", "550", "no such user"):
        assert expected in text
    assert "good1@sink.test" not in text
    html = report.get_body(("html",)).get_content()
    assert "bad2@sink.test" in html and "forgot.php" in html


def test_the_report_is_in_the_hostings_language_and_goes_to_its_report_recipient(make_gateway, sink: Sink) -> None:
    clock = Clock()
    gateway = make_gateway(clock=clock)
    cli(gateway, "hosting", "set", HOSTING, "--language", "es", "--report-to", "errors@sink.test")
    _failing_day(gateway, sink)
    _clock_at(clock, due_at(_today().date(), 6, UTC) + 60)
    assert len(gateway.call(gateway.gateway.scheduler.send_due_reports())) == 1
    deadline = time.monotonic() + 20
    while not [m for m in sink.messages if "errors@sink.test" in m.recipients]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (received,) = [m for m in sink.messages if "errors@sink.test" in m.recipients]
    report = email.message_from_bytes(received.data, policy=email.policy.default)
    assert report["Subject"] == f"[{HOSTING}] Errores de correo del {_today():%d/%m/%Y} (2)"


def test_a_day_missed_while_down_is_sent_late_when_the_service_is_back(make_gateway, sink: Sink) -> None:
    clock = Clock()
    gateway = make_gateway(clock=clock)
    _failing_day(gateway, sink)
    _clock_at(clock, due_at(_today().date(), 6, UTC) + 3 * 86400)  # three days down
    assert len(gateway.call(gateway.gateway.scheduler.send_due_reports())) == 1
    (report,) = _reports(sink, 1)
    assert "late" in report.get_body(("plain",)).get_content().lower()
    with gateway.engine.connect() as connection:
        assert connection.execute(select(report_runs.c.late)).scalar() == 1


def test_no_failures_no_report_and_the_platforms_own_mail_is_never_reported(make_gateway, sink: Sink) -> None:
    clock = Clock()
    gateway = make_gateway(clock=clock)
    submit(gateway.smtp_port, b"Subject: fine\r\n\r\nx\r\n", ["good@sink.test"])
    wait_status(gateway.engine, "sent", 1)
    _clock_at(clock, due_at(_today().date(), 6, UTC) + 60)
    assert gateway.call(gateway.gateway.scheduler.send_due_reports()) == []


def test_the_cli_previews_and_sends_a_report(make_gateway, sink: Sink) -> None:
    gateway = make_gateway()
    _failing_day(gateway, sink)
    today = _today().date().isoformat()
    preview = cli(gateway, "report", "preview", HOSTING, "--date", today).stdout
    assert "bad1@sink.test" in preview and f"Subject: [{HOSTING}] Email errors on {today} (2)" in preview
    assert "--date 'yesterday'" in cli(gateway, "report", "preview", HOSTING, "--date", "yesterday", expect=1).stderr
    assert "queued as" in cli(gateway, "report", "send", HOSTING, "--date", today).stdout
    assert len(_reports(sink, 1)) == 1
    assert "nothing to send" in cli(gateway, "report", "send", HOSTING, "--date", "2020-01-01").stdout


def test_two_schedulers_on_one_store_send_each_report_once(make_gateway, sink: Sink, database_url: str) -> None:
    clock = Clock()
    gateway = make_gateway(clock=clock)
    _failing_day(gateway, sink)
    _clock_at(clock, due_at(_today().date(), 6, UTC) + 60)
    engine = open_engine(database_url)
    writer = Writer(engine)
    writer.start()
    try:
        other = Scheduler(engine, writer, gateway.settings, clock=clock)
        results: list[list[int]] = []

        def second_node() -> None:
            import asyncio

            results.append(asyncio.run(other.send_due_reports()))

        thread = threading.Thread(target=second_node)
        thread.start()
        results.append(gateway.call(gateway.gateway.scheduler.send_due_reports()))
        thread.join(30)
    finally:
        writer.stop()
        engine.dispose()
    assert sorted(len(r) for r in results) == [0, 1]
    assert len(_reports(sink, 1)) == 1
    time.sleep(1)
    assert len(_reports(sink, 2)) == 1
    with gateway.engine.connect() as connection:
        assert hosting_store.find_hosting(connection, name=HOSTING) is not None


@pytest.mark.postgres
def test_two_scheduler_processes_on_postgresql_send_a_report_once(shop, database_url: str, tmp_path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes share a store on PostgreSQL")
    yesterday_noon = datetime.combine(_today().date() - timedelta(days=1), datetime.min.time(), timezone.utc).timestamp() + 12 * 3600
    with for_writing(shop).begin() as connection:
        hosting = hosting_store.find_hosting(connection, name=HOSTING)
        queue.insert_submission(
            connection, Submission(hosting.id, "web@shop.example", ("gone@x.test",), b"Subject: s\r\n\r\nx\r\n", Origin.SMTP, "c"),
            yesterday_noon,
        )  # fmt: skip
        connection.execute(
            recipients.update().values(status="bounced", last_code=550, last_text="5.1.1 gone", updated_at=yesterday_noon)
        )
        activity.bump(connection, [(hosting.id, yesterday_noon, {"bounced": 1})])
    config = write_config(tmp_path / "scriptmail.toml", database_url, free_port(), free_port(), extra="[reports]\nhour = 0\n")
    daemons = [Daemon(config, node, parts="scheduler").start(wait=False) for node in ("node-a", "node-b")]
    try:
        for daemon in daemons:
            daemon.wait_ready()
        deadline = time.monotonic() + 30
        while True:
            with shop.connect() as connection:
                runs = connection.execute(select(report_runs)).all()
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(2)  # both schedulers have had their first round
    finally:
        for daemon in daemons:
            daemon.stop()
    with shop.connect() as connection:
        runs = connection.execute(select(report_runs)).all()
        reports = connection.execute(select(messages).where(messages.c.script == "scriptmail daily report")).all()
    assert len(runs) == 1 and len(reports) == 1
