"""What a TXT answer means: matches, wrong key, truncated, missing, malformed."""

from __future__ import annotations

from scriptmail.domains.answers import Finding, judge
from scriptmail.domains.keys import Algorithm, generate
from scriptmail.domains.records import dkim_record

NAME = "sm20261201._domainkey.shop.example"
PAIR = generate(Algorithm.RSA)
RECORD = dkim_record("sm20261201", "shop.example", Algorithm.RSA, PAIR.public)


def strings(*parts: str) -> list[bytes]:
    return [part.encode() for part in parts]


def test_the_published_strings_match() -> None:
    assert judge(NAME, [strings(*RECORD.strings)], Algorithm.RSA, PAIR.public).finding is Finding.MATCHES


def test_the_value_published_as_one_long_string_or_with_spaces_matches() -> None:
    assert judge(NAME, [strings(RECORD.value)], Algorithm.RSA, PAIR.public).ok
    spaced = RECORD.value.replace("p=", "p= ")[:200] + " " + RECORD.value.replace("p=", "p= ")[200:]
    assert judge(NAME, [strings(spaced)], Algorithm.RSA, PAIR.public).ok
    assert judge(NAME, [strings("k=rsa; p=" + PAIR.public)], Algorithm.RSA, PAIR.public).ok  # v= is optional


def test_only_the_first_string_published_is_truncated() -> None:
    verdict = judge(NAME, [strings(RECORD.strings[0])], Algorithm.RSA, PAIR.public)
    assert verdict.finding is Finding.TRUNCATED and "first of the strings" in verdict.reason


def test_another_key_or_a_revoked_one_is_the_wrong_key() -> None:
    other = generate(Algorithm.RSA)
    assert judge(NAME, [strings(f"v=DKIM1; k=rsa; p={other.public}")], Algorithm.RSA, PAIR.public).finding is Finding.WRONG_KEY
    revoked = judge(NAME, [strings("v=DKIM1; k=rsa; p=")], Algorithm.RSA, PAIR.public)
    assert revoked.finding is Finding.WRONG_KEY and "revoked" in revoked.reason
    ed = judge(NAME, [strings(f"v=DKIM1; k=ed25519; p={PAIR.public}")], Algorithm.RSA, PAIR.public)
    assert ed.finding is Finding.WRONG_KEY


def test_nothing_published_is_missing() -> None:
    assert judge(NAME, None, Algorithm.RSA, PAIR.public).finding is Finding.MISSING
    assert judge(NAME, [], Algorithm.RSA, PAIR.public).finding is Finding.MISSING


def test_garbage_is_malformed() -> None:
    for text in ("hello world", "v=DKIM2; p=abc", "v=DKIM1; k=rsa", "p=a; p=b", "=x", "\xff".encode("latin-1").decode("latin-1")):
        verdict = judge(NAME, [[text.encode("latin-1")]], Algorithm.RSA, PAIR.public)
        assert verdict.finding is Finding.MALFORMED, text


def test_our_record_among_others_still_matches_but_an_extra_wrong_one_is_named() -> None:
    other = strings("v=spf1 -all")
    assert judge(NAME, [other, strings(*RECORD.strings)], Algorithm.RSA, PAIR.public).ok
    verdict = judge(NAME, [other, strings(RECORD.strings[0])], Algorithm.RSA, PAIR.public)
    assert verdict.finding is Finding.TRUNCATED and "2 TXT records" in verdict.reason
