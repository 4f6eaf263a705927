"""The mail scriptmail writes itself (the owner's block notice, the daily error report), and the SPF and
DMARC advice of a sending domain, take their Spanish, French, German, Italian, Portuguese and Polish
from gettext catalogues (translations/LANG/LC_MESSAGES/*.po): every text the code marks has a
translation there with the same {placeholders} and the language's plural forms, and the mail really
comes out translated."""

from __future__ import annotations

import ast
import datetime
import email
import email.policy
import string
from email.message import EmailMessage
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations

from scriptmail import catalogues
from scriptmail.control import evidence, notices
from scriptmail.domains import advice
from scriptmail.dsn import compose
from scriptmail.model import HostingState
from scriptmail.reports import daily
from scriptmail.store import hostings as hosting_store
from scriptmail.web import i18n
from scriptmail.webhooks import notice as webhook_notice
from tests.support import plurals

LANGUAGES = tuple(code for code in hosting_store.LANGUAGES if code != "en")  # English is the msgids
MODULES = (notices, daily, advice, webhook_notice, evidence, compose)
NOW = datetime.datetime(2026, 11, 29, 7, 0, tzinfo=datetime.timezone.utc).timestamp()


def _constants() -> set[str]:
    """The msgids, as the modules keep them: the constants they translate."""
    return set(notices.TEXTS) | set(daily.TEXTS.values()) | set(advice.TEXTS) | set(webhook_notice.TEXTS) | set(evidence.TEXTS) | set(compose.TEXTS)


def _marked(module: object) -> set[str]:
    """The msgids as written in a module's source: each N_("…") call's string (concatenation included)."""
    tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "N_":
            (argument,) = node.args
            assert isinstance(argument, ast.Constant) and isinstance(argument.value, str), ast.dump(node)
            found.add(argument.value)
    return found


def _files(language: str) -> list[Path]:
    return sorted((catalogues.MAIL / language / "LC_MESSAGES").glob("*.po"))


def _catalogue(language: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in _files(language):
        with path.open("rb") as po:
            for message in read_po(po, locale=language):
                if message.id:
                    merged[message.id] = message.string
    return merged


def _placeholders(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def test_the_constants_are_every_marked_text() -> None:
    marked = _marked(notices) | _marked(daily) | _marked(advice) | _marked(webhook_notice) | _marked(evidence) | _marked(compose)
    assert marked == _constants()
    assert len(advice.TEXTS) == len(set(advice.TEXTS)) == len(_marked(advice))
    assert "What to do:" in marked and "Showing the {shown} most recent of {total} failures." in marked


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogues_are_there(language: str) -> None:
    assert [path.name for path in _files(language)] == ["daily.po", "domains.po", "dsn.po", "evidence.po", "notices.po", "webhooks.po"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_translated(language: str) -> None:
    catalogue = _catalogue(language)
    missing = sorted(text for text in _constants() if not catalogue.get(text))
    assert not missing, f"{len(missing)} texts have no {language} translation:\n" + "\n".join(missing)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_translation_is_left_over(language: str) -> None:
    unused = sorted(set(_catalogue(language)) - _constants())
    assert not unused, f"{language} translations of texts no longer used: {unused}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    for text, translated in _catalogue(language).items():
        assert _placeholders(text) == _placeholders(translated), (text, translated)
        translated.format(**dict.fromkeys(_placeholders(text), "x"))  # no stray brace either


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_plural_forms_are_the_languages(language: str) -> None:
    found = plurals.problems(_files(language), language)
    assert not found, found


def test_every_language_of_a_hosting_has_its_catalogues() -> None:
    assert LANGUAGES == ("es", "fr", "de", "it", "pt", "pl")


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_text_has_one_home(language: str) -> None:
    """A language's catalogues are merged: a text in two of them would have one translation win
    silently, by file name."""
    twice = {text: files for text, files in catalogues.homes(catalogues.MAIL, language).items() if len(files) > 1}
    assert not twice, twice


def test_english_and_unknown_languages_are_the_msgids() -> None:
    for language in ("en", "nl", "..", "es/../fr", ""):
        found = catalogues.translations(catalogues.MAIL, language)
        assert type(found) is NullTranslations, language
        assert found.gettext("What to do:") == "What to do:"
    assert catalogues.translations(catalogues.MAIL, "es").gettext("What to do:") == "Qué hacer:"


def _notice(language: str, state: HostingState = HostingState.BOUNCE) -> tuple[str, str]:
    subject, data = notices.block_notice(
        hosting="shop.example",
        state=state,
        reason="Too many bounces.",
        language=language,
        sender="mail@platform.example",
        recipient="owner@shop.example",
        platform="platform.example",
        hold_hours=72,
        now=NOW,
    )
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return subject, message.get_content()


@pytest.mark.parametrize(
    ("language", "subject", "lines"),
    [
        (
            "es",
            "[shop.example] Correo de sus scripts bloqueado (bounce)",
            ["Hola:", "Qué hacer:", "-- ", "La plataforma de correo de platform.example"],
        ),
        (
            "fr",
            "[shop.example] E-mails de vos scripts bloqués (bounce)",
            ["Bonjour,", "Que faire :", "-- ", "La plateforme e-mail de platform.example"],
        ),
        (
            "de",
            "[shop.example] E-Mail-Versand Ihrer Skripte gesperrt (bounce)",
            ["Guten Tag,", "Was ist zu tun?", "-- ", "Die E-Mail-Plattform von platform.example"],
        ),
        (
            "it",
            "[shop.example] Email dei tuoi script bloccate (bounce)",
            ["Buongiorno,", "Cosa fare:", "-- ", "La piattaforma email di platform.example"],
        ),
        (
            "pt",
            "[shop.example] E-mails dos seus scripts bloqueados (bounce)",
            ["Olá,", "O que fazer:", "-- ", "A plataforma de e-mail de platform.example"],
        ),
        (
            "pl",
            "[shop.example] Wysyłka e-maili z Twoich skryptów zablokowana (bounce)",
            ["Dzień dobry,", "Co zrobić:", "-- ", "Platforma pocztowa platform.example"],
        ),
        (
            "en",
            "[shop.example] E-mail from your scripts blocked (bounce)",
            ["Hello,", "What to do:", "-- ", "The mail platform of platform.example"],
        ),
    ],
)
def test_the_notice_is_in_the_hostings_language(language: str, subject: str, lines: list[str]) -> None:
    found, body = _notice(language)
    assert found == subject
    for line in lines:
        assert line in body.splitlines()
    assert "{" not in body and "}" not in body
    unblock = catalogues.translations(catalogues.MAIL, language).gettext(notices.UNBLOCK_BOUNCE)
    assert unblock.lstrip(", ") in " ".join(body.split())
    assert unblock not in _notice(language, HostingState.SPAM)[1]  # unblocking is for bounces only


@pytest.mark.parametrize(
    ("language", "subject", "words"),
    [
        ("es", "[shop.example] Errores de correo del 28/11/2026 (1.234)", ["Remitente:", "rechazado", "(sin asunto)"]),
        ("fr", "[shop.example] Erreurs d'e-mail du 28/11/2026 (1\u00a0234)", ["Expéditeur\u00a0:", "rejeté", "(sans objet)"]),
        ("de", "[shop.example] E-Mail-Fehler vom 28.11.2026 (1.234)", ["Absender:", "abgewiesen", "(kein Betreff)"]),
        ("it", "[shop.example] Errori email del 28/11/2026 (1.234)", ["Mittente:", "respinta", "(nessun oggetto)"]),
        ("pt", "[shop.example] Erros de e-mail de 28/11/2026 (1\u00a0234)", ["Remetente:", "rejeitado", "(sem assunto)"]),
        ("pl", "[shop.example] Błędy e-mail z dnia 28.11.2026 (1\u00a0234)", ["Nadawca:", "odrzucona", "(bez tematu)"]),
        ("en", "[shop.example] Email errors on 2026-11-28 (1,234)", ["Sender:", "bounced", "(no subject)"]),
    ],
)
def test_the_daily_report_is_in_the_hostings_language(language: str, subject: str, words: list[str]) -> None:
    row = daily.FailureRow(
        at=NOW - 3600,
        sender="form@shop.example",
        recipient="ann@example.net",
        subject="",
        status="bounced",
        code=550,
        text="User unknown",
        script="/home/shop/www/send.php",
    )
    report = daily.DailyReport(
        hosting="shop.example",
        language=language,
        day=datetime.date(2026, 11, 28),
        timezone="Europe/Madrid",
        sent=5000,
        bounced=1234,
        expired=0,
        rows=(row,),
        total_failures=1234,
        area_url="https://panel.example/log",
    )
    found, data = daily.render(report, "reports@platform.example", "owner@shop.example", "platform.example", NOW)
    assert found == subject
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for word in words:
        assert word in text
    assert message["Content-Language"] == language
    if language in ("de", "it", "pt", "pl"):  # the new languages write numbers as Babel (CLDR) does
        assert f"({format_decimal(1234, locale=i18n.locale(language))})" in found
    translated = catalogues.translations(catalogues.MAIL, language).gettext
    assert translated(daily.TEXTS["failures"]) in page
    assert translated(daily.TEXTS["signature"]).format(platform="platform.example") in text
    assert "{" not in text and "{" not in page


@pytest.mark.parametrize(
    ("language", "expected"),
    [("es", "Punto de webhook desactivado"), ("fr", "Point de webhook désactivé"), ("en", "Webhook endpoint disabled")],
)
def test_the_disabled_endpoint_notice_is_translated(language: str, expected: str) -> None:
    subject, data = webhook_notice.disabled_notice(
        owner="shop.example", url="https://hooks.example/in", reason="every attempt failed for 120 hours",
        language=language, sender="mail@platform.example", recipient="owner@shop.example", platform="platform.example", now=NOW,
    )  # fmt: skip
    assert expected in subject
    body = email.message_from_bytes(data, policy=email.policy.default).get_content()
    assert "https://hooks.example/in" in body and "every attempt failed for 120 hours" in body
    assert body.startswith({"es": "Hola:", "fr": "Bonjour,", "en": "Hello,"}[language])
