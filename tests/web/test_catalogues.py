"""Every text the areas show is in the catalogue of every language the areas offer (Spanish, French,
German, Italian, Portuguese, Polish): the strings of the templates
(found as gettext calls by Jinja2's extractor) and of the Python handlers (`_("…")`, `page._("…")`
and `N_("…")` for texts translated later), with the same %(placeholders)s and the plural forms the language needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment
from jinja2.ext import babel_extract

import scriptmail.web
from scriptmail import catalogues
from scriptmail.web import i18n
from tests.support import plurals

WEB = Path(scriptmail.web.__file__).parent
LANGUAGES = tuple(code for code in i18n.CODES if code != "en")  # English is the msgids
_PYTHON_CALL = re.compile(r"""\b(?:N_|_)\(\s*(?:\n\s*)?("(?:[^"\\]|\\.)+")""")
# A text with plural forms: ngettext("singular", "plural", n, ...), the msgid being the pair.
_PLURAL_CALL = re.compile(r"""\bngettext\(\s*("(?:[^"\\]|\\.)+"),\s*("(?:[^"\\]|\\.)+")""")

Msgid = str | tuple[str, str]


def _used() -> dict[Msgid, str]:
    """msgid -> where it is used."""
    found: dict[Msgid, str] = {}
    for template in sorted((WEB / "templates").glob("*.html")):
        with template.open("rb") as source:
            for _, function, message, _ in babel_extract(source, ("_", "gettext", "ngettext"), [], {"extensions": "jinja2.ext.i18n"}):
                if function == "ngettext":
                    found.setdefault(tuple(message[:2]), template.name)
                    continue
                for text in message if isinstance(message, tuple) else (message,):
                    if text:
                        found.setdefault(text, template.name)
    # The modules of the web part, and the pure ones whose texts reach its pages untranslated.
    for module in [*sorted(WEB.glob("*.py")), WEB.parent / "exports" / "window.py"]:
        source = module.read_text()
        for literal in _PYTHON_CALL.findall(source):
            found.setdefault(eval(literal), module.name)  # a plain string literal
        for singular, plural in _PLURAL_CALL.findall(source):
            found.setdefault((eval(singular), eval(plural)), module.name)
    return found


def _catalogue(language: str) -> dict[Msgid, str | tuple[str, ...]]:
    merged: dict[Msgid, str | tuple[str, ...]] = {}
    for path in sorted((WEB / "translations" / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as po:
            for message in read_po(po, locale=language):
                forms = message.string if isinstance(message.string, tuple) else (message.string,)
                if message.id and all(forms):
                    merged[message.id] = message.string
    return merged


def test_the_extractor_sees_the_templates_strings() -> None:
    used = _used()
    assert "Block sending" in used and "Change the password" in used and "Confirm the action first." in used
    assert (
        "Too many failed attempts: try again in %(seconds)s second.",
        "Too many failed attempts: try again in %(seconds)s seconds.",
    ) in used  # a text with plural forms
    assert Environment(extensions=["jinja2.ext.i18n"])  # the extension the extractor parses with


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_translated(language: str) -> None:
    catalogue = _catalogue(language)
    missing = sorted(f"{where}: {text}" for text, where in _used().items() if text not in catalogue)
    missing += sorted(f"{text}: no plural forms" for text in _used() if isinstance(text, tuple) and not isinstance(catalogue.get(text), tuple))
    assert not missing, f"{len(missing)} texts have no {language} translation:\n" + "\n".join(missing)


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    placeholder = re.compile(r"%\((\w+)\)s")
    for text, translated in _catalogue(language).items():
        wanted = placeholder.findall(text if isinstance(text, str) else text[1])
        for form in translated if isinstance(translated, tuple) else (translated,):
            assert sorted(placeholder.findall(form)) == sorted(wanted), (text, form)


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_text_has_one_home(language: str) -> None:
    """The catalogues of a language are merged: a text in two of them would have one translation
    win silently, by file name."""
    twice = {text: files for text, files in catalogues.homes(WEB / "translations", language).items() if len(files) > 1}
    assert not twice, twice


def test_every_offered_language_has_its_catalogues() -> None:
    assert LANGUAGES == ("es", "fr", "de", "it", "pt", "pl")
    for language in LANGUAGES:
        files = sorted(path.name for path in (WEB / "translations" / language / "LC_MESSAGES").glob("*.po"))
        assert files == sorted(path.name for path in (WEB / "translations" / "es" / "LC_MESSAGES").glob("*.po")), language


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_plural_forms_are_the_languages(language: str) -> None:
    found = plurals.problems(sorted((WEB / "translations" / language / "LC_MESSAGES").glob("*.po")), language)
    assert not found, found
