"""Which site a domain belongs to, and the shipped table with the operator's keys over it."""

from __future__ import annotations

import pytest

from scriptmail.config import ConfigError, DeliverySettings, load_settings
from scriptmail.shaping.sites import Limits, SiteTableError, build_table, shipped_sites

DEFAULT = Limits(connections=10, messages_per_connection=100)


def test_every_google_customer_shares_googles_site_and_an_own_mx_is_its_own_site() -> None:
    table = build_table(DEFAULT, {})
    assert table.site_of("shop.example", ["aspmx.l.google.com", "alt1.aspmx.l.google.com"]) == "google"
    assert table.site_of("corp.example", ["corp-example.mail.protection.outlook.com"]) == "microsoft"
    assert table.site_of("yahoo.example", ["mta5.am0.yahoodns.net"]) == "yahoo"
    assert table.site_of("own.example", ["mx.own.example"]) == "own.example"
    # A suffix matches on label boundaries only.
    assert table.site_of("trick.example", ["mx.notgoogle.com"]) == "trick.example"
    assert table.limits("own.example") == DEFAULT
    assert table.limits("google").per_minute > 0


def test_the_operator_overrides_one_key_and_adds_a_site_by_domain() -> None:
    table = build_table(DEFAULT, {"google": {"per_minute": 30}, "partner": {"domains": ["partner.example"], "connections": 2}})
    google = table.limits("google")
    assert google.per_minute == 30 and google.connections == shipped_sites()["google"]["connections"]
    assert table.site_of("partner.example") == "partner"
    assert table.limits("partner") == Limits(connections=2, messages_per_connection=100)


@pytest.mark.parametrize(
    "sites, words",
    [
        ({"nothing": {}}, "matches no mail"),
        ({"Bad Name": {"domains": ["a.example"]}}, "site name"),
        ({"x": {"mx": "google.com"}}, "valid list"),
        ({"x": {"mx": ["com"]}}, "host name with a dot"),
        ({"x": {"mx": ["*.example"]}}, "host name"),
        ({"x": {"mx": ["google.com"]}}, "already belongs to site 'google'"),
        ({"x": {"domains": ["a.example"], "connections": 0}}, "connections"),
        ({"x": {"domains": ["a.example"], "per_minute": -1}}, "per_minute"),
        ({"x": {"domains": ["a.example"], "speed": 1}}, "Extra inputs"),
    ],
)
def test_bad_site_definitions_are_refused_naming_the_key(sites: dict, words: str) -> None:
    with pytest.raises((SiteTableError, ValueError), match=words):
        DeliverySettings(sites=sites)


def test_a_bad_site_in_the_config_file_is_a_clear_config_error(tmp_path) -> None:
    path = tmp_path / "scriptmail.toml"
    path.write_text('[delivery.sites.google]\nper_minute = "fast"\n\n[delivery.sites.mine]\nconnections = 3\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert "delivery.sites.google.per_minute" in str(raised.value)
    path.write_text("[delivery.sites.mine]\nconnections = 3\n")
    with pytest.raises(ConfigError, match="sites.mine: give `mx`"):
        load_settings(path)
    path.write_text('[delivery.sites.mine]\ndomains = ["mine.example"]\nper_hour = 100\n')
    assert load_settings(path).delivery.site_table().limits("mine").per_hour == 100


def test_the_shipped_table_is_valid_and_names_the_large_providers() -> None:
    table = build_table(DEFAULT, {})
    assert {"google", "microsoft", "yahoo", "apple"} <= set(table.sites)
    for site in table.sites.values():
        assert site.shipped and site.mx and site.limits.connections >= 1
