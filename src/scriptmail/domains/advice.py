"""What the SPF and DMARC checks tell a customer, in English: the msgids of
translations/LANG/LC_MESSAGES/domains.po, translated where they are shown (CLI, API, customer area).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scriptmail import catalogues
from scriptmail.catalogues import N_

SPF_PASS = N_("The SPF record of {domain} authorises the platform's servers: nothing to do.")
SPF_OPEN = N_(
    "The SPF record of {domain} ends in +all, which authorises every server on the internet; receivers "
    "distrust it. Replace it with this TXT record: {record}"
)
SPF_NONE = N_("{domain} has no SPF record. Publish this TXT record at {domain}: {record}")
SPF_ADD = N_(
    "The SPF record of {domain} does not authorise the platform's servers (result: {result}). "
    "Replace it with this TXT record: {record}"
)
SPF_TWO = N_(
    "{domain} publishes more than one SPF record, so SPF fails for all of them. "
    "Merge them into one TXT record that includes {include}."
)
SPF_TOO_MANY = N_(
    "The SPF record of {domain} needs too many DNS lookups ({reason}), so SPF fails. "
    "Remove includes you no longer use, or replace some of them by ip4: and ip6: terms."
)
SPF_INVALID = N_("The SPF record of {domain} is invalid ({reason}), so SPF fails. Correct it.")
SPF_TEMPORARY = N_(
    "The DNS servers of {domain} did not answer ({reason}). The check is repeated later; "
    "if this goes on, ask your DNS provider."
)
SPF_UNCONFIGURED = N_(
    "The platform has not configured its SPF name or addresses, so the SPF record of {domain} cannot be checked."
)

DMARC_NONE = N_(
    "{domain} has no DMARC record; large mailbox providers expect one. "
    "Publish this TXT record at {name}: {record}"
)
DMARC_INVALID = N_(
    "The DMARC record at {name} is invalid ({reason}), so receivers ignore it. Replace it, for example with: {record}"
)
DMARC_TWO = N_("There is more than one DMARC record at {name}, so receivers ignore them all. Keep only one.")
DMARC_NO_P = N_(
    "The DMARC record at {name} has no valid p= tag; receivers read it as p=none. Add p=none, p=quarantine or p=reject."
)
DMARC_PASS_DKIM = N_(
    "Mail from the platform passes DMARC for {domain}: its DKIM signature by {signing} is aligned. Policy: {policy}."
)
DMARC_PASS_SPF = N_(
    "Mail from the platform passes DMARC for {domain}: its envelope domain {envelope} passes SPF and is aligned. "
    "Policy: {policy}."
)
DMARC_FAIL = N_("Mail from the platform fails DMARC for {domain}. Policy: {policy}.")
DMARC_UNSIGNED = N_(
    "It is signed with the platform's domain {signing}, not with {domain}: set up DKIM for {domain} "
    "(publish its DKIM record) and mail will pass."
)
DMARC_STRICT_DKIM = N_(
    "It is signed with {signing}, but the record asks for strict DKIM alignment (adkim=s): "
    "sign with {domain} itself, or publish adkim=r."
)
DMARC_SPF_FOREIGN = N_(
    "SPF cannot align: the platform's envelope domain {envelope} is not within {domain}; DKIM must align."
)
DMARC_SPF_FAILS = N_("SPF does not pass for the envelope domain {envelope}, so it cannot align.")
DMARC_STRICT_SPF = N_(
    "The envelope domain {envelope} is within {domain}, but the record asks for strict SPF alignment (aspf=s)."
)
DMARC_EFFECT_NONE = N_("Receivers still deliver such mail, and may report it to the addresses in rua=.")
DMARC_EFFECT_QUARANTINE = N_("Receivers put such mail in the spam folder.")
DMARC_EFFECT_REJECT = N_("Receivers refuse such mail.")
DMARC_TEMPORARY = N_(
    "The DNS servers did not answer for {name} ({reason}). The check is repeated later; "
    "if this goes on, ask your DNS provider."
)

TEXTS = (
    SPF_PASS, SPF_OPEN, SPF_NONE, SPF_ADD, SPF_TWO, SPF_TOO_MANY, SPF_INVALID, SPF_TEMPORARY, SPF_UNCONFIGURED,
    DMARC_NONE, DMARC_INVALID, DMARC_TWO, DMARC_NO_P, DMARC_PASS_DKIM, DMARC_PASS_SPF, DMARC_FAIL,
    DMARC_UNSIGNED, DMARC_STRICT_DKIM, DMARC_SPF_FOREIGN, DMARC_SPF_FAILS, DMARC_STRICT_SPF,
    DMARC_EFFECT_NONE, DMARC_EFFECT_QUARANTINE, DMARC_EFFECT_REJECT, DMARC_TEMPORARY,
)  # fmt: skip
EFFECTS = {"none": DMARC_EFFECT_NONE, "quarantine": DMARC_EFFECT_QUARANTINE, "reject": DMARC_EFFECT_REJECT}


@dataclass(frozen=True, slots=True)
class Sentence:
    """One advice text and the values of its {placeholders} (names, records: never translated)."""

    text: str
    values: dict[str, str] = field(default_factory=dict)

    def render(self, language: str) -> str:
        translated = catalogues.translations(catalogues.MAIL, language).gettext(self.text)
        return translated.format(**self.values)


def render(sentences: tuple[Sentence, ...], language: str) -> str:
    """An advice as one paragraph in `language` (es, en, fr; English for any other)."""
    return " ".join(sentence.render(language) for sentence in sentences)
