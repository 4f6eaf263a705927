"""A site's slow-down shared by every delivery process, on both stores (on SQLite in the file
beside the database)."""

from __future__ import annotations

from sqlalchemy import Engine

from scriptmail.store import site_slowdowns
from scriptmail.store.site_shares import SiteShares


def test_two_processes_hit_by_one_421_count_one_complaint_and_everyone_reads_it_until_it_ends(engine: Engine) -> None:
    shares = SiteShares(engine)
    site_slowdowns.ensure_beside(shares.engine)
    assert shares.run(site_slowdowns.live, 0.0) == {}
    first = shares.run(site_slowdowns.report, "google", 100.0, "421 4.7.28 rate limited", 60.0, 600.0)
    second = shares.run(site_slowdowns.report, "google", 100.2, "421 4.7.28 rate limited", 60.0, 600.0)
    assert first.level == 1 and second.level == 1 and second.recovers_at == first.recovers_at == 700.0
    assert second.paused_until == 160.2
    live = shares.run(site_slowdowns.live, 101.0)
    assert set(live) == {"google"} and live["google"] == second
    later = shares.run(site_slowdowns.report, "google", 400.0, "421 again", 60.0, 600.0)
    assert later.level == 2 and later.reason == "421 again"
    assert "google" in shares.run(site_slowdowns.live, 1599.0)  # two levels: 400 + 600 + 600
    assert shares.run(site_slowdowns.live, 1601.0) == {}


def test_rows_long_over_are_forgotten(engine: Engine) -> None:
    shares = SiteShares(engine)
    site_slowdowns.ensure_beside(shares.engine)
    shares.run(site_slowdowns.report, "old.example", 0.0, "421", 60.0, 600.0)
    shares.run(site_slowdowns.report, "new.example", 200_000.0, "421", 60.0, 600.0)
    with shares.engine.connect() as connection:
        sites = {row.site for row in connection.execute(site_slowdowns.site_slowdowns.select())}
    assert sites == {"new.example"}
