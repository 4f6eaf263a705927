"""The customer area's languages: gettext catalogues (web/translations/LANG/LC_MESSAGES/*.po, read at start with
Babel by scriptmail.catalogues, no build step) and a Jinja2 environment per language."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.numbers import format_decimal
from babel.support import NullTranslations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from scriptmail import catalogues
from scriptmail.international.addresses import display as display_address
from scriptmail.store.hostings import LANGUAGES as _CODES
from scriptmail.web.fields import FORM_EMAIL_PATTERN

# Each language by its own name, in the order of the language switch (the store's order).
_NAMES = {"es": "Español", "en": "English", "fr": "Français", "de": "Deutsch", "it": "Italiano", "pt": "Português", "pl": "Polski"}
LANGUAGES = tuple((code, _NAMES[code]) for code in _CODES)
CODES = _CODES

# The Babel locale that formats numbers and dates: our Portuguese is Portugal's (the reference product's
# European customers), not Babel's default Brazilian.
_LOCALES = {"pt": "pt_PT"}
_HERE = Path(__file__).parent


def translations(language: str) -> NullTranslations:
    """Every .po file of the language, merged: each part of the areas keeps its own catalogue."""
    return catalogues.translations(_HERE / "translations", language)


@lru_cache(maxsize=None)
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,  # the templates ship with the code: no stat() of each file at every render
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = lambda value: format_decimal(value, locale=locale(language))  # 1,234 / 1.234 / 1 234
    env.filters["address"] = display_address  # IDN domains as U-labels: bücher.example, not xn--bcher-kva.example
    env.globals["email_pattern"] = FORM_EMAIL_PATTERN  # the address fields' pattern attribute
    return env


def gettext(language: str, message: str, **values: object) -> str:
    text = translations(language).gettext(message)
    return text % values if values else text


def ngettext(language: str, singular: str, plural: str, n: int, **values: object) -> str:
    """The form of a text that fits the number `n` in the language (Polish has three: 2 sekundy,
    5 sekund, 22 sekundy), placeholders filled."""
    return translations(language).ngettext(singular, plural, n) % values


def locale(language: str) -> str:
    """The Babel locale for a language's numbers and dates."""
    return _LOCALES.get(language, language)


def choose(header: str | None, cookie: str | None) -> str:
    """The language: a choice made in the area (cookie), else the browser's, else English."""
    if cookie in CODES:
        return cookie
    return negotiate(header or "") or "en"


def negotiate(header: str) -> str | None:
    """The language an Accept-Language header prefers most among ours (RFC 9110 12.5.4: the highest
    q first, the header's order among equals; q=0 means "not this one"; "de-CH" asks for de)."""
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:1000].split(",")[:50]):
        tag, _, parameters = part.partition(";")
        code = tag.strip().lower().split("-")[0]
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if code in CODES and 0 < quality <= 1:
            wanted.append((-quality, position, code))
    return min(wanted)[2] if wanted else None
