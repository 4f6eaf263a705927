"""The REST API of one stored message: `/1.0/hosting/web/{serviceName}/email/stored/{id}`.

Read it (headers, text, attachments; the HTML as stored, for the caller to render as it sees
fit), download its source, and act on it alone: release it while the hosting is blocked, delete
it, send it again to failed recipients. A message of another hosting answers 404 exactly like
one that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field

from scriptmail.control.states import Actor
from scriptmail.store import customer_changes, one_message
from scriptmail.viewer import mime
from scriptmail.web.api import NOT_FOUND, AuditActor, ByMethod, Context, ServiceName, _iso
from scriptmail.web.problems import responses

router = APIRouter(prefix="/1.0/hosting/web/{serviceName}/email/stored/{id}", tags=["messages"])
NO_MESSAGE = "there is no such email in this hosting"
MessageId = Annotated[int, Path(ge=1, le=2**62, description="The message's queue id.")]


class Header(BaseModel):
    name: str
    value: str = Field(description="Decoded (RFC 2047), on one line.")


class Attachment(BaseModel):
    index: int = Field(description="Its position among the message's parts.")
    filename: str
    contentType: str
    size: int = Field(description="Decoded bytes.")
    inline: bool = Field(description="An image the HTML part shows through cid:.")
    executable: str | None = Field(description="Why the content score counts it as an executable, if it does.")


class MessageRecipient(BaseModel):
    to: str
    status: str
    code: int | None
    message: str


class StoredMessage(BaseModel):
    id: int
    date: str
    sender: str
    size: int
    stored: bool = Field(description="Whether its body is still kept; the rest is null when not.")
    subject: str
    headers: list[Header]
    text: str | None
    html: str | None = Field(description="The HTML part as sent (not sanitised): never render it unfiltered.")
    attachments: list[Attachment]
    recipients: list[MessageRecipient]


class Resend(BaseModel):
    to: list[Annotated[str, Field(min_length=3, max_length=320)]] | None = Field(
        None, max_length=one_message.MAX_CHOSEN, description="Failed recipients to send to; null or absent: all of them."
    )


class Done(BaseModel):
    recipients: int = Field(description="How many recipients the action changed.")


async def _hosting(serviceName: ServiceName, user: ByMethod, context: Context) -> tuple[int, Actor]:
    found = await context.visible_hosting(user, serviceName)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found, Actor.OPERATOR if user.operator else Actor.CUSTOMER


Hosting = Annotated[tuple[int, Actor], Depends(_hosting)]


async def _find(context, hosting_id: int, message_id: int) -> one_message.Stored:
    found = await context.read(lambda c: one_message.find(c, hosting_id, message_id))
    if found is None:
        raise HTTPException(404, NO_MESSAGE)
    return found


@router.get("", response_model=StoredMessage, responses=responses(401, 404, 422, 429), summary="One stored message, read")
async def get_message(hosting: Hosting, id: MessageId, context: Context) -> StoredMessage:
    found = await _find(context, hosting[0], id)
    shown = found.data is not None and context.settings.web.show_held_body
    view = mime.read(found.data) if found.data is not None else None
    return StoredMessage(
        id=found.id, date=_iso(found.received_at) or "", sender=found.sender, size=found.size, stored=found.data is not None,
        subject=view.subject if view else "",
        headers=[Header(name=n, value=v) for n, v in view.headers] if view else [],
        text=view.text if view and shown else None, html=view.html if view and shown else None,
        attachments=[Attachment(index=a.index, filename=a.filename, contentType=a.content_type, size=a.size, inline=a.inline,
                                executable=a.executable) for a in view.attachments] if view else [],
        recipients=[MessageRecipient(to=r.address, status=r.status, code=r.code, message=r.text) for r in found.recipients],
    )  # fmt: skip


@router.get(
    "/source", responses={200: {"content": {"message/rfc822": {}}, "description": "The message as stored."}, **responses(401, 404, 422, 429)},
    response_class=Response, summary="One stored message's source (.eml)",
)  # fmt: skip
async def get_source(hosting: Hosting, id: MessageId, context: Context) -> Response:
    found = await _find(context, hosting[0], id)
    if found.data is None or not context.settings.web.show_held_body:
        raise HTTPException(404, "the body of this email is no longer stored")
    return Response(
        found.data, media_type="message/rfc822", headers={"Content-Disposition": f'attachment; filename="message-{found.id}.eml"'}
    )


async def _act(context, operation) -> Done:
    try:
        return Done(recipients=await context.write(operation))
    except LookupError:
        raise HTTPException(404, NO_MESSAGE) from None
    except one_message.NotAllowed as refused:
        raise HTTPException(409, refused.reason) from None


_ACTION_ERRORS = responses(401, 403, 404, 409, 422, 429)


@router.post("/release", response_model=Done, responses=_ACTION_ERRORS, summary="Send one held message now; the rest stay held")
async def release_message(serviceName: ServiceName, hosting: Hosting, id: MessageId, actor: AuditActor, context: Context) -> Done:
    return await _act(context, lambda c: customer_changes.message_action(c, actor, serviceName, hosting[0], id, "release", hosting[1], context.clock()))


@router.post("/delete", response_model=Done, responses=_ACTION_ERRORS, summary="Delete one waiting or held message")
async def delete_message(serviceName: ServiceName, hosting: Hosting, id: MessageId, actor: AuditActor, context: Context) -> Done:
    return await _act(context, lambda c: customer_changes.message_action(c, actor, serviceName, hosting[0], id, "delete", hosting[1], context.clock()))


@router.post(
    "/resend", response_model=Done, responses=responses(400, 401, 403, 404, 409, 422, 429),
    summary="Send a bounced or expired message again (counted as new mail)",
)  # fmt: skip
async def resend_message(serviceName: ServiceName, hosting: Hosting, id: MessageId, body: Resend, actor: AuditActor, context: Context) -> Done:
    to = body.to
    return await _act(
        context, lambda c: customer_changes.message_action(c, actor, serviceName, hosting[0], id, "resend", hosting[1], context.clock(), to)
    )
