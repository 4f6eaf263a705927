"""A hosting's and a user's language: every language of the areas is stored as given, and anything
else is refused with the list to choose from, changing nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from scriptmail.store import accounts
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.web import i18n

NEW = ("de", "it", "pt", "pl")
HOSTILE = ("DE", "pt-PT", "pt_BR", "../de", "de\n", "pl\x00", "", "d" * 300, "nl")


def test_the_areas_offer_every_stored_language_by_its_own_name() -> None:
    assert i18n.CODES == hosting_store.LANGUAGES == ("es", "en", "fr", *NEW)
    assert dict(i18n.LANGUAGES) == {
        "es": "Español", "en": "English", "fr": "Français", "de": "Deutsch", "it": "Italiano", "pt": "Português", "pl": "Polski",
    }  # fmt: skip


@pytest.mark.parametrize("language", NEW)
def test_a_hosting_and_a_user_take_each_new_language(engine: Engine, language: str) -> None:
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "shop.example", "owner@shop.example")
        hosting = hosting_store.update_hosting(connection, "shop.example", language=language)
        user = accounts.add_user(connection, f"{language}@shop.example", "a long password", language=language)
        accounts.set_language(connection, user, "es")
    with engine.connect() as connection:
        assert hosting_store.find_hosting(connection, name="shop.example").language == language == hosting.language
        assert accounts.find_user(connection, email=f"{language}@shop.example").language == "es"


def test_any_other_language_is_refused_and_nothing_changes(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "shop.example", "owner@shop.example")
        user = accounts.add_user(connection, "anna@shop.example", "a long password", language="pl")
    for hostile in HOSTILE:
        with for_writing(engine).begin() as connection:
            with pytest.raises(hosting_store.HostingError, match="choose one of es, en, fr, de, it, pt, pl"):
                hosting_store.update_hosting(connection, "shop.example", language=hostile)
            with pytest.raises(accounts.AccountError, match="choose one of es, en, fr, de, it, pt, pl"):
                accounts.set_language(connection, user, hostile)
            with pytest.raises(accounts.AccountError, match="choose one of"):
                accounts.add_user(connection, "bob@shop.example", "a long password", language=hostile)
    with engine.connect() as connection:
        assert hosting_store.find_hosting(connection, name="shop.example").language == "en"
        assert accounts.find_user(connection, email="anna@shop.example").language == "pl"
        assert accounts.find_user(connection, email="bob@shop.example") is None
