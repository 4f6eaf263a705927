"""Sending domains in the store: ownership, keys under the master key, DNS state, From domains seen."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from scriptmail.config import DomainsSettings
from scriptmail.domains.answers import Finding, Verdict
from scriptmail.domains.keys import Algorithm, load_private
from scriptmail.domains.provision import new_keys
from scriptmail.domains.vault import VaultError, open_vault
from scriptmail.model import Origin, Submission
from scriptmail.store import domains as store
from scriptmail.store import hostings as hosting_store
from scriptmail.store.queue import insert_submissions
from scriptmail.store.schema import dkim_keys

NOW = 1_796_000_000.0
MATCH = Verdict(Finding.MATCHES, "the record holds our key")


@pytest.fixture
def settings(tmp_path: Path) -> DomainsSettings:
    return DomainsSettings(key_file=tmp_path / "keys" / "master.key")


@pytest.fixture
def two(shop: Engine) -> tuple[int, int]:
    with shop.begin() as connection:
        first = hosting_store.find_hosting(connection, name="shop.example").id
        second = hosting_store.add_hosting(connection, "blog.example", "owner@blog.example").id
    return first, second


def test_a_domain_belongs_to_one_hosting_until_an_operator_moves_it(shop: Engine, two, settings) -> None:
    first, second = two
    with shop.begin() as connection:
        store.add_domain(connection, first, "shop.example", new_keys(settings, NOW), NOW)
    with shop.begin() as connection, pytest.raises(store.DomainExists):
        store.add_domain(connection, first, "shop.example", new_keys(settings, NOW), NOW)
    with shop.begin() as connection, pytest.raises(store.DomainTaken):
        store.add_domain(connection, second, "shop.example", new_keys(settings, NOW), NOW)
    with shop.begin() as connection:
        store.add_domain(connection, second, "shop.example", new_keys(settings, NOW), NOW, move=True)
        found = store.find_domain(connection, "shop.example")
    assert found["hosting"] == "blog.example" and found["state"] == "pending" and len(found["keys"]) == 1


def test_private_keys_are_stored_encrypted_and_open_only_with_the_master_key(shop: Engine, two, settings) -> None:
    with shop.begin() as connection:
        store.add_domain(connection, two[0], "shop.example", new_keys(settings, NOW), NOW)
        stored = bytes(connection.execute(select(dkim_keys.c.private_key)).scalar_one())
    assert b"PRIVATE KEY" not in stored
    assert stat.S_IMODE(settings.key_file.stat().st_mode) == 0o600
    load_private(Algorithm.RSA, open_vault(settings.key_file).decrypt(stored))
    other = DomainsSettings(key_file=settings.key_file.parent / "other.key")
    new_keys(other, NOW)  # creates another master key
    with pytest.raises(VaultError, match="does not open"):
        open_vault(other.key_file).decrypt(stored)


def test_a_missing_or_corrupt_master_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="does not exist"):
        open_vault(tmp_path / "absent.key")
    corrupt = tmp_path / "corrupt.key"
    corrupt.write_bytes(b"not a fernet key\n")
    with pytest.raises(VaultError, match="corrupt"):
        open_vault(corrupt)


def test_dns_findings_move_the_domain_between_pending_verified_and_failing(shop: Engine, two, settings) -> None:
    with shop.begin() as connection:
        store.add_domain(connection, two[0], "shop.example", new_keys(settings, NOW), NOW)
        (key,) = store.keys_to_check(connection)
        assert store.record_check(connection, key["id"], Verdict(Finding.MISSING, "no TXT record"), NOW, 0) == "pending"
        assert store.signing_keys(connection) == []
        assert store.record_check(connection, key["id"], MATCH, NOW, 0) == "verified"
        assert [row[2] for row in store.signing_keys(connection)] == ["shop.example"]
        # A timeout says nothing about the record: the domain stays verified.
        assert store.record_check(connection, key["id"], Verdict(Finding.TEMPORARY, "timeout"), NOW, 0) == "verified"
        assert store.record_check(connection, key["id"], Verdict(Finding.WRONG_KEY, "p= holds another key"), NOW, 0) == "failing"
        found = store.find_domain(connection, "shop.example")
        assert store.signing_keys(connection) == []
    assert found["state"] == "failing" and "another key" in found["reason"]


def test_rotation_signs_with_the_new_key_only_once_dns_holds_it(shop: Engine, two, settings) -> None:
    with shop.begin() as connection:
        store.add_domain(connection, two[0], "shop.example", new_keys(settings, NOW), NOW)
        (old,) = store.keys_to_check(connection)
        store.record_check(connection, old["id"], MATCH, NOW, 3600)
        store.rotate(connection, "shop.example", new_keys(settings, NOW, taken=[old["selector"]]), NOW)
        with pytest.raises(store.RotationRefused):
            store.rotate(connection, "shop.example", new_keys(settings, NOW, taken=["x"]), NOW)
        new = [key for key in store.keys_to_check(connection) if key["id"] != old["id"]][0]
        assert new["selector"] == old["selector"] + "-2"
        store.record_check(connection, new["id"], Verdict(Finding.MISSING, "no TXT record"), NOW, 3600)
        assert [row[0] for row in store.signing_keys(connection)] == [old["id"]]  # still the old key
        assert store.record_check(connection, new["id"], MATCH, NOW + 10, 3600) == "verified"
        assert [row[0] for row in store.signing_keys(connection)] == [new["id"]]
        keys = {key["id"]: key for key in store.find_domain(connection, "shop.example")["keys"]}
        assert keys[old["id"]]["retire_after"] == NOW + 10 + 3600 and not keys[old["id"]]["active"]
        assert store.retire_keys(connection, NOW + 100) == 0
        assert store.retire_keys(connection, NOW + 4000) == 1


def test_from_domains_are_counted_in_the_bulk_insert_and_listed_as_not_set_up(shop: Engine, two, settings) -> None:
    first = two[0]

    def message(domain: str, dkim: str = "") -> tuple[Submission, float]:
        return (Submission(first, "web@x", ("a@sink.test",), b"x", Origin.SMTP, "", from_domain=domain, dkim=dkim), NOW)

    with shop.begin() as connection:
        store.add_domain(connection, first, "shop.example", new_keys(settings, NOW), NOW)
        insert_submissions(connection, [message("shop.example", "signed"), message("news.example"), message("news.example", "platform")])
        insert_submissions(connection, [message("news.example", "failed"), message("")])
        rows = {row["domain"]: row for row in store.list_domains(connection, first)}
        totals = store.signing_totals(connection)
    assert rows["shop.example"]["state"] == "pending" and rows["shop.example"]["messages"] == 1
    assert rows["news.example"]["state"] == "not-set-up" and rows["news.example"]["messages"] == 3
    assert {reason: n for (mail, reason), n in totals.items() if mail == "hosting"} == {"domain": 1, "platform": 1, "error": 1, "not-set-up": 1}
    assert {n for (mail, _), n in totals.items() if mail == "platform"} == {0}
