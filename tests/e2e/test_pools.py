"""Outbound IP pools with real parts: the receiving server sees the pool's source address and
EHLO name; the pool follows the hosting's age and state; an address the machine lacks is skipped."""

from __future__ import annotations

import logging
import time

import pytest

from scriptmail.config import DeliverySettings, PoolRules, PoolSettings
from scriptmail.control.states import Action, Actor
from scriptmail.model import HostingState
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from scriptmail.store.hostings import find_hosting
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Sink

POOLS = {
    "fresh": PoolSettings(addresses=["127.0.0.2", "127.0.0.3"], helo_name="fresh-pool.gateway.test"),
    # 192.0.2.77 (TEST-NET-1) is on no interface of this machine: reported and skipped.
    "risky": PoolSettings(addresses=["192.0.2.77", "127.0.0.4"], helo_name="risky-pool.gateway.test"),
}
RULES = PoolRules(new_hostings="fresh", states={"forced": "risky"})


def _id(gateway: RunningGateway) -> int:
    with gateway.engine.connect() as connection:
        return find_hosting(connection, name=HOSTING).id


def send_one(gateway: RunningGateway, sink: Sink, n: int) -> None:
    before = len(sink.messages)
    submit(gateway.smtp_port, f"Subject: pool {n}\r\n\r\nhello\r\n".encode(), [f"to{n}@sink.test"])
    sink.wait_for(before + 1)


def test_mail_leaves_from_the_pool_addresses_in_turn_with_the_pool_ehlo_name(make_gateway, sink: Sink, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="scriptmail.delivery.pools")
    gateway = make_gateway(pools=POOLS, pool_for=RULES, idle_seconds=0)
    agent = gateway.gateway.agent

    # The shop was created just now: a new hosting, so the "fresh" pool, both addresses in turn.
    for n in range(4):
        send_one(gateway, sink, n)
    assert {m.peer for m in sink.messages} == {"127.0.0.2", "127.0.0.3"}
    assert {m.helo for m in sink.messages} == {"fresh-pool.gateway.test"}

    # Forced by the operator: the state rule comes first, so the "risky" pool.
    with for_writing(gateway.engine).begin() as connection:  # beside the running gateway, as another process would
        change_state(connection, HOSTING, Action.SET, Actor.OPERATOR, time.time(), "test", target=HostingState.FORCED)
    gateway.call(agent.reread_states())
    deadline = time.monotonic() + 10
    while agent.current_pool(_id(gateway)) != "risky":  # a periodic read begun before the change may land last
        assert time.monotonic() < deadline
        time.sleep(0.05)
    send_one(gateway, sink, 9)
    last = sink.messages[-1]
    assert (last.peer, last.helo) == ("127.0.0.4", "risky-pool.gateway.test")
    wait_status(gateway.engine, "sent", 5)

    # The address the machine lacks was reported when delivery started, and never used.
    assert "192.0.2.77" in agent.pools["risky"].unusable and agent.pools["risky"].addresses == ["127.0.0.4"]
    assert "cannot send from 192.0.2.77" in caplog.text
    assert agent.pools["fresh"].sent == 4 and agent.pools["risky"].sent == 1


def test_mail_of_hostings_no_rule_names_leaves_from_the_default_address(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(pools=POOLS, pool_for=PoolRules(states={"forced": "risky"}))
    send_one(gateway, sink, 1)
    assert sink.messages[-1].peer == "127.0.0.1" and sink.messages[-1].helo == "gateway.test"


@pytest.mark.parametrize(
    "pools, rules, words",
    [
        ({"p": {"addresses": []}}, {}, "at least one address"),
        ({"p": {"addresses": ["not-an-ip"]}}, {}, "not an IP address"),
        ({"p": {"addresses": ["127.0.0.2", "127.0.0.2"]}}, {}, "listed twice"),
        ({"p": {"addresses": ["127.0.0.2"], "helo_name": "bad name!"}}, {}, "not a host name"),
        ({"p": {"addresses": ["127.0.0.2"]}}, {"default": "q"}, "no pool named 'q'"),
        ({"p": {"addresses": ["127.0.0.2"]}}, {"states": {"forced": "nope"}}, "pool_for.states.forced"),
        ({"p": {"addresses": ["127.0.0.2"]}}, {"states": {"frozen": "p"}}, "not a hosting state"),
        ({"bad name": {"addresses": ["127.0.0.2"]}}, {}, "pools.bad name"),
    ],
)
def test_bad_pool_settings_are_refused_naming_the_key(pools: dict, rules: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        DeliverySettings(pools=pools, pool_for=rules)
