"""Does a transaction need SMTPUTF8 (RFC 6531)? A pure decision on the envelope and the stored bytes.

A message needs it when an envelope address has a UTF-8 local part, or when its header block is not
ASCII (RFC 6532 headers: a UTF-8 From, To or Subject). Such a message is never downgraded: it was
signed at intake over these bytes. Domains alone never need it: an A-label goes everywhere.
"""

from __future__ import annotations

REPLY_CODE = 550
NOT_OFFERED = "5.6.7 the message needs SMTPUTF8 ({why}), which {server} does not offer"


def header_block_needs_it(data: bytes) -> bool:
    """Whether the header block (up to the first empty line) holds non-ASCII bytes."""
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    return not head.isascii()


def reason(envelope_from: str, recipient: str, headers_need_it: bool) -> str | None:
    """Why this recipient's copy needs SMTPUTF8, or None when it can travel in plain ASCII."""
    if not recipient.rpartition("@")[0].isascii():
        return "the recipient's address is not ASCII"
    if not envelope_from.rpartition("@")[0].isascii():
        return "the sender's address is not ASCII"
    if headers_need_it:
        return "its header fields are not ASCII"
    return None


def refusal(why: str, server: str) -> str:
    """The text recorded for a recipient that cannot be sent to this server."""
    return NOT_OFFERED.format(why=why, server=server or "the next server")
