"""Tenant isolation, swept over every route the application has (so a new page is covered the day
it is added): customer B, with every method, on A's hosting, A's message ids, an unknown hosting
and the platform's own, gets 404 where the route exists, and exactly the same answer for A's
hosting as for one that does not exist. Nothing of A changes."""

from __future__ import annotations

import re

import httpx2
import pytest

from scriptmail.store import hostings as hosting_store
from scriptmail.web.app import create_app
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.web_client import A, B

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
TARGETS = (HOSTING, "ghost.example", "_system")


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    """The sweep calls every route with every method from one token: far more than the per-token
    rate limit lets through at once (tested on its own in test_admin_api)."""
    return make_gateway(web={"api_burst": 100_000, "api_rate_per_minute": 1_000_000})


def _routes(prefix: str) -> list[tuple[str, set[str]]]:
    """Every route under `prefix` that names a hosting, with the methods it answers."""
    found: dict[str, set[str]] = {}
    for route in _flat(create_app(None).routes):  # type: ignore[arg-type]
        path = getattr(route, "path", "")
        if path.startswith(prefix) and ("{name}" in path or "{serviceName}" in path):
            found.setdefault(path, set()).update(getattr(route, "methods", set()))
    assert found, f"no route under {prefix}"
    return sorted(found.items())


def _flat(routes) -> list:
    """FastAPI keeps an included router as one entry; its routes carry their full paths."""
    flat = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        flat.extend(_flat(inner.routes) if inner is not None else [route])
    return flat


def _fill(path: str, hosting: str, message_id: int) -> str:
    path = path.replace("{name}", hosting).replace("{serviceName}", hosting)
    path = re.sub(r"\{(id|recipient_id|message_id)\}", str(message_id), path)
    return re.sub(r"\{[a-z_]+\}", "block", path)  # other parameters (an action key): a valid value


def _snapshot(gateway: RunningGateway) -> tuple:
    with gateway.engine.connect() as connection:
        hosting = hosting_store.find_hosting(connection, name=HOSTING)
        return hosting.state, hosting.report_to, hosting.plan


def test_customer_area_routes_answer_404_for_someone_elses_hosting(gateway: RunningGateway, area) -> None:
    submit(gateway.smtp_port, b"Subject: private\r\n\r\nx\r\n", ["secret@sink.test"])
    (row,) = wait_status(gateway.engine, "sent", 1)
    before = _snapshot(gateway)
    thief = area()
    thief.login(B)
    csrf = thief.csrf(thief.get("/hostings"))
    form = {"csrf": csrf, "action": "BLOCK", "confirm": "yes", "email": "thief@evil.test", "plan": "unlimited", "state": "spam"}
    checked = 0
    for template, methods in _routes("/hostings/"):
        answers = {}
        for target in TARGETS:
            path = _fill(template, target, row["id"])
            for method in METHODS:
                answer = thief.post(path, form) if method == "POST" else thief.client.request(method, path, headers=thief._headers())
                answers.setdefault(method, set()).add((answer.status_code, answer.text.replace(target, "NAME")))
                if method in methods:
                    assert answer.status_code == 404, (method, path, answer.status_code)
                    checked += 1
                else:
                    assert answer.status_code in (404, 405), (method, path, answer.status_code)
        for method, seen in answers.items():
            assert len(seen) == 1, f"{method} {template} tells A's hosting from an unknown one"
    assert checked >= 12
    assert _snapshot(gateway) == before


def test_api_routes_answer_404_for_someone_elses_hosting(gateway: RunningGateway, area) -> None:
    from scriptmail.store import accounts
    from scriptmail.store.engine import for_writing

    submit(gateway.smtp_port, b"Subject: private\r\n\r\nx\r\n", ["secret@sink.test"])
    (row,) = wait_status(gateway.engine, "sent", 1)
    with for_writing(gateway.engine).begin() as connection:
        _, token = accounts.create_token(connection, accounts.find_user(connection, email=B), "sweep")
    before = _snapshot(gateway)
    base = f"http://127.0.0.1:{gateway.gateway.web_port}"
    headers = {"Authorization": f"Bearer {token}"}
    bodies = {"PUT": {"email": "thief@evil.test"}, "POST": {"action": "BLOCK"}}
    with httpx2.Client(base_url=base, timeout=30) as client:
        for template, methods in _routes("/1.0/hosting/"):  # /1.0/admin: 403 for customers (test_admin_scopes)
            for method in METHODS:
                seen = set()
                for target in TARGETS:
                    path = _fill(template, target, row["id"]) + ("?limit=10" if template.endswith("/bounces") else "")
                    answer = client.request(method, path, json=bodies.get(method), headers=headers)
                    seen.add((answer.status_code, answer.text.replace(target, "NAME")))
                    assert answer.status_code == (404 if method in methods else 405), (method, path, answer.status_code)
                assert len(seen) == 1, f"{method} {template} tells A's hosting from an unknown one"
    assert _snapshot(gateway) == before


def test_customer_area_routes_answer_404_for_hostile_hosting_names(gateway: RunningGateway, area) -> None:
    """A NUL, a line break or an over-long name in the path is no hosting of anyone's: 404, never a
    500 (PostgreSQL refuses a NUL in a query outright)."""
    browser = area()
    browser.login(A)
    checked = 0
    for template, methods in _routes("/hostings/"):
        if "GET" not in methods:
            continue
        for name in ("%00", "shop%00.example", "a%0Ab", "x" * 300):
            path = _fill(template, name, 1)
            answer = browser.get(path)
            assert answer.status_code == 404, (path, answer.status_code)
            checked += 1
    assert checked >= 20
