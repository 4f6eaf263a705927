"""`scriptmail user ...` and `scriptmail token ...`: the people of the areas and the API, and their tokens."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from scriptmail.cli.root import app, fail, open_store, out
from scriptmail.store import accounts, audit

user_app = typer.Typer(help="People who use the customer and operator areas and the API.", no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")


def _password_for(prompt: bool) -> tuple[str, bool]:
    """A password typed twice (when asked and on a terminal), else a generated one to print once."""
    if prompt and sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True), False
    return accounts.new_password(), True


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    email: str,
    operator: Annotated[bool, typer.Option("--operator", help="May see and change every hosting.")] = False,
    hosting: Annotated[list[str] | None, typer.Option("--hosting", help="A hosting this customer owns (repeatable).")] = None,
    language: Annotated[str, typer.Option(help="Language of the areas: es, en, fr, de, it, pt or pl.")] = "en",
    ask: Annotated[bool, typer.Option("--ask", help="Type the password instead of generating one.")] = False,
) -> None:
    """Create a customer (or operator) account; a generated password is printed once."""
    password, generated = _password_for(ask)
    with open_store(ctx, write=True) as connection:
        try:
            user = accounts.add_user(connection, email, password, operator=operator, language=language)
            for name in hosting or []:
                accounts.grant(connection, user, name)
        except accounts.AccountError as error:
            fail(str(error))
    role = "operator" if user.operator else "customer"
    out.print(f"{role} {user.email} created" + (f"; password (shown once): {password}" if generated else ""), highlight=False)


@user_app.command("password")
def user_password(ctx: typer.Context, email: str, ask: Annotated[bool, typer.Option("--ask", help="Type the new password.")] = False) -> None:
    """Give a user a new password (generated and printed once, unless --ask)."""
    password, generated = _password_for(ask)
    with open_store(ctx, write=True) as connection:
        try:
            accounts.set_password(connection, email, password)
        except accounts.AccountError as error:
            fail(str(error))
    out.print(f"password of {email} changed" + (f"; new password (shown once): {password}" if generated else ""), highlight=False)


@user_app.command("grant")
def user_grant(ctx: typer.Context, email: str, hosting: list[str]) -> None:
    """Let a customer see and control more hostings."""
    with open_store(ctx, write=True) as connection:
        user = accounts.find_user(connection, email=email)
        if user is None:
            fail(f"no user {email!r}")
        try:
            for name in hosting:
                accounts.grant(connection, user, name)
        except accounts.AccountError as error:
            fail(str(error))
    out.print(f"{email} now owns {', '.join(hosting)}")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    email: str,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    scope: Annotated[
        str | None,
        typer.Option(help="An operator token's reach: read, manage (also changes) or provision (also creates and deletes hostings)."),
    ] = None,
) -> None:
    """Create an API token for a user; it is printed once and never stored."""
    with open_store(ctx, write=True) as connection:
        user = accounts.find_user(connection, email=email)
        if user is None:
            fail(f"no user {email!r}")
        try:
            token_id, token = accounts.create_token(connection, user, label, scope=scope)
        except accounts.AccountError as error:
            fail(str(error))
        audit.record(connection, audit.Actor.command(), "token.create", user.email, time.time(), after={"id": token_id, "label": label, "scope": scope})
    out.print(f"token {token_id} for {email}{f' (scope {scope})' if scope else ''} (shown once): {token}", highlight=False)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke an API token at once."""
    with open_store(ctx, write=True) as connection:
        try:
            accounts.revoke_token(connection, token_id)
        except accounts.AccountError as error:
            fail(str(error))
        audit.record(connection, audit.Actor.command(), "token.revoke", str(token_id), time.time())
    out.print(f"token {token_id} revoked")
