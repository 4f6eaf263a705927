"""What the catalogue tests check of a language's plural forms: the Plural-Forms header of every .po
file of the language, against CLDR's rules for whole numbers as Babel knows them (so Polish's
1 plik, 2 pliki, 5 plików, 22 pliki, 112 plików comes out right), and every plural text has one
translation per form."""

from __future__ import annotations

import gettext
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po

from scriptmail.web import i18n

# gettext's forms, in order, named by CLDR's categories for whole numbers.
FORMS = {
    "es": ("one", "other"),
    "fr": ("one", "other"),
    "de": ("one", "other"),
    "it": ("one", "other"),
    "pt": ("one", "other"),
    "pl": ("one", "few", "many"),
}


def problems(files: list[Path], language: str) -> list[str]:
    """What is wrong with the plural forms of these .po files of one language (nothing: [])."""
    found = []
    forms = FORMS[language]
    cldr = Locale.parse(i18n.locale(language)).plural_form  # Portugal's Portuguese: 0 is plural
    for path in files:
        with path.open("rb") as po:
            catalog = read_po(po, locale=language)
        if catalog.num_plurals != len(forms):
            found.append(f"{path.name}: nplurals={catalog.num_plurals}, {language} needs {len(forms)}")
            continue
        choose = gettext.c2py(catalog.plural_expr)
        wrong = [n for n in range(0, 1001) if forms[choose(n)] != cldr(n) and not (forms[choose(n)] == "other" and cldr(n) not in forms)]
        if wrong:
            found.append(f"{path.name}: the plural rule picks the wrong form for n = {wrong[:5]}")
        for message in catalog:
            if message.id and message.pluralizable and message.string and len(message.string) != len(forms):
                found.append(f"{path.name}: {message.id[0]!r} has {len(message.string)} forms, not {len(forms)}")
    return found
