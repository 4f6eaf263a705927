"""The held-mail viewer and the one-message actions against a running gateway, over real HTTP
and SMTP: release one of three held messages and exactly that one reaches the receiving server,
delete one and it never does, send again after a 550 and only the failed recipient gets it;
tenant checks on every new route and on the frame links; bad input."""

from __future__ import annotations

import re
import time
from html import unescape

import httpx2
import pytest
from sqlalchemy import select

from scriptmail.control.states import Action, Actor
from scriptmail.store import accounts
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, history
from scriptmail.store.schema import messages, recipients
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink
from tests.support.web_client import OTHER, A, B
from tests.viewer import samples


def _block(gateway: RunningGateway) -> None:
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.BLOCK, Actor.CUSTOMER, time.time(), reason="testing my scripts")


def _message_ids(gateway: RunningGateway) -> dict[str, int]:
    with gateway.engine.connect() as connection:
        return {row.subject: row.id for row in connection.execute(select(messages.c.id, messages.c.subject))}


def _statuses(gateway: RunningGateway, message_id: int) -> dict[str, str]:
    with gateway.engine.connect() as connection:
        rows = connection.execute(select(recipients.c.address, recipients.c.status).where(recipients.c.message_id == message_id))
        return dict(rows.all())


def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _held_three(gateway: RunningGateway) -> dict[str, int]:
    _block(gateway)
    for subject in ("first", "second", "third"):
        submit(
            gateway.smtp_port,
            f"Subject: {subject}\r\nTo: x@sink.test\r\n\r\nbody of {subject}\r\n".encode(),
            [f"{subject}@sink.test"],
        )
    wait_status(gateway.engine, "held", 3)
    return _message_ids(gateway)


def _confirm(browser, path: str, action: str, extra: dict | None = None) -> httpx2.Response:
    page = browser.get(f"{path}?confirm={action}")
    assert page.status_code == 200, page.text
    return browser.post(f"{path}/{action}", {"csrf": browser.csrf(page), "confirm": "yes", **(extra or {})})


def test_release_one_of_three_held_messages_sends_exactly_that_one(gateway: RunningGateway, area, sink: Sink) -> None:
    ids = _held_three(gateway)
    browser = area()
    browser.login(A)
    path = f"/hostings/{HOSTING}/mail/{ids['second']}"
    page = browser.get(path)
    assert page.status_code == 200 and "body of second" in page.text and "?confirm=release" in page.text
    # Without the confirmation nothing happens.
    unconfirmed = browser.post(f"{path}/release", {"csrf": browser.csrf(page)})
    assert unconfirmed.status_code == 303 and _statuses(gateway, ids["second"]) == {"second@sink.test": "held"}
    assert _confirm(browser, path, "release").status_code == 303
    (received,) = sink.wait_for(1)
    assert received.recipients == ["second@sink.test"]
    wait_status(gateway.engine, "sent", 1)
    time.sleep(0.5)  # a wrongly released message would be sent within this
    assert len(sink.messages) == 1
    assert _statuses(gateway, ids["first"]) == {"first@sink.test": "held"}
    assert _statuses(gateway, ids["third"]) == {"third@sink.test": "held"}
    with gateway.engine.connect() as connection:
        (event, *_) = history(connection, HOSTING)
    assert (event["action"], event["actor"], event["to_state"]) == ("release-one", "customer", "blocked")
    assert f"message {ids['second']}" in event["reason"]
    # Now that nothing of it is held, a second release says so.
    again = _confirm(browser, path, "release")
    assert "no held recipient" in browser.get(again.headers["location"]).text


def test_a_deleted_message_is_never_sent(gateway: RunningGateway, area, sink: Sink) -> None:
    ids = _held_three(gateway)
    browser = area()
    browser.login(A)
    _confirm(browser, f"/hostings/{HOSTING}/mail/{ids['first']}", "delete")
    assert _statuses(gateway, ids["first"]) == {"first@sink.test": "purged"}
    assert "body of first" not in browser.get(f"/hostings/{HOSTING}/mail/{ids['first']}").text  # the body is freed
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.UNBLOCK, Actor.CUSTOMER, time.time())
    received = sink.wait_for(2)
    wait_status(gateway.engine, "sent", 2)
    assert sorted(r for m in received for r in m.recipients) == ["second@sink.test", "third@sink.test"]
    with gateway.engine.connect() as connection:
        assert "delete-one" in [event["action"] for event in history(connection, HOSTING)]


REFUSED: set[str] = set()


@pytest.fixture
def refusing_sink(sink: Sink) -> Sink:
    REFUSED.clear()
    REFUSED.add("gone@sink.test")
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.7.1 refused by policy" if address in REFUSED else "250 2.1.5 ok")
    return sink


def test_send_again_after_a_550_goes_to_the_failed_recipient_only(gateway: RunningGateway, area, refusing_sink: Sink) -> None:
    # The body is kept while a recipient still waits: the second one is deferred here.
    submit(gateway.smtp_port, b"Subject: order\r\n\r\nyour order\r\n", ["gone@sink.test", "kept@sink.test"])
    wait_status(gateway.engine, "bounced", 1)
    refusing_sink.wait_for(1)
    (message_id,) = _message_ids(gateway).values()
    REFUSED.clear()  # the cause is fixed
    browser = area()
    browser.login(A)
    path = f"/hostings/{HOSTING}/mail/{message_id}"
    assert "?confirm=resend" in browser.get(path).text
    confirm = browser.get(f"{path}?confirm=resend").text
    assert 'name="to" value="gone@sink.test"' in confirm and 'value="kept@sink.test"' not in confirm
    done = _confirm(browser, path, "resend", {"to": "gone@sink.test"})
    assert "sent again to 1 recipient" in browser.get(done.headers["location"]).text
    received = refusing_sink.wait_for(2)
    assert received[1].recipients == ["gone@sink.test"]
    wait_status(gateway.engine, "sent", 2)
    with gateway.engine.connect() as connection:
        (attempts,) = connection.execute(select(recipients.c.attempts).where(recipients.c.address == "gone@sink.test")).scalars()
    assert attempts == 1  # counted from zero again: new mail for the quota


def test_a_failed_email_whose_body_is_gone_says_plainly_it_cannot_be_sent_again(
    gateway: RunningGateway, area, refusing_sink: Sink
) -> None:
    # One recipient, refused: nothing waits any more, so the body is freed with the bounce.
    submit(gateway.smtp_port, b"Subject: lost\r\n\r\nthe body\r\n", ["gone@sink.test"])
    wait_status(gateway.engine, "bounced", 1)
    (message_id,) = _message_ids(gateway).values()
    browser = area()
    browser.login(A)
    path = f"/hostings/{HOSTING}/mail/{message_id}"
    deadline = time.monotonic() + 10
    while "resend-gone" not in (page := browser.get(path)).text:
        assert time.monotonic() < deadline, "the page never said the body is gone"
        time.sleep(0.1)
    text = unescape(page.text)
    assert "This email cannot be sent again: its body is no longer stored." in text
    assert "?confirm=resend" not in page.text and "<iframe" not in page.text
    csrf = browser.csrf(page)
    refused = browser.post(f"{path}/resend", {"csrf": csrf, "confirm": "yes"})
    assert refused.status_code == 303
    assert "no longer stored" in unescape(browser.get(refused.headers["location"]).text)


def test_the_viewer_shows_headers_text_attachments_and_frames_the_html(gateway: RunningGateway, area) -> None:
    _block(gateway)
    submit(gateway.smtp_port, samples.newsletter(), ["reader@sink.test"])
    wait_status(gateway.engine, "held", 1)
    (message_id,) = _message_ids(gateway).values()
    browser = area()
    browser.login(A)
    path = f"/hostings/{HOSTING}/mail/{message_id}"
    page = browser.get(path)
    text = unescape(page.text)
    assert page.status_code == 200
    assert "Café news" in text and "Zoë <web@shop.example>" in text and "Hello Zoë, the text part." in text
    assert "invoice.pdf.exe" in text and ".exe disguised as .pdf" in text and "1 remote image is blocked." in text
    assert "<script>document" not in page.text
    frame = re.search(r'<iframe id="mail-frame" src="([^"]+)" sandbox="allow-popups allow-popups-to-escape-sandbox"', page.text)
    assert frame
    # The frame is the frame listener's, another origin: the page may frame it and nothing else.
    frame_origin = f"http://127.0.0.1:{gateway.gateway.frame_port}"
    assert frame.group(1).startswith(frame_origin + "/view/")
    assert page.headers["content-security-policy"].endswith(f"frame-src {frame_origin}")
    # The frame link works without any cookie, with its own policy; the area does not serve it.
    inside = httpx2.get(frame.group(1))
    assert inside.status_code == 200 and "set-cookie" not in inside.headers
    policy = inside.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox allow-popups" in policy and "img-src 'self' data:;" in policy
    assert f"frame-ancestors {browser.origin};" in policy and "x-frame-options" not in inside.headers
    assert "<script" not in inside.text and "127.0.0.1:9" not in inside.text
    assert browser.get(frame.group(1).removeprefix(frame_origin)).status_code == 404
    cid = re.search(r'src="(/view/[^"]+/cid/\d+)"', inside.text).group(1)
    image = httpx2.get(frame_origin + cid)
    assert image.status_code == 200 and image.content == samples.PNG and image.headers["content-type"] == "image/png"
    shown = re.search(r'<iframe id="mail-frame" src="([^"]+)"', browser.get(f"{path}?images=1").text).group(1)
    allowed = httpx2.get(shown)
    assert "http://127.0.0.1:9/pixel.png" in allowed.text and "data: https: http:;" in allowed.headers["content-security-policy"]
    # The source and the attachments are downloads.
    raw = browser.get(f"{path}/raw")
    assert samples.newsletter() in raw.content  # as stored: the trace header intake adds, then the message
    assert raw.headers["content-disposition"].startswith(f'attachment; filename="message-{message_id}.eml"')
    exe_index = re.search(r'href="[^"]+/part/(\d+)" download>invoice', page.text).group(1)
    part = browser.get(f"{path}/part/{exe_index}")
    assert part.content == b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00"
    assert part.headers["content-type"] == "application/octet-stream" and "invoice.pdf.exe" in part.headers["content-disposition"]


def test_another_customer_sees_nothing_and_frame_links_do_not_travel(gateway: RunningGateway, area) -> None:
    _block(gateway)
    submit(gateway.smtp_port, samples.newsletter(), ["reader@sink.test"])
    wait_status(gateway.engine, "held", 1)
    (message_id,) = _message_ids(gateway).values()
    owner = area()
    owner.login(A)
    page = owner.get(f"/hostings/{HOSTING}/mail/{message_id}").text
    link = re.search(r'src="http://[^/"]+(/view/[^"]+)"', page).group(1)
    frames = f"http://127.0.0.1:{gateway.gateway.frame_port}"
    thief = area()
    thief.login(B)
    for suffix in ("", "/raw", "/part/0"):
        assert thief.get(f"/hostings/{HOSTING}/mail/{message_id}{suffix}").status_code == 404
        # B's own hosting does not show A's message either: a message is found only within its hosting.
        assert thief.get(f"/hostings/{OTHER}/mail/{message_id}{suffix}").status_code == 404
    csrf = thief.csrf(thief.get("/hostings"))
    for action in ("release", "delete", "resend"):
        answer = thief.post(f"/hostings/{OTHER}/mail/{message_id}/{action}", {"csrf": csrf, "confirm": "yes"})
        assert answer.status_code == 404
    assert _statuses(gateway, message_id) == {"reader@sink.test": "held"}
    assert httpx2.get(frames + link).status_code == 200
    # A tampered link (another message, another hosting) answers 403; an expired one 410.
    body, mac = link.removeprefix("/view/").split(".")
    tampered = httpx2.get(frames + f"/view/{body[:-2]}AA.{mac}")
    assert tampered.status_code == 403 and "not valid" in tampered.text
    from scriptmail.viewer import token

    claim = token.Claim(9999, message_id, int(time.time()) + 300, False)
    assert httpx2.get(frames + "/view/" + token.sign(b"not the key" * 3, claim)).status_code == 403
    key = gateway.gateway.frame_app.state.viewer_key
    old = token.sign(key, token.Claim(1, message_id, int(time.time()) - 1, False))
    expired = httpx2.get(frames + "/view/" + old)
    assert expired.status_code == 410 and "expired" in expired.text
    assert httpx2.get(frames + "/view/" + old + "/cid/0").status_code == 410
    # A genuine link of a message that does not exist (or whose body is gone): 410.
    gone = token.sign(key, token.Claim(1, 10**9, int(time.time()) + 60, False))
    assert httpx2.get(frames + "/view/" + gone).status_code == 410


@pytest.mark.parametrize(
    "suffix",
    ["/mail/x", "/mail/-1", "/mail/99999999999999999999", "/mail/1/part/x", "/mail/1/part/9999999", "/mail/1?confirm=purge"],
)
def test_bad_viewer_addresses_answer_a_clear_error(gateway: RunningGateway, area, suffix: str) -> None:
    browser = area()
    browser.login(A)
    answer = browser.get(f"/hostings/{HOSTING}{suffix}")
    assert answer.status_code in (400, 404) and "Traceback" not in answer.text


def test_bad_frame_links_answer_a_clear_refusal(gateway: RunningGateway) -> None:
    base = f"http://127.0.0.1:{gateway.gateway.frame_port}"
    for bad in ("x", "a.b", "%00", "é.é", "a" * 300, "a" * 5000, "AAAA.AAAA/cid/1", "AAAA.AAAA/cid/x"):
        answer = httpx2.get(f"{base}/view/{bad}")
        assert answer.status_code == 403 and "not valid" in answer.text, bad
        assert "default-src 'none'" in answer.headers["content-security-policy"]
    for bad in ("/", "/login", "/hostings", "/view", "/1.0/me", "/metrics", "/docs", "/openapi.json"):
        assert httpx2.get(base + bad).status_code == 404, bad  # the frame listener serves nothing of the areas
    assert httpx2.post(f"{base}/view/x").status_code == 405


def test_the_api_reads_one_message_and_acts_on_it_alone(gateway: RunningGateway, sink: Sink) -> None:
    with for_writing(gateway.engine).begin() as connection:
        from scriptmail.store import hostings as hosting_store

        hosting_store.add_hosting(connection, OTHER, "owner@other.example", plan="unlimited")
        tokens = {}
        for email, owns in ((A, HOSTING), (B, OTHER)):
            user = accounts.add_user(connection, email, "a long password")
            accounts.grant(connection, user, owns)
            tokens[email] = {"Authorization": f"Bearer {accounts.create_token(connection, user, 'test')[1]}"}
    ids = _held_three(gateway)
    api = httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}/1.0/hosting/web", timeout=30)
    one = api.get(f"/{HOSTING}/email/stored/{ids['first']}", headers=tokens[A])
    assert one.status_code == 200 and one.json()["text"] == "body of first\n" and one.json()["recipients"][0]["status"] == "held"
    source = api.get(f"/{HOSTING}/email/stored/{ids['first']}/source", headers=tokens[A])
    assert source.headers["content-type"] == "message/rfc822" and b"Subject: first\r\n" in source.content
    for path in ("", "/source"):
        assert api.get(f"/{HOSTING}/email/stored/{ids['first']}{path}", headers=tokens[B]).status_code == 404
        assert api.get(f"/{OTHER}/email/stored/{ids['first']}{path}", headers=tokens[B]).status_code == 404
    assert api.post(f"/{OTHER}/email/stored/{ids['first']}/release", headers=tokens[B]).status_code == 404
    assert api.post(f"/{HOSTING}/email/stored/{ids['first']}/release", headers=tokens[B]).status_code == 404
    assert api.post(f"/{HOSTING}/email/stored/{ids['first']}/release", headers=tokens[A]).json() == {"recipients": 1}
    (received,) = sink.wait_for(1)
    assert received.recipients == ["first@sink.test"]
    assert api.post(f"/{HOSTING}/email/stored/{ids['third']}/delete", headers=tokens[A]).json() == {"recipients": 1}
    again = api.post(f"/{HOSTING}/email/stored/{ids['third']}/delete", headers=tokens[A])
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    refused = api.post(f"/{HOSTING}/email/stored/{ids['second']}/resend", headers=tokens[A], json={})
    assert refused.status_code == 409  # nothing of it failed
    for bad in ("x", "0", "-1", "99999999999999999999999"):
        assert api.get(f"/{HOSTING}/email/stored/{bad}", headers=tokens[A]).status_code == 422
    assert api.get(f"/{HOSTING}/email/stored/424242", headers=tokens[A]).status_code == 404
    for body in ({"to": "not a list"}, {"to": [""]}, {"to": ["x" * 400]}, {"to": ["a@b.c"] * 1001}):
        assert api.post(f"/{HOSTING}/email/stored/{ids['second']}/resend", headers=tokens[A], json=body).status_code == 422
    assert api.post(f"/{HOSTING}/email/stored/{ids['second']}/resend", headers=tokens[A], content=b"\xff").status_code == 422
    assert api.get(f"/{HOSTING}/email/stored/{ids['first']}").status_code == 401


def test_bad_posts_to_the_actions_change_nothing(gateway: RunningGateway, area) -> None:
    ids = _held_three(gateway)
    browser = area()
    browser.login(A)
    path = f"/hostings/{HOSTING}/mail/{ids['first']}"
    csrf = browser.csrf(browser.get(path))
    for action in ("release", "delete", "resend"):
        assert browser.post(f"{path}/{action}", {"confirm": "yes"}).status_code == 403  # no CSRF token
        assert browser.post(f"{path}/{action}", {"csrf": csrf, "confirm": "yes"}, origin="https://evil.test").status_code == 403
        assert browser.post(f"{path}/{action}", {"csrf": csrf, "confirm": "y" * 50}).status_code == 422
        assert browser.post(f"/hostings/{HOSTING}/mail/x/{action}", {"csrf": csrf, "confirm": "yes"}).status_code == 404
        assert browser.post(f"/hostings/{HOSTING}/mail/424242/{action}", {"csrf": csrf, "confirm": "yes"}).status_code == 404
    refused = browser.post(f"{path}/resend", {"csrf": csrf, "confirm": "yes", "to": "x" * 400})
    assert "nothing to send again" in browser.get(refused.headers["location"]).text
    assert _statuses(gateway, ids["first"]) == {"first@sink.test": "held"}


def test_the_frame_listener_takes_a_free_port_when_the_next_one_is_taken(make_gateway) -> None:
    import socket

    for _ in range(20):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", taken - 1))
            except OSError:
                blocker.close()
                continue
        break
    else:
        pytest.skip("no two neighbouring free ports")
    try:
        running = make_gateway(web={"listen": f"127.0.0.1:{taken - 1}"})
        assert running.gateway.web_port == taken - 1 and running.gateway.frame_port not in (taken, taken - 1)
        answer = httpx2.get(f"http://127.0.0.1:{running.gateway.frame_port}/view/x")
        assert answer.status_code == 403
    finally:
        blocker.close()


def test_a_strange_host_header_never_reaches_the_pages_policy(gateway: RunningGateway, area) -> None:
    _block(gateway)
    submit(gateway.smtp_port, samples.newsletter(), ["reader@sink.test"])
    wait_status(gateway.engine, "held", 1)
    (message_id,) = _message_ids(gateway).values()
    browser = area()
    browser.login(A)
    path = f"/hostings/{HOSTING}/mail/{message_id}"
    for host in ("a;b", "x y", "evil.test'", "[::1"):
        answer = browser.get(path, headers={"Host": host})
        policy = answer.headers.get("content-security-policy", "")
        assert answer.status_code in (200, 400), host
        assert host not in policy and host not in answer.text.split("<iframe")[-1][:300], (host, policy)
