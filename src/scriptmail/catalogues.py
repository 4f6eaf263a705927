"""gettext catalogues read at start: every `*.po` of FOLDER/LANG/LC_MESSAGES, read with Babel and merged
(no compiled .mo, no build step).

Two sets use it: the customer area's (web/translations) and the mail scriptmail writes itself, the
owner's notices and the daily reports (translations/, this module's MAIL). English is the msgid itself.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

MAIL = Path(__file__).parent / "translations"  # the texts of the mail scriptmail writes itself

# A language code as a folder name: nothing else may name a path (e.g. "..").
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")


@lru_cache(maxsize=None)
def translations(folder: Path, language: str) -> NullTranslations:
    """Every .po file of the language under `folder`, merged: each part keeps its own catalogue.
    English, and a language without catalogues, give the msgids themselves."""
    if language == "en" or not _LANGUAGE.fullmatch(language):
        return NullTranslations()
    files = sorted((folder / language / "LC_MESSAGES").glob("*.po"))
    if not files:
        return NullTranslations()
    merged = None
    for path in files:
        with path.open("rb") as po:
            catalog = read_po(po, locale=language)
        if merged is None:
            merged = catalog
        else:
            for message in catalog:
                if message.id:
                    merged[message.id] = message
    buffer = io.BytesIO()
    write_mo(buffer, merged)
    buffer.seek(0)
    return Translations(fp=buffer)


def homes(folder: Path, language: str) -> dict[str, list[str]]:
    """Each text of a language and the files that translate it. The merge above lets one file win
    silently when two translate the same text, so the tests require one home per text."""
    found: dict[str, list[str]] = {}
    for path in sorted((folder / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as po:
            for message in read_po(po, locale=language):
                if message.id:
                    found.setdefault(message.id, []).append(path.name)
    return found


def N_(message: str) -> str:
    """Marks a text for the catalogues where it is written; it is translated where it is used."""
    return message
