"""People and their keys: customers who own hostings, operators who reach all of them, and the
API tokens they create. Passwords are argon2id hashes; tokens are long random strings kept only
as a SHA-256 hash (a token is not a password: it cannot be guessed, so a slow hash buys nothing)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from scriptmail.store import bus
from scriptmail.store.hostings import LANGUAGES, HostingError, check_email, hash_password, password_matches
from scriptmail.store.schema import api_tokens, hostings, user_hostings, users

TOKEN_PREFIX = "smk_"  # recognisable in a leaked file or a secret scanner

# An operator token's reach, each including the one before: `read` sees everything, `manage`
# also changes states, users, grants and tokens, `provision` also creates, changes and deletes
# hostings and their SMTP passwords. A person's own token (no scope) reaches what they do: a
# customer their hostings, an operator as far as `manage`.
SCOPES = ("read", "manage", "provision")
OPERATOR_DEFAULT_SCOPE = "manage"


class AccountError(Exception):
    """A request about accounts that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    operator: bool
    language: str


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a bearer token speaks for: the person, the token's id and its scope (None: a person's own)."""

    user: User
    token_id: int
    scope: str | None

    def may(self, needed: str) -> bool:
        """Whether this token reaches the operator scope `needed` (customers reach none)."""
        if not self.user.operator:
            return False
        return SCOPES.index(self.scope or OPERATOR_DEFAULT_SCOPE) >= SCOPES.index(needed)


def _user(row) -> User:
    return User(row.id, row.email, bool(row.operator), row.language)


def new_password() -> str:
    return secrets.token_urlsafe(15)


def password_hash(password: str) -> str:
    """The stored form of a new password (argon2id), after checking it is long enough. Slow on
    purpose: a server computes it outside the store's writer (a worker thread), then stores it."""
    if len(password) < 10:
        raise AccountError("the password must have at least 10 characters")
    return hash_password(password)


def add_user(
    connection: Connection,
    email: str,
    password: str | None = None,
    operator: bool = False,
    language: str = "en",
    hashed: str | None = None,
) -> User:
    """A new person; `password` in clear, or already `hashed` by `password_hash`."""
    try:
        email = check_email(email)
    except HostingError as error:
        raise AccountError(str(error)) from None
    if language not in LANGUAGES:
        raise AccountError(f"language {language!r}: choose one of {', '.join(LANGUAGES)}")
    hashed = hashed or password_hash(password or "")
    try:
        user_id = connection.execute(
            insert(users).returning(users.c.id),
            {"email": email.lower(), "password_hash": hashed, "operator": int(operator),
             "language": language, "created_at": time.time()},
        ).scalar_one()  # fmt: skip
    except IntegrityError:
        raise AccountError(f"a user {email!r} already exists") from None
    return find_user(connection, user_id=user_id)


def _key(email: str) -> str:
    """How a typed address is looked up: the stored form (bücher.example finds xn--bcher-kva.example), lower case."""
    try:
        return check_email(email.strip()).lower()
    except HostingError:
        return email.lower()  # finds nothing a valid address could have stored


def find_user(connection: Connection, *, email: str | None = None, user_id: int | None = None) -> User | None:
    query = (
        select(users).where(users.c.email == _key(email)) if email is not None else select(users).where(users.c.id == user_id)
    )
    row = connection.execute(query).first()
    return _user(row) if row else None


def check_password(connection: Connection, email: str, password: str) -> User | None:
    row = connection.execute(select(users).where(users.c.email == _key(email))).first()
    if row is None:
        password_matches(None, password)  # the same work whether or not the account exists
        return None
    return _user(row) if password_matches(row.password_hash, password) else None


def set_password(connection: Connection, email: str, password: str | None = None, hashed: str | None = None) -> None:
    """A new password for `email`: in clear, or already `hashed` by `password_hash`."""
    hashed = hashed or password_hash(password or "")
    if not connection.execute(update(users).where(users.c.email == _key(email)).values(password_hash=hashed)).rowcount:
        raise AccountError(f"no user {email!r}")


def set_language(connection: Connection, user: User, language: str) -> None:
    if language not in LANGUAGES:
        raise AccountError(f"language {language!r}: choose one of {', '.join(LANGUAGES)}")
    connection.execute(update(users).where(users.c.id == user.id).values(language=language))


def grant(connection: Connection, user: User, hosting_name: str) -> None:
    hosting_id = connection.execute(
        select(hostings.c.id).where(hostings.c.name == hosting_name, hostings.c.deleted_at.is_(None))
    ).scalar()
    if hosting_id is None:
        raise AccountError(f"no hosting named {hosting_name!r}")
    exists = connection.execute(
        select(user_hostings.c.user_id).where(user_hostings.c.user_id == user.id, user_hostings.c.hosting_id == hosting_id)
    ).first()
    if not exists:
        connection.execute(insert(user_hostings).values(user_id=user.id, hosting_id=hosting_id))


def hosting_names(connection: Connection, user: User) -> list[str]:
    """The hostings this person may see: their own, or every customer hosting for an operator."""
    query = (
        select(hostings.c.name)
        .where(hostings.c.name != "_system", hostings.c.deleted_at.is_(None))
        .order_by(hostings.c.name)
    )
    if not user.operator:
        query = query.join(user_hostings, user_hostings.c.hosting_id == hostings.c.id).where(user_hostings.c.user_id == user.id)
    return list(connection.execute(query).scalars())


def may_see(connection: Connection, user: User, hosting_name: str) -> int | None:
    """The hosting's id if this person may see it, else None (unknown and foreign look the same)."""
    query = select(hostings.c.id).where(
        hostings.c.name == hosting_name, hostings.c.name != "_system", hostings.c.deleted_at.is_(None)
    )
    if not user.operator:
        query = query.join(user_hostings, user_hostings.c.hosting_id == hostings.c.id).where(user_hostings.c.user_id == user.id)
    return connection.execute(query).scalar()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(connection: Connection, user: User, label: str = "", scope: str | None = None) -> tuple[int, str]:
    """A new token for `user`: its id and the token itself, which is never stored or shown again.
    A `scope` (read, manage, provision) makes it an operator token: only for operators."""
    if scope is not None:
        if scope not in SCOPES:
            raise AccountError(f"scope {scope!r}: choose one of {', '.join(SCOPES)}")
        if not user.operator:
            raise AccountError(f"{user.email} is not an operator: a customer's token has no scope")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = connection.execute(
        insert(api_tokens).returning(api_tokens.c.id),
        {"user_id": user.id, "label": label[:200], "token_hash": _hash(token), "created_at": time.time(), "scope": scope},
    ).scalar_one()
    return token_id, token


def caller_for_token(connection: Connection, token: str) -> Caller | None:
    """The person, token id and scope behind a bearer token; None when it is unknown or revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = connection.execute(
        select(users, api_tokens.c.id.label("token_id"), api_tokens.c.scope)
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == _hash(token), api_tokens.c.revoked_at.is_(None))
    ).first()
    return Caller(_user(row), row.token_id, row.scope) if row else None


def user_for_token(connection: Connection, token: str) -> User | None:
    caller = caller_for_token(connection, token)
    return caller.user if caller else None


def revoke_token(connection: Connection, token_id: int, user: User | None = None) -> None:
    """Revoke a token (only one of `user`'s, when given)."""
    query = update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
    if user is not None:
        query = query.where(api_tokens.c.user_id == user.id)
    if not connection.execute(query.values(revoked_at=time.time())).rowcount:
        raise AccountError(f"no active token {token_id}")
    bus.announce(connection, bus.ACCESS)


def tokens_of(connection: Connection, user: User) -> list[dict]:
    return [
        dict(row._mapping)
        for row in connection.execute(
            select(api_tokens.c.id, api_tokens.c.label, api_tokens.c.scope, api_tokens.c.created_at, api_tokens.c.revoked_at)
            .where(api_tokens.c.user_id == user.id)
            .order_by(api_tokens.c.id)
        )
    ]


def delete_user(connection: Connection, email: str) -> None:
    if not connection.execute(delete(users).where(users.c.email == _key(email))).rowcount:
        raise AccountError(f"no user {email!r}")
    bus.announce(connection, bus.ACCESS)


# --- for the operator area ---------------------------------------------------------------


def list_users(connection: Connection, email_contains: str = "", offset: int = 0, limit: int = 100) -> tuple[list[dict], int]:
    """One page of users by e-mail, each with the hostings they own; and how many match."""
    query = select(users.c.id, users.c.email, users.c.operator, users.c.language)
    if email_contains:
        escaped = email_contains.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(users.c.email.like(f"%{escaped}%", escape="\\"))
    total = connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = [
        dict(row._mapping, operator=bool(row.operator), hostings=[])
        for row in connection.execute(query.order_by(users.c.email).offset(offset).limit(limit))
    ]
    by_id = {row["id"]: row for row in rows}
    if by_id:
        owned = connection.execute(
            select(user_hostings.c.user_id, hostings.c.name)
            .join(hostings, hostings.c.id == user_hostings.c.hosting_id)
            .where(user_hostings.c.user_id.in_(list(by_id)))
            .order_by(hostings.c.name)
        )
        for user_id, name in owned:
            by_id[user_id]["hostings"].append(name)
    return rows, total


def revoke(connection: Connection, user: User, hosting_name: str) -> None:
    """Take a hosting away from a user; AccountError when they did not own it."""
    hosting_id = connection.execute(select(hostings.c.id).where(hostings.c.name == hosting_name)).scalar()
    if hosting_id is None:
        raise AccountError(f"no hosting named {hosting_name!r}")
    gone = connection.execute(
        delete(user_hostings).where(user_hostings.c.user_id == user.id, user_hostings.c.hosting_id == hosting_id)
    ).rowcount
    if not gone:
        raise AccountError(f"{user.email} does not own {hosting_name}")
    bus.announce(connection, bus.ACCESS)


def set_operator(connection: Connection, user: User, operator: bool) -> None:
    """Make a user an operator (every hosting, the operator area) or a customer again."""
    connection.execute(update(users).where(users.c.id == user.id).values(operator=int(operator)))
    bus.announce(connection, bus.ACCESS)
