"""Which pool a hosting's mail leaves through (pure), and the addresses taken in turn."""

from __future__ import annotations

from scriptmail.config import PoolRules, PoolSettings
from scriptmail.delivery.pools import HostingFacts, can_bind, open_pools, pool_of

DAY = 86400.0
NOW = 100 * DAY
RULES = PoolRules(
    hostings={"vip.example": "vip"}, states={"forced": "risky"}, new_hostings="fresh", plans={"starter": "cheap"}, default="main"
)


def hosting(name: str = "shop.example", state: str = "active", plan: str = "pro", age_days: float = 30) -> HostingFacts:
    return HostingFacts(1, name, state, plan, NOW - age_days * DAY)


def test_the_first_matching_rule_wins_hosting_state_age_plan_default() -> None:
    assert pool_of(RULES, hosting("vip.example", state="forced", age_days=1), NOW) == "vip"
    assert pool_of(RULES, hosting(state="forced", age_days=1), NOW) == "risky"
    assert pool_of(RULES, hosting(age_days=6.9, plan="starter"), NOW) == "fresh"
    assert pool_of(RULES, hosting(age_days=7.1, plan="starter"), NOW) == "cheap"
    assert pool_of(RULES, hosting(), NOW) == "main"
    assert pool_of(PoolRules(), hosting(), NOW) == ""


def test_addresses_are_taken_in_turn_and_one_the_machine_lacks_is_skipped() -> None:
    assert can_bind("127.0.0.2") == ""
    assert can_bind("192.0.2.77") != ""
    pools = open_pools({"p": PoolSettings(addresses=["127.0.0.2", "192.0.2.77", "127.0.0.3"])}, "gw.example")
    pool = pools["p"]
    assert pool.unusable.keys() == {"192.0.2.77"}
    assert [pool.next_source() for _ in range(3)] == [
        ("127.0.0.2", "gw.example"),
        ("127.0.0.3", "gw.example"),
        ("127.0.0.2", "gw.example"),
    ]
    empty = open_pools({"q": PoolSettings(addresses=["192.0.2.78"], helo_name="q.example")}, "gw.example")["q"]
    assert empty.next_source() is None and empty.helo_name == "q.example"
