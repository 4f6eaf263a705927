"""The customer area's Sending domains page over real HTTP: add a domain, read the exact record with
its copy buttons, check it, and the refusals (bad names, another hosting's domain)."""

from __future__ import annotations

import html

from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.web_client import OPERATOR, OTHER, A, B

PAGE = f"/hostings/{HOSTING}/domains"


def test_a_customer_adds_a_domain_and_sees_what_to_publish(gateway: RunningGateway, area) -> None:
    submit(gateway.smtp_port, b"From: web@news.example\r\nSubject: s\r\n\r\nx\r\n", ["r@sink.test"])
    wait_status(gateway.engine, "sent", 1)
    browser = area()
    browser.login(A)
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert "news.example" in page.text and "Seen, not set up" in page.text and "Set up this domain" in page.text
    added = browser.post(PAGE, {"csrf": browser.csrf(page), "domain": "Bücher.example"})
    assert added.status_code == 303
    page = browser.get(PAGE)
    text = html.unescape(page.text)
    assert "bücher.example" in text and "Waiting for DNS" in text and "added: publish its record" in text
    assert "._domainkey.xn--bcher-kva.example" in text and "v=DKIM1; k=rsa; p=" in text
    assert text.count("data-copy=") == 2 and 'data-done="Copied"' in text
    assert "PRIVATE" not in text
    checked = browser.post(f"{PAGE}/check", {"csrf": browser.csrf(page), "domain": "xn--bcher-kva.example"})
    assert checked.status_code == 303
    assert "Last checked" in browser.get(PAGE).text


def test_bad_names_and_another_hostings_domain_come_back_with_the_form(gateway: RunningGateway, area) -> None:
    owner_b = area()
    owner_b.login(B)
    page = owner_b.get(f"/hostings/{OTHER}/domains")
    assert owner_b.post(f"/hostings/{OTHER}/domains", {"csrf": owner_b.csrf(page), "domain": "taken.example"}).status_code == 303
    browser = area()
    browser.login(A)
    csrf = browser.csrf(browser.get(PAGE))
    bad = browser.post(PAGE, {"csrf": csrf, "domain": "not a domain<script>"})
    assert bad.status_code == 400 and "This is not a domain name" in bad.text
    assert 'value="not a domain&lt;script&gt;"' in bad.text  # what was typed comes back, escaped
    taken = browser.post(PAGE, {"csrf": csrf, "domain": "taken.example"})
    assert taken.status_code == 409 and "Another hosting sends with this domain" in taken.text
    assert 'name="move"' not in taken.text  # only an operator is offered the move
    forged_move = browser.post(PAGE, {"csrf": csrf, "domain": "taken.example", "move": "yes"})
    assert forged_move.status_code == 409  # a customer's "move" is ignored
    assert browser.post(PAGE, {"csrf": csrf, "domain": "x.example", "move": "y" * 11}).status_code == 422
    assert browser.post(f"{PAGE}/check", {"csrf": csrf, "domain": "taken.example"}).status_code == 404
    assert browser.post(PAGE, {"csrf": "forged", "domain": "x.example"}).status_code == 403
    spanish = area()
    spanish.login(A)
    spanish.post("/language", {"csrf": spanish.csrf(spanish.get(PAGE)), "language": "es", "next": PAGE})
    assert "Dominios de envío" in spanish.get(PAGE).text


def test_the_operator_sees_every_domain_by_state_and_customers_do_not(gateway: RunningGateway, area) -> None:
    owner = area()
    owner.login(A)
    owner.post(PAGE, {"csrf": owner.csrf(owner.get(PAGE)), "domain": "shop.example"})
    operator = area()
    operator.login(OPERATOR)
    everything = operator.get("/operator/domains")
    assert everything.status_code == 200 and "shop.example" in everything.text and "Waiting for DNS (1)" in everything.text
    assert "shop.example" not in operator.get("/operator/domains?state=verified").text
    assert "shop.example" in operator.get("/operator/domains?state=pending").text
    assert operator.get("/operator/domains?state=<bad>").status_code == 200
    assert owner.get("/operator/domains").status_code == 403


def test_an_operator_moves_another_hostings_domain_from_the_area_and_only_when_asked(gateway: RunningGateway, area) -> None:
    owner_b = area()
    owner_b.login(B)
    page = owner_b.get(f"/hostings/{OTHER}/domains")
    assert owner_b.post(f"/hostings/{OTHER}/domains", {"csrf": owner_b.csrf(page), "domain": "taken.example"}).status_code == 303
    assert "taken.example added" in owner_b.get(f"/hostings/{OTHER}/domains").text  # its notice is shown once
    operator = area()
    operator.login(OPERATOR)
    page = operator.get(PAGE)
    assert 'name="move" value="yes"' in page.text and "an operator's decision" in html.unescape(page.text)
    csrf = operator.csrf(page)
    refused = operator.post(PAGE, {"csrf": csrf, "domain": "taken.example"})
    assert refused.status_code == 409 and "tick the box below to move it here" in refused.text
    assert "taken.example" in operator.get(f"/hostings/{OTHER}/domains").text
    assert operator.post(PAGE, {"csrf": csrf, "domain": "taken.example", "move": "yes"}).status_code == 303
    assert "taken.example" in operator.get(PAGE).text
    assert "taken.example" not in owner_b.get(f"/hostings/{OTHER}/domains").text
