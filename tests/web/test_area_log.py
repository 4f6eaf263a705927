"""The tracking pages of a hosting over real HTTP (issue 5): the message log with its filters,
pages and details, the held mail before a purge, and which scripts send; each only for its owner."""

from __future__ import annotations

import re
import smtplib
import time
from datetime import date, timedelta
from html import unescape

import pytest
from sqlalchemy import Engine, select, text

from scriptmail.control.states import Action, Actor
from scriptmail.model import Origin, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from scriptmail.store import queue
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from scriptmail.store.schema import recipients
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink
from tests.support.web_client import OTHER, A, B

DOMAIN = "bounces.gateway.test"


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    """The area's gateway, with a bounce listener for the DSN test."""
    return make_gateway(bounces={"domain": DOMAIN, "listen": "127.0.0.1:0"})


def _mail(subject: str, script: str = "", body: str = "hello", extra: str = "") -> bytes:
    head = f"From: web@shop.example\r\nTo: reader@sink.test\r\nSubject: {subject}\r\n"
    if script:
        head += f"X-PHP-Originating-Script: 1000:{script}\r\n"
    return (head + extra + "\r\n" + body + "\r\n").encode()


def _rows(html: str) -> list[str]:
    """The recipients of a log page, in order."""
    return [unescape(found) for found in re.findall(r'<th scope="row" class="address"><a href="[^"]+">([^<]*)</a>', html)]


def _ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'href="/hostings/[^/"]+/log/(\d+)"', html)]


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    return unescape(found.group(1)) if found else None


def _block(gateway: RunningGateway, name: str = HOSTING) -> None:
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, name, Action.BLOCK, Actor.CUSTOMER, time.time(), reason="test")


def _wait_held(engine: Engine, count: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        with engine.connect() as connection:
            held = connection.execute(
                select(text("count(*)")).select_from(recipients).where(recipients.c.status == "held")
            ).scalar()
        if held >= count:
            return
        assert time.monotonic() < deadline, f"{held} held, expected {count}"
        time.sleep(0.05)


# --- the message log ----------------------------------------------------------------------------


def test_the_log_shows_each_recipient_newest_first_and_its_filters_narrow_it(gateway: RunningGateway, sink: Sink, area) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.1.1 no such user" if address.startswith("nobody") else "250 2.1.5 ok")
    submit(gateway.smtp_port, _mail("Your order 42", "/home/shop/www/order.php"), ["ana@sink.test"])
    submit(gateway.smtp_port, _mail("Newsletter <june>", "/home/shop/www/news.php"), ["bea@sink.test", "nobody@sink.test"])
    wait_status(gateway.engine, "sent", 2)
    wait_status(gateway.engine, "bounced", 1)
    browser = area()
    browser.login(A)
    page = browser.get(f"/hostings/{HOSTING}/log")
    assert page.status_code == 200
    assert _rows(page.text) == ["nobody@sink.test", "bea@sink.test", "ana@sink.test"]
    assert "Newsletter &lt;june&gt;" in page.text and "<june>" not in page.text  # escaped
    assert "/home/shop/www/news.php" in page.text and "no such user" in page.text
    assert 'rel="stylesheet" href="/static/log.css"' in page.text and 'aria-current="page">Message log' in page.text

    def shown(**filters: str) -> list[str]:
        answer = browser.get(f"/hostings/{HOSTING}/log", params=filters)
        assert answer.status_code == 200, answer.text
        return _rows(answer.text)

    assert shown(status="bounced") == ["nobody@sink.test"]
    assert shown(status="sent") == ["bea@sink.test", "ana@sink.test"]
    assert shown(recipient="BEA@") == ["bea@sink.test"]  # contains, whatever the case
    assert shown(subject="order") == ["ana@sink.test"]
    assert shown(script="news.php") == ["nobody@sink.test", "bea@sink.test"]
    assert shown(script="news.php", status="sent") == ["bea@sink.test"]
    today = date.today()
    assert len(shown(since=(today - timedelta(days=1)).isoformat(), until=(today + timedelta(days=1)).isoformat())) == 3
    assert shown(until=(today - timedelta(days=2)).isoformat()) == []
    assert shown(since=(today + timedelta(days=2)).isoformat()) == []
    assert (
        "No email matches these filters." in browser.get(f"/hostings/{HOSTING}/log", params={"subject": "nothing like it"}).text
    )
    # The form keeps what was typed, and the status is chosen in the select.
    kept = browser.get(f"/hostings/{HOSTING}/log", params={"status": "bounced", "subject": "News"}).text
    assert '<option value="bounced" selected>' in kept and 'value="News"' in kept


def test_bad_filters_answer_400_with_the_form_and_what_is_wrong(gateway: RunningGateway, area) -> None:
    browser = area()
    browser.login(A)
    for params, words in (
        ({"status": "lost"}, "Unknown status"),
        ({"since": "2026-13-45"}, "Not a date"),
        ({"until": "yesterday"}, "Not a date"),
        ({"since": "2026-06-02", "until": "2026-06-01"}, "end date is before the start date"),
        ({"subject": "x" * 201}, "Too long"),
    ):
        answer = browser.get(f"/hostings/{HOSTING}/log", params=params)
        assert answer.status_code == 400, params
        assert words in answer.text and 'aria-invalid="true"' in answer.text and 'role="alert"' in answer.text
    for params in ({"before": "abc"}, {"after": "-1"}, {"before": "5", "after": "3"}, {"before": "9" * 40}):
        answer = browser.get(f"/hostings/{HOSTING}/log", params=params)
        assert answer.status_code == 400 and "not valid" in answer.text
    assert browser.get(f"/hostings/{HOSTING}/held", params={"before": "x"}).status_code == 400
    assert browser.get(f"/hostings/{HOSTING}/log/abc").status_code == 404


def test_the_log_pages_by_position_without_overlap(gateway: RunningGateway, area) -> None:
    addresses = [f"r{n:02d}@sink.test" for n in range(60)]
    submit(gateway.smtp_port, _mail("first batch"), addresses[:30])
    submit(gateway.smtp_port, _mail("second batch"), addresses[30:])
    wait_status(gateway.engine, "sent", 60)
    browser = area()
    browser.login(A)
    first = browser.get(f"/hostings/{HOSTING}/log").text
    assert len(_ids(first)) == 50 and _ids(first) == sorted(_ids(first), reverse=True)
    assert _link(first, "prev") is None
    older = _link(first, "next")
    assert older and "before=" in older
    second = browser.get(older).text
    assert len(_ids(second)) == 10 and max(_ids(second)) < min(_ids(first))
    assert set(_rows(first)) | set(_rows(second)) == set(addresses)
    assert _link(second, "next") is None
    back = browser.get(_link(second, "prev")).text
    assert _ids(back) == _ids(first)
    # Filters are kept from page to page.
    filtered = browser.get(f"/hostings/{HOSTING}/log", params={"subject": "batch", "status": "sent"}).text
    assert "subject=batch" in _link(filtered, "next") and "status=sent" in _link(filtered, "next")


def test_a_filter_that_matches_little_searches_window_by_window(gateway: RunningGateway, area, monkeypatch) -> None:
    monkeypatch.setattr(store_log, "SEARCH_WINDOW", 4)  # the web part runs in this process
    submit(gateway.smtp_port, _mail("the rare one"), ["rare@sink.test"])
    submit(gateway.smtp_port, _mail("common"), [f"c{n}@sink.test" for n in range(9)])
    wait_status(gateway.engine, "sent", 10)
    browser = area()
    browser.login(A)
    page = browser.get(f"/hostings/{HOSTING}/log", params={"recipient": "rare"}).text
    assert "rare@sink.test" not in page and "searched the next 4 emails" in page
    pages = 1
    while "rare@sink.test" not in page:
        page = browser.get(_link(page, "next")).text
        pages += 1
        assert pages < 5
    assert pages == 3 and "recipient=rare" in _link(page, "prev")  # 10 recipients, 4 at a time


def test_the_detail_of_a_recipient_shows_its_provenance_and_every_attempt(gateway: RunningGateway, sink: Sink, area) -> None:
    submit(
        gateway.smtp_port,
        _mail("Invoice", "/home/shop/www/invoice.php", extra="Message-ID: <inv-1@shop.example>\r\n"),
        ["ana@sink.test"],
    )
    (row,) = wait_status(gateway.engine, "sent", 1)
    browser = area()
    browser.login(A)
    log = browser.get(f"/hostings/{HOSTING}/log").text
    assert f"/hostings/{HOSTING}/log/{row['id']}" in log
    page = browser.get(f"/hostings/{HOSTING}/log/{row['id']}")
    assert page.status_code == 200
    for words in (
        "ana@sink.test",
        "web@shop.example",
        "Invoice",
        "&lt;inv-1@shop.example&gt;",
        "/home/shop/www/invoice.php",
        "SMTP submission",
        "127.0.0.1",
        "test-node",
        "accepted by sink",
        "Delivery attempts",
    ):
        assert words in page.text, words
    assert re.search(r'<td class="num">250</td>', page.text)
    assert browser.get(f"/hostings/{HOSTING}/log/{row['id'] + 1000}").status_code == 404


def test_another_customer_sees_none_of_these_pages(gateway: RunningGateway, area) -> None:
    submit(gateway.smtp_port, _mail("private"), ["ana@sink.test"])
    (mine,) = wait_status(gateway.engine, "sent", 1)
    with for_writing(gateway.engine).begin() as connection:
        other_id = hosting_store.find_hosting(connection, name=OTHER).id
        (message_id,) = queue.insert_submissions(
            connection,
            [
                (
                    Submission(
                        other_id, "b@other.example", ("x@sink.test",), b"Subject: b\r\n\r\nb\r\n", Origin.SMTP, "127.0.0.1"
                    ),
                    time.time(),
                )
            ],
        )
        theirs = connection.execute(select(recipients.c.id).where(recipients.c.message_id == message_id)).scalar()
    b = area()
    b.login(B)
    for name in (HOSTING, "ghost.example", "_system"):
        for path in ("log", f"log/{mine['id']}", "held", "scripts"):
            answer = b.get(f"/hostings/{name}/{path}")
            assert answer.status_code == 404, (name, path)
            assert "private" not in answer.text
    assert b.get(f"/hostings/{OTHER}/log").status_code == 200
    assert b.get(f"/hostings/{OTHER}/log/{mine['id']}").status_code == 404  # A's recipient under B's own hosting
    a = area()
    a.login(A)
    assert a.get(f"/hostings/{HOSTING}/log/{theirs}").status_code == 404
    assert a.get(f"/hostings/{HOSTING}/log/{theirs}").text == a.get(f"/hostings/{HOSTING}/log/999999").text
    anonymous = area()
    for path in ("log", "held", "scripts", f"log/{mine['id']}"):
        assert anonymous.get(f"/hostings/{HOSTING}/{path}").headers["location"] == "/login"


def test_the_log_is_read_along_an_index_newest_first(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        hosting_id = hosting_store.add_hosting(connection, "big.test", "o@big.test").id
    with engine.connect() as connection:
        statement = store_log.recent_query(store_log.Filters(hosting_id=hosting_id), limit=51, before_id=10**9)
        compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
        if connection.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
            assert "ix_recipients_hosting_id" in plan and "TEMP B-TREE" not in plan, plan
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")
            connection.exec_driver_sql("SET enable_sort = off")
            plan = " ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}"))
            assert "ix_recipients_hosting_id" in plan and "Sort" not in plan, plan
        assert store_log.recent(connection, store_log.Filters(hosting_id=hosting_id), before_id=10) == []


# --- held mail -------------------------------------------------------------------------------------


HOSTILE = (
    b"From: =?utf-8?q?Caf=C3=A9?= <web@shop.example>\r\n"
    b"To: reader@sink.test\r\n"
    b"Subject: <script>alert('held')</script>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="never-closed"\r\n'
    b"\r\n"
    b"--never-closed\r\n"
    b"Content-Type: text/plain; charset=no-such-charset\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"PGI+Ym9sZDwvYj4gYW5kIG1vcmU=!!\r\n"
)


def test_held_mail_shows_its_headers_its_text_and_the_totals(gateway: RunningGateway, area) -> None:
    _block(gateway)
    submit(
        gateway.smtp_port,
        _mail("Held offer", "/home/shop/www/offer.php", body="Buy <b>now</b> & save"),
        ["ana@sink.test", "bea@sink.test"],
    )
    submit(gateway.smtp_port, HOSTILE, ["cid@sink.test"])
    _wait_held(gateway.engine, 3)
    browser = area()
    browser.login(A)
    page = browser.get(f"/hostings/{HOSTING}/held")
    assert page.status_code == 200
    text = page.text
    assert re.search(r'Held recipients</dt>\s*<dd class="number">3</dd>', text)
    assert re.search(r'Held emails</dt>\s*<dd class="number">2</dd>', text)
    assert "Held offer" in text and "/home/shop/www/offer.php" in text and "reader@sink.test" in text
    assert "Buy &lt;b&gt;now&lt;/b&gt; &amp; save" in text and "<b>now</b>" not in text
    assert f'href="/hostings/{HOSTING}#actions-title"' in text
    # The hostile message: escaped, decoded as far as it goes, and the page still answers.
    assert "&lt;script&gt;alert(" in text and "<script>" not in text
    assert "Café" in text
    assert "&lt;b&gt;bold&lt;/b&gt; and more" in text
    assert text.index("Held offer") > text.index("&lt;script&gt;")  # newest first


def test_held_text_is_not_shown_when_the_operator_turns_it_off(gateway: RunningGateway, area) -> None:
    gateway.settings.web = gateway.settings.web.model_copy(update={"show_held_body": False})
    _block(gateway)
    submit(gateway.smtp_port, _mail("Secret subject", body="the secret body"), ["ana@sink.test"])
    _wait_held(gateway.engine, 1)
    browser = area()
    browser.login(A)
    page = browser.get(f"/hostings/{HOSTING}/held").text
    assert "Secret subject" in page and "the secret body" not in page
    assert "disabled the display of email bodies" in page and "<pre" not in page


def test_held_mail_pages_by_message(gateway: RunningGateway, area) -> None:
    _block(gateway)
    for n in range(52):
        submit(gateway.smtp_port, _mail(f"held number {n}"), ["ana@sink.test"])
    _wait_held(gateway.engine, 52)
    browser = area()
    browser.login(A)
    first = browser.get(f"/hostings/{HOSTING}/held").text
    assert first.count('class="panel held-message"') == 50 and "held number 51" in first and "held number 1<" not in first
    second = browser.get(_link(first, "next")).text
    assert second.count('class="panel held-message"') == 2 and "held number 1<" in second and "held number 0<" in second
    assert _link(second, "next") is None


def test_a_held_message_whose_text_is_huge_is_shortened() -> None:
    from scriptmail.store import held

    body = "line of text\n" * 5000
    content = held.read(f"Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}".encode())
    assert content.truncated and len(content.text.encode()) <= held.TEXT_BYTES
    cut = held.read(b"Subject: cut\r\n\r\nonly the start", complete=False)
    assert cut.text == "only the start" and cut.truncated
    attached = held.read(
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nshort\r\n'
        b"--b\r\nContent-Type: application/pdf\r\n\r\nxxxx",
        complete=False,
    )
    assert attached.text.strip() == "short" and not attached.truncated
    assert held.read(b"\x00\xff garbage without a header").text_state in ("shown", "no-text")
    assert held.read(b"Content-Type: text/html\r\n\r\n<p>only html</p>").text_state == "no-text"
    nested = b"".join(b'Content-Type: multipart/mixed; boundary="%d"\r\n\r\n--%d\r\n' % (n, n) for n in range(3000))
    assert held.read(nested).text_state in ("unreadable", "no-text")


# --- which scripts send ------------------------------------------------------------------------------


def _report(gateway: RunningGateway, verp: str, address: str) -> int:
    data = (
        f"From: MAILER-DAEMON@sink.test\r\nTo: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.sink.test\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--B--\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", gateway.gateway.bounce_port, timeout=10) as client:
        client.ehlo("mx.sink.test")
        client.mail("")
        client.rcpt(verp)
        return client.data(data)[0]


def _script_row(html: str, script: str) -> list[str]:
    found = re.search(rf'<th scope="row" class="script">{re.escape(script)}</th>(.*?)</tr>', html, re.S)
    assert found, f"no row for {script}"
    return [cell.strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", found.group(1), re.S)]


def test_the_scripts_page_shows_what_each_script_sent_and_its_bounce_share(gateway: RunningGateway, sink: Sink, area) -> None:
    submit(gateway.smtp_port, _mail("news", "/home/shop/www/news.php"), ["ana@sink.test", "bea@sink.test"])
    submit(gateway.smtp_port, _mail("no script"), ["cid@sink.test"])
    received = sink.wait_for(3)
    wait_status(gateway.engine, "sent", 3)
    verp = next(message.mail_from for message in received if message.recipients == ["ana@sink.test"])
    assert _report(gateway, verp, "ana@sink.test") == 250
    wait_status(gateway.engine, "bounced", 1)
    browser = area()
    browser.login(A)
    page = browser.get(f"/hostings/{HOSTING}/scripts")
    assert page.status_code == 200
    messages, recipients_, bounced, share, last = _script_row(page.text, "1000:/home/shop/www/news.php")
    assert (messages, recipients_, bounced, share) == ("1", "2", "1", "50.0%") and str(date.today().year) in last
    assert _script_row(page.text, "(unknown)")[:4] == ["1", "1", "0", "0.0%"]
    browser.post("/language", {"language": "fr", "next": "/", "csrf": browser.csrf(page)})
    french = browser.get(f"/hostings/{HOSTING}/scripts").text
    assert "Scripts qui envoient" in french and "50,0" in french


def test_a_bounce_at_delivery_shows_in_the_scripts_share(gateway: RunningGateway, sink: Sink, area) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.1.1 no such user" if address.startswith("nobody") else "250 2.1.5 ok")
    submit(gateway.smtp_port, _mail("contact", "/home/shop/www/contact.php"), ["ana@sink.test", "nobody@sink.test"])
    wait_status(gateway.engine, "bounced", 1)
    browser = area()
    browser.login(A)
    page = browser.get(f"/hostings/{HOSTING}/scripts").text
    assert _script_row(page, "1000:/home/shop/www/contact.php")[:4] == ["1", "2", "1", "50.0%"]
