"""web.mail_first_rate: the web part that shares intake's event loop yields to arriving mail."""

from __future__ import annotations

import time

import httpx2

from scriptmail.web.mail_first import BUSY_FOR, MailActivity, Pacer
from tests.support.gateway import RunningGateway, submit


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pacer_gives_each_request_the_next_free_turn() -> None:
    pacer = Pacer(rate=10)
    assert [round(pacer.delay(0.0), 3) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]
    assert pacer.delay(5.0) == 0.0  # after a quiet moment nobody waits for turns long gone
    assert round(pacer.delay(5.0), 3) == 0.1


def test_mail_counts_as_arriving_for_a_moment_after_each_message() -> None:
    clock = Clock()
    activity = MailActivity(clock)
    assert not activity.busy()
    activity.accepted()
    clock.now += BUSY_FOR / 2
    assert activity.busy()
    clock.now += BUSY_FOR
    assert not activity.busy()


def _timed_requests(port: int, count: int, keep_busy=None) -> float:
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        started = time.monotonic()
        for _ in range(count):
            if keep_busy is not None:
                keep_busy()
            assert client.get("/login").status_code == 200
        return time.monotonic() - started


def test_web_requests_wait_their_turn_while_mail_arrives_and_not_otherwise(make_gateway) -> None:
    gateway: RunningGateway = make_gateway(web={"mail_first_rate": 10})
    activity = gateway.gateway.mail_activity
    assert activity is not None and not activity.busy()
    web = gateway.gateway.web_port
    # A message accepted over SMTP marks the process busy (intake's commit calls the hook).
    submit(gateway.smtp_port, b"Subject: busy\r\n\r\nx\r\n", ["r@sink.test"])
    assert activity._last > float("-inf")
    # Mail arriving without a pause (a slow machine may leave more than BUSY_FOR between two
    # real submissions, so the test says "a message was just accepted" before each request).
    busy = _timed_requests(web, 30, keep_busy=activity.accepted)
    time.sleep(BUSY_FOR + 0.2)
    quiet = _timed_requests(web, 30)
    # Thirty requests at ten a second take at least 2.9 s while mail arrives; unpaced, a fraction.
    assert busy >= 2.9, f"requests were not paced while mail arrived ({busy:.2f} s)"
    assert quiet < 2.9, f"requests were paced with no mail arriving ({quiet:.2f} s)"


def test_a_web_part_with_no_intake_beside_it_is_never_paced(make_gateway) -> None:
    gateway: RunningGateway = make_gateway(parts=("web",))
    assert gateway.gateway.mail_activity is None


def test_actions_are_never_paced_while_mail_arrives(make_gateway) -> None:
    """A BLOCK must take effect at once: only reads wait their turn."""
    gateway: RunningGateway = make_gateway(web={"mail_first_rate": 1})
    gateway.gateway.mail_activity.accepted()
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=60) as client:
        started = time.monotonic()
        for _ in range(5):
            gateway.gateway.mail_activity.accepted()  # mail keeps arriving
            assert client.post("/login", data={}).status_code in (200, 400, 403, 422)
        posts = time.monotonic() - started
        started = time.monotonic()
        for _ in range(3):
            gateway.gateway.mail_activity.accepted()
            client.get("/login")
        gets = time.monotonic() - started
    assert gets >= 1.9, f"reads were not paced ({gets:.2f} s for three at one a second)"
    assert posts < 1.9, f"actions waited their turn ({posts:.2f} s)"
