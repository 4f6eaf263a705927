"""What a DKIM TXT answer from DNS means for the key we expect there (pure: the lookup is elsewhere)."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dkim.util import InvalidTagValueList, parse_tag_value

from scriptmail.domains.keys import Algorithm


class Finding(enum.StrEnum):
    MATCHES = "matches"
    WRONG_KEY = "wrong-key"
    TRUNCATED = "truncated"
    MISSING = "missing"
    MALFORMED = "malformed"
    TEMPORARY = "temporary"  # the lookup itself failed (timeout, SERVFAIL): try again later


@dataclass(frozen=True, slots=True)
class Verdict:
    finding: Finding
    reason: str  # one sentence for the customer, in English (the area translates the finding)

    @property
    def ok(self) -> bool:
        return self.finding is Finding.MATCHES


_SPACE = re.compile(rb"\s+")


def judge(name: str, records: Sequence[Sequence[bytes]] | None, algorithm: Algorithm, public: str) -> Verdict:
    """Compare the TXT records found at `name` (each a list of strings; None: no such name) with our key."""
    if not records:
        return Verdict(Finding.MISSING, f"no TXT record at {name}")
    expected = public.encode("ascii")
    findings: list[Verdict] = []
    for strings in records:
        findings.append(_one(b"".join(strings), len(strings), algorithm, expected))
    for wanted in (Finding.MATCHES, Finding.TRUNCATED, Finding.WRONG_KEY, Finding.MALFORMED):
        for verdict in findings:
            if verdict.finding is wanted:
                if wanted is Finding.MATCHES or len(findings) == 1:
                    return verdict
                return Verdict(verdict.finding, f"{verdict.reason} ({len(findings)} TXT records at {name}; keep only ours)")
    return findings[0]


def _one(text: bytes, parts: int, algorithm: Algorithm, expected: bytes) -> Verdict:
    try:
        tags = parse_tag_value(_SPACE.sub(b" ", text))
    except InvalidTagValueList:
        return Verdict(Finding.MALFORMED, f"the record is not a DKIM tag list: {_shown(text)}")
    version = tags.get(b"v")
    if version is not None and version != b"DKIM1":
        return Verdict(Finding.MALFORMED, f"v= must be DKIM1, not {_shown(version)}")
    if b"p" not in tags:
        return Verdict(Finding.MALFORMED, "the record has no p= (public key) tag")
    key_type = tags.get(b"k", b"rsa").lower()
    if key_type != algorithm.key_type.encode():
        return Verdict(Finding.WRONG_KEY, f"k={_shown(key_type)} but the key is {algorithm.key_type}")
    found = _SPACE.sub(b"", tags[b"p"])
    if found == expected:
        return Verdict(Finding.MATCHES, "the record holds our key")
    if not found:
        return Verdict(Finding.WRONG_KEY, "p= is empty: the record says the key is revoked")
    if expected.startswith(found):
        hint = " (only the first of the strings was published?)" if parts == 1 else ""
        return Verdict(Finding.TRUNCATED, f"p= is cut short: {len(found)} of {len(expected)} characters{hint}")
    return Verdict(Finding.WRONG_KEY, "p= holds another key than ours")


def _shown(value: bytes) -> str:
    text = value.decode("ascii", errors="replace")
    return repr(text if len(text) <= 60 else text[:57] + "...")
