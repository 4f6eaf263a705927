"""The new languages of the areas (German, Italian, Portuguese, Polish) over real HTTP: chosen with the
language switch, kept as the user's language, negotiated from Accept-Language before login, and
refused, with the list to choose from, when they are not ours."""

from __future__ import annotations

import html
import re

import pytest

from scriptmail.store import accounts
from scriptmail.web import i18n
from tests.support.gateway import HOSTING, RunningGateway

# What the Email scripts page says in each language: its title, the badge of an active hosting,
# the block button and a confirmation, as a customer of that country reads them.
PAGES = {
    "de": ("E-Mail-Skripte", "aktiv", "Versand sperren", "Empfänger des Fehlerberichts"),
    "it": ("Email degli script", "attivo", "Blocca l'invio", "Destinatario del report di errore"),
    "pt": ("E-mails de scripts", "ativo", "Bloquear o envio", "Destinatário do relatório de erros"),
    "pl": ("E-maile ze skryptów", "aktywny", "Zablokuj wysyłkę", "Odbiorca raportu o błędach"),
}
ENGLISH = ("Block sending", "Error report recipient", "Total sent", "Overview")


@pytest.mark.parametrize("language", sorted(PAGES))
def test_the_email_scripts_page_comes_in_each_new_language(area, gateway: RunningGateway, language: str) -> None:
    browser = area()
    browser.login("a@users.test")
    token = browser.csrf(browser.get("/hostings"))
    switched = browser.post("/language", {"language": language, "next": f"/hostings/{HOSTING}", "csrf": token})
    assert switched.status_code == 303 and switched.headers["location"] == f"/hostings/{HOSTING}"
    page = html.unescape(browser.get(f"/hostings/{HOSTING}").text)
    assert f'<html lang="{language}">' in page
    for text in PAGES[language]:
        assert text in page, text
    for text in ENGLISH:
        assert text not in page, text
    assert f'<option value="{language}" lang="{language}" selected>{dict(i18n.LANGUAGES)[language]}</option>' in page
    with gateway.engine.connect() as connection:  # kept for the next login, on any device
        assert accounts.find_user(connection, email="a@users.test").language == language
    again = area()
    again.login("a@users.test")
    assert f'lang="{language}"' in again.get("/hostings").text


def test_the_browsers_language_is_honoured_before_login(area) -> None:
    for header, language, words in (
        ("pl-PL,pl;q=0.9,en;q=0.5", "pl", "Zaloguj się"),
        ("de-CH", "de", "Anmelden"),
        ("en;q=0.2, it;q=0.8", "it", "Accedi"),
        ("pt-BR;q=0.9, nl", "pt", "Iniciar sessão"),
        ("pl;q=0, xx, *", "en", "Log in"),
    ):
        page = area().get("/login", headers={"accept-language": header}).text
        assert f'<html lang="{language}">' in page, header
        assert words in page, header


def test_a_language_that_is_not_ours_is_refused_clearly(area) -> None:
    browser = area()
    browser.login("a@users.test")
    token = browser.csrf(browser.get("/hostings"))
    browser.post("/language", {"language": "de", "next": "/hostings", "csrf": token})
    for hostile in ("nl", "DE", "pt_BR", "../de", ""):
        refused = browser.post("/language", {"language": hostile, "next": "/hostings", "csrf": token})
        assert refused.status_code == 400, hostile
        assert "Wählen Sie eine der angebotenen Sprachen. (es, en, fr, de, it, pt, pl)" in refused.text  # in the current language
    too_long = browser.post("/language", {"language": "deutsch", "next": "/hostings", "csrf": token})
    assert too_long.status_code == 422 and "language" in too_long.text
    assert 'lang="de"' in browser.get("/hostings").text  # nothing changed


def test_the_wait_after_wrong_passwords_takes_the_polish_plural_form(area) -> None:
    browser = area()
    browser.get("/login")
    assert browser.post("/language", {"language": "pl", "next": "/login"}).status_code == 303  # before login: a cookie
    for _ in range(3):
        assert "Nieprawidłowy adres e-mail lub hasło." in browser.login("a@users.test", "wrong password").text
    throttled = browser.login("a@users.test")
    assert throttled.status_code == 429
    found = re.search(r"spróbuj ponownie za (\d+) (\w+)\.", html.unescape(throttled.text))
    assert found, throttled.text
    n, word = int(found.group(1)), found.group(2)
    # Polish: 1 sekundę, 2-4 sekundy (but 12-14 sekund), 5 and more sekund, 22 sekundy.
    few = n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14)
    assert word == ("sekundę" if n == 1 else "sekundy" if few else "sekund"), (n, word)
