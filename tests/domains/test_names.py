"""Domain names as customers type them: Unicode or punycode in, A-label stored, U-label shown."""

from __future__ import annotations

import pytest

from scriptmail.domains.names import DomainNameError, display, from_domain, normalise


def test_unicode_and_punycode_name_the_same_domain() -> None:
    assert normalise("Bücher.Example") == "xn--bcher-kva.example"
    assert normalise("xn--bcher-kva.example.") == "xn--bcher-kva.example"
    assert display("xn--bcher-kva.example") == "bücher.example"
    assert normalise(" Shop.EXAMPLE ") == "shop.example"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "localhost", "a..b", "-bad.example", "bad-.example", "under_score.example", "x" * 64 + ".example",
     "shop.example/path", "user@shop.example", "192.0.2.1", "sp ace.example", "semi;colon.example", "a\x00.example",
     "xn--zz.example", "\u200d.example", ("a" * 60 + ".") * 5 + "example"],
)  # fmt: skip
def test_malformed_names_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(DomainNameError):
        normalise(text)


def test_a_name_that_is_not_text_is_refused() -> None:
    with pytest.raises(DomainNameError):
        normalise(b"shop.example")  # type: ignore[arg-type]


def test_from_domain_never_raises() -> None:
    assert from_domain("Shop.Example") == "shop.example"
    assert from_domain("bücher.example") == "xn--bcher-kva.example"
    assert from_domain("") == ""
    assert from_domain("[192.0.2.1]") == ""
    assert from_domain("bad_name.example") == ""
