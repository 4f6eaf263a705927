"""A site's connections and rate shared by every delivery process, on both stores (on SQLite in
the file beside the database). Threads stand for processes: each call is its own transaction."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from scriptmail.store import site_shares
from scriptmail.store.site_shares import SiteShares


def test_connections_count_every_holder_and_a_dead_holders_lease_runs_out(engine: Engine) -> None:
    shares = SiteShares(engine)
    assert shares.run(site_shares.open_slot, "google", "node-a", 2, 100.0, 30.0)
    assert shares.run(site_shares.open_slot, "google", "node-b", 2, 100.0, 30.0)
    assert not shares.run(site_shares.open_slot, "google", "node-a", 2, 101.0, 30.0)  # the site is full
    assert shares.run(site_shares.open_slot, "yahoo", "node-a", 2, 101.0, 30.0)  # another site is not
    assert shares.run(site_shares.open_connections, 101.0) == {"google": 2, "yahoo": 1}
    shares.run(site_shares.close_slot, "google", "node-a")
    assert shares.run(site_shares.open_slot, "google", "node-a", 2, 102.0, 30.0)
    # node-b is killed holding its connection: it stops counting when its lease runs out...
    assert not shares.run(site_shares.open_slot, "google", "node-a", 2, 129.0, 30.0)
    shares.run(site_shares.renew, "node-a", 129.0, 30.0)  # (node-a, alive, renews)
    assert shares.run(site_shares.open_slot, "google", "node-a", 2, 131.0, 30.0)
    assert shares.run(site_shares.open_connections, 131.0) == {"google": 2, "yahoo": 1}
    # ...and a node started again under the same name starts from nothing.
    shares.run(site_shares.forget, "node-a")
    assert shares.run(site_shares.open_connections, 131.0) == {}


def test_closing_more_than_was_opened_leaves_nothing_behind(engine: Engine) -> None:
    shares = SiteShares(engine)
    shares.run(site_shares.close_slot, "never-opened.example", "node-a")
    assert shares.run(site_shares.open_slot, "never-opened.example", "node-a", 1, 0.0, 30.0)
    shares.run(site_shares.close_slot, "never-opened.example", "node-a")
    shares.run(site_shares.close_slot, "never-opened.example", "node-a")
    assert shares.run(site_shares.open_connections, 1.0) == {}


def test_rate_tokens_are_one_budget_for_racing_processes(engine: Engine) -> None:
    shares = SiteShares(engine)
    granted: list[int] = []
    lock = threading.Lock()

    def process() -> None:
        for _ in range(10):
            got, _wait = shares.run(site_shares.reserve, "microsoft", 1, 2, 600, 0, 50.0)
            with lock:
                granted.append(got)

    threads = [threading.Thread(target=process) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 10  # 600 a minute: a second's worth in a row, for the four together
    got, wait = shares.run(site_shares.reserve, "microsoft", 1, 1, 600, 0, 50.0)
    assert got == 0 and 0.09 < wait <= 0.11
    got, _ = shares.run(site_shares.reserve, "microsoft", 1, 16, 600, 0, 51.0)
    assert got == 10  # a second later the site has a second's worth again
    assert shares.run(site_shares.reserve, "no-limit.example", 3, 8, 0, 0, 51.0) == (8, 0.0)
