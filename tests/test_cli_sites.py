"""`scriptmail sites` as an operator uses it, run as a real process over a store in which a
delivery node published its sites and pools."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import Engine

from scriptmail.store import delivery_sites
from tests.test_cli import run  # noqa: F401 - the fixture

SLOWED = {
    "configured": {"connections": 10, "messages_per_connection": 50, "per_minute": 600, "per_hour": 18000},
    "limits": {"connections": 5, "messages_per_connection": 25, "per_minute": 300, "per_hour": 9000},
    "level": 1, "paused_for": 12.0, "recovers_in": 500.0, "reason": "421 4.7.0 Try again later",
    "connections": 2, "in_flight": 7, "sent": 40, "deferred": 3, "postponed": 9, "slowdowns": 1,
}  # fmt: skip


def test_the_operator_sees_busy_and_slowed_sites_merged_over_nodes_and_the_pools(run, engine: Engine) -> None:  # noqa: F811
    run("db", "upgrade")
    now = time.time()
    with engine.begin() as connection:
        delivery_sites.publish(connection, "node-a", [("site", "microsoft", SLOWED), ("pool", "fresh", {
            "addresses": ["127.0.0.2"], "unusable": {"192.0.2.77": "Cannot assign requested address"}, "helo_name": "f.example", "sent": 4})], now)  # fmt: skip
        delivery_sites.publish(
            connection, "node-b", [("site", "microsoft", SLOWED | {"level": 0, "reason": "", "connections": 1})], now
        )
        delivery_sites.publish(connection, "gone-node", [("site", "google", SLOWED)], now - 3600)
    shown = json.loads(run("sites", "--json").stdout)
    (site,) = shown["sites"]  # the node that stopped publishing an hour ago is not counted
    assert site["name"] == "microsoft" and site["connections"] == 3 and site["level"] == 1
    assert site["reason"] == "421 4.7.0 Try again later" and sorted(site["nodes"]) == ["node-a", "node-b"]
    assert shown["pools"][0]["unusable"] == {"192.0.2.77": "Cannot assign requested address"}
    table = run("sites").stdout
    assert "microsoft" in table and "level 1: 421 4.7.0 Try again later" in table and "192.0.2.77" in table
    # A node publishing again replaces its own rows only.
    with engine.begin() as connection:
        delivery_sites.publish(connection, "node-a", [], time.time())
    assert json.loads(run("sites", "--json").stdout)["sites"][0]["level"] == 0


def test_the_configured_table_and_bad_site_settings(run, tmp_path: Path) -> None:  # noqa: F811
    configured = json.loads(run("sites", "--configured", "--json").stdout)
    google = next(row for row in configured if row["name"] == "google")
    assert google["shipped"] and "google.com" in google["mx"] and google["limits"]["per_minute"] > 0
    assert configured[-1]["name"] == "(any other domain)"
    run("sites", "--no-such-option", expect=2)
    config = tmp_path / "scriptmail.toml"
    config.write_text(config.read_text() + '\n[delivery.sites.google]\nmx = ["google"]\n')
    refused = run("sites", expect=78)
    assert "delivery.sites.google.mx" in refused.stderr or "sites.google.mx" in refused.stderr
