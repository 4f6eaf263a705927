"""Exports over real HTTP: the owner downloads the log, the bounces and the suppressed addresses
as CSV and JSON from the area and the API, as the filters select them; formulas are neutralised,
the file streams, bad input is refused with what is wrong, and no one else's hosting is reachable."""

from __future__ import annotations

import csv
import io
import json
import time

import httpx2
import pytest

from scriptmail.store import accounts, suppressions
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.log_rows import fill_log
from tests.support.web_client import OTHER, A, B

BASE = f"/hostings/{HOSTING}/export"
API = f"/1.0/hosting/web/{HOSTING}/email/export"


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def tokens(gateway: RunningGateway, area) -> dict[str, str]:
    with for_writing(gateway.engine).begin() as connection:
        return {
            email: accounts.create_token(connection, accounts.find_user(connection, email=email), "export")[1] for email in (A, B)
        }


def _api(gateway: RunningGateway) -> httpx2.Client:
    return httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30)


def test_the_owner_downloads_what_the_log_filters_select(gateway: RunningGateway, area) -> None:
    fill_log(gateway.engine, HOSTING, 40)
    with for_writing(gateway.engine).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
        suppressions.add(connection, hosting_id, "=evil@sink.test", 1e10, None)
        suppressions.add(connection, hosting_id, "fine@sink.test", 1e10, None)
    owner = area()
    owner.login(A)
    log_page = owner.get(f"/hostings/{HOSTING}/log", params={"status": "bounced"})
    assert f'href="{BASE}/log?format=csv&amp;status=bounced"' in log_page.text

    everything = owner.get(f"{BASE}/log", params={"format": "csv"})
    assert everything.status_code == 200 and everything.headers["content-type"] == "text/csv; charset=utf-8"
    assert everything.headers["content-disposition"].startswith(f'attachment; filename="{HOSTING}-log-')
    rows = _table(everything.text)
    assert len(rows) == 40 and list(rows[0])[:5] == ["id", "queue_id", "received_at", "sender", "recipient"]
    assert [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)  # newest first, like the page
    assert {r["subject"] for r in rows} == {"'=cmd|' /C calc'!A0"} and {r["last_text"] for r in rows} == {"'-reply"}

    bounced = _table(owner.get(f"{BASE}/log", params={"format": "csv", "status": "bounced"}).text)
    assert len(bounced) == 10 and {r["status"] for r in bounced} == {"bounced"}
    found = json.loads(owner.get(f"{BASE}/log", params={"format": "json", "recipient": "r1"}).text)
    assert {row["recipient"] for row in found} == {f"r{n}@sink.test" for n in range(40) if "r1" in f"r{n}@"}
    assert found[0]["subject"] == "=cmd|' /C calc'!A0"  # JSON keeps text as it is: only CSV cells are neutralised

    errors = _table(owner.get(f"{BASE}/bounces", params={"format": "csv"}).text)
    assert len(errors) == 20 and {r["status"] for r in errors} == {"bounced", "expired"}
    assert json.loads(owner.get(f"{BASE}/bounces", params={"format": "json", "status": "sent"}).text) == []

    listed = _table(owner.get(f"{BASE}/suppressions", params={"format": "csv"}).text)
    assert [r["address"] for r in listed] == ["'=evil@sink.test", "fine@sink.test"]
    assert [
        r["address"] for r in json.loads(owner.get(f"{BASE}/suppressions", params={"format": "json", "search": "fine"}).text)
    ] == ["fine@sink.test"]


def test_bad_formats_and_filters_are_refused_with_what_is_wrong(gateway: RunningGateway, area) -> None:
    owner = area()
    owner.login(A)
    for path in ("log", "bounces", "suppressions"):
        for bad in ("xml", "", "CSV", "csv;"):
            answer = owner.get(f"{BASE}/{path}", params={"format": bad})
            assert answer.status_code == 400 and "Unknown format: choose CSV or JSON." in answer.text, (path, bad)
    cases = [
        ({"since": "2026-13-45"}, "From date: Not a date or time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM."),
        ({"until": "tomorrow"}, "Until: Not a date or time"),
        ({"since": "2026-02-02", "until": "2026-02-01"}, "Until: The start of the window is after its end."),
        ({"since": "2020-01-01", "until": "2026-01-01"}, "The window is longer than 366 days: choose a shorter one."),
        ({"since": "1969-01-01", "until": "1969-02-01"}, "Too early"),
        ({"since": "2026-01-01T10:00\x00"}, "From date: Not a date or time"),
        ({"status": "lost"}, "Unknown status"),
        ({"recipient": "x" * 321}, "Too long"),
        ({"subject": "\x00"}, "A filter holds a control character"),
    ]
    for params, text in cases:
        for path in ("log", "bounces"):
            answer = owner.get(f"{BASE}/{path}", params={"format": "csv", **params})
            assert answer.status_code == 400 and text in answer.text, (path, params, answer.text[:300])
    assert owner.get(f"{BASE}/suppressions", params={"search": "x" * 321}).status_code == 400
    assert owner.get(f"{BASE}/suppressions", params={"search": "\x00"}).text.splitlines()[1:] == []  # matches nothing
    stranger = area()
    assert stranger.get(f"{BASE}/log").status_code == 303  # not logged in: to the login page
    thief = area()
    thief.login(B)
    for path in ("log", "bounces", "suppressions"):
        assert thief.get(f"{BASE}/{path}", params={"format": "csv"}).status_code == 404
        assert thief.get(f"/hostings/{OTHER}/export/{path}", params={"format": "csv"}).status_code == 200


def test_the_api_exports_stream_in_chunks_and_check_their_input(gateway: RunningGateway, tokens) -> None:
    fill_log(gateway.engine, HOSTING, 5000)
    headers = {"Authorization": f"Bearer {tokens[A]}"}
    with _api(gateway) as client:
        with client.stream("GET", f"{API}/messages", params={"format": "csv"}, headers=headers) as answer:
            assert answer.status_code == 200
            assert answer.headers.get("transfer-encoding") == "chunked" and "content-length" not in answer.headers
            chunks = list(answer.iter_raw())
        assert len(chunks) > 1, "the export came as one block"
        rows = _table(b"".join(chunks).decode("utf-8"))
        assert len(rows) == 5000 and len({r["id"] for r in rows}) == 5000
        since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        found = client.get(f"{API}/bounces", params={"format": "json", "since": since}, headers=headers)
        assert found.headers["content-type"] == "application/json" and len(found.json()) == 2500
        assert client.get(f"{API}/suppressions", params={"format": "json"}, headers=headers).json() == []
        for params in (
            {"format": "xml"},
            {"since": "2026-13-45"},
            {"since": "2000-01-01"},
            {"since": "2026-02-02", "until": "2026-02-01"},
            {"until": "x" * 41},
            {"status": "lost"},
            {"recipient": "a\x00"},
            {"search": "x" * 321},
        ):
            path = f"{API}/suppressions" if "search" in params else f"{API}/messages"
            answer = client.get(path, params=params, headers=headers)
            assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", params
        refused = client.get(f"{API}/messages", params={"since": "2000-01-01", "until": "2026-01-01"}, headers=headers)
        assert refused.json()["detail"] == "invalid request: query.since: The window is longer than 366 days: choose a shorter one."
        assert client.get(f"{API}/messages").status_code == 401
        other = {"Authorization": f"Bearer {tokens[B]}"}
        assert client.get(f"{API}/messages", headers=other).status_code == 404
        assert (
            client.get(f"{API}/messages", headers=other).json()["detail"]
            == client.get("/1.0/hosting/web/ghost.example/email/export/messages", headers=other).json()["detail"]
        )


def test_the_openapi_document_lists_the_exports_with_both_media_types(gateway: RunningGateway) -> None:
    with _api(gateway) as client:
        spec = client.get("/openapi.json").json()
    for name in ("messages", "bounces", "suppressions"):
        operation = spec["paths"][f"/1.0/hosting/web/{{serviceName}}/email/export/{name}"]["get"]
        assert set(operation["responses"]["200"]["content"]) == {"text/csv", "application/json"}
        assert {"401", "404", "422", "429"} <= set(operation["responses"])


def test_an_export_reads_its_window_the_last_month_unless_told(gateway: RunningGateway, area, tokens) -> None:
    now = time.time()
    fill_log(gateway.engine, HOSTING, 8, subject="two months ago", at=now - 60 * 86400)
    fill_log(gateway.engine, HOSTING, 4, subject="this morning", at=now - 3600)
    owner = area()
    owner.login(A)
    assert {r["subject"] for r in _table(owner.get(f"{BASE}/log", params={"format": "csv"}).text)} == {"this morning"}
    old_day = time.strftime("%Y-%m-%d", time.gmtime(now - 60 * 86400))
    window = {"format": "csv", "since": f"{old_day}T00:00+00:00", "until": old_day}
    assert {r["subject"] for r in _table(owner.get(f"{BASE}/log", params=window).text)} == {"two months ago"}
    headers = {"Authorization": f"Bearer {tokens[A]}"}
    with _api(gateway) as client:
        recent = client.get(f"{API}/messages", params={"format": "json"}, headers=headers).json()
        assert {r["subject"] for r in recent} == {"this morning"}
        both = client.get(f"{API}/messages", params={"format": "json", "since": old_day}, headers=headers).json()
        assert len(both) == 12
