"""Configuration: defaults, TOML, environment overrides, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from scriptmail.config import ConfigError, load_settings


def test_defaults_need_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCRIPTMAIL_CONFIG", raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///var/scriptmail.db"
    assert settings.intake.listen == "127.0.0.1:2525"
    assert settings.intake.max_message_size == 10 * 1024 * 1024
    assert settings.intake.max_recipients == 100
    assert settings.delivery.relay_host == "" and settings.delivery.routes == {}
    assert (settings.delivery.backoff_min, settings.delivery.backoff_max) == (300, 4000)
    assert settings.delivery.lifetime == 5 * 24 * 3600
    assert settings.delivery.data_timeout == 600
    assert settings.web.listen == "127.0.0.1:8025"


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "scriptmail.toml"
    config.write_text(
        'database_url = "postgresql+psycopg://u@db.test/mail"\n'
        "[intake]\nlisten = \"0.0.0.0:2525\"\ntrusted_networks = {\"10.1.2.0/24\" = \"site-a\"}\n"
        "[delivery]\nrelay_host = \"smarthost.test:587\"\nroutes = {\"Example.TEST\" = \"127.0.0.1:2600\"}\n"
    )
    monkeypatch.setenv("SCRIPTMAIL_INTAKE__LISTEN", "127.0.0.1:2626")
    settings = load_settings(config)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.intake.listen == "127.0.0.1:2626"
    assert settings.intake.trusted_networks == {"10.1.2.0/24": "site-a"}
    assert settings.delivery.routes == {"example.test": "127.0.0.1:2600"}
    monkeypatch.setenv("SCRIPTMAIL_CONFIG", str(config))
    assert load_settings().delivery.relay_host == "smarthost.test:587"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[intake]\nlisten = "127.0.0.1:99999"\n', "intake.listen"),
        ('[intake]\nlisten = "nohost"\n', "intake.listen"),
        ('[intake]\ntrusted_networks = {"10.0.0.300/8" = "x"}\n', "intake.trusted_networks"),
        ("[intake]\nmax_message_size = -1\n", "intake.max_message_size"),
        ('[delivery]\nroutes = {"bad domain" = "127.0.0.1:25"}\n', "delivery.routes"),
        ('[delivery]\nrelay_host = "relay.test:0"\n', "delivery.relay_host"),
        ('[delivery]\nnameservers = ["resolver.test"]\n', "delivery.nameservers"),
        ("[web]\napi_rate_per_minute = -1\n", "web.api_rate_per_minute"),
        ("[web]\napi_burst = 0\n", "web.api_burst"),
        ("[web]\nnice = 20\n", "web.nice"),
        ("[web]\nnice = -5\n", "web.nice"),
        ("[web]\nmail_first_rate = -1\n", "web.mail_first_rate"),
        ("[web]\nmail_first_rate = \"fast\"\n", "web.mail_first_rate"),
        ("[web]\napi_rate_per_minute = \"fast\"\n", "web.api_rate_per_minute"),
        ('database_url = "mysql://x"\n', "database_url"),
        ("[intake]\nlisen = \"127.0.0.1:25\"\n", "intake.lisen: unknown key"),
        ("surprise = 1\n", "surprise: unknown key"),
        ('[intake]\ntls_cert = "cert.pem"\n', "tls_cert and tls_key go together"),
        ("[delivery]\nbackoff_min = 600\nbackoff_max = 300\n", "backoff_min (600) is larger than backoff_max (300)"),
        ('timezone = "Mars/Olympus"\n', "timezone: 'Mars/Olympus' is not a time zone name"),
        ('timezone = "../../etc/passwd"\n', "timezone"),
        ('[plans."gold plan"]\nhourly = 5\n', "plan name 'gold plan'"),
        ("[plans.tiny]\nhourly = -1\n", "plans.tiny.hourly"),
        ("[plans.tiny]\nbounce_window = 5\n", "plans.tiny.bounce_window"),
        ("[plans.tiny]\nbounce_ratio = 1.5\n", "plans.tiny.bounce_ratio"),
        ("[plans.tiny]\nhourlly = 5\n", "plans.tiny.hourlly: unknown key"),
        ('[control]\ndefault_plan = "gold"\n', "control.default_plan: no plan named 'gold'"),
        ('[control]\nrspamd_url = "ftp://scanner.test"\n', "control.rspamd_url"),
        ("[control]\nlog_days = 0\n", "control.log_days"),
        ('[bounces]\ndomain = "not a domain"\n', "bounces.domain"),
        ('[bounces]\nlisten = "0.0.0.0:25"\n', "listen needs domain"),
        ('[bounces]\ndomain = "b.test"\nlisten = "0.0.0.0:99999"\n', "bounces.listen"),
        ("[reports]\nhour = 24\n", "reports.hour"),
        ("[delivery]\nsuppression_days = 0\n", "delivery.suppression_days"),
        ('[delivery]\nsuppression_days = "forever"\n', "delivery.suppression_days"),
        ("[delivery]\ndelay_warning = 30\n", "delivery.delay_warning: use 0 (off) or at least 60 seconds"),
        ("[delivery]\ndelay_warning = -1\n", "delivery.delay_warning"),
        ("[control]\ndsn_per_sender_hour = -1\n", "control.dsn_per_sender_hour"),
        ("[control]\nnotice_interval = 0\n", "control.notice_interval"),
        ('[reports]\narea_url = "javascript:alert(1)"\n', "reports.area_url"),
        ('[domains]\nplatform_domain = "not a domain"\n', "domains.platform_domain"),
        ('[domains]\nplatform_domain = "localhost"\n', "domains.platform_domain"),
        ("[domains]\nrsa_bits = 512\n", "domains.rsa_bits"),
        ("[domains]\ncheck_interval = 1\n", "domains.check_interval"),
        ("[domains]\ndns_timeout = 0\n", "domains.dns_timeout"),
        ("[domains]\nrotation_overlap = -1\n", "domains.rotation_overlap"),
        ("[domains]\ned25519 = \"maybe\"\n", "domains.ed25519"),
        ('[domains]\nspf_include = "not a name"\n', "domains.spf_include: 'not a name' is not a domain name"),
        ('[domains]\nspf_include = "platform"\n', "domains.spf_include"),
        ('[domains]\nspf_include = "_spf.platform.example -all"\n', "domains.spf_include"),
        ('[domains]\noutbound_addresses = ["203.0.113.0/24"]\n', "domains.outbound_addresses: '203.0.113.0/24' is not an IP address"),
        ('[domains]\noutbound_addresses = "203.0.113.1"\n', "domains.outbound_addresses"),
        ('[domains]\nspf_includ = "x.example"\n', "domains.spf_includ: unknown key"),
        ('[webhooks]\nallow_networks = ["localhost"]\n', "webhooks.allow_networks: 'localhost' is not a network"),
        ('[webhooks]\nnameservers = ["dns.test"]\n', "webhooks.nameservers"),
        ("[webhooks]\nretry_delays = [300, 5]\n", "webhooks.retry_delays: delays grow"),
        ("[webhooks]\nretry_delays = []\n", "webhooks.retry_delays"),
        ("[webhooks]\nretry_window = 10\n", "webhooks.retry_window"),
        ("[webhooks]\ntimeout = 60\nlease_seconds = 60\n", "lease_seconds (60) must be at least twice timeout (60)"),
        ("[webhooks]\nconcurrency = 0\n", "webhooks.concurrency"),
        ("[webhooks]\nsecret = 1\n", "webhooks.secret: unknown key"),
        ('[web]\nframe_listen = "127.0.0.1"\n', "web.frame_listen"),
        ('[web]\nframe_listen = "127.0.0.1:70000"\n', "web.frame_listen"),
        ('[web]\nframe_origin = "mailview.example.net"\n', "web.frame_origin: 'mailview.example.net' is not an origin"),
        ('[web]\nframe_origin = "https://x.example/path"\n', "web.frame_origin"),
        ('[web]\nframe_origin = "https://x.example; script-src *"\n', "web.frame_origin"),
    ],
)
def test_bad_values_are_reported_by_key(tmp_path: Path, text: str, named: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert named in str(error.value)


def test_the_domains_section_names_what_customers_must_authorise(tmp_path: Path) -> None:
    assert (load_settings().domains.spf_include, load_settings().domains.outbound_addresses) == ("", [])
    config = tmp_path / "scriptmail.toml"
    config.write_text(
        '[domains]\nspf_include = "_SPF.Platform.Example."\n'
        'outbound_addresses = ["203.0.113.10", " 2001:DB8::10", "203.0.113.10"]\n'
    )
    domains = load_settings(config).domains
    assert domains.spf_include == "_spf.platform.example"
    assert domains.outbound_addresses == ["203.0.113.10", "2001:db8::10"]  # normalised, once each


def test_bad_environment_value_is_reported_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPTMAIL_DELIVERY__CONCURRENCY", "many")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "delivery.concurrency" in str(error.value)


def test_platform_domain_is_stored_as_its_a_label(tmp_path: Path) -> None:
    config = tmp_path / "ok.toml"
    config.write_text('[domains]\nplatform_domain = "Correo.Bücher.example"\n')
    assert load_settings(config).domains.platform_domain == "correo.xn--bcher-kva.example"


def test_unreadable_toml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[intake\nlisten=")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nothing.toml")



def test_the_frame_listener_defaults_to_the_next_port_of_the_web_listener(tmp_path: Path) -> None:
    config = tmp_path / "web.toml"
    config.write_text('[web]\nlisten = "127.0.0.1:9000"\nframe_origin = "https://mailview.example.net/"\n')
    web = load_settings(config).web
    assert web.frame_address() == ("127.0.0.1", 9001) and web.frame_origin == "https://mailview.example.net"
    config.write_text('[web]\nlisten = "127.0.0.1:0"\n')
    assert load_settings(config).web.frame_address() == ("127.0.0.1", 0)
    config.write_text('[web]\nframe_listen = "[::1]:8100"\n')
    assert load_settings(config).web.frame_address() == ("::1", 8100)
