"""The caps on webhook endpoints (`webhooks.max_platform_endpoints`, `max_hosting_endpoints`): a
clear refusal in the operator area, the customer area and the APIs, and nothing created."""

from __future__ import annotations

import time

import httpx2
import pytest

from scriptmail.store import accounts, audit, webhooks
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.web_client import OPERATOR, A

PAGE = "/operator/webhooks"


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    return make_gateway(webhooks={"max_platform_endpoints": 2, "max_hosting_endpoints": 1})


def test_the_platform_endpoint_cap_is_refused_clearly_in_the_area_and_the_admin_api(gateway: RunningGateway, area) -> None:
    with for_writing(gateway.engine).begin() as connection:
        webhooks.create_endpoint(connection, None, "https://hooks.example.com/1", "*", time.time())
        webhooks.create_endpoint(connection, HOSTING, "https://hooks.example.com/mine", "*", time.time())  # a customer's: not counted
        operator = accounts.find_user(connection, email=OPERATOR)
        token = accounts.create_token(connection, operator, "panel", scope="manage")[1]
    browser = area()
    browser.login(OPERATOR)
    csrf = browser.csrf(browser.get(PAGE))
    assert browser.post(PAGE, {"url": "https://hooks.example.com/2", "events": ["*"], "csrf": csrf}).status_code == 200
    full = browser.post(PAGE, {"url": "https://hooks.example.com/3", "events": ["*"], "csrf": csrf})
    assert full.status_code == 409 and "There are 2 webhook endpoints already, the most allowed: remove one first." in full.text
    assert 'role="alert"' in full.text and "https://hooks.example.com/3" in full.text  # the form keeps what was typed
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        answer = client.post("/1.0/admin/webhooks", json={"url": "https://hooks.example.com/4", "events": ["*"]},
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 409 and "the platform has at most 2 webhook endpoints" in answer.json()["detail"]
    assert answer.headers["content-type"].startswith("application/problem+json")
    with gateway.engine.connect() as connection:
        assert [e.url for e in webhooks.list_endpoints(connection, None)] == ["https://hooks.example.com/1", "https://hooks.example.com/2"]
        assert audit.entries(connection, action="webhook.create")[1] == 1  # the refused ones left no entry
    # The customer's own cap (webhooks.max_hosting_endpoints) answers the same way.
    customer = area()
    customer.login(A)
    mine = f"/hostings/{HOSTING}/webhooks"
    refused = customer.post(mine, {"url": "https://hooks.example.com/more", "events": ["*"], "csrf": customer.csrf(customer.get(mine))})
    assert refused.status_code == 409 and "There are 1 webhook endpoints already" in refused.text
    with gateway.engine.connect() as connection:
        user = accounts.find_user(connection, email=A)
    with for_writing(gateway.engine).begin() as connection:
        customer_token = accounts.create_token(connection, user, "mine")[1]
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        answer = client.post(f"/1.0/hosting/web/{HOSTING}/webhooks", json={"url": "https://hooks.example.com/more", "events": ["*"]},
                             headers={"Authorization": f"Bearer {customer_token}"})  # fmt: skip
    assert answer.status_code == 409 and "a hosting has at most 1 webhook endpoints" in answer.text
    with gateway.engine.connect() as connection:
        assert [e.url for e in webhooks.list_endpoints(connection, HOSTING)] == ["https://hooks.example.com/mine"]
