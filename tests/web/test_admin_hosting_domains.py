"""A hosting's sending domains set through the provisioning API (`/1.0/admin/hostings`, create,
PUT and PATCH), over real HTTP against a running gateway: IDN in Unicode or punycode, the
ownership rule (another hosting's domain is refused unless the operator moves it), the audit log,
hostile input that changes nothing, and the OpenAPI document that says so."""

from __future__ import annotations

import time

import httpx2
import pytest
from openapi_spec_validator import validate

from scriptmail.domains.provision import new_keys
from scriptmail.store import accounts, audit
from scriptmail.store import domains as domain_store
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.web.admin_api import DOMAIN_PATTERN
from tests.support.gateway import HOSTING, RunningGateway

OTHER = "other.example"
BASE = "/1.0/admin/hostings"


@pytest.fixture
def admin(gateway: RunningGateway):
    with for_writing(gateway.engine).begin() as connection:
        hosting_store.add_hosting(connection, OTHER, "owner@other.example", plan="unlimited")
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        tokens = {scope: accounts.create_token(connection, operator, scope, scope=scope)[1] for scope in ("read", "provision")}
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=60) as client:
        yield gateway, client, {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}


def _domains(gateway: RunningGateway) -> dict[str, str]:
    """Every sending domain (A-label) and its hosting, from the store."""
    with gateway.engine.connect() as connection:
        return {row["domain"]: row["hosting"] for row in domain_store.list_domains(connection) if row["state"] != "not-set-up"}


def _logged(gateway: RunningGateway, target: str) -> list[dict]:
    with gateway.engine.connect() as connection:
        return audit.entries(connection, target=target, action="hosting.sending_domains")[0]


def test_an_operator_sets_a_hostings_sending_domains_on_create_put_and_patch(admin) -> None:
    gateway, client, tokens = admin
    provision = tokens["provision"]
    body = {"name": "new.example", "owner": "owner@new.example", "sending_domains": ["bücher.example", "xn--bcher-kva.example", "mail.new.example"]}
    assert client.post(BASE, json=body, headers=tokens["read"]).status_code == 403  # a read token changes nothing
    created = client.post(BASE, json=body, headers=provision)
    assert created.status_code == 201, created.text
    assert created.json()["sending_domains"] == ["mail.new.example", "bücher.example"]  # one domain, shown in Unicode
    with gateway.engine.connect() as connection:
        found = domain_store.find_domain(connection, "xn--bcher-kva.example")
    assert found["hosting"] == "new.example" and found["state"] == "pending" and len(found["keys"]) == 1
    assert found["keys"][0]["active"] and found["keys"][0]["state"] == "pending"  # it signs once DNS holds it
    # The customer's domains API sees the same domain, with the record to publish.
    (logged,) = _logged(gateway, "new.example")
    assert logged["before"] == [] and logged["after"] == {"sending_domains": ["bücher.example", "mail.new.example"], "moved_from": {}}
    assert "PRIVATE" not in str(logged) and "private" not in str(logged)

    patched = client.patch(f"{BASE}/new.example", json={"sending_domains": ["mail.new.example"]}, headers=provision)
    assert patched.status_code == 200 and patched.json()["sending_domains"] == ["mail.new.example"]
    assert "xn--bcher-kva.example" not in _domains(gateway)  # removed with its keys
    kept = client.patch(f"{BASE}/new.example", json={"language": "fr"}, headers=provision)
    assert kept.status_code == 200 and kept.json()["sending_domains"] == ["mail.new.example"]  # absent: unchanged
    put = {"owner": "owner@new.example", "language": "fr", "sending_domains": ["mail.new.example", "news.new.example"]}
    for _ in range(2):  # the same PUT twice changes nothing the second time
        answer = client.put(f"{BASE}/new.example", json=put, headers=provision)
        assert answer.status_code == 200 and answer.json()["sending_domains"] == ["mail.new.example", "news.new.example"]
    assert len(_logged(gateway, "new.example")) == 3
    # PUT creates a hosting with its domains too; an empty list removes them all.
    fresh = client.put(f"{BASE}/fresh.example", json={"owner": "o@fresh.example", "sending_domains": ["fresh.example"]}, headers=provision)
    assert fresh.status_code == 201 and fresh.json()["sending_domains"] == ["fresh.example"]
    emptied = client.patch(f"{BASE}/fresh.example", json={"sending_domains": []}, headers=provision)
    assert emptied.status_code == 200 and emptied.json()["sending_domains"] == []
    assert client.get(f"{BASE}/new.example", headers=tokens["read"]).json()["sending_domains"] == ["mail.new.example", "news.new.example"]


def test_another_hostings_domain_is_refused_unless_the_operator_moves_it_and_the_platforms_never(admin) -> None:
    gateway, client, tokens = admin
    provision = tokens["provision"]
    assert client.patch(f"{BASE}/{HOSTING}", json={"sending_domains": ["shop.example"]}, headers=provision).status_code == 200
    with gateway.engine.connect() as connection:
        old_key = domain_store.find_domain(connection, "shop.example")["keys"][0]["public_key"]
    for method, path, body in (
        ("PATCH", f"{BASE}/{OTHER}", {"sending_domains": ["SHOP.example."]}),
        ("PUT", f"{BASE}/{OTHER}", {"owner": "owner@other.example", "sending_domains": ["shop.example"]}),
        ("POST", BASE, {"name": "third.example", "owner": "o@third.example", "sending_domains": ["shop.example"]}),
    ):
        refused = client.request(method, path, json=body, headers=provision)
        assert refused.status_code == 409, (method, refused.text)
        assert f"shop.example belongs to the hosting {HOSTING}" in refused.json()["detail"] and "move_domains" in refused.json()["detail"]
    assert client.get(f"{BASE}/third.example", headers=tokens["read"]).status_code == 404  # the refused POST created nothing
    assert _domains(gateway) == {"shop.example": HOSTING}
    moved = client.patch(f"{BASE}/{OTHER}", json={"sending_domains": ["shop.example"], "move_domains": True}, headers=provision)
    assert moved.status_code == 200 and moved.json()["sending_domains"] == ["shop.example"]
    assert _domains(gateway) == {"shop.example": OTHER}
    assert client.get(f"{BASE}/{HOSTING}", headers=tokens["read"]).json()["sending_domains"] == []
    with gateway.engine.connect() as connection:
        keys = domain_store.find_domain(connection, "shop.example")["keys"]
    assert len(keys) == 1 and keys[0]["public_key"] != old_key  # fresh keys: the old owner's are gone
    assert _logged(gateway, OTHER)[0]["after"]["moved_from"] == {"shop.example": HOSTING}
    # The platform's own signing domain is never a hosting's, moved or not.
    with for_writing(gateway.engine).begin() as connection:
        system = hosting_store.system_hosting_id(connection, "postmaster@platform.test")
        domain_store.add_domain(connection, system, "mail.platform.test", new_keys(gateway.settings.domains, time.time()), time.time())
    platform = client.patch(f"{BASE}/{OTHER}", json={"sending_domains": ["mail.platform.test"], "move_domains": True}, headers=provision)
    assert platform.status_code == 409 and "the platform's own signing domain" in platform.json()["detail"]
    assert _domains(gateway)["mail.platform.test"] == hosting_store.SYSTEM_HOSTING


@pytest.mark.parametrize(("domains", "status", "why"), [
    (["not a domain"], 422, "should match pattern"),
    (["localhost"], 422, "sending_domains"),  # no dot
    (["192.0.2.1"], 422, "sending_domains"),  # an address
    (["-bad.example"], 422, "hyphen"),
    (["ex@mple.com"], 422, "not an internationalised host name"),
    (["x\x00y.example"], 422, "not an internationalised host name"),
    (["*.example.com"], 422, "not an internationalised host name"),
    (["xn--zz.example"], 422, "Invalid A-label"),
    (["Bücher.example"], 422, "not allowed"),  # IDNA 2008 writes it in lower case, as the schema's format says
    (["ok.example", "bad..example"], 422, "sending_domains"),  # one bad name: none is added
    ([""], 422, "sending_domains"),
    (["a" * 254], 422, "sending_domains"),
    ([5], 422, "sending_domains"),
    ("shop.example", 422, "sending_domains"),
    ([f"d{n}.example" for n in range(51)], 422, "sending_domains"),
    ({"shop.example": True}, 422, "sending_domains"),
])  # fmt: skip
def test_hostile_domain_lists_are_refused_and_change_nothing(admin, domains, status: int, why: str) -> None:
    gateway, client, tokens = admin
    answer = client.patch(f"{BASE}/{OTHER}", json={"sending_domains": domains}, headers=tokens["provision"])
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json") and why in answer.json()["detail"]
    created = client.post(BASE, json={"name": "x.example", "owner": "o@x.example", "sending_domains": domains}, headers=tokens["provision"])
    assert created.status_code == status
    assert client.get(f"{BASE}/x.example", headers=tokens["read"]).status_code == 404
    assert _domains(gateway) == {} and _logged(gateway, OTHER) == []
    loose = client.patch(f"{BASE}/{OTHER}", json={"sending_domains": ["ok.example"], "move_domains": "yes"}, headers=tokens["provision"])
    assert loose.status_code == 422  # strict: no "yes" for true


def test_the_openapi_document_describes_the_sending_domains_members(admin) -> None:
    _, client, _ = admin
    spec = client.get("/openapi.json").json()
    validate(spec)
    schemas = spec["components"]["schemas"]
    for model in ("HostingCreate", "HostingFields", "HostingPatch"):
        member = schemas[model]["properties"]["sending_domains"]
        (listed,) = [option for option in member["anyOf"] if option.get("type") == "array"]
        item = listed["items"]
        assert listed["maxItems"] == 50 and (item["type"], item["minLength"], item["maxLength"], item["format"]) == ("string", 1, 253, "idn-hostname")
        assert item["pattern"] == DOMAIN_PATTERN
        assert "409 unless `move_domains`" in member["description"]
        assert schemas[model]["properties"]["move_domains"]["type"] == "boolean"
    patch = spec["paths"]["/1.0/admin/hostings/{name}"]["patch"]["responses"]
    assert {"400", "409", "422", "503"} <= set(patch)
