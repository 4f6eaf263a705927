"""Queue the platform's own mail (notices, reports) under the system hosting: never held."""

from __future__ import annotations

from sqlalchemy import Connection

from scriptmail.model import Origin, Submission
from scriptmail.store.hostings import system_hosting_id
from scriptmail.store.queue import insert_submissions


def queue_system_mail(
    connection: Connection, sender: str, recipient: str, data: bytes, subject: str, now: float, why: str, envelope_from: str | None = None
) -> int:
    """Commit one message from scriptmail itself; `why` names the job that wrote it (shown as its
    script). `envelope_from=""` sends it with the null sender, as bounces are."""
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
    return insert_submissions(connection, [(submission, now)])[0]
