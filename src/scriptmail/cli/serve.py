"""`scriptmail serve`: run the parts of this node, one process or several, and the demo of `make run`."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Annotated, Any

import typer
from sqlalchemy.exc import OperationalError

from scriptmail.cli.root import EX_OSERR, EX_TEMPFAIL, app, fail, open_store, out, settings_of
from scriptmail.config import Settings
from scriptmail.store import accounts
from scriptmail.store import hostings as hosting_store
from scriptmail.store.nodes import NodeInUse


@app.command()
def serve(
    ctx: typer.Context,
    parts: Annotated[
        str,
        typer.Option(
            help="Comma-separated parts to run: intake (= smtp + sendmail), smtp, sendmail, delivery, maildrop, scheduler, "
            "bounces (the report listener, when bounces.listen is set), web (API and metrics)."
        ),
    ] = "intake,delivery,maildrop,scheduler,bounces,web",
    processes: Annotated[
        int | None, typer.Option(min=1, max=64, help="Processes to run on this machine (default: config key `processes`, 1).")
    ] = None,
    split: Annotated[
        bool | None,
        typer.Option(
            "--split/--no-split",
            help="Run intake, delivery and web in processes of their own, on every core (default: config key `split`).",
        ),
    ] = None,
    demo: Annotated[bool, typer.Option(help="On an empty store, create a demo hosting and print how to use it.")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run scriptmail (all parts in one process by default) until SIGTERM or Ctrl-C."""
    from scriptmail.app import parse_parts, run_gateway

    try:
        chosen = parse_parts(parts)
    except ValueError as error:
        fail(str(error), 2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = settings_of(ctx)
    demo_login = _create_demo(ctx) if demo else None
    from scriptmail.supervisor import plan

    copies = processes if processes is not None else settings.processes
    planned = plan(settings.node, chosen, copies, settings.split if split is None else split, settings.delivery.processes)
    if len(planned) > 1:
        _supervise(ctx, settings, planned, log_level, demo_login)
        return
    chosen = planned[0][1] if planned else chosen

    def ready(gateway: Any) -> None:
        out.print(f"scriptmail is running: parts {', '.join(chosen)}; store {safe_url(settings.database_url)}")
        if gateway.smtp_port:
            out.print(f"  SMTP submission on {settings.intake.listen.rsplit(':', 1)[0]}:{gateway.smtp_port}, sendmail socket {settings.intake.socket}")
        if demo_login:
            _print_demo(settings, demo_login, gateway.smtp_port, gateway.web_port)

    try:
        run_gateway(settings, chosen, ready)
    except (OSError, RuntimeError, NodeInUse) as error:
        fail(f"cannot start: {error}", EX_OSERR)
    except OperationalError as error:
        fail(f"database unavailable: {str(error.orig or error).splitlines()[0]}", EX_TEMPFAIL)


def _supervise(
    ctx: typer.Context, settings: Settings, planned: list[tuple[str, tuple[str, ...]]], log_level: str, demo_login: DemoLogin | None
) -> None:
    from scriptmail.config import parse_host_port
    from scriptmail.supervisor import exec_supervisor

    listeners = sum("smtp" in parts for _, parts in planned)
    if listeners > 1 and parse_host_port(settings.intake.listen, listening=True)[1] == 0:
        fail("several processes share one SMTP port: set intake.listen to a fixed port, not 0", 2)
    with open_store(ctx):
        pass  # migrate once here, before the copies start
    out.print(f"scriptmail: supervising {len(planned)} processes: " + "; ".join(f"{name} ({', '.join(parts)})" for name, parts in planned))
    if demo_login:
        _print_demo(settings, demo_login, parse_host_port(settings.intake.listen, listening=True)[1])
    exec_supervisor(ctx.meta["config_args"], planned, log_level)


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# hosting, SMTP password, customer e-mail, password, API token, operator e-mail, password
DemoLogin = tuple[str, str, str, str, str, str, str]


def _create_demo(ctx: typer.Context) -> DemoLogin | None:
    with open_store(ctx, write=True) as connection:
        if hosting_store.list_hostings(connection):
            return None
        password = secrets.token_urlsafe(12)
        hosting_store.add_hosting(
            connection, "demo", "owner@demo.invalid", uid=os.getuid(), plan="default", smtp_password=password
        )
        customer_password = accounts.new_password()
        customer = accounts.add_user(connection, "owner@demo.invalid", customer_password)
        accounts.grant(connection, customer, "demo")
        _, token = accounts.create_token(connection, customer, "demo")
        operator_password = accounts.new_password()
        operator = accounts.add_user(connection, "operator@demo.invalid", operator_password, operator=True)
        return "demo", password, customer.email, customer_password, token, operator.email, operator_password


def _print_demo(settings: Settings, login: DemoLogin, port: int | None, web_port: int | None = None) -> None:
    name, password, customer, customer_password, token, operator, operator_password = login
    host = settings.intake.listen.rsplit(":", 1)[0]
    web_host, _, configured_port = settings.web.listen.rpartition(":")
    web = f"http://{web_host}:{web_port or configured_port}"
    out.print(
        f"\nA demo hosting [bold]{name}[/bold] was created (uid {os.getuid()}, SMTP login {name} / {password}).\n"
        "Send it a test mail with the sendmail command:\n"
        f"  printf 'To: someone@example.com\\nSubject: hello\\n\\nIt works.\\n' | "
        f"SCRIPTMAIL_INTAKE__SOCKET={settings.intake.socket} .venv/bin/scriptmail-sendmail -t -i\n"
        "or over SMTP:\n"
        # swaks's own sender is user@hostname, refused when the machine's name has no domain.
        f"  swaks --server {host}:{port} --auth-user {name} --auth-password '{password}' --from web@demo.invalid --to someone@example.com\n"
        "then look at it with `.venv/bin/scriptmail queue` and `.venv/bin/scriptmail log`.\n"
        f"The demo customer [bold]{customer}[/bold] (password {customer_password}) owns it: log in at {web}/\n"
        f"or use its API token:\n  curl -H 'Authorization: Bearer {token}' {web}/1.0/hosting/web/{name}/email\n"
        f"The demo operator [bold]{operator}[/bold] (password {operator_password}) also reaches {web}/operator",
        highlight=False,
    )
