"""The changes a hosting's customer makes (through the customer API or the customer area), each
written with its audit entry in one transaction: the API and the area call the same function, so
neither can forget the entry. The operator's area uses the state and one-message changes too.
Secrets (webhook secrets, private keys, passwords) are never kept."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from scriptmail.control.states import Action
from scriptmail.control.states import Actor as StateActor
from scriptmail.model import HostingState
from scriptmail.store import accounts, audit, domains, one_message, suppressions, webhooks
from scriptmail.store import hostings as hosting_store
from scriptmail.store.audit import Actor
from scriptmail.store.hosting_control import Change, change_state
from scriptmail.suppression.rules import lookup_form

WEBHOOK_ACTIONS = ("rotate", "enable", "remove", "test")


def report_to(connection: Connection, actor: Actor, name: str, address: str, now: float) -> None:
    """A new error-report recipient ("" sends it back to the owner)."""
    before = hosting_store.find_hosting(connection, name=name).report_to
    hosting_store.update_hosting(connection, name, report_to=address)
    audit.record(connection, actor, "hosting.report_to", name, now, before={"report_to": before}, after={"report_to": address}, hosting=name)


def state(
    connection: Connection, actor: Actor, name: str, action: Action, who: StateActor, now: float, reason: str,
    target: HostingState | None = None,
) -> Change:  # fmt: skip
    """BLOCK, PURGE or UNBLOCK (and an operator's SET); refused transitions leave no entry."""
    change = change_state(connection, name, action, who, now, reason=reason, target=target)
    audit.record(connection, actor, f"hosting.{action.value.lower()}", name, now, before={"state": change.before.value},
                 after={"state": change.after.value}, hosting=name)  # fmt: skip
    return change


def webhook_create(connection: Connection, actor: Actor, name: str, url: str, events: list[str], now: float,
                   description: str, by: str, cap: int) -> tuple[webhooks.Endpoint, str]:  # fmt: skip
    endpoint, secret = webhooks.create_endpoint(connection, name, url, events, now, description, by, cap=cap)
    audit.record(connection, actor, "webhook.create", f"webhook {endpoint.id}", now, after=audit.webhook(endpoint), hosting=name)
    return endpoint, secret


def webhook_action(connection: Connection, actor: Actor, name: str, endpoint_id: int, what: str, now: float, grace: float = 0) -> Any:
    """rotate (the new secret), enable, remove or test (the queued message's id) one of the hosting's endpoints."""
    before = webhooks.get_endpoint(connection, endpoint_id, name)  # EndpointError for another hosting's
    if what == "rotate":
        done: Any = webhooks.rotate_secret(connection, endpoint_id, now, grace, name)
        recorded: dict[str, Any] = {"url": before.url}
    elif what == "enable":
        done = webhooks.enable_endpoint(connection, endpoint_id, name)
        recorded = {"url": before.url, "disabled_reason": before.disabled_reason}
    elif what == "remove":
        done = webhooks.remove_endpoint(connection, endpoint_id, name)
        recorded = audit.webhook(before)
    elif what == "test":
        done = webhooks.queue_test(connection, endpoint_id, now, name)
        recorded = {"url": before.url, "webhook_id": f"msg_{done}"}
    else:
        raise ValueError(f"no webhook action {what!r}")
    if what == "enable" and before.disabled_at is None:
        return done  # enabling an enabled endpoint changes nothing (as in the operator's area)
    audit.record(connection, actor, f"webhook.{what}", f"webhook {endpoint_id}", now, before=recorded if what == "remove" else None,
                 after=None if what == "remove" else recorded, hosting=name)  # fmt: skip
    return done


def domain_add(connection: Connection, actor: Actor, name: str, hosting_id: int, domain: str, keys: list[domains.NewKey],
               now: float, move: bool = False) -> int:  # fmt: skip
    """A new sending domain; a move (an operator's) is recorded on both hostings, the old owner's
    entry without the new owner's name."""
    previous = domains.find_domain(connection, domain)
    added = domains.add_domain(connection, hosting_id, domain, keys, now, move=move)
    selectors = [key.selector for key in keys]
    if previous is not None:  # a move: add_domain refused anything else
        audit.record(connection, actor, "domain.move", domain, now, before={"hosting": previous["hosting"]},
                     after={"hosting": name, "selectors": selectors}, hosting=name)  # fmt: skip
        audit.record(connection, actor, "domain.moved_away", domain, now, before={"domain": domain}, hosting=previous["hosting"])
    else:
        audit.record(connection, actor, "domain.add", domain, now, after={"domain": domain, "selectors": selectors}, hosting=name)
    return added


def domain_rotate(connection: Connection, actor: Actor, name: str, domain: str, keys: list[domains.NewKey], now: float) -> None:
    domains.rotate(connection, domain, keys, now)
    audit.record(connection, actor, "domain.rotate", domain, now, after={"selectors": [key.selector for key in keys]}, hosting=name)


def domain_remove(connection: Connection, actor: Actor, name: str, domain: str, now: float) -> None:
    domains.remove_domain(connection, domain)
    audit.record(connection, actor, "domain.remove", domain, now, before={"domain": domain}, hosting=name)


def domain_checked(connection: Connection, actor: Actor, name: str, domain: str, before: str, now: float) -> None:
    """A lookup asked for by the customer (the lookup itself is dns_check's): its outcome."""
    found = domains.find_domain(connection, domain)
    after = found["state"] if found is not None else "removed"
    audit.record(connection, actor, "domain.check", domain, now, before={"state": before}, after={"state": after}, hosting=name)


def suppression_add(connection: Connection, actor: Actor, name: str, hosting_id: int, value: str, now: float, days: int | None,
                    reason: str) -> suppressions.Added:  # fmt: skip
    added = suppressions.add(connection, hosting_id, value, now, days, reason=reason)
    audit.record(connection, actor, "suppression.add", added.value, now,
                 after={"address": added.value, "kind": added.kind.value, "reason": reason, "new": added.created}, hosting=name)  # fmt: skip
    return added


def suppression_remove(connection: Connection, actor: Actor, name: str, hosting_id: int, value: str, now: float,
                       requeue: bool) -> suppressions.Removed:  # fmt: skip
    """Remove one entry (optionally sending again what it stopped); nothing found: no entry."""
    removed = suppressions.remove(connection, hosting_id, value, now, requeue=requeue)
    if removed.found:
        address = lookup_form(value)
        audit.record(connection, actor, "suppression.remove", address, now, before={"address": address},
                     after={"requeue": requeue, "requeued": removed.requeued}, hosting=name)  # fmt: skip
    return removed


def message_action(connection: Connection, actor: Actor, name: str, hosting_id: int, message_id: int, what: str,
                   who: StateActor, now: float, addresses: list[str] | None = None, reason: str = "") -> int:  # fmt: skip
    """release, delete or resend one stored message (the operator's area too, with its note as
    `reason`); a refusal (NotAllowed, LookupError) leaves no entry."""
    if what == "release":
        count = one_message.release(connection, hosting_id, message_id, who, now, reason=reason)
    elif what == "delete":
        count = one_message.delete(connection, hosting_id, message_id, who, now, reason=reason)
    elif what == "resend":
        count = one_message.resend(connection, hosting_id, message_id, who, now, addresses=addresses, reason=reason)
    else:
        raise ValueError(f"no message action {what!r}")
    after: dict[str, Any] = {"recipients": count}
    if what == "resend" and addresses:
        after["to"] = list(addresses)
    if reason:
        after["reason"] = reason
    audit.record(connection, actor, f"message.{what}", f"message {message_id}", now, after=after, hosting=name)
    return count


def token_create(connection: Connection, actor: Actor, user: accounts.User, label: str, now: float) -> tuple[int, str]:
    """A customer's own API token: its id and label are kept, never the token."""
    token_id, token = accounts.create_token(connection, user, label)
    audit.record(connection, actor, "token.create", user.email, now, after={"id": token_id, "label": label[:200]})
    return token_id, token


def token_revoke(connection: Connection, actor: Actor, user: accounts.User, token_id: int, now: float) -> None:
    accounts.revoke_token(connection, token_id, user)
    audit.record(connection, actor, "token.revoke", str(token_id), now, before={"id": token_id, "user": user.email})


def password_changed(connection: Connection, actor: Actor, user: accounts.User, hashed: str, now: float) -> None:
    """The new password's hash is set; the entry says only that it changed."""
    accounts.set_password(connection, user.email, hashed=hashed)
    audit.record(connection, actor, "user.password", user.email, now)
