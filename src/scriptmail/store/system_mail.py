"""Queue the platform's own mail (notices, reports, DSNs) under the system hosting: never held,
and DKIM-signed with the platform's signing domain (`domains.platform_domain`) as it is stored.

That mail does not pass through the Acceptor, so it is signed here, in the transaction that
queues it: the platform domain's verified keys are read in that transaction (one SELECT, so a
key DNS does not hold never signs) and decrypted once per process. A signing failure queues the
mail unsigned, with a log line: the platform's mail is never lost for it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from sqlalchemy import Connection, select

from scriptmail.config import DomainsSettings
from scriptmail.delivery.wire import fold_long_lines
from scriptmail.domains.keys import Algorithm, KeyUnreadable, load_private
from scriptmail.domains.names import from_domain
from scriptmail.domains.signing import SigningError, SigningKey, sign
from scriptmail.domains.vault import VaultError, open_vault
from scriptmail.intake.checks import normalize_newlines
from scriptmail.intake.headers import addresses_in, split_headers
from scriptmail.model import Origin, Submission
from scriptmail.store.hostings import system_hosting_id
from scriptmail.store.queue import insert_submissions
from scriptmail.store.schema import dkim_keys, sending_domains

log = logging.getLogger(__name__)

_ORDER = {Algorithm.RSA: 0, Algorithm.ED25519: 1}
_KEYS: dict[tuple[str, int], SigningKey] = {}  # (key file, key id) -> the decrypted key
_LOCK = threading.Lock()


def queue_system_mail(
    connection: Connection, sender: str, recipient: str, data: bytes, subject: str, now: float, why: str,
    envelope_from: str | None = None, domains: DomainsSettings | None = None,
) -> int:  # fmt: skip
    """Commit one message from scriptmail itself; `why` names the job that wrote it (shown as its
    script). `envelope_from=""` sends it with the null sender, as bounces are. With `domains`,
    it is signed with the platform's signing domain when that domain has a verified key."""
    hosting_id = system_hosting_id(connection, sender)
    submission = Submission(
        hosting_id=hosting_id,
        envelope_from=sender if envelope_from is None else envelope_from,
        recipients=(recipient,),
        data=data,
        origin=Origin.SENDMAIL,  # submitted locally, like a script's mail; the hosting marks it as ours
        client="scriptmail",
        subject=subject,
        script=f"scriptmail {why}",
    )
    return insert_submissions(connection, [(signed(connection, submission, domains, now), now)])[0]


def signed(connection: Connection, submission: Submission, domains: DomainsSettings | None, now: float) -> Submission:
    """The platform's own submission with the platform domain's DKIM signatures, or as it was
    (no platform domain, no verified key yet, or a failure: dkim="failed").

    It gets its From domain, so that it is counted per From domain under the system hosting as a
    hosting's mail is (the DKIM metric's mail="platform")."""
    if not submission.from_domain:
        submission = replace(submission, from_domain=_own_from_domain(submission.data, domains))
    if domains is None or not domains.platform_domain:
        return submission
    keys = platform_keys(connection, domains)
    if not keys:
        return submission
    try:
        # The bytes delivery will send: CRLF everywhere (as the sendmail path makes them), lines folded.
        data = sign(fold_long_lines(normalize_newlines(submission.data)), keys, now)
    except (SigningError, ValueError, TypeError) as error:
        log.warning("platform mail (%s) goes out unsigned: %s", submission.script, error)
        return replace(submission, dkim="failed")
    return replace(submission, data=data, dkim="platform")


def _own_from_domain(data: bytes, domains: DomainsSettings | None) -> str:
    """The From domain of a message scriptmail wrote, else the platform's signing domain."""
    found = addresses_in(split_headers(data), "from")
    own = from_domain(found[0].rpartition("@")[2]) if found and "@" in found[0] else ""
    return own or (domains.platform_domain if domains is not None else "")


def platform_keys(connection: Connection, domains: DomainsSettings) -> list[SigningKey]:
    """The platform domain's active keys that DNS was found to hold, RSA first."""
    rows = connection.execute(
        select(dkim_keys.c.id, dkim_keys.c.selector, dkim_keys.c.algorithm, dkim_keys.c.private_key)
        .join(sending_domains, sending_domains.c.id == dkim_keys.c.domain_id)
        .where(sending_domains.c.domain == domains.platform_domain, dkim_keys.c.active == 1, dkim_keys.c.state == "verified")
        .order_by(dkim_keys.c.id)
    ).all()
    keys = []
    for row in rows:
        cached = (str(domains.key_file), row.id)
        with _LOCK:
            key = _KEYS.get(cached)
        if key is None:
            try:
                algorithm = Algorithm(row.algorithm)
                private = load_private(algorithm, open_vault(domains.key_file).decrypt(bytes(row.private_key)))
            except (VaultError, KeyUnreadable, ValueError) as error:
                log.error("DKIM key %s of %s cannot sign the platform's mail: %s", row.selector, domains.platform_domain, error)
                continue
            key = SigningKey(domains.platform_domain, row.selector, algorithm, private)
            with _LOCK:
                _KEYS[cached] = key
        keys.append(key)
    if not any(key.algorithm is Algorithm.RSA for key in keys):
        return []  # an Ed25519 signature alone is not checked everywhere: as the Acceptor does
    return sorted(keys, key=lambda k: _ORDER[k.algorithm])
