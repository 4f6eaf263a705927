"""What the provisioning API does to hostings beyond hostings.py: a filtered page of them, setting
an SMTP password already hashed, and deleting one while keeping its log.

A deleted hosting keeps its row, renamed `deleted~<id>~<name>` (a name no live hosting can have,
since `~` is not allowed), with its uid and SMTP password removed and its owners' grants gone:
its log rows keep pointing at it, so operators still read them under that name until the log
retention (`control.log_days`) prunes them, and the original name is free for a new hosting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from scriptmail.model import FINAL_STATUSES, Hosting, HostingState, RecipientStatus
from scriptmail.store import activity, bus
from scriptmail.store.hostings import SYSTEM_HOSTING, HostingError, find_hosting, get_hosting
from scriptmail.store.queue import free_message_bodies
from scriptmail.store.schema import hostings, recipients, user_hostings

_UNFINISHED = [status.value for status in RecipientStatus if status not in FINAL_STATUSES]
DELETED_PREFIX = "deleted~"


class HostingBusy(HostingError):
    """The hosting still has mail waiting, held or being sent; deleting it needs purge=true."""


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Hosting]
    total: int


def _contains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def hosting_page(
    connection: Connection,
    *,
    name_contains: str = "",
    owner: str = "",
    plan: str | None = None,
    state: str | None = None,
    deleted: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> Page:
    """One page of hostings in name order, and how many match (the platform's own is never listed)."""
    conditions = [hostings.c.name != SYSTEM_HOSTING]
    conditions.append(hostings.c.deleted_at.is_not(None) if deleted else hostings.c.deleted_at.is_(None))
    if name_contains:
        conditions.append(_contains(hostings.c.name, name_contains.lower()))
    if owner:
        conditions.append(func.lower(hostings.c.owner_email) == owner.lower())
    if plan:
        conditions.append(hostings.c.plan == plan)
    if state:
        conditions.append(hostings.c.state == state)
    total = connection.execute(select(func.count()).select_from(hostings).where(*conditions)).scalar_one()
    ids = connection.execute(
        select(hostings.c.id).where(*conditions).order_by(hostings.c.name).offset(offset).limit(limit)
    ).scalars()
    return Page([get_hosting(connection, hosting_id) for hosting_id in ids], total)


def set_password_hash(connection: Connection, name: str, hashed: str | None) -> Hosting:
    """Store an SMTP password hashed outside the writer (argon2id is slow); None removes SMTP AUTH."""
    hosting = find_hosting(connection, name=name)
    if hosting is None:
        raise HostingError(f"no hosting named {name!r}")
    connection.execute(update(hostings).where(hostings.c.id == hosting.id).values(smtp_password_hash=hashed))
    return get_hosting(connection, hosting.id)


def unfinished(connection: Connection, hosting_id: int) -> int:
    """Recipients still queued, deferred, held or being sent."""
    return connection.execute(
        select(func.count()).where(recipients.c.hosting_id == hosting_id, recipients.c.status.in_(_UNFINISHED))
    ).scalar_one()


def delete_hosting(connection: Connection, name: str, now: float, purge: bool = False) -> tuple[Hosting, int]:
    """Delete a hosting, keeping its log; with `purge`, its unfinished mail is purged first (kept in
    the log as `purged`). Returns the tombstone and how many recipients were purged."""
    hosting = find_hosting(connection, name=name)
    if hosting is None or hosting.name == SYSTEM_HOSTING:
        raise HostingError(f"no hosting named {name!r}")
    waiting = unfinished(connection, hosting.id)
    if waiting and not purge:
        raise HostingBusy(f"{name} still has {waiting} recipient(s) queued or held: delete with purge=true to purge them")
    purged = 0
    if waiting:
        # One statement; a hosting being deleted sends nothing more, so no lease is honoured.
        message_ids = list(
            connection.execute(
                update(recipients)
                .where(recipients.c.hosting_id == hosting.id, recipients.c.status.in_(_UNFINISHED))
                .values(status=RecipientStatus.PURGED.value, held_at=None, lease_owner=None, lease_until=None,
                        updated_at=now, last_text="purged: the hosting was deleted")
                .returning(recipients.c.message_id)
            ).scalars()
        )  # fmt: skip
        purged = len(message_ids)
        free_message_bodies(connection, set(message_ids))
        activity.bump(connection, [(hosting.id, now, {"purged": purged})])
    connection.execute(delete(user_hostings).where(user_hostings.c.hosting_id == hosting.id))
    tombstone = f"{DELETED_PREFIX}{hosting.id}~{hosting.name}"[:253]
    connection.execute(
        update(hostings)
        .where(hostings.c.id == hosting.id)
        # Blocked too: mail that intake accepts for it in the seconds its lookups are cached is held
        # (and expires), never sent.
        .values(name=tombstone, uid=None, smtp_password_hash=None, deleted_at=now, state=HostingState.BLOCKED.value)
    )
    bus.announce(connection, bus.ACCESS)
    return get_hosting(connection, hosting.id), purged
