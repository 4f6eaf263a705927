"""The areas and the API show IDN domains in Unicode (U-labels), though the queue keeps A-labels,
and a search typed in Unicode finds them."""

from __future__ import annotations

import smtplib
from html import unescape

import httpx2
import pytest

from scriptmail.store import accounts
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, wait_status
from tests.support.sink import Sink
from tests.support.web_client import A


@pytest.fixture
def gateway(make_gateway, sink: Sink) -> RunningGateway:
    """Every domain goes to the sink through the relay host, so IDN domains need no DNS here."""
    return make_gateway(relay_host=f"127.0.0.1:{sink.port}")


def _send(gateway: RunningGateway) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        client.sendmail(
            "josé@shop.example",
            ["jürgen@bücher.example", "ana@sink.test"],
            b"Subject: hola\r\n\r\nx\r\n",
            mail_options=["SMTPUTF8"],
        )


def test_the_log_and_the_detail_show_unicode_and_a_unicode_search_finds_the_a_label(
    gateway: RunningGateway, sink: Sink, area
) -> None:
    _send(gateway)
    rows = wait_status(gateway.engine, "sent", 2)
    assert "jürgen@xn--bcher-kva.example" in {row["recipient"] for row in rows}  # stored as the A-label
    browser = area()
    browser.login(A)
    page = unescape(browser.get(f"/hostings/{HOSTING}/log").text)
    assert "jürgen@bücher.example" in page and "xn--bcher-kva" not in page
    found = unescape(browser.get(f"/hostings/{HOSTING}/log", params={"recipient": "bücher.example"}).text)
    assert "jürgen@bücher.example" in found and "ana@sink.test" not in found
    row = next(row for row in rows if row["recipient"].startswith("jürgen"))
    detail = unescape(browser.get(f"/hostings/{HOSTING}/log/{row['id']}").text)
    assert "jürgen@bücher.example" in detail and "josé@shop.example" in detail and "xn--" not in detail


def test_the_api_shows_unicode(gateway: RunningGateway, sink: Sink, area) -> None:
    _send(gateway)
    wait_status(gateway.engine, "sent", 2)
    with for_writing(gateway.engine).begin() as connection:
        token = accounts.create_token(connection, accounts.find_user(connection, email=A), "test")[1]
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}"}
        listed = client.get(f"/1.0/hosting/web/{HOSTING}/email/messages", headers=headers).json()
        assert {row["recipient"] for row in listed} == {"jürgen@bücher.example", "ana@sink.test"}
        assert {row["sender"] for row in listed} == {"josé@shop.example"}
        searched = client.get(
            f"/1.0/hosting/web/{HOSTING}/email/messages", params={"recipient": "jürgen@bücher"}, headers=headers
        )
        assert [row["recipient"] for row in searched.json()] == ["jürgen@bücher.example"]
