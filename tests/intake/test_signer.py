"""The Acceptor's signer against a real store: which key signs, rotation without a gap, and failures
that send mail unsigned instead of refusing it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine

from scriptmail.config import DomainsSettings
from scriptmail.domains.answers import Finding, Verdict
from scriptmail.domains.provision import new_keys
from scriptmail.intake import signer as signer_module
from scriptmail.intake.signer import Signer
from scriptmail.model import Origin, Submission
from scriptmail.store import domains as store
from scriptmail.store import hostings as hosting_store

NOW = 1_796_000_000.0
MATCH = Verdict(Finding.MATCHES, "the record holds our key")
MESSAGE = b"From: web@shop.example\r\nTo: a@sink.test\r\nSubject: hi\r\n\r\nHello.\r\n"


@pytest.fixture
def settings(tmp_path: Path) -> DomainsSettings:
    return DomainsSettings(key_file=tmp_path / "master.key", ed25519=True)


@pytest.fixture
def hosting_id(shop: Engine) -> int:
    with shop.connect() as connection:
        return hosting_store.find_hosting(connection, name="shop.example").id


def add_verified(engine: Engine, hosting_id: int, domain: str, settings: DomainsSettings) -> list[dict]:
    with engine.begin() as connection:
        store.add_domain(connection, hosting_id, domain, new_keys(settings, NOW), NOW)
        keys = store.keys_to_check(connection, domain)
        for key in keys:
            store.record_check(connection, key["id"], MATCH, NOW, 3600)
    return keys


def submission(hosting_id: int, domain: str = "shop.example", data: bytes = MESSAGE) -> Submission:
    return Submission(hosting_id, "web@" + domain, ("a@sink.test",), data, Origin.SMTP, "", from_domain=domain)


def selectors(data: bytes) -> list[str]:
    return [part.split(b";")[0].decode() for part in data.split(b" s=")[1:]]


async def test_a_verified_domain_signs_with_rsa_then_ed25519_and_subdomains_too(shop, hosting_id, settings) -> None:
    keys = add_verified(shop, hosting_id, "shop.example", settings)
    signer = Signer(shop, settings)
    signed = await signer.signed(submission(hosting_id))
    assert signed.dkim == "signed" and signed.data.endswith(MESSAGE)
    assert selectors(signed.data) == [keys[0]["selector"], keys[1]["selector"]]
    assert b"a=rsa-sha256" in signed.data.split(b"DKIM-Signature")[1] and b"a=ed25519-sha256" in signed.data
    sub = await signer.signed(submission(hosting_id, "news.shop.example", MESSAGE.replace(b"web@shop", b"web@news.shop")))
    assert sub.dkim == "signed" and b"d=shop.example;" in sub.data
    signer.close()


async def test_another_hostings_domain_is_not_signed_with_its_key(shop, hosting_id, settings) -> None:
    with shop.begin() as connection:
        other = hosting_store.add_hosting(connection, "blog.example", "owner@blog.example").id
    add_verified(shop, other, "blog.example", settings)
    signer = Signer(shop, settings)
    result = await signer.signed(submission(hosting_id, "blog.example", MESSAGE.replace(b"shop.example", b"blog.example")))
    assert result.dkim == "" and b"DKIM-Signature" not in result.data
    signer.close()


async def test_rotation_keeps_signing_with_the_old_key_until_the_new_one_is_in_dns(shop, hosting_id, settings, monkeypatch) -> None:
    monkeypatch.setattr(signer_module, "REFRESH_SECONDS", 0.0)
    old = add_verified(shop, hosting_id, "shop.example", settings)
    signer = Signer(shop, settings)
    with shop.begin() as connection:
        store.rotate(connection, "shop.example", new_keys(settings, NOW, taken=[k["selector"] for k in old]), NOW)
        new = [key for key in store.keys_to_check(connection) if key["id"] not in {k["id"] for k in old}]
    assert selectors((await signer.signed(submission(hosting_id))).data) == [k["selector"] for k in old]
    with shop.begin() as connection:
        store.record_check(connection, new[0]["id"], MATCH, NOW, 3600)  # only the RSA key is in DNS yet
    assert selectors((await signer.signed(submission(hosting_id))).data) == [new[0]["selector"], old[1]["selector"]]
    with shop.begin() as connection:
        store.record_check(connection, new[1]["id"], MATCH, NOW, 3600)
    assert selectors((await signer.signed(submission(hosting_id))).data) == [k["selector"] for k in new]
    signer.close()


async def test_unusable_keys_and_unsignable_mail_go_out_unsigned_with_a_log_line(shop, hosting_id, settings, tmp_path, caplog) -> None:
    add_verified(shop, hosting_id, "shop.example", settings)
    caplog.set_level(logging.WARNING)
    bad = Signer(shop, settings.model_copy(update={"key_file": tmp_path / "absent.key"}))
    result = await bad.signed(submission(hosting_id))
    # Counted as a signing failure (scriptmail_dkim_messages_total reason="failed"), not "not-set-up".
    assert result.dkim == "failed" and result.data == MESSAGE
    assert "cannot be used" in caplog.text and "absent.key" in caplog.text
    other = await bad.signed(submission(hosting_id, "elsewhere.example", MESSAGE.replace(b"shop.example", b"elsewhere.example")))
    assert other.dkim == ""  # a domain with no keys at all is still only "not set up"
    bad.close()
    signer = Signer(shop, settings)
    broken = await signer.signed(submission(hosting_id, data=b"From: web@shop.example\r\nnot a header\r\n\r\nx\r\n"))
    assert broken.dkim == "failed" and b"DKIM-Signature" not in broken.data and "goes out unsigned" in caplog.text
    signer.close()
