"""Sending domains over the REST API against a running gateway: add, list, one, check, rotate, remove,
with the refusals (malformed names, another hosting's domain, someone else's hosting)."""

from __future__ import annotations

from tests.support.gateway import HOSTING, RunningGateway
from tests.web.test_api import OTHER, _as, api  # noqa: F401 - the fixture

BASE = f"/1.0/hosting/web/{HOSTING}/email/domains"


def test_a_customer_adds_a_domain_and_reads_what_to_publish(gateway: RunningGateway, api) -> None:  # noqa: F811
    client, tokens = api
    added = client.post(BASE, json={"domain": "Bücher.example"}, headers=_as(tokens["a"]))
    assert added.status_code == 201, added.text
    view = added.json()
    assert (view["domain"], view["a_label"], view["state"]) == ("bücher.example", "xn--bcher-kva.example", "pending")
    assert view["dkim"]["name"].endswith("._domainkey.xn--bcher-kva.example") and "PRIVATE" not in added.text
    assert view["spf"]["result"] == "unchecked"
    listed = client.get(BASE, headers=_as(tokens["a"])).json()
    assert [(row["domain"], row["state"]) for row in listed] == [("bücher.example", "pending")]
    one = client.get(f"{BASE}/xn--bcher-kva.example", headers=_as(tokens["a"]))
    assert one.status_code == 200 and one.json()["dkim"] == view["dkim"]
    checked = client.post(f"{BASE}/bücher.example/check", headers=_as(tokens["a"]))
    assert checked.status_code == 200 and checked.json()["state"] == "pending"
    assert client.post(f"{BASE}/bücher.example/rotate", headers=_as(tokens["a"])).status_code == 409  # not verified yet
    assert client.delete(f"{BASE}/bücher.example", headers=_as(tokens["a"])).status_code == 204
    assert client.get(f"{BASE}/bücher.example", headers=_as(tokens["a"])).status_code == 404


def test_bad_names_foreign_domains_and_foreign_hostings_are_refused(gateway: RunningGateway, api) -> None:  # noqa: F811
    client, tokens = api
    for bad in ("", "not a domain", "localhost", "a" * 300 + ".example", "user@shop.example"):
        answer = client.post(BASE, json={"domain": bad}, headers=_as(tokens["a"]))
        assert answer.status_code == 400, (bad, answer.text)
    assert client.post(BASE, json={"domain": 5}, headers=_as(tokens["a"])).status_code == 422
    assert client.post(BASE, json={"domain": "shop.example"}, headers=_as(tokens["a"])).status_code == 201
    other = f"/1.0/hosting/web/{OTHER}/email/domains"
    taken = client.post(other, json={"domain": "shop.example"}, headers=_as(tokens["b"]))
    assert taken.status_code == 409 and "another hosting" in taken.json()["message"]
    # B cannot see A's domain through B's own hosting, nor A's hosting at all.
    assert client.get(f"{other}/shop.example", headers=_as(tokens["b"])).status_code == 404
    assert client.delete(f"{other}/shop.example", headers=_as(tokens["b"])).status_code == 404
    assert client.get(BASE, headers=_as(tokens["b"])).status_code == 404
    assert client.get(f"{BASE}/shop.example", headers=_as(tokens["op"])).status_code == 200  # operators see all
