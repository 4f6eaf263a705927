"""The REST API over real HTTP against a running gateway: the reference's paths and shapes,
tenant isolation, refusals and bad input (issue 5)."""

from __future__ import annotations

import time

import httpx2
import pytest
from openapi_spec_validator import validate

from scriptmail.store import accounts
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink

OTHER = "other.example"


@pytest.fixture
def api(gateway: RunningGateway):
    """Tokens of A (owns shop.example), B (owns other.example) and an operator; an HTTP client."""
    with for_writing(gateway.engine).begin() as connection:
        hosting_store.add_hosting(connection, OTHER, "owner@other.example", plan="unlimited")
        tokens = {}
        for email, owns, operator in (("a@users.test", HOSTING, False), ("b@users.test", OTHER, False), ("op@users.test", None, True)):
            user = accounts.add_user(connection, email, "a long password", operator=operator)
            if owns:
                accounts.grant(connection, user, owns)
            tokens[email[0] if not operator else "op"] = accounts.create_token(connection, user, "test")[1]
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        yield client, tokens


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_reference_email_object_and_its_counters(gateway: RunningGateway, sink: Sink, api) -> None:
    client, tokens = api
    sink.behaviour = Behaviour(rcpt=lambda a: "550 5.1.1 unknown" if a.startswith("bad") else "250 ok")
    submit(gateway.smtp_port, b"Subject: hi\r\n\r\nx\r\n", ["good@sink.test", "bad@sink.test"])
    wait_status(gateway.engine, "bounced", 1)
    assert client.get("/1.0/hosting/web", headers=_as(tokens["a"])).json() == [HOSTING]
    email = client.get(f"/1.0/hosting/web/{HOSTING}/email", headers=_as(tokens["a"])).json()
    assert email == {"bounce": 1, "email": None, "maxPerDay": 0, "sent": 1, "sentToday": 1, "state": "ok"}
    bounces = client.get(f"/1.0/hosting/web/{HOSTING}/email/bounces", params={"limit": 20}, headers=_as(tokens["a"])).json()
    assert [(b["to"], b["message"]) for b in bounces] == [("bad@sink.test", "550 5.1.1 unknown")]
    assert set(bounces[0]) == {"date", "to", "message"}
    volumes = client.get(f"/1.0/hosting/web/{HOSTING}/email/volumes", headers=_as(tokens["a"])).json()
    assert len(volumes) == 30 and volumes[-1]["volume"] == 1 and set(volumes[0]) == {"date", "volume"}
    messages = client.get(f"/1.0/hosting/web/{HOSTING}/email/messages", params={"status": "bounced"}, headers=_as(tokens["a"])).json()
    (bounced,) = messages
    detail = client.get(f"/1.0/hosting/web/{HOSTING}/email/messages/{bounced['id']}", headers=_as(tokens["a"])).json()
    assert detail["attempts"][0]["code"] == 550 and "lease_owner" not in detail


def test_block_purge_unblock_and_the_recipient_through_the_api(gateway: RunningGateway, api) -> None:
    client, tokens = api
    url = f"/1.0/hosting/web/{HOSTING}/email"
    headers = _as(tokens["a"])
    refused = client.post(f"{url}/request", json={"action": "PURGE"}, headers=headers)
    assert refused.status_code == 409 and "block sending first" in refused.json()["message"]
    assert client.post(f"{url}/request", json={"action": "BLOCK"}, headers=headers).json() == "ko"
    assert client.get(url, headers=headers).json()["state"] == "ko"
    assert client.post(f"{url}/request", json={"action": "PURGE"}, headers=headers).json() == "purging"
    deadline = time.monotonic() + 15
    while client.get(url, headers=headers).json()["state"] != "ok":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert client.put(url, json={"email": "errors@shop.example"}, headers=headers).status_code == 200
    assert client.get(url, headers=headers).json()["email"] == "errors@shop.example"
    bad = client.put(url, json={"email": "not an address"}, headers=headers)
    assert bad.status_code == 422 and "body.email" in bad.json()["message"]
    history = client.get(f"{url}/history", headers=headers).json()
    assert [row["to_state"] for row in history] == ["active", "purging", "blocked"]
    assert history[-1]["actor"] == "customer" and "a@users.test" in history[-1]["reason"]


@pytest.mark.parametrize(
    ("params", "problem"),
    [({}, "limit"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "x"}, "limit")],
)
def test_the_bounces_limit_is_required_and_bounded(api, params: dict, problem: str) -> None:
    client, tokens = api
    answer = client.get(f"/1.0/hosting/web/{HOSTING}/email/bounces", params=params, headers=_as(tokens["a"]))
    assert answer.status_code == 422 and problem in answer.json()["message"]


def test_bad_requests_get_clear_errors(api) -> None:
    client, tokens = api
    url = f"/1.0/hosting/web/{HOSTING}/email"
    assert client.post(f"{url}/request", json={"action": "DELETE"}, headers=_as(tokens["a"])).status_code == 422
    assert client.post(f"{url}/request", content=b"{not json", headers=_as(tokens["a"]) | {"Content-Type": "application/json"}).status_code == 422
    assert client.get(f"{url}/messages", params={"since": "yesterday"}, headers=_as(tokens["a"])).status_code == 422
    assert client.get(f"{url}/messages/abc", headers=_as(tokens["a"])).status_code == 422


def test_without_a_valid_token_nothing_is_answered(api) -> None:
    client, tokens = api
    url = f"/1.0/hosting/web/{HOSTING}/email"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Basic YTpi"}).status_code == 401
    assert client.get(url, headers=_as("smk_forged")).status_code == 401
    answer = client.get(url, headers=_as(tokens["a"] + "x"))
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_a_revoked_token_stops_working_at_once(gateway: RunningGateway, api) -> None:
    client, tokens = api
    with for_writing(gateway.engine).begin() as connection:
        user = accounts.find_user(connection, email="a@users.test")
        (token,) = accounts.tokens_of(connection, user)
        accounts.revoke_token(connection, token["id"])
    assert client.get("/1.0/hosting/web", headers=_as(tokens["a"])).status_code == 401


def test_tenant_isolation_every_route_and_method_is_404_for_someone_elses_hosting(gateway: RunningGateway, sink: Sink, api) -> None:
    client, tokens = api
    submit(gateway.smtp_port, b"Subject: private\r\n\r\nx\r\n", ["secret@sink.test"])
    (row,) = wait_status(gateway.engine, "sent", 1)
    before = client.get(f"/1.0/hosting/web/{HOSTING}/email", headers=_as(tokens["a"])).json()
    base = f"/1.0/hosting/web/{HOSTING}/email"
    routes = [
        ("GET", base, None), ("PUT", base, {"email": "thief@evil.test"}), ("POST", f"{base}/request", {"action": "BLOCK"}),
        ("GET", f"{base}/bounces?limit=10", None), ("GET", f"{base}/volumes", None), ("GET", f"{base}/messages", None),
        ("GET", f"{base}/messages/{row['id']}", None), ("GET", f"{base}/scripts", None), ("GET", f"{base}/history", None),
    ]  # fmt: skip
    for name in (HOSTING, "ghost.example", "_system"):
        for method, path, body in routes:
            answer = client.request(method, path.replace(HOSTING, name), json=body, headers=_as(tokens["b"]))
            assert answer.status_code == 404, (method, path, name, answer.status_code)
            assert answer.json() == {
                "type": "about:blank", "title": "Not Found", "status": 404,
                "detail": "This service does not exist", "message": "This service does not exist",
            }  # fmt: skip
            assert answer.headers["content-type"] == "application/problem+json"
    # B's own hosting does not lead to A's message either.
    assert client.get(f"/1.0/hosting/web/{OTHER}/email/messages/{row['id']}", headers=_as(tokens["b"])).status_code == 404
    assert client.get(f"/1.0/hosting/web/{HOSTING}/email", headers=_as(tokens["a"])).json() == before
    # The operator reaches every customer hosting.
    assert client.get("/1.0/hosting/web", headers=_as(tokens["op"])).json() == sorted([HOSTING, OTHER])


def test_the_openapi_document_is_valid_and_served_with_the_docs(api) -> None:
    client, _ = api
    spec = client.get("/openapi.json").json()
    validate(spec)
    assert "/1.0/hosting/web/{serviceName}/email/request" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_metrics_show_the_queue_outcomes_and_states(gateway: RunningGateway, sink: Sink, api) -> None:
    client, _ = api
    submit(gateway.smtp_port, b"From: web@shop.example\r\nSubject: m\r\n\r\nx\r\n", ["m@sink.test"])
    wait_status(gateway.engine, "sent", 1)
    text = client.get("/metrics").text
    # No sending domain and no platform signing domain: unsigned, counted as not set up.
    assert 'scriptmail_dkim_messages_total{mail="hosting",reason="not-set-up",result="unsigned"} 1.0' in text
    assert 'scriptmail_dkim_messages_total{mail="hosting",reason="domain",result="signed"} 0.0' in text
    assert 'scriptmail_dkim_messages_total{mail="platform",reason="platform",result="signed"} 0.0' in text
    assert 'scriptmail_recipients_finished_total{outcome="sent"} 1.0' in text
    assert 'scriptmail_hostings{state="active"} 2.0' in text
    assert 'scriptmail_queue_recipients{status="held"} 0.0' in text
    assert "scriptmail_accepted_messages_total 1.0" in text


def test_the_customer_keeps_the_suppression_list_through_the_api(gateway: RunningGateway, sink: Sink, api) -> None:
    client, tokens = api
    url = f"/1.0/hosting/web/{HOSTING}/email/suppressions"
    headers = _as(tokens["a"])
    gone = {"gone@sink.test"}
    sink.behaviour = Behaviour(rcpt=lambda a: "550 5.1.1 no such user" if a in gone else "250 ok")
    submit(gateway.smtp_port, b"Subject: hi\r\n\r\nx\r\n", ["gone@sink.test"])
    wait_status(gateway.engine, "bounced", 1)
    (entry,) = client.get(url, headers=headers).json()["items"]
    assert (entry["address"], entry["reason"], entry["code"]) == ("gone@sink.test", "no-such-user", 550) and entry["until"]

    added = client.post(url, json={"address": "Old@Customer.example", "reason": "left the club"}, headers=headers)
    assert added.status_code == 201 and added.json()["address"] == "old@customer.example"
    assert client.post(url, json={"address": "*@*"}, headers=headers).status_code == 422  # patterns are not for customers
    assert client.post(url, json={"address": "a@b.example", "reason": "x\r\nInjected: 1"}, headers=headers).status_code == 422
    page = client.get(url, params={"limit": 1}, headers=headers).json()
    assert len(page["items"]) == 1 and page["next"] == "gone@sink.test"
    assert [e["address"] for e in client.get(url, params={"after": page["next"]}, headers=headers).json()["items"]] == ["old@customer.example"]
    for hostile in ("%", "_", "' OR '1'='1", "\\", "a" * 320, "\x00"):
        answer = client.get(url, params={"search": hostile}, headers=headers)
        assert answer.status_code == 200 and answer.json()["items"] == [], hostile
    assert client.get(url, params={"search": "a" * 321}, headers=headers).status_code == 422

    # Another customer sees nothing of it, and cannot remove it.
    assert client.get(url, headers=_as(tokens["b"])).status_code == 404
    assert client.delete(f"{url}/gone@sink.test", headers=_as(tokens["b"])).status_code == 404

    submit(gateway.smtp_port, b"Subject: again\r\n\r\nx\r\n", ["gone@sink.test"])
    wait_status(gateway.engine, "suppressed", 1)
    assert 'scriptmail_recipients_finished_total{outcome="suppressed"} 1.0' in client.get("/metrics").text
    assert client.get(f"/1.0/hosting/web/{HOSTING}/email", headers=headers).json()["bounce"] == 2  # bounced + suppressed
    gone.clear()  # the mailbox exists again
    removed = client.delete(f"{url}/gone@sink.test", params={"requeue": "true"}, headers=headers)
    assert removed.json() == {"address": "gone@sink.test", "requeued": 1}
    sink.wait_for(1)
    assert client.delete(f"{url}/gone@sink.test", headers=headers).status_code == 404


def test_a_suppression_given_in_unicode_is_the_entry_of_its_punycode_form_through_the_api(gateway: RunningGateway, sink: Sink, api) -> None:
    client, tokens = api
    url = f"/1.0/hosting/web/{HOSTING}/email/suppressions"
    headers = _as(tokens["a"])
    added = client.post(url, json={"address": "José@Correo.España.es"}, headers=headers)
    assert added.status_code == 201 and added.json()["address"] == "josé@correo.xn--espaa-rta.es"
    again = client.post(url, json={"address": "josé@correo.xn--espaa-rta.es"}, headers=headers)
    assert again.status_code == 201 and again.json()["address"] == "josé@correo.xn--espaa-rta.es"
    assert client.post(url, json={"address": "bücher.de"}, headers=headers).json()["address"] == "xn--bcher-kva.de"
    assert [e["address"] for e in client.get(url, headers=headers).json()["items"]] == ["josé@correo.xn--espaa-rta.es", "xn--bcher-kva.de"]
    assert [e["address"] for e in client.get(url, params={"search": "españa"}, headers=headers).json()["items"]] == [
        "josé@correo.xn--espaa-rta.es"
    ]
    for garbage in ("x@раypal.es", "x@xn--zz.de", "we\u200bb@bücher.de"):
        answer = client.post(url, json={"address": garbage}, headers=headers)
        assert answer.status_code in (400, 422) and answer.json()["detail"], garbage
    for garbage in ("a b@c.de", "x@a_b.de", "<x>@b.de"):
        assert client.post(url, json={"address": garbage}, headers=headers).status_code == 422, garbage

    # Mail to the A-label form (as intake stores it) is stopped; removal works typed in Unicode.
    submit(gateway.smtp_port, b"Subject: hi\r\n\r\nx\r\n", ["info@xn--bcher-kva.de"])
    wait_status(gateway.engine, "suppressed", 1)
    removed = client.delete(f"{url}/JOSÉ@correo.españa.es", headers=headers)
    assert removed.json() == {"address": "josé@correo.xn--espaa-rta.es", "requeued": 0}
    assert client.delete(f"{url}/xn--bcher-kva.de", headers=headers).status_code == 200
    assert client.get(url, headers=headers).json()["items"] == []
