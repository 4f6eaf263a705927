"""The customer area's languages: gettext catalogues (web/translations/LANG/LC_MESSAGES/*.po, read at start with
Babel by scriptmail.catalogues, no build step) and a Jinja2 environment per language."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.support import NullTranslations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from scriptmail import catalogues

LANGUAGES = (("es", "Español"), ("en", "English"), ("fr", "Français"))
CODES = tuple(code for code, _ in LANGUAGES)
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
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def gettext(language: str, message: str, **values: object) -> str:
    text = translations(language).gettext(message)
    return text % values if values else text


def choose(header: str | None, cookie: str | None) -> str:
    """The language: a choice made in the area (cookie), else the browser's, else English."""
    if cookie in CODES:
        return cookie
    for part in (header or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in CODES:
            return code
    return "en"
