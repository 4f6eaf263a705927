"""Which failures put an address on the list, and which entries are refused (pure, no store)."""

from __future__ import annotations

import pytest

from scriptmail.suppression.rules import Entry, EntryError, Kind, Reason, entry_of, lookup_form, match, reason_for, shown


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (550, "5.1.1 <a@x.test>: Recipient address rejected: User unknown"),
        (550, "No such user here"),
        (556, "5.1.10 Recipient address has null MX"),
        (550, "5.2.1 The email account that you tried to reach is disabled"),
        (554, "5.2.1 mailbox inactive"),
    ],
)
def test_no_such_user_replies_suppress_at_the_first_failure(code: int, text: str) -> None:
    assert reason_for(code, text, earlier_permanent_failures=0) is Reason.NO_SUCH_USER


def test_other_permanent_failures_suppress_only_the_second_time_in_a_day() -> None:
    assert reason_for(554, "5.7.1 message refused", 0) is None
    assert reason_for(554, "5.7.1 message refused", 1) is Reason.REPEATED
    assert reason_for(552, "5.2.1 mailbox full", 0) is None  # 5.2.1 without "disabled" is not a dead mailbox


def test_temporary_failures_and_unanswered_attempts_never_suppress() -> None:
    assert reason_for(450, "4.1.1 user unknown, try later", 5) is None
    assert reason_for(None, "connection refused", 5) is None


@pytest.mark.parametrize(
    ("value", "kind", "normal"),
    [
        ("Reader@Example.COM", Kind.ADDRESS, "reader@example.com"),
        ("example.org", Kind.DOMAIN, "example.org"),
        ("@Example.org", Kind.DOMAIN, "example.org"),
        ("*@spamtrap.example", Kind.PATTERN, "*@spamtrap.example"),
        ("Trap-*@*.Example.org", Kind.PATTERN, "trap-*@*.example.org"),
        ("*@x.co.uk", Kind.PATTERN, "*@x.co.uk"),
        ("a?c@b*.example.com", Kind.PATTERN, "a?c@b*.example.com"),
    ],
)
def test_entries_are_normalised(value: str, kind: Kind, normal: str) -> None:
    assert entry_of(value, allow_patterns=True) == (kind, normal)


@pytest.mark.parametrize(
    "value",
    [
        "*@*", "*@*.*", "?*@*", "**@**", "*@*.*.*",
        # Too wide though not everything: four sample addresses used to let these through.
        "*@*e*", "*@*.com", "*@*.example", "trap-*@*", "*@*.co.uk", "*@*.com.br", "*@example.c?m", "*@sp?mtrap.example",
    ],
)  # fmt: skip
def test_patterns_that_match_too_widely_are_refused(value: str) -> None:
    with pytest.raises(EntryError, match="would match too widely"):
        entry_of(value, allow_patterns=True)


def test_a_lone_wildcard_is_no_pattern() -> None:
    with pytest.raises(EntryError, match="not a pattern of the form local@domain"):
        entry_of("*", allow_patterns=True)


def test_a_pattern_with_an_empty_label_is_refused_with_the_reason() -> None:
    with pytest.raises(EntryError, match="empty label"):
        entry_of("*@example..com", allow_patterns=True)


@pytest.mark.parametrize(
    "value", ["", "   ", "not an address", "a@b", "a@@b.example", "x@example.com\r\nBcc: y@z.example", "a" * 400, "\x00@x.test"]
)
def test_malformed_entries_are_refused(value: str) -> None:
    with pytest.raises(EntryError):
        entry_of(value, allow_patterns=True)


def test_customers_cannot_add_patterns() -> None:
    with pytest.raises(EntryError, match="only for the platform"):
        entry_of("*@spamtrap.example", allow_patterns=False)


def test_the_hostings_own_entry_wins_over_the_platforms_and_other_hostings_do_not_count() -> None:
    entries = [
        Entry(0, "*@spamtrap.example", Kind.PATTERN, "manual", None, "", False),
        Entry(7, "x@spamtrap.example", Kind.ADDRESS, "no-such-user", 550, "5.1.1 unknown", False),
        Entry(8, "y@other.example", Kind.ADDRESS, "manual", None, "", False),
        Entry(0, "blocked.example", Kind.DOMAIN, "manual", None, "", False),
    ]
    assert match("X@spamtrap.example", 7, entries) is entries[1]
    assert match("x@spamtrap.example", 9, entries) is entries[0]
    assert match("y@other.example", 7, entries) is None
    assert match("anyone@blocked.example", 7, entries) is entries[3]
    assert match("anyone@notblocked.example", 7, entries) is None


# --- international addresses: one form of the domain, whichever was typed ---------------------

UNICODE_FORMS = [
    ("josé@correo.españa.es", Kind.ADDRESS, "josé@correo.xn--espaa-rta.es"),
    ("JOSÉ@Correo.ESPAÑA.es", Kind.ADDRESS, "josé@correo.xn--espaa-rta.es"),
    ("x@bücher.de", Kind.ADDRESS, "x@xn--bcher-kva.de"),
    ("x@XN--BCHER-KVA.de", Kind.ADDRESS, "x@xn--bcher-kva.de"),
    ("bücher.de", Kind.DOMAIN, "xn--bcher-kva.de"),
    ("@bücher.de.", Kind.DOMAIN, "xn--bcher-kva.de"),
    ("*@bücher.de", Kind.PATTERN, "*@xn--bcher-kva.de"),
    ("trap-*@*.españa.es", Kind.PATTERN, "trap-*@*.xn--espaa-rta.es"),
]


@pytest.mark.parametrize(("value", "kind", "normal"), UNICODE_FORMS)
def test_unicode_and_punycode_entries_are_kept_with_the_a_label(value: str, kind: Kind, normal: str) -> None:
    assert entry_of(value, allow_patterns=True) == (kind, normal)
    assert lookup_form(value) == normal


@pytest.mark.parametrize(
    "value",
    [
        "x@раypal.es",  # Cyrillic and Latin in one label
        "x@xn--zz.de",  # not a valid A-label
        "we\u200bb@bücher.de",  # an invisible character in the local part
        "x@" + "ü" * 70 + ".de",  # a label too long as an A-label
        "*@*ü*.de",  # a wildcard inside a Unicode label has no A-label
        "\ufffd@bücher.de",
    ],
)
def test_international_garbage_is_refused_with_the_reason(value: str) -> None:
    with pytest.raises(EntryError, match=r".+: .+"):
        entry_of(value, allow_patterns=True)


def test_an_entry_typed_in_unicode_stops_the_a_label_address_and_the_other_way_round() -> None:
    typed_unicode = [Entry(1, entry_of("josé@correo.españa.es", False)[1], Kind.ADDRESS, "manual", None, "", False)]
    assert match("josé@correo.xn--espaa-rta.es", 1, typed_unicode) is typed_unicode[0]
    assert match("JOSÉ@correo.españa.es", 1, typed_unicode) is typed_unicode[0]
    typed_punycode = [Entry(0, entry_of("xn--bcher-kva.de", True)[1], Kind.DOMAIN, "manual", None, "", False)]
    assert match("x@bücher.de", 1, typed_punycode) is typed_punycode[0]
    assert match("x@xn--bcher-kva.de", 1, typed_punycode) is typed_punycode[0]
    pattern = [Entry(0, entry_of("trap-*@bücher.de", True)[1], Kind.PATTERN, "manual", None, "", False)]
    assert match("trap-1@xn--bcher-kva.de", 1, pattern) is pattern[0] and match("trap-1@bücher.de", 1, pattern) is pattern[0]
    assert match("x@buecher.de", 1, typed_punycode) is None
    assert shown("josé@correo.xn--espaa-rta.es") == "josé@correo.españa.es" and shown("xn--bcher-kva.de") == "bücher.de"
