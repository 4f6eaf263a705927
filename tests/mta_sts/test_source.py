"""Fetching and caching policies against a loopback DNS server and a loopback HTTPS server whose
certificate a CA made by the test signs (trusted through `tls_ca_file`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from scriptmail.config import DeliverySettings
from scriptmail.mta_sts.policy import MAX_POLICY_BYTES, Mode, Policy
from scriptmail.mta_sts.source import PolicySource
from tests.support.certificates import CertificateAuthority, write_certificate
from tests.support.dns_server import DnsServer
from tests.support.https_server import HttpsServer, Reply

DOMAIN = "customer.test"
HOST = f"mta-sts.{DOMAIN}"
PATH = "/.well-known/mta-sts.txt"
BODY = b"version: STSv1\nmode: enforce\nmx: mx.customer.test\nmax_age: 86400\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer(
        {
            (f"_mta-sts.{DOMAIN}.", "TXT"): ['"v=STSv1; id=one"'],
            (f"{HOST}.", "A"): ["127.0.0.1"],
        }
    ).start()
    yield server
    server.stop()


@pytest.fixture
def https(authority: CertificateAuthority) -> Iterator[HttpsServer]:
    server = HttpsServer(*authority.issue(HOST)).start()
    server.replies[f"{HOST}{PATH}"] = Reply(body=BODY)
    yield server
    server.stop()


def source(dns_server: DnsServer, https: HttpsServer, ca: Path | None, clock: Clock) -> PolicySource:
    settings = DeliverySettings(nameservers=["127.0.0.1"], dns_port=dns_server.port, mta_sts_port=https.port, tls_ca_file=ca)
    return PolicySource(settings, clock)


def lookups(policies: PolicySource, *steps: float) -> list[Policy | None]:
    """Ask for the domain's policy once per step, moving the clock by that many seconds first."""

    async def run() -> list[Policy | None]:
        found = []
        try:
            for step in steps:
                policies._clock.now += step  # type: ignore[attr-defined]
                found.append(await policies.policy(DOMAIN))
        finally:
            await policies.close()
        return found

    return asyncio.run(run())


def test_the_policy_is_fetched_over_https_once_and_fetched_again_when_the_id_changes(dns_server, https, authority) -> None:
    policies = source(dns_server, https, authority.ca_path, Clock())
    enforce = Policy(Mode.ENFORCE, ("mx.customer.test",), 86400)

    async def run() -> list[Policy | None]:
        found = [await policies.policy(DOMAIN), await policies.policy(DOMAIN)]
        https.replies[f"{HOST}{PATH}"] = Reply(body=BODY.replace(b"enforce", b"testing"))
        policies._clock.now += 30  # type: ignore[attr-defined]
        found.append(await policies.policy(DOMAIN))  # the TXT answer is still believed: cached
        dns_server.records[(f"_mta-sts.{DOMAIN}.", "TXT")] = ['"v=STSv1; id=two"']
        policies._clock.now += 300  # past the record's TTL
        found.append(await policies.policy(DOMAIN))
        await policies.close()
        return found

    first, second, third, fourth = asyncio.run(run())
    assert first == second == third == enforce
    assert fourth == Policy(Mode.TESTING, ("mx.customer.test",), 86400)
    assert https.requests == [(HOST, PATH, HOST)] * 2  # Host header and TLS name are the policy host's


def test_concurrent_deliveries_to_one_domain_fetch_once(dns_server, https, authority) -> None:
    policies = source(dns_server, https, authority.ca_path, Clock())

    async def run() -> list[Policy | None]:
        try:
            return list(await asyncio.gather(*(policies.policy(DOMAIN) for _ in range(5))))
        finally:
            await policies.close()

    assert len(set(asyncio.run(run()))) == 1
    assert len(https.requests) == 1


def test_a_domain_without_a_record_has_no_policy_and_nothing_is_fetched(dns_server, https, authority) -> None:
    del dns_server.records[(f"_mta-sts.{DOMAIN}.", "TXT")]
    assert lookups(source(dns_server, https, authority.ca_path, Clock()), 0) == [None]
    assert https.requests == []


def test_a_removed_record_or_a_failing_host_leaves_the_cached_policy_in_force_until_max_age(dns_server, https, authority) -> None:
    policies = source(dns_server, https, authority.ca_path, Clock())

    async def run() -> list[Policy | None]:
        found = [await policies.policy(DOMAIN)]
        dns_server.records[(f"_mta-sts.{DOMAIN}.", "TXT")] = ['"v=STSv1; id=two"']
        https.replies[f"{HOST}{PATH}"] = Reply(500, b"down")
        policies._clock.now += 400
        found.append(await policies.policy(DOMAIN))  # new id, fetch fails: the old policy holds
        del dns_server.records[(f"_mta-sts.{DOMAIN}.", "TXT")]
        dns_server.records[(f"{DOMAIN}.", "MX")] = ["10 mx.customer.test."]  # the name still exists
        policies._clock.now += 4000
        found.append(await policies.policy(DOMAIN))  # record gone: still in force
        policies._clock.now += 86400
        found.append(await policies.policy(DOMAIN))  # max_age over: gone
        await policies.close()
        return found

    found = asyncio.run(run())
    assert found[0] == found[1] == found[2] and found[0] is not None and found[0].mode is Mode.ENFORCE
    assert found[3] is None


@pytest.mark.parametrize(
    ("reply", "logged"),
    [
        (Reply(301, b"", {"Location": "https://evil.test/mta-sts.txt", "Content-Type": "text/plain"}), "not followed"),
        (Reply(302, b"", {"Location": "/elsewhere", "Content-Type": "text/plain"}), "not followed"),
        (Reply(404, b"not here"), "answered 404"),
        (Reply(200, BODY, {"Content-Type": "text/html"}), "not text/plain"),
        (Reply(200, BODY, {}), "not text/plain"),
        (Reply(200, b"version: STSv1\nmode: enforce\nmx: mx.customer.test\nmax_age: 1\n" + b"#" * MAX_POLICY_BYTES), "more than"),
        (Reply(200, b"version: STSv1\nmode: enforce\nmax_age: 1\n"), "no mx"),
        (Reply(200, b"<html>It works!</html>"), "key: value"),
    ],
)
def test_bad_answers_give_no_policy_and_a_logged_reason(dns_server, https, authority, caplog, reply, logged) -> None:
    https.replies[f"{HOST}{PATH}"] = reply
    https.replies["evil.test/mta-sts.txt"] = Reply(body=BODY)
    with caplog.at_level(logging.WARNING, "scriptmail.mta_sts"):
        assert lookups(source(dns_server, https, authority.ca_path, Clock()), 0) == [None]
    assert logged in caplog.text
    assert [path for _, path, _ in https.requests] == [PATH]  # a redirect is never followed


def test_text_plain_with_a_charset_is_accepted(dns_server, https, authority) -> None:
    https.replies[f"{HOST}{PATH}"] = Reply(body=BODY, headers={"Content-Type": "Text/Plain; charset=utf-8"})
    (policy,) = lookups(source(dns_server, https, authority.ca_path, Clock()), 0)
    assert policy is not None and policy.mode is Mode.ENFORCE


def test_a_policy_host_whose_certificate_is_not_trusted_gives_no_policy(dns_server, https, caplog) -> None:
    with caplog.at_level(logging.WARNING, "scriptmail.mta_sts"):
        assert lookups(source(dns_server, https, None, Clock()), 0) == [None]  # the test CA not trusted
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text or "certificate verify failed" in caplog.text


def test_a_certificate_for_another_name_gives_no_policy(dns_server, authority, tmp_path, caplog) -> None:
    server = HttpsServer(*authority.issue("mta-sts.other.test")).start()
    server.replies[f"{HOST}{PATH}"] = Reply(body=BODY)
    try:
        with caplog.at_level(logging.WARNING, "scriptmail.mta_sts"):
            assert lookups(source(dns_server, server, authority.ca_path, Clock()), 0) == [None]
    finally:
        server.stop()
    assert "mismatch" in caplog.text or "doesn't match" in caplog.text or "not valid for" in caplog.text


def test_a_self_signed_policy_host_gives_no_policy(dns_server, authority, tmp_path) -> None:
    cert, key = tmp_path / "self.pem", tmp_path / "self.key"
    write_certificate(cert, key, HOST, kind="ec")
    server = HttpsServer(cert, key).start()
    server.replies[f"{HOST}{PATH}"] = Reply(body=BODY)
    try:
        assert lookups(source(dns_server, server, authority.ca_path, Clock()), 0) == [None]
    finally:
        server.stop()


def test_a_policy_host_without_an_address_or_a_silent_dns_gives_no_policy(dns_server, https, authority) -> None:
    del dns_server.records[(f"{HOST}.", "A")]
    dns_server.records[(f"{HOST}.", "TXT")] = ['"exists"']
    assert lookups(source(dns_server, https, authority.ca_path, Clock()), 0) == [None]
    dns_server.failures[f"_mta-sts.{DOMAIN}."] = "servfail"
    assert lookups(source(dns_server, https, authority.ca_path, Clock()), 0) == [None]


def test_the_configuration_refuses_a_missing_or_unusable_ca_file(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="does not exist"):
        DeliverySettings(tls_ca_file=tmp_path / "none.pem")
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValidationError, match="no usable PEM CA certificate"):
        DeliverySettings(tls_ca_file=tmp_path / "junk.pem")
    with pytest.raises(ValidationError):
        DeliverySettings(mta_sts_port=0)
    assert DeliverySettings(tls_ca_file="").tls_ca_file is None


def test_a_unicode_domain_is_looked_up_and_fetched_as_punycode(dns_server, authority, caplog) -> None:
    ace = "xn--bcher-kva.test"
    dns_server.records[(f"_mta-sts.{ace}.", "TXT")] = ['"v=STSv1; id=idn"']
    dns_server.records[(f"mta-sts.{ace}.", "A")] = ["127.0.0.1"]
    server = HttpsServer(*authority.issue(f"mta-sts.{ace}")).start()
    server.replies[f"mta-sts.{ace}{PATH}"] = Reply(body=BODY)
    settings = DeliverySettings(
        nameservers=["127.0.0.1"], dns_port=dns_server.port, mta_sts_port=server.port, tls_ca_file=authority.ca_path
    )
    policies = PolicySource(settings, Clock())

    async def run() -> list[Policy | None]:
        try:
            return [await policies.policy("bücher.test"), await policies.policy("bad..name"), await policies.policy("-x.test")]
        finally:
            await policies.close()

    try:
        with caplog.at_level(logging.WARNING, "scriptmail.mta_sts"):
            found = asyncio.run(run())
    finally:
        server.stop()
    assert found[0] is not None and found[0].mode is Mode.ENFORCE and found[1:] == [None, None]
    assert server.requests == [(f"mta-sts.{ace}", PATH, f"mta-sts.{ace}")]
    assert "Traceback" not in caplog.text


def test_a_failing_policy_host_is_asked_again_only_after_a_pause(dns_server, https, authority) -> None:
    from scriptmail.mta_sts.source import FAILURE_PAUSE

    https.replies[f"{HOST}{PATH}"] = Reply(500, b"broken")
    policies = source(dns_server, https, authority.ca_path, Clock())
    assert FAILURE_PAUSE > 300  # longer than the record's TTL, so that the pause is what is tested
    found = lookups(policies, 0, 1, 400, FAILURE_PAUSE - 400)  # the TXT record is looked up again at 401
    assert found == [None, None, None, None]
    assert len(https.requests) == 2  # at the start, then once the pause was over


# --- the background refresh (RFC 8461 §5.1, §10.2) ---------------------------------------------

WEEK_BODY = BODY.replace(b"max_age: 86400", b"max_age: 604800")


def test_the_refresh_fetches_a_policy_again_a_day_before_its_max_age_runs_out(dns_server, https, authority) -> None:
    https.replies[f"{HOST}{PATH}"] = Reply(body=WEEK_BODY)
    clock = Clock()
    policies = source(dns_server, https, authority.ca_path, clock)

    async def run() -> list[int]:
        try:
            await policies.policy(DOMAIN)
            renewed = [await policies.refresh()]  # just fetched: nothing to do
            clock.now += 604800 - 86400 - 60
            renewed.append(await policies.refresh())  # not yet within the last day
            https.replies[f"{HOST}{PATH}"] = Reply(body=WEEK_BODY.replace(b"enforce", b"testing"))
            clock.now += 120
            renewed.append(await policies.refresh())  # within the last day: fetched again, same id
            clock.now += 86400  # past the first fetch's max_age, well within the second's
            renewed.append(await policies.refresh())
            policy = await policies.policy(DOMAIN)
            assert policy is not None and policy.mode is Mode.TESTING
            return renewed
        finally:
            await policies.close()

    assert asyncio.run(run()) == [0, 0, 1, 0]
    assert len(https.requests) == 2  # the lookup's fetch and the refresh's; the later lookup used the cache


def test_the_refresh_fetches_at_once_when_the_txt_id_changes_without_waiting_for_a_delivery(dns_server, https, authority) -> None:
    clock = Clock()
    policies = source(dns_server, https, authority.ca_path, clock)

    async def run() -> tuple[int, Policy | None]:
        try:
            await policies.policy(DOMAIN)
            dns_server.records[(f"_mta-sts.{DOMAIN}.", "TXT")] = ['"v=STSv1; id=two"']
            https.replies[f"{HOST}{PATH}"] = Reply(body=BODY.replace(b"mx.customer.test", b"mx2.customer.test"))
            clock.now += 10  # the TXT answer the lookup saw is still believed; the refresh asks DNS anew
            renewed = await policies.refresh()
            return renewed, await policies.policy(DOMAIN)
        finally:
            await policies.close()

    renewed, policy = asyncio.run(run())
    assert renewed == 1 and policy == Policy(Mode.ENFORCE, ("mx2.customer.test",), 86400)
    assert len(https.requests) == 2


def test_a_failed_refresh_keeps_the_valid_cached_policy_and_is_not_repeated_at_once(dns_server, https, authority, caplog) -> None:
    clock = Clock()
    policies = source(dns_server, https, authority.ca_path, clock)
    enforce = Policy(Mode.ENFORCE, ("mx.customer.test",), 86400)

    async def run() -> list[object]:
        try:
            seen: list[object] = [await policies.policy(DOMAIN)]
            https.replies[f"{HOST}{PATH}"] = Reply(503, b"down for maintenance")
            clock.now += 86400 / 2 + 1  # a one-day policy is refreshed in its second half
            seen.append(await policies.refresh())
            seen.append(await policies.refresh())  # the failure pause: the host is not hammered
            clock.now += 60
            seen.append(await policies.policy(DOMAIN))  # still in force for the deliveries
            https.replies[f"{HOST}{PATH}"] = Reply(body=BODY)
            clock.now += 600
            seen.append(await policies.refresh())  # after the pause: fetched, and the max_age starts again
            clock.now += 86400 / 2
            seen.append(await policies.policy(DOMAIN))  # past the first fetch's max_age: the refreshed one holds
            return seen
        finally:
            await policies.close()

    with caplog.at_level(logging.WARNING, "scriptmail.mta_sts"):
        seen = asyncio.run(run())
    assert seen == [enforce, 0, 0, enforce, 1, enforce]
    assert "not refreshed" in caplog.text and "answered 503" in caplog.text and "stays in force until" in caplog.text
    assert len(https.requests) == 3


def test_the_refresh_forgets_an_expired_policy_whose_record_is_gone_and_fetches_nothing(dns_server, https, authority) -> None:
    clock = Clock()
    policies = source(dns_server, https, authority.ca_path, clock)

    async def run() -> tuple[int, int, Policy | None]:
        try:
            await policies.policy(DOMAIN)
            del dns_server.records[(f"_mta-sts.{DOMAIN}.", "TXT")]
            clock.now += 86400 - 10
            kept = await policies.refresh()  # no record: nothing to fetch, the policy still holds
            policy = await policies.policy(DOMAIN)
            clock.now += 3600
            gone = await policies.refresh()
            return kept, gone, policy
        finally:
            await policies.close()

    kept, gone, policy = asyncio.run(run())
    assert (kept, gone) == (0, 0) and policy is not None
    assert len(https.requests) == 1 and policies._cache == {}
