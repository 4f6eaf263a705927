"""Hostings: the accounts whose scripts send mail, and their SMTP credentials (argon2id)."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from scriptmail.international.addresses import AddressError, stored
from scriptmail.model import Hosting, HostingState
from scriptmail.store.engine import upsert
from scriptmail.store.schema import hostings

# OWASP's first recommended argon2id setting (REFERENCE.md): m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
# A UTF-8 local part (RFC 6531) and a Unicode or ASCII domain; the domain is then checked by IDNA.
_LABEL = r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?"
EMAIL_PATTERN = rf"^[^@\s<>\"(),:;\\\[\]\x00-\x1f\x7f]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$"  # also the API's (web.fields)
_EMAIL_RE = re.compile(EMAIL_PATTERN)


class HostingError(ValueError):
    """A hosting cannot be created or changed as asked; the message says why."""


# The languages of the areas, the notices and the daily reports (each has its gettext catalogues;
# English is the msgids). A hosting's and a user's language must be one of them.
LANGUAGES = ("es", "en", "fr", "de", "it", "pt", "pl")

# The platform's own mail (notifications, reports) is queued under this hosting: always active,
# never held, on the unlimited plan. The name cannot be given to a customer's hosting.
SYSTEM_HOSTING = "_system"


def system_hosting_id(connection: Connection, owner_email: str) -> int:
    """The id of the system hosting, created on first use."""
    query = select(hostings.c.id).where(hostings.c.name == SYSTEM_HOSTING)
    found = connection.execute(query).scalar()
    if found is not None:
        return found
    connection.execute(  # two nodes may create it at once: the second insert does nothing
        upsert(connection, hostings)
        .values(
            name=SYSTEM_HOSTING,
            owner_email=owner_email,
            plan="unlimited",
            state=HostingState.ACTIVE.value,
            created_at=time.time(),
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return connection.execute(query).scalar_one()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Constant-time check; a hosting without SMTP credentials never matches."""
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise HostingError(f"invalid hosting name {name!r}: use lower-case letters, digits, dots and dashes")
    return name


def check_email(address: str) -> str:
    """The address in its stored form (an IDN domain as its A-label), or HostingError saying why not."""
    if len(address) > 320 or not _EMAIL_RE.match(address):
        raise HostingError(f"invalid e-mail address {address!r}")
    try:
        return stored(address)
    except AddressError as error:
        raise HostingError(f"invalid e-mail address {address!r}: {error}") from None


def check_uid(uid: int | None) -> int | None:
    if uid is not None and not 0 <= uid < 2**31:
        raise HostingError(f"invalid uid {uid}")
    return uid


def _row_to_hosting(row: Any) -> Hosting:
    return Hosting(
        id=row.id,
        name=row.name,
        owner_email=row.owner_email,
        uid=row.uid,
        plan=row.plan,
        state=HostingState(row.state),
        has_smtp_password=bool(row.smtp_password_hash),
        report_to=row.report_to,
        language=row.language,
        notices=bool(row.notices),
    )


def add_hosting(
    connection: Connection,
    name: str,
    owner_email: str,
    uid: int | None = None,
    plan: str = "default",
    smtp_password: str | None = None,
) -> Hosting:
    check_name(name)
    owner_email = check_email(owner_email)
    check_uid(uid)
    try:
        new_id = connection.execute(
            insert(hostings).returning(hostings.c.id),
            {
                "name": name,
                "owner_email": owner_email,
                "uid": uid,
                "plan": plan,
                "state": HostingState.ACTIVE.value,
                "smtp_password_hash": hash_password(smtp_password) if smtp_password else None,
                "created_at": time.time(),
            },
        ).scalar_one()
    except IntegrityError:
        clash = f"a hosting named {name!r}" + (f" or with uid {uid}" if uid is not None else "")
        raise HostingError(f"{clash} already exists") from None
    return get_hosting(connection, new_id)


_BY_ID = select(hostings).where(hostings.c.id == bindparam("hosting_id"))  # built once: every counters call reads it


def get_hosting(connection: Connection, hosting_id: int) -> Hosting:
    return _row_to_hosting(connection.execute(_BY_ID, {"hosting_id": hosting_id}).one())


def find_hosting(connection: Connection, *, name: str | None = None, uid: int | None = None) -> Hosting | None:
    """A live hosting by name or uid (a deleted one is found by neither)."""
    query = select(hostings).where(hostings.c.deleted_at.is_(None))
    query = query.where(hostings.c.name == name) if name is not None else query.where(hostings.c.uid == uid)
    row = connection.execute(query).first()
    return _row_to_hosting(row) if row else None


def smtp_password_hash(connection: Connection, name: str) -> tuple[int, str | None] | None:
    row = connection.execute(
        select(hostings.c.id, hostings.c.smtp_password_hash).where(hostings.c.name == name, hostings.c.deleted_at.is_(None))
    ).first()
    return (row.id, row.smtp_password_hash) if row else None


def list_hostings(connection: Connection) -> list[Hosting]:
    query = select(hostings).where(hostings.c.deleted_at.is_(None)).order_by(hostings.c.name)
    return [_row_to_hosting(row) for row in connection.execute(query)]


def new_smtp_password() -> str:
    """A generated SMTP password: 24 random URL-safe characters (about 144 bits)."""
    return secrets.token_urlsafe(18)


def check_smtp_password(password: str) -> str:
    """A chosen SMTP password must be long enough and fit on one SMTP AUTH line."""
    if not 10 <= len(password) <= 200 or any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise HostingError("the SMTP password must have 10 to 200 characters and no control characters")
    return password


def update_hosting(
    connection: Connection,
    name: str,
    *,
    owner_email: str | None = None,
    uid: int | None = None,
    clear_uid: bool = False,
    plan: str | None = None,
    smtp_password: str | None = None,
    report_to: str | None = None,
    language: str | None = None,
    notices: bool | None = None,
) -> Hosting:
    """Change what is given; `report_to=""` sends reports to the owner again."""
    values: dict[str, Any] = {}
    if notices is not None:
        values["notices"] = int(notices)
    if report_to is not None:
        values["report_to"] = check_email(report_to) if report_to else None
    if language is not None:
        if language not in LANGUAGES:
            raise HostingError(f"language {language!r}: choose one of {', '.join(LANGUAGES)}")
        values["language"] = language
    if owner_email is not None:
        values["owner_email"] = check_email(owner_email)
    if clear_uid:
        values["uid"] = None
    elif uid is not None:
        values["uid"] = check_uid(uid)
    if plan is not None:
        values["plan"] = plan
    if smtp_password is not None:
        values["smtp_password_hash"] = hash_password(smtp_password) if smtp_password else None
    hosting = find_hosting(connection, name=name)
    if hosting is None:
        raise HostingError(f"no hosting named {name!r}")
    if values:
        try:
            connection.execute(update(hostings).where(hostings.c.id == hosting.id).values(**values))
        except IntegrityError:
            raise HostingError(f"uid {uid} already belongs to another hosting") from None
    return get_hosting(connection, hosting.id)
