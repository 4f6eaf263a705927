"""The test send's hourly allowance and its rows, on both stores."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from scriptmail.store import hostings as hosting_store
from scriptmail.store import test_sends

NOW = 1_800_000_000.0


def test_the_allowance_is_per_hosting_and_rolling_hour(shop: Engine) -> None:
    with shop.begin() as connection:
        mine = hosting_store.find_hosting(connection, name="shop.example").id
        other = hosting_store.add_hosting(connection, "other.example", "o@other.example").id
        first = test_sends.reserve(connection, mine, "test@shop.example", "a@x.test", "owner", NOW, limit=2)
        test_sends.reserve(connection, mine, "test@shop.example", "b@x.test", "owner", NOW + 600, limit=2)
        with pytest.raises(test_sends.TooManyTests) as refused:
            test_sends.reserve(connection, mine, "test@shop.example", "c@x.test", "owner", NOW + 1200, limit=2)
        assert refused.value.limit == 2 and 2390 <= refused.value.retry_after <= 2402  # when the first one leaves the hour
        test_sends.reserve(connection, other, "test@other.example", "c@x.test", "owner", NOW + 1200, limit=2)  # its own hour
        test_sends.reserve(
            connection, mine, "test@shop.example", "d@x.test", "owner", NOW + 3601, limit=2
        )  # the first has left it
        with pytest.raises(test_sends.TooManyTests):
            test_sends.reserve(connection, mine, "test@shop.example", "e@x.test", "owner", NOW + 3602, limit=0)  # 0: none at all
        assert test_sends.used(connection, mine, NOW + 3601) == 2
        test_sends.record(connection, first, refused="554 5.5.1 no valid recipients")
    with shop.connect() as connection:
        row = test_sends.result(connection, mine, first)
        assert row["refused"] == "554 5.5.1 no valid recipients" and row["status"] is None
        assert test_sends.result(connection, other, first) is None  # another hosting's test is not found
        assert [r["address"] for r in test_sends.latest(connection, mine)] == ["d@x.test", "b@x.test", "a@x.test"]
