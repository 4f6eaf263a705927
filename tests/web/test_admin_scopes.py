"""Scopes and tenancy, swept over every route the application has (a new route is covered the day
it is added): a customer's token gets 403 on every /1.0/admin route and method, a `read` token
gets 403 on every write of the API, and nothing changes."""

from __future__ import annotations

import re

import httpx2

from scriptmail.store import accounts, audit
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.web.app import create_app
from tests.support.gateway import HOSTING, RunningGateway
from tests.web.test_isolation import _flat

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _operations(prefix: str) -> list[tuple[str, str]]:
    found = set()
    for route in _flat(create_app(None).routes):  # type: ignore[arg-type]
        path = getattr(route, "path", "")
        if path.startswith(prefix):
            found.update((method, path) for method in getattr(route, "methods", set()) - {"HEAD"})
    assert found, f"no route under {prefix}"
    return sorted(found)


def _fill(path: str, user_id: int) -> str:
    path = path.replace("{name}", HOSTING).replace("{serviceName}", HOSTING)
    path = re.sub(r"\{user_id\}", str(user_id), path)
    return re.sub(r"\{[a-z_]+\}", "1", path)


def _state(gateway: RunningGateway) -> tuple:
    with gateway.engine.connect() as connection:
        hostings = [(h.name, h.state, h.plan, h.owner_email, h.has_smtp_password) for h in hosting_store.list_hostings(connection)]
        users, _ = accounts.list_users(connection)
        return hostings, users, audit.entries(connection)[1]


def test_customers_get_403_on_every_admin_route_and_read_tokens_on_every_write(gateway: RunningGateway) -> None:
    with for_writing(gateway.engine).begin() as connection:
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        customer = accounts.add_user(connection, "a@users.test", "a long password")
        accounts.grant(connection, customer, HOSTING)
        customer_token = accounts.create_token(connection, customer, "mine")[1]
        read_token = accounts.create_token(connection, operator, "ro", scope="read")[1]
    before = _state(gateway)
    bodies = {
        "POST": {"name": "new.example", "owner": "o@x.test", "email": "n@x.test", "user_id": customer.id, "action": "BLOCK"},
        "PUT": {"owner": "o@x.test", "email": "thief@evil.test"},
        "PATCH": {"plan": "pro"},
    }
    checked = {"customer": 0, "read": 0}
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        for method, template in _operations("/1.0/admin"):
            path = _fill(template, customer.id) + ("?user_id=1" if template.endswith("/tokens") and method == "GET" else "")
            answer = client.request(method, path, json=bodies.get(method), headers={"Authorization": f"Bearer {customer_token}"})
            assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
            assert "for operators" in answer.json()["detail"]
            checked["customer"] += 1
        for method, template in _operations("/1.0/"):
            if method not in WRITES:
                continue
            path = _fill(template, customer.id)
            answer = client.request(method, path, json=bodies.get(method), headers={"Authorization": f"Bearer {read_token}"})
            assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
            checked["read"] += 1
    assert checked["customer"] >= 16 and checked["read"] >= 12
    assert _state(gateway) == before
