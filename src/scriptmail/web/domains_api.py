"""REST routes for a hosting's sending domains, under /1.0/hosting/web/{serviceName}/email/domains.

Same rules as web/api.py: a hosting (or a domain) the caller may not see answers 404 like one that
does not exist; private keys never appear in an answer; key generation runs in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, Field

from scriptmail.domains import dns_check
from scriptmail.domains.keys import Algorithm
from scriptmail.domains.names import DomainNameError, display, normalise
from scriptmail.domains.provision import new_keys
from scriptmail.domains.vault import VaultError
from scriptmail.domains.view import describe, with_checks
from scriptmail.store import customer_changes
from scriptmail.store import domains as store
from scriptmail.web.api import AuditActor, Context, User, Writer, _hosting_id

router = APIRouter(prefix="/1.0/hosting/web/{serviceName}/email/domains", tags=["sending domains"])

NO_DOMAIN = "This sending domain does not exist"


class DomainAdd(BaseModel):
    domain: str = Field("", description="The domain, in Unicode or punycode, e.g. bücher.example.")


def _name(text: str) -> str:
    try:
        return normalise(text)
    except DomainNameError as error:
        raise HTTPException(400, str(error)) from None


async def _found(context: Context, hosting_id: int, domain: str) -> dict[str, Any]:
    try:
        name = normalise(domain)
    except DomainNameError:
        raise HTTPException(404, NO_DOMAIN) from None
    found = await context.read(lambda c: store.find_domain(c, name))
    if found is None or found["hosting_id"] != hosting_id:
        raise HTTPException(404, NO_DOMAIN)
    return found


@router.get("", summary="Sending domains, and the From domains seen but not set up")
async def list_domains(serviceName: str, user: User, context: Context) -> list[dict[str, Any]]:
    hosting_id = await _hosting_id(context, user, serviceName)
    rows = await context.read(lambda c: store.list_domains(c, hosting_id))
    return [
        {"domain": display(r["domain"]), "a_label": r["domain"], "state": r["state"], "reason": r["reason"], "messages": r["messages"]}
        for r in rows
    ]


@router.post("", status_code=201, summary="Add a sending domain (its DKIM keys are generated, pending until DNS holds them)")
async def add_domain(serviceName: str, body: DomainAdd, user: Writer, actor: AuditActor, context: Context) -> dict[str, Any]:
    hosting_id = await _hosting_id(context, user, serviceName)
    name = _name(body.domain)
    first = not await context.read(store.has_keys)
    try:
        keys = await asyncio.to_thread(new_keys, context.settings.domains, context.clock(), (), None, first)
    except VaultError as error:
        raise HTTPException(503, f"signing keys cannot be made now: {error}") from None
    try:
        await context.write(lambda c: customer_changes.domain_add(c, actor, serviceName, hosting_id, name, keys, context.clock()))
    except (store.DomainTaken, store.DomainExists) as error:
        raise HTTPException(409, str(error)) from None
    return describe(await _found(context, hosting_id, name))


@router.get("/{domain}", summary="One sending domain: its state and the exact records to publish")
async def get_domain(serviceName: str, domain: str, user: User, context: Context) -> dict[str, Any]:
    hosting_id = await _hosting_id(context, user, serviceName)
    return await with_checks(describe(await _found(context, hosting_id, domain)), context.settings)


@router.post("/{domain}/check", summary="Look the records up in DNS now")
async def check_domain(serviceName: str, domain: str, user: Writer, actor: AuditActor, context: Context) -> dict[str, Any]:
    hosting_id = await _hosting_id(context, user, serviceName)
    found = await _found(context, hosting_id, domain)
    await dns_check.check(context.engine, context.write, context.settings, context.clock(), found["domain"])
    await context.write(lambda c: customer_changes.domain_checked(c, actor, serviceName, found["domain"], found["state"], context.clock()))
    return await with_checks(describe(await _found(context, hosting_id, domain)), context.settings)


@router.post("/{domain}/rotate", summary="Start a key rotation: new selectors to publish; they sign once verified")
async def rotate_domain(serviceName: str, domain: str, user: Writer, actor: AuditActor, context: Context) -> dict[str, Any]:
    hosting_id = await _hosting_id(context, user, serviceName)
    found = await _found(context, hosting_id, domain)
    if found["state"] != "verified":
        raise HTTPException(409, f"the domain is {found['state']}: publish and verify its current key before rotating")
    signing = [Algorithm(key["algorithm"]) for key in found["keys"] if key["active"]]
    taken = [key["selector"] for key in found["keys"]]
    try:
        keys = await asyncio.to_thread(new_keys, context.settings.domains, context.clock(), taken, signing, False)
    except VaultError as error:
        raise HTTPException(503, f"signing keys cannot be made now: {error}") from None
    try:
        await context.write(lambda c: customer_changes.domain_rotate(c, actor, serviceName, found["domain"], keys, context.clock()))
    except store.RotationRefused as error:
        raise HTTPException(409, str(error)) from None
    return describe(await _found(context, hosting_id, domain))


@router.delete("/{domain}", status_code=204, summary="Remove a sending domain and its keys")
async def remove_domain(serviceName: str, domain: str, user: Writer, actor: AuditActor, context: Context) -> Response:
    hosting_id = await _hosting_id(context, user, serviceName)
    found = await _found(context, hosting_id, domain)
    await context.write(lambda c: customer_changes.domain_remove(c, actor, serviceName, found["domain"], context.clock()))
    return Response(status_code=204)
