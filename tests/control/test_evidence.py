"""The evidence of an automatic block, told in Spanish, English and French (pure)."""

from __future__ import annotations

import datetime
import email
import email.policy
from zoneinfo import ZoneInfo

import pytest

from scriptmail import catalogues
from scriptmail.config import PlanSettings
from scriptmail.control.evidence import describe
from scriptmail.control.notices import block_notice
from scriptmail.control.policy import Signals, evaluate
from scriptmail.model import HostingState

NOW = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.timezone.utc).timestamp()
UTC = ZoneInfo("UTC")


def _bounce_evidence() -> dict:
    detection = evaluate(PlanSettings(), HostingState.ACTIVE, Signals(outcomes=[(19, 31)]))
    assert detection is not None and detection.evidence is not None
    return detection.evidence


def test_the_bounce_block_carries_its_figures_threshold_and_window() -> None:
    found = _bounce_evidence()
    assert found["signal"] == "bounce_ratio"
    assert found["figures"] == {"bounced": 31, "attempted": 50, "ratio": 0.62, "threshold": 0.2}
    assert found["window"] == {"recipients": 50}


@pytest.mark.parametrize(
    ("language", "figures", "window"),
    [
        ("en", "31 of the last 50 recipients bounced (62% > 20%)", "Window: the last 50 recipients attempted"),
        ("es", "31 de los últimos 50 destinatarios han rebotado (62\xa0% > 20\xa0%)", "Periodo observado: los últimos 50 destinatarios intentados"),  # noqa: E501
        ("fr", "31 des 50 derniers destinataires sont en erreur (62\xa0% > 20\xa0%)", "Période observée : les 50 derniers destinataires tentés"),  # noqa: E501
    ],
)
def test_the_evidence_is_told_in_the_owners_language(language: str, figures: str, window: str) -> None:
    gettext = catalogues.translations(catalogues.MAIL, language).gettext
    told = describe(_bounce_evidence(), gettext, language, UTC)
    assert told["figures"] == figures and told["window"] == window


def test_a_time_window_is_told_with_its_start_and_end() -> None:
    detection = evaluate(PlanSettings(unknown_user_limit=20), HostingState.ACTIVE, Signals(outcomes=[], unknown_recent=25))
    found = detection.evidence | {"window": {"seconds": 600, "start": NOW - 600, "end": NOW}}
    told = describe(found, catalogues.translations(catalogues.MAIL, "fr").gettext, "fr", UTC)
    assert told["figures"] == "25 messages vers des adresses inexistantes (la limite est de 20)"
    assert told["window"] == "Période observée : 10 minutes, du 2026-12-01 09:50 UTC au 2026-12-01 10:00 UTC"


@pytest.mark.parametrize(("language", "heading"), [("en", "Some of the messages"), ("es", "Algunos de los mensajes"), ("fr", "Quelques-uns")])
def test_the_owners_notice_shows_the_figures_and_the_sample_messages(language: str, heading: str) -> None:
    found = _bounce_evidence() | {
        "samples": [{"id": 42, "at": NOW - 60, "to": "nobody@dest.test", "subject": "Offer {not a field}", "script": "/www/form.php"}]
    }
    _, data = block_notice(
        hosting="shop.example", state=HostingState.BOUNCE, reason="31 of the last 50 recipients bounced", language=language,
        sender="mail@platform.example", recipient="owner@shop.example", platform="platform.example", hold_hours=72, now=NOW,
        evidence=found, zone=UTC,
    )  # fmt: skip
    body = email.message_from_bytes(data, policy=email.policy.default).get_content()
    assert heading in body and "62" in body
    assert '#42  2026-12-01 09:59  nobody@dest.test  "Offer {not a field}"  /www/form.php' in body
