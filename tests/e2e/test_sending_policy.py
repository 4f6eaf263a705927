"""Quotas and automatic blocks through a running gateway with a real sink (issue 3's policy part)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time

from sqlalchemy import select, update

from scriptmail.config import PlanSettings
from scriptmail.model import HostingState
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import hosting_events, hostings, messages, recipients
from tests.e2e.test_sending_controls import cli, statuses
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Received, Sink

OWNER = "owner@sink.test"  # the shop fixture's owner: its notices arrive at the sink too
POLITE = b"Subject: Your order #%d has shipped\r\n\r\nThank you for your order.\r\nIt left our warehouse today.\r\n"


def _plan(gateway: RunningGateway, plan: str) -> None:
    with for_writing(gateway.engine).begin() as connection:
        connection.execute(update(hostings).where(hostings.c.name == HOSTING).values(plan=plan))


def _state(gateway: RunningGateway) -> HostingState:
    with gateway.engine.connect() as connection:
        return hosting_store.find_hosting(connection, name=HOSTING).state


def _wait_state(gateway: RunningGateway, state: HostingState, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _state(gateway) is not state:
        assert time.monotonic() < deadline, f"still {_state(gateway)}, expected {state}"
        time.sleep(0.1)


def _notices(sink: Sink) -> list[Received]:
    return [message for message in sink.messages if OWNER in message.recipients]


def _wait_notice(sink: Sink, timeout: float = 15.0) -> Received:
    deadline = time.monotonic() + timeout
    while not _notices(sink):
        assert time.monotonic() < deadline, "the owner was not notified"
        time.sleep(0.1)
    (notice,) = _notices(sink)
    return notice


class Clock:
    """Real time plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_over_quota_mail_waits_and_goes_when_the_window_frees(make_gateway, sink: Sink) -> None:
    clock = Clock()
    gateway = make_gateway(plans={"tiny": PlanSettings(hourly=100, policies=False)}, clock=clock)
    _plan(gateway, "tiny")
    for number in range(150):
        submit(gateway.smtp_port, POLITE % number, [f"q{number}@sink.test"])  # none refused
    wait_status(gateway.engine, "sent", 100)
    time.sleep(1.5)
    assert len(sink.messages) == 100
    waiting = json.loads(cli(gateway, "queue", "--json").stdout)
    assert len(waiting) == 50 and {row["status"] for row in waiting} == {"queued"}
    assert all(row["last_text"].startswith("waiting: hourly quota of 100 reached; sending resumes at") for row in waiting)

    clock.offset = 3700  # the hour has passed
    gateway.gateway.agent.wake()
    wait_status(gateway.engine, "sent", 150)
    delivered = sorted(address for message in sink.messages for address in message.recipients)
    assert delivered == sorted(f"q{number}@sink.test" for number in range(150))  # each exactly once


def test_spammy_content_blocks_the_hosting_and_tells_the_owner(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(control={"policy_interval": 0.3})
    _plan(gateway, "default")
    for number in range(25):
        submit(gateway.smtp_port, b"Subject: CHEAP PILLS BUY NOW\r\n\r\n\r\n", [f"victim{number}@sink.test"])
    _wait_state(gateway, HostingState.SPAM)
    notice = _wait_notice(sink)
    parsed = email.message_from_bytes(notice.data, policy=email.policy.default)
    assert parsed["Subject"] == f"[{HOSTING}] E-mail from your scripts blocked (spam)"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert "look like spam" in parsed.get_body().get_content()
    with gateway.engine.connect() as connection:
        event = connection.execute(select(hosting_events).order_by(hosting_events.c.id.desc())).first()
    assert (event.actor, event.action, event.to_state) == ("policy", "detect-spam", "spam")
    # Mail the site sends now is held, and the customer must purge before sending again.
    submit(gateway.smtp_port, POLITE % 1, ["after@sink.test"])
    assert "held" in statuses(gateway)


def test_normal_traffic_is_not_blocked(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(control={"policy_interval": 0.3})
    _plan(gateway, "default")
    for number in range(60):
        submit(gateway.smtp_port, POLITE % number, [f"customer{number}@sink.test"])
    wait_status(gateway.engine, "sent", 60)
    time.sleep(1.5)  # several sweeps
    assert _state(gateway) is HostingState.ACTIVE
    assert _notices(sink) == []


def test_too_many_bounces_block_as_bounce_and_unblock_gives_forced(make_gateway, sink: Sink) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "554 5.7.1 rejected by policy" if address.startswith("bad") else "250 ok")
    gateway = make_gateway(control={"policy_interval": 0.3}, plans={"b": PlanSettings(bounce_window=20)})
    _plan(gateway, "b")
    for number in range(30):
        address = f"bad{number}@sink.test" if number % 2 else f"good{number}@sink.test"
        submit(gateway.smtp_port, POLITE % number, [address])
    _wait_state(gateway, HostingState.BOUNCE)
    assert b"bounced" in _wait_notice(sink).data
    assert "bounce -> forced" in cli(gateway, "hosting", "unblock", HOSTING).stdout


def test_mail_to_unknown_users_blocks_as_spam(make_gateway, sink: Sink) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.1.1 user unknown" if address.startswith("x") else "250 ok")
    gateway = make_gateway(control={"policy_interval": 0.3}, plans={"strict": PlanSettings(unknown_user_limit=5, bounce_ratio=1)})
    _plan(gateway, "strict")
    for number in range(6):
        submit(gateway.smtp_port, POLITE % number, [f"x{number}@sink.test", f"real{number}@sink.test"])
    _wait_state(gateway, HostingState.SPAM)
    with gateway.engine.connect() as connection:
        reason = connection.execute(select(hosting_events.c.reason)).scalar()
    assert re.match(r"[56] messages to addresses that do not exist in the last 10 minutes", reason)


def test_a_sudden_volume_blocks_as_spam(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(control={"policy_interval": 0.3}, plans={"small": PlanSettings(volume_floor=30, volume_factor=10)})
    _plan(gateway, "small")
    for number in range(35):  # no history at all: 35 in an hour is far above its usual 0
        submit(gateway.smtp_port, POLITE % number, [f"v{number}@sink.test"])
    _wait_state(gateway, HostingState.SPAM)


def test_a_second_spam_block_within_a_week_needs_an_operator(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(control={"policy_interval": 0.3})
    _plan(gateway, "default")
    for round_number in range(2):
        for number in range(21):
            submit(gateway.smtp_port, b"Subject: WIN BIG MONEY\r\n\r\n\r\n", [f"s{round_number}-{number}@sink.test"])
        _wait_state(gateway, HostingState.SPAM)
        if round_number == 0:
            assert "purging -> active" in cli(gateway, "hosting", "purge", HOSTING).stdout
            time.sleep(1)  # several sweeps: what was sent before the purge does not block it again
            assert _state(gateway) is HostingState.ACTIVE
    with for_writing(gateway.engine).begin() as connection:
        from scriptmail.control.states import Action, Actor, TransitionNotAllowed
        from scriptmail.store.hosting_control import change_state

        try:
            change_state(connection, HOSTING, Action.PURGE, Actor.CUSTOMER, time.time())
        except TransitionNotAllowed as refused:
            assert "only support can lift" in refused.reason
        else:
            raise AssertionError("the customer lifted a repeated spam block")
    assert "purging -> active" in cli(gateway, "hosting", "purge", HOSTING).stdout  # the operator can


def test_a_purge_started_elsewhere_is_run_by_the_scheduler(make_gateway, sink: Sink) -> None:
    gateway = make_gateway()
    cli(gateway, "hosting", "block", HOSTING)
    for number in range(30):
        submit(gateway.smtp_port, POLITE % number, [f"p{number}@sink.test"])
    assert "the scheduler of a running scriptmail finishes" in cli(gateway, "hosting", "purge", HOSTING, "--no-wait").stdout
    _wait_state(gateway, HostingState.ACTIVE)
    assert statuses(gateway) == ["purged"] * 30


def test_a_purge_left_half_done_by_a_crash_is_finished_at_the_next_start(make_gateway, sink: Sink, shop) -> None:
    from scriptmail.control.states import Action, Actor
    from scriptmail.store.hosting_control import change_state

    with for_writing(shop).begin() as connection:
        change_state(connection, HOSTING, Action.BLOCK, Actor.OPERATOR, time.time())
    gateway = make_gateway(parts=("smtp", "sendmail", "delivery"))  # no scheduler: nobody purges
    for number in range(10):
        submit(gateway.smtp_port, POLITE % number, [f"c{number}@sink.test"])
    with for_writing(shop).begin() as connection:
        change_state(connection, HOSTING, Action.PURGE, Actor.CUSTOMER, time.time())
    time.sleep(1.5)
    assert statuses(gateway) == ["held"] * 10
    gateway.stop()
    make_gateway()  # with its scheduler
    _wait_state(gateway, HostingState.ACTIVE)
    with shop.connect() as connection:
        assert connection.execute(select(recipients.c.status).distinct()).scalars().all() == ["purged"]


def test_rspamd_verdicts_count_as_spam_when_a_scanner_is_configured(make_gateway, sink: Sink, rspamd) -> None:
    gateway = make_gateway(control={"policy_interval": 0.3, "rspamd_url": rspamd.url})
    _plan(gateway, "default")
    gtube = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    for number in range(21):  # polite subjects: only the scanner sees what they are
        submit(gateway.smtp_port, (POLITE % number) + gtube + b"\r\n", [f"g{number}@sink.test"])
    _wait_state(gateway, HostingState.SPAM)
    with gateway.engine.connect() as connection:
        reasons = connection.execute(select(messages.c.score_reasons).where(messages.c.hosting_id != 0)).scalars().all()
    assert sum("rspamd reject" in reason for reason in reasons) == 21
