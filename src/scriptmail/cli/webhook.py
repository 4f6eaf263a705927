"""`scriptmail webhook ...`: the operator's webhook endpoints (platform-wide, or for one hosting).
Every change is in the audit log as `cli (uid N)`, in the transaction that makes it."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import typer
from rich.table import Table

from scriptmail.cli.root import JsonOption, app, fail, open_store, out, print_json, settings_of, when
from scriptmail.store import audit, webhooks
from scriptmail.store.hostings import HostingError
from scriptmail.webhooks.events import SUBSCRIBABLE

webhook_app = typer.Typer(help="Webhook endpoints: signed HTTP callbacks for events.", no_args_is_help=True)
app.add_typer(webhook_app, name="webhook")

HostingOption = Annotated[str | None, typer.Option("--hosting", help="Only this hosting's events (default: platform-wide).")]


EX_CANTCREAT = 73  # sysexits: the endpoint cap is reached, nothing was created


def _public(endpoint: webhooks.Endpoint) -> dict:
    return dataclasses.asdict(endpoint) | {"events": list(endpoint.events)}


def _change(connection, name: str, endpoint_id: int, change) -> object:
    """One change of an endpoint, audited as `webhook.NAME` with the CLI's uid."""
    before = webhooks.get_endpoint(connection, endpoint_id)
    done = change()
    if name != "enable" or before.disabled_at is not None:  # enabling an enabled endpoint changes nothing
        recorded = {"disabled_reason": before.disabled_reason} if name == "enable" else audit.webhook(before) if name == "remove" else None
        audit.record(connection, audit.Actor.command(), f"webhook.{name}", f"webhook {endpoint_id}", time.time(), before=recorded)
    return done


@webhook_app.command("add")
def webhook_add(
    ctx: typer.Context,
    url: str,
    events: Annotated[str, typer.Option(help=f"Comma-separated event types, or * for all: {', '.join(SUBSCRIBABLE)}.")] = "*",
    hosting: HostingOption = None,
    description: Annotated[str, typer.Option(help="What the endpoint is for.")] = "",
    json_output: JsonOption = False,
) -> None:
    """Create an endpoint; its signing secret is printed once. Exit 73 when the hosting (or the
    platform) has as many endpoints as `webhooks.max_hosting_endpoints` (`max_platform_endpoints`)."""
    limits = settings_of(ctx).webhooks
    cap = limits.max_platform_endpoints if hosting is None else limits.max_hosting_endpoints
    with open_store(ctx, write=True) as connection:
        try:
            now = time.time()
            endpoint, secret = webhooks.create_endpoint(connection, hosting, url, events, now, description, "cli", cap=cap)
        except webhooks.EndpointCapReached as error:
            fail(str(error), EX_CANTCREAT)
        except (ValueError, HostingError) as error:
            fail(str(error))
        audit.record(connection, audit.Actor.command(), "webhook.create", f"webhook {endpoint.id}", now, after=audit.webhook(endpoint))
    if json_output:
        print_json(_public(endpoint) | {"secret": secret})
        return
    out.print(f"endpoint {endpoint.id} created for {', '.join(endpoint.events)}", highlight=False)
    out.print(f"signing secret (shown once): {secret}", highlight=False)


@webhook_app.command("list")
def webhook_list(ctx: typer.Context, hosting: HostingOption = None, every: Annotated[bool, typer.Option("--all", help="Every endpoint, the customers' too.")] = False, json_output: JsonOption = False) -> None:  # noqa: E501
    """The platform-wide endpoints, or one hosting's, or (--all) every one."""
    with open_store(ctx) as connection:
        found = webhooks.list_endpoints(connection, ... if every else hosting)
    if json_output:
        print_json([_public(endpoint) for endpoint in found])
        return
    table = Table("id", "hosting", "url", "events", "state", "description")
    for endpoint in found:
        state = f"disabled {when(endpoint.disabled_at)}: {endpoint.disabled_reason}" if endpoint.disabled_at else "enabled"
        if endpoint.failing_since and not endpoint.disabled_at:
            state = f"failing since {when(endpoint.failing_since)}"
        table.add_row(str(endpoint.id), endpoint.hosting or "(platform)", endpoint.url, ", ".join(endpoint.events), state, endpoint.description)
    out.print(table)


@webhook_app.command("remove")
def webhook_remove(ctx: typer.Context, endpoint: int) -> None:
    """Delete an endpoint, its pending events and its delivery log."""
    with open_store(ctx, write=True) as connection:
        try:
            _change(connection, "remove", endpoint, lambda: webhooks.remove_endpoint(connection, endpoint))
        except webhooks.EndpointError as error:
            fail(str(error))
    out.print(f"endpoint {endpoint} removed")


@webhook_app.command("rotate")
def webhook_rotate(ctx: typer.Context, endpoint: int, json_output: JsonOption = False) -> None:
    """A new signing secret, printed once; the old one keeps signing for `webhooks.rotation_grace`."""
    grace = settings_of(ctx).webhooks.rotation_grace
    with open_store(ctx, write=True) as connection:
        try:
            secret = _change(connection, "rotate", endpoint, lambda: webhooks.rotate_secret(connection, endpoint, time.time(), grace))
        except webhooks.EndpointError as error:
            fail(str(error))
    if json_output:
        print_json({"id": endpoint, "secret": secret, "previous_valid_seconds": grace})
        return
    out.print(f"new signing secret of endpoint {endpoint} (shown once): {secret}", highlight=False)
    if grace:
        out.print(f"the previous secret also signs for {grace / 3600:g} more hours")


@webhook_app.command("enable")
def webhook_enable(ctx: typer.Context, endpoint: int) -> None:
    """Send to an endpoint that was disabled for failing again."""
    with open_store(ctx, write=True) as connection:
        try:
            _change(connection, "enable", endpoint, lambda: webhooks.enable_endpoint(connection, endpoint))
        except webhooks.EndpointError as error:
            fail(str(error))
    out.print(f"endpoint {endpoint} enabled")


@webhook_app.command("test")
def webhook_test(ctx: typer.Context, endpoint: int, json_output: JsonOption = False) -> None:
    """Queue a `webhook.test` event for this endpoint; a running node sends it (see `webhook log`)."""
    with open_store(ctx, write=True) as connection:
        try:
            message = webhooks.queue_test(connection, endpoint, time.time())
        except webhooks.EndpointError as error:
            fail(str(error))
    if json_output:
        print_json({"endpoint": endpoint, "webhook_id": f"msg_{message}"})
        return
    out.print(f"test event msg_{message} queued for endpoint {endpoint}")


@webhook_app.command("log")
def webhook_log(
    ctx: typer.Context, endpoint: int, limit: Annotated[int, typer.Option(min=1, max=1000)] = 50, json_output: JsonOption = False
) -> None:
    """The endpoint's latest delivery attempts: status, answer time, the start of the answer."""
    with open_store(ctx) as connection:
        try:
            webhooks.get_endpoint(connection, endpoint)
        except webhooks.EndpointError as error:
            fail(str(error))
        entries = webhooks.delivery_log(connection, endpoint, limit)
    if json_output:
        print_json(entries)
        return
    table = Table("when", "event", "webhook-id", "status", "seconds", "error", "answer")
    for entry in entries:
        table.add_row(
            when(entry["at"]), entry["event_type"], f"msg_{entry['message']}", str(entry["status_code"] or "-"),
            f"{entry['duration']:.3f}", entry["error"], entry["excerpt"][:80],
        )  # fmt: skip
    out.print(table)
