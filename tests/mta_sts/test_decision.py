"""Which MX hosts a policy lets mail go to, with what TLS demand, and when a cached policy holds."""

from __future__ import annotations

from scriptmail.mta_sts.cache import Cached, Step, next_step
from scriptmail.mta_sts.decision import TlsDemand, plan
from scriptmail.mta_sts.policy import Mode, Policy

HOSTS = ["mx1.example.com", "mx2.example.com", "relay.elsewhere.test"]


def test_without_a_policy_or_with_mode_none_every_host_is_tried_opportunistically() -> None:
    for policy in (None, Policy(Mode.NONE, (), 3600)):
        decided = plan("example.com", policy, HOSTS)
        assert decided.hosts == tuple(HOSTS) and decided.demand is None and not decided.refusal


def test_enforce_keeps_only_listed_hosts_and_demands_a_valid_certificate() -> None:
    decided = plan("example.com", Policy(Mode.ENFORCE, ("*.example.com",), 3600), HOSTS)
    assert decided.hosts == ("mx1.example.com", "mx2.example.com")
    assert decided.unlisted == ("relay.elsewhere.test",)
    assert decided.demand == TlsDemand("example.com", Mode.ENFORCE) and decided.demand.enforced
    assert not decided.refusal


def test_enforce_with_no_listed_host_defers_with_the_reason() -> None:
    decided = plan("example.com", Policy(Mode.ENFORCE, ("mx.other.test",), 3600), HOSTS)
    assert decided.hosts == ()
    assert decided.refusal == (
        "MTA-STS policy of example.com (enforce): none of the MX hosts "
        "(mx1.example.com, mx2.example.com, relay.elsewhere.test) is listed in the policy"
    )


def test_testing_tries_every_host_and_names_the_unlisted_ones() -> None:
    decided = plan("example.com", Policy(Mode.TESTING, ("mx1.example.com",), 3600), HOSTS)
    assert decided.hosts == tuple(HOSTS) and not decided.refusal
    assert decided.unlisted == ("mx2.example.com", "relay.elsewhere.test")
    assert decided.demand is not None and not decided.demand.enforced


POLICY = Policy(Mode.ENFORCE, ("mx.example.com",), 1000)


def test_the_same_id_within_max_age_uses_the_cache_and_a_new_id_fetches() -> None:
    cached = Cached(POLICY, "one", fetched_at=5000)
    assert next_step(cached, "one", 5999) is Step.USE_CACHED
    assert next_step(cached, "two", 5001) is Step.FETCH
    assert next_step(cached, "one", 6000) is Step.FETCH  # max_age ran out
    assert next_step(None, "one", 5000) is Step.FETCH


def test_a_vanished_record_leaves_a_fresh_policy_in_force_until_its_max_age() -> None:
    cached = Cached(POLICY, "one", fetched_at=5000)
    assert next_step(cached, None, 5999) is Step.USE_CACHED
    assert next_step(cached, None, 6000) is Step.NO_POLICY
    assert next_step(None, None, 0) is Step.NO_POLICY


def test_when_the_background_refresh_fetches_again() -> None:
    from scriptmail.mta_sts.cache import Cached, refresh_due
    from scriptmail.mta_sts.policy import Mode, Policy

    week = Cached(Policy(Mode.ENFORCE, ("mx.example",), 604800), "one", 0.0)
    assert not refresh_due(week, "one", 604800 - 86400 - 1)
    assert refresh_due(week, "one", 604800 - 86400)  # the last day
    assert refresh_due(week, "two", 1.0)  # a new id at once
    assert not refresh_due(week, None, 604799)  # no record: nothing to fetch, the cache holds
    hour = Cached(Policy(Mode.TESTING, ("mx.example",), 3600), "one", 0.0)
    assert not refresh_due(hour, "one", 1799) and refresh_due(hour, "one", 1800)  # half of a short max_age
