"""The operator's provisioning API under /1.0/admin: hostings (create, read, change, delete, SMTP
password rotation), users, their grants and tokens, plans, and the audit log.

Scopes (see store.accounts.SCOPES): `read` for every GET, `manage` for users, grants and tokens,
`provision` for hostings. A customer's token gets 403 on every route here. Every change is written
to the audit log in the transaction that makes it, with the id of the token that asked.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import idna
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from scriptmail.domains.names import DomainNameError, display, normalise
from scriptmail.domains.provision import new_keys
from scriptmail.domains.vault import VaultError
from scriptmail.model import Hosting
from scriptmail.store import accounts, audit, idempotency, provisioning, webhooks
from scriptmail.store import domains as domain_store
from scriptmail.store import hostings as hosting_store
from scriptmail.store.audit import Actor
from scriptmail.store.domains import NewKey
from scriptmail.store.hosting_control import Actor as StateActor
from scriptmail.store.hosting_control import change_plan
from scriptmail.web.api_auth import Manager, Provisioner, Reader
from scriptmail.web.context import WebContext
from scriptmail.web.fields import EMAIL_PATTERN, KEY_PATTERN, NAME_PATTERN, PLAN_PATTERN
from scriptmail.web.fields import TEXT_PATTERN as _TEXT
from scriptmail.web.problems import responses
from scriptmail.web.webhooks_api import WebhookCreated, WebhookDelivery, WebhookEndpoint, WebhookSecret, WebhookTest
from scriptmail.web.webhooks_api import delivery as webhook_delivery
from scriptmail.web.webhooks_api import public as webhook_public
from scriptmail.webhooks.addresses import MAX_URL
from scriptmail.webhooks.events import SUBSCRIBABLE

router = APIRouter(prefix="/1.0/admin", tags=["admin"])

MAX_DOMAINS = 50  # sending domains set in one request (each new one costs a key pair)
MAX_ID = 2**53 - 1  # ids stay exact in every JSON client (JavaScript numbers included)

Email = Annotated[str, Field(max_length=320, pattern=EMAIL_PATTERN)]


def _whole(value: object) -> object:
    # JSON Schema's "integer" is any number without a fraction, 5.0 included (as JavaScript sends
    # it); strict validation alone would refuse what the document allows.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = BeforeValidator(_whole)
Uid = Annotated[int, Field(ge=0, lt=2**31, description="Unix uid whose sendmail calls belong to the hosting."), Whole]
Language = Literal["es", "en", "fr"]
State = Literal["active", "blocked", "purging", "spam", "bounce", "forced"]
HostingName = Annotated[str, Path(max_length=253, pattern=NAME_PATTERN, description="The hosting's name.")]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class _Strict(BaseModel):
    """A request body: unknown members and loose types (\"5\" for 5, 0 for false) are refused, as the schema says."""

    model_config = ConfigDict(extra="forbid", strict=True)


class HostingOut(BaseModel):
    name: str
    uid: int | None
    owner: str = Field(description="The owner's contact address (notices; reports when `report_to` is null).")
    plan: str
    language: Language
    report_to: str | None = Field(description="Where the daily error report goes; null: the owner.")
    state: State = Field(description="The sending state (the reference's names are in `/1.0/hosting/web/{name}/email`).")
    smtp_auth: bool = Field(description="Whether an SMTP password is set (it is never shown again).")
    trusted_networks: list[str] = Field(
        description="Source networks that send as this hosting without SMTP AUTH. They live in the configuration "
        "(`intake.trusted_networks`), not in the store: read-only here."
    )
    sending_domains: list[str] = Field(
        default_factory=list,
        description="Its sending domains, in Unicode. Checked and rotated under `/1.0/hosting/web/{name}/email/domains`.",
    )


def _idn_hostname(name: str) -> str:
    """The check of the `idn-hostname` format (IDNA 2008), so the server takes what the schema allows."""
    try:
        idna.encode(name)
    except (idna.IDNAError, UnicodeError) as error:
        raise ValueError(f"not an internationalised host name: {error}") from None
    return name


# At least two labels, the last one not all digits (an address is not a domain); the rest is the
# `idn-hostname` format. Every name matching both is one scriptmail takes (domains.names.normalise).
DOMAIN_PATTERN = r"^[^.]+(\.[^.]+)*\.[^.]*[^.0-9][^.]*\.?$"
DomainName = Annotated[
    str,
    Field(min_length=1, max_length=253, pattern=DOMAIN_PATTERN, json_schema_extra={"format": "idn-hostname"},
          description="In Unicode (lower case, as IDNA 2008 writes it) or punycode, e.g. bücher.example."),
    AfterValidator(_idn_hostname),
]  # fmt: skip
SendingDomains = Annotated[list[DomainName] | None, Field(max_length=MAX_DOMAINS, description=(
    "The hosting's sending domains: the list it is made to match (a new one gets its DKIM keys, pending "
    "until DNS holds them; one left out is removed with its keys). Absent or null: unchanged. A domain of "
    "another hosting answers 409 unless `move_domains`."
))]  # fmt: skip
MoveDomains = Annotated[bool, Field(description=(
    "Take a listed domain from the hosting that has it, with fresh keys (an operator's decision). "
    "The platform's own signing domain is never moved."
))]  # fmt: skip


class HostingFields(_Strict):
    """A hosting's writable fields (PUT: the whole of them; missing ones take their defaults)."""

    owner: Email
    uid: Uid | None = None
    plan: Annotated[str | None, Field(pattern=PLAN_PATTERN, description="A configured plan; null: `control.default_plan`.")] = None
    language: Language = "en"
    report_to: Email | None = None
    sending_domains: SendingDomains = None
    move_domains: MoveDomains = False


class HostingCreate(HostingFields):
    name: Annotated[str, Field(max_length=253, pattern=NAME_PATTERN)]


class HostingPatch(_Strict):
    """Only the members given change; `uid: null` removes the uid, `report_to: null` sends reports to the owner."""

    # Absent: unchanged. These three may not be null, so the schema does not offer null.
    owner: Email = Field(None)  # type: ignore[assignment]
    uid: Uid | None = None
    plan: Annotated[str, Field(pattern=PLAN_PATTERN)] = Field(None)  # type: ignore[assignment]
    language: Language = Field(None)  # type: ignore[assignment]
    report_to: Email | None = None
    sending_domains: SendingDomains = None
    move_domains: MoveDomains = False


class HostingList(BaseModel):
    items: list[HostingOut]
    total: int = Field(description="Hostings matching the filters, over every page.")
    offset: int
    limit: int


class Deleted(BaseModel):
    name: str = Field(description="The name its log rows are kept under until `control.log_days` prunes them.")
    purged: int = Field(description="Recipients purged because of `purge=true`.")


class SmtpPassword(BaseModel):
    login: str = Field(description="The SMTP AUTH login: the hosting's name.")
    password: str = Field(description="The new password, shown this once: only its argon2id hash is kept.")


class UserOut(BaseModel):
    id: int
    email: str
    operator: bool
    language: Language
    hostings: list[str]


class UserList(BaseModel):
    items: list[UserOut]
    total: int
    offset: int
    limit: int


class UserCreate(_Strict):
    email: Email
    operator: bool = False
    language: Language = "en"
    hostings: Annotated[list[Annotated[str, Field(max_length=253, pattern=NAME_PATTERN)]], Field(max_length=100)] = []


class UserCreated(UserOut):
    password: str = Field(description="A generated password for the areas, shown this once.")


class TokenOut(BaseModel):
    id: int
    user_id: int
    label: str
    scope: Literal["read", "manage", "provision"] | None
    created_at: float
    revoked_at: float | None


class TokenCreate(_Strict):
    user_id: Annotated[int, Field(ge=1, le=MAX_ID), Whole]
    label: Annotated[str, Field(max_length=200, pattern=_TEXT)] = ""
    scope: Literal["read", "manage", "provision"] | None = Field(
        None, description="For an operator's token; it may not exceed the scope of the token that creates it."
    )


class TokenCreated(BaseModel):
    id: int
    token: str = Field(description="The token, shown this once: only its SHA-256 is kept.")


class Plan(BaseModel):
    name: str
    hourly: int
    max_per_day: int
    policies: bool
    bounce_ratio: float


class AuditEntry(BaseModel):
    id: int
    at: float
    token_id: int | None
    actor: str = Field(description="`token N (EMAIL)`, `operator EMAIL`, `user EMAIL` (a customer in the customer area), `cli (uid N)`.")
    by_operator: bool = Field(description="false: the hosting's customer made the change (through the customer API or area).")
    action: str
    target: str
    hosting: str | None = Field(description="The hosting the change concerns; null for a user, a token or a platform-wide endpoint.")
    before: Any
    after: Any


class AuditPage(BaseModel):
    items: list[AuditEntry]
    total: int
    offset: int
    limit: int


def _context(request: Request) -> WebContext:
    return request.app.state.context


def _actor(caller: accounts.Caller) -> Actor:
    return Actor.token(caller.token_id, caller.user.email)


def _domains(connection, *hostings: Hosting | None) -> dict[int, list[str]]:
    return domain_store.names_of(connection, (hosting.id for hosting in hostings if hosting is not None))


def _out(hosting: Hosting, trusted: dict[str, str], domains: dict[int, list[str]] | None = None) -> HostingOut:
    return HostingOut(
        sending_domains=[display(domain) for domain in (domains or {}).get(hosting.id, [])],
        name=hosting.name, uid=hosting.uid, owner=hosting.owner_email, plan=hosting.plan, language=hosting.language,
        report_to=hosting.report_to, state=hosting.state.value, smtp_auth=hosting.has_smtp_password,
        trusted_networks=sorted(str(ipaddress.ip_network(n, strict=False)) for n, name in trusted.items() if name == hosting.name),
    )  # fmt: skip


def _plain(hosting: Hosting) -> dict[str, Any]:
    """A hosting as the audit log keeps it (no password hash, only whether there is one)."""
    value = asdict(hosting)
    value["state"] = hosting.state.value
    return value


def _check_plan(context: WebContext, plan: str | None) -> str:
    plan = plan or context.settings.control.default_plan
    if plan not in context.settings.plans:
        raise HTTPException(422, f"invalid request: body.plan: no plan named {plan!r}; configured: {', '.join(sorted(context.settings.plans))}")
    return plan


def _found(context: WebContext, hosting: Hosting | None, name: str) -> Hosting:
    if hosting is None or hosting.name == hosting_store.SYSTEM_HOSTING:
        raise HTTPException(404, f"no hosting named {name}")
    return hosting


# --- sending domains (a hosting's, set with its other fields) ------------------------------


@dataclass(frozen=True, slots=True)
class _DomainRequest:
    """The domains a request sets (A-labels, in its order) and keys made, outside the writer, for
    those the hosting did not have when the request was read."""

    wanted: list[str]
    keys: dict[str, list[NewKey]]
    move: bool


def _wanted(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    wanted: list[str] = []
    for text in names:
        try:
            name = normalise(text)
        except DomainNameError as error:
            raise HTTPException(400, f"body.sending_domains: {error}") from None
        if name not in wanted:  # bücher.example and xn--bcher-kva.example are one domain
            wanted.append(name)
    return wanted


def _taken(name: str, owner: str, move: bool) -> None:
    """Refuse a domain another hosting has, unless the operator moves it; the platform's never moves."""
    if owner == hosting_store.SYSTEM_HOSTING:
        raise HTTPException(409, f"{display(name)} is the platform's own signing domain: it cannot be a hosting's")
    if not move:
        raise HTTPException(409, f"{display(name)} belongs to the hosting {owner}; send \"move_domains\": true to move it (an operator's decision)")


async def _prepare_domains(context: WebContext, hosting: str, names: list[str] | None, move: bool) -> _DomainRequest | None:
    """Check the names and make the new domains' keys (slow: RSA) before the write; None: unchanged."""
    wanted = _wanted(names)
    if wanted is None:
        return None

    def read(connection) -> tuple[set[str], dict[str, str], bool]:
        found = hosting_store.find_hosting(connection, name=hosting)
        current = set(domain_store.names_of(connection, [found.id])[found.id]) if found is not None else set()
        owners = domain_store.owners(connection, [name for name in wanted if name not in current])
        return current, owners, domain_store.has_keys(connection)

    current, owners, stored = await context.read(read)
    for name, owner in owners.items():
        _taken(name, owner, move)  # a cheap refusal, before any key is made
    fresh = [name for name in wanted if name not in current]

    def make() -> dict[str, list[NewKey]]:
        return {name: new_keys(context.settings.domains, context.clock(), (), None, not stored) for name in fresh}

    try:
        keys = await asyncio.to_thread(make) if fresh else {}
    except VaultError as error:
        raise HTTPException(503, f"signing keys cannot be made now: {error}") from None
    return _DomainRequest(wanted, keys, move)


def _apply_domains(connection, context: WebContext, caller: accounts.Caller, hosting: Hosting, request: _DomainRequest | None) -> None:
    """Make the hosting's sending domains the requested list, in the hosting's transaction, audited."""
    if request is None:
        return
    now = context.clock()
    current = domain_store.names_of(connection, [hosting.id])[hosting.id]
    owners = domain_store.owners(connection, [name for name in request.wanted if name not in current])
    for name, owner in owners.items():
        _taken(name, owner, request.move)
    for name in request.wanted:
        if name not in current:
            keys = request.keys.get(name)
            if keys is None:
                raise HTTPException(409, "the hosting's sending domains changed during this request: send it again")
            domain_store.add_domain(connection, hosting.id, name, keys, now, move=request.move)
    for name in current:
        if name not in request.wanted:
            domain_store.remove_domain(connection, name)
    if set(current) != set(request.wanted):
        audit.record(
            connection, _actor(caller), "hosting.sending_domains", hosting.name, now, before=[display(name) for name in current],
            after={"sending_domains": sorted(display(name) for name in request.wanted),
                   "moved_from": {display(name): owner for name, owner in sorted(owners.items())}}, hosting=hosting.name,
        )  # fmt: skip


# --- hostings ----------------------------------------------------------------------------


@router.get("/hostings", response_model=HostingList, summary="Hostings, filtered, a page at a time",
            responses=responses(401, 403, 422, 429))  # fmt: skip
async def list_hostings(
    request: Request, caller: Reader,
    name: Annotated[str, Query(max_length=253, pattern=_TEXT, description="Part of the name.")] = "",
    owner: Annotated[str, Query(max_length=320, pattern=_TEXT, description="The owner's address, exactly (any case).")] = "",
    plan: Annotated[str | None, Query(pattern=PLAN_PATTERN)] = None,
    state: State | None = None,
    deleted: Annotated[bool, Query(description="List deleted hostings (their log is kept) instead of live ones.")] = False,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> HostingList:  # fmt: skip
    context = _context(request)
    if plan is not None and plan not in context.settings.plans:
        raise HTTPException(422, f"invalid request: query.plan: no plan named {plan!r}")
    def read(connection) -> tuple[Any, dict[int, list[str]]]:
        page = provisioning.hosting_page(
            connection, name_contains=name, owner=owner, plan=plan, state=state, deleted=deleted, offset=offset, limit=limit
        )
        return page, _domains(connection, *page.rows)

    page, domains = await context.read(read)
    trusted = context.settings.intake.trusted_networks
    return HostingList(items=[_out(h, trusted, domains) for h in page.rows], total=page.total, offset=offset, limit=limit)


@router.get("/hostings/{name}", response_model=HostingOut, summary="One hosting", responses=responses(401, 403, 404, 422, 429))
async def get_hosting(request: Request, name: HostingName, caller: Reader) -> HostingOut:
    context = _context(request)
    def read(connection) -> tuple[Hosting | None, dict[int, list[str]]]:
        found = hosting_store.find_hosting(connection, name=name)
        return found, _domains(connection, found)

    found, domains = await context.read(read)
    return _out(_found(context, found, name), context.settings.intake.trusted_networks, domains)


def _create(connection, context: WebContext, caller: accounts.Caller, name: str, fields: HostingFields, plan: str) -> Hosting:
    try:
        hosting_store.add_hosting(connection, name, fields.owner, uid=fields.uid, plan=plan)
        hosting = hosting_store.update_hosting(connection, name, language=fields.language, report_to=fields.report_to or "")
    except hosting_store.HostingError as error:
        raise HTTPException(409, str(error)) from None
    audit.record(connection, _actor(caller), "hosting.create", name, context.clock(), after=_plain(hosting), hosting=name)
    return hosting


@router.post("/hostings", response_model=HostingOut, status_code=201, summary="Create a hosting",
             responses=responses(401, 403, 409, 422, 429, 503))  # fmt: skip
async def create_hosting(
    request: Request, body: HostingCreate, caller: Provisioner, response: Response,
    idempotency_key: Annotated[str | None, Header(pattern=KEY_PATTERN, description=(
        "Make the creation safe to retry: the same key with the same body answers the first result again "
        "(for 24 h, per token); the same key with another body is refused with 422, as the IETF draft says."
    ))] = None,
) -> Any:  # fmt: skip
    context = _context(request)
    plan = _check_plan(context, body.plan)
    fingerprint = idempotency.request_hash(body.model_dump(mode="json"))
    trusted = context.settings.intake.trusted_networks
    domains = await _prepare_domains(context, body.name, body.sending_domains, body.move_domains)

    def create(connection) -> tuple[int, Any]:
        now = context.clock()
        if idempotency_key is not None:
            stored = idempotency.find(connection, caller.token_id, idempotency_key, now)
            if stored is not None:
                if stored.request_hash != fingerprint:
                    raise HTTPException(422, "this Idempotency-Key was used with another body: use a new key for a new request")
                return stored.status, stored.body
        hosting = _create(connection, context, caller, body.name, body, plan)
        _apply_domains(connection, context, caller, hosting, domains)
        answer = _out(hosting, trusted, _domains(connection, hosting)).model_dump(mode="json")
        if idempotency_key is not None:
            idempotency.remember(connection, caller.token_id, idempotency_key, fingerprint, 201, answer, now)
        return 201, answer

    status, answer = await context.write(create)
    response.status_code = status
    return answer


@router.put("/hostings/{name}", response_model=HostingOut, summary="Create a hosting, or make it match (idempotent)",
            responses={**responses(401, 403, 409, 422, 429, 503), 201: {"description": "Created.", "model": HostingOut}})  # fmt: skip
async def put_hosting(request: Request, name: HostingName, body: HostingFields, caller: Provisioner, response: Response) -> HostingOut:
    """Creates the hosting (201) or changes it to match the body (200); the same PUT twice changes
    nothing the second time. The state and the SMTP password are not part of it."""
    context = _context(request)
    plan = _check_plan(context, body.plan)
    domains = await _prepare_domains(context, name, body.sending_domains, body.move_domains)

    def put(connection) -> tuple[bool, Hosting, dict[int, list[str]]]:
        before = hosting_store.find_hosting(connection, name=name)
        if before is None:
            after = _create(connection, context, caller, name, body, plan)
        else:
            after = _update(connection, context, caller, before, {**body.model_dump(), "plan": plan})
        _apply_domains(connection, context, caller, after, domains)
        return before is None, after, _domains(connection, after)

    created, hosting, domains = await context.write(put)
    response.status_code = 201 if created else 200
    return _out(hosting, context.settings.intake.trusted_networks, domains)


def _update(connection, context: WebContext, caller: accounts.Caller, before: Hosting, fields: dict[str, Any]) -> Hosting:
    now = context.clock()
    try:
        if "plan" in fields and fields["plan"] != before.plan:
            change_plan(connection, before.name, fields["plan"], StateActor.OPERATOR, now, reason=f"changed through the API by {caller.user.email}")
        hosting = hosting_store.update_hosting(
            connection, before.name,
            owner_email=fields.get("owner"),
            uid=fields.get("uid"), clear_uid="uid" in fields and fields["uid"] is None,
            language=fields.get("language"),
            report_to=(fields["report_to"] or "") if "report_to" in fields else None,
        )  # fmt: skip
    except hosting_store.HostingError as error:
        raise HTTPException(409, str(error)) from None
    if hosting != before:
        audit.record(connection, _actor(caller), "hosting.update", before.name, now, before=_plain(before), after=_plain(hosting),
                     hosting=hosting.name)  # fmt: skip
    return hosting


@router.patch("/hostings/{name}", response_model=HostingOut, summary="Change some of a hosting's fields",
              responses=responses(401, 403, 404, 409, 422, 429, 503))  # fmt: skip
async def patch_hosting(request: Request, name: HostingName, body: HostingPatch, caller: Provisioner) -> HostingOut:
    context = _context(request)
    fields = {key: getattr(body, key) for key in body.model_fields_set}
    if "plan" in fields:
        _check_plan(context, fields["plan"])
    domains = await _prepare_domains(context, name, body.sending_domains, body.move_domains)

    def patch(connection) -> tuple[Hosting, dict[int, list[str]]]:
        before = _found(context, hosting_store.find_hosting(connection, name=name), name)
        after = _update(connection, context, caller, before, fields)
        _apply_domains(connection, context, caller, after, domains)
        return after, _domains(connection, after)

    hosting, domains = await context.write(patch)
    return _out(hosting, context.settings.intake.trusted_networks, domains)


@router.delete("/hostings/{name}", response_model=Deleted, summary="Delete a hosting (its log is kept)",
               responses=responses(401, 403, 404, 409, 422, 429))  # fmt: skip
async def delete_hosting(
    request: Request, name: HostingName, caller: Provisioner,
    purge: Annotated[bool, Query(description="Purge its queued and held mail too; without it, such mail answers 409.")] = False,
) -> Deleted:  # fmt: skip
    """The hosting stops sending at once (its uid, SMTP password and owners' access go), and its
    log stays readable by operators under the returned name until the log retention prunes it."""
    context = _context(request)

    def remove(connection) -> Deleted:
        before = _found(context, hosting_store.find_hosting(connection, name=name), name)
        try:
            tombstone, purged = provisioning.delete_hosting(connection, name, context.clock(), purge=purge)
        except provisioning.HostingBusy as busy:
            raise HTTPException(409, str(busy)) from None
        audit.record(connection, _actor(caller), "hosting.delete", name, context.clock(), before=_plain(before),
                     after={"name": tombstone.name, "purged": purged}, hosting=name)  # fmt: skip
        return Deleted(name=tombstone.name, purged=purged)

    return await context.write(remove)


@router.post("/hostings/{name}/smtp-password", response_model=SmtpPassword, summary="Set a new, generated SMTP password",
             responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def rotate_smtp_password(request: Request, name: HostingName, caller: Provisioner) -> SmtpPassword:
    """The old password stops working at once. The new one is in this answer only."""
    context = _context(request)
    _found(context, await context.read(lambda c: hosting_store.find_hosting(c, name=name)), name)
    password = hosting_store.new_smtp_password()
    hashed = await asyncio.to_thread(hosting_store.hash_password, password)  # slow on purpose: not in the writer

    def store(connection) -> None:
        try:
            provisioning.set_password_hash(connection, name, hashed)
        except hosting_store.HostingError:
            raise HTTPException(404, f"no hosting named {name}") from None
        audit.record(connection, _actor(caller), "hosting.smtp_password", name, context.clock(), after={"smtp_auth": True}, hosting=name)

    await context.write(store)
    return SmtpPassword(login=name, password=password)


# --- users, grants, tokens ---------------------------------------------------------------


def _user_out(row: dict[str, Any]) -> UserOut:
    return UserOut(id=row["id"], email=row["email"], operator=bool(row["operator"]), language=row["language"], hostings=row["hostings"])


def _user_row(connection, user_id: int) -> dict[str, Any] | None:
    user = accounts.find_user(connection, user_id=user_id)
    if user is None:
        return None
    rows, _ = accounts.list_users(connection, email_contains=user.email, limit=1000)
    return next(row for row in rows if row["id"] == user_id)


@router.get("/users", response_model=UserList, summary="Users, a page at a time", responses=responses(401, 403, 422, 429))
async def list_users(
    request: Request, caller: Reader,
    email: Annotated[str, Query(max_length=320, pattern=_TEXT, description="Part of the address.")] = "",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> UserList:  # fmt: skip
    rows, total = await _context(request).read(lambda c: accounts.list_users(c, email_contains=email, offset=offset, limit=limit))
    return UserList(items=[_user_out(row) for row in rows], total=total, offset=offset, limit=limit)


@router.get("/users/{user_id}", response_model=UserOut, summary="One user", responses=responses(401, 403, 404, 422, 429))
async def get_user(request: Request, user_id: Id, caller: Reader) -> UserOut:
    row = await _context(request).read(lambda c: _user_row(c, user_id))
    if row is None:
        raise HTTPException(404, f"no user {user_id}")
    return _user_out(row)


@router.post("/users", response_model=UserCreated, status_code=201, summary="Create a user (a generated password, shown once)",
             responses=responses(401, 403, 404, 409, 422, 429))  # fmt: skip
async def create_user(request: Request, body: UserCreate, caller: Manager) -> UserCreated:
    context = _context(request)
    if body.operator and not caller.may("provision"):
        raise HTTPException(403, "only a provision token may create an operator")
    password = accounts.new_password()
    hashed = await asyncio.to_thread(accounts.password_hash, password)

    def add(connection) -> dict[str, Any]:
        try:
            user = accounts.add_user(connection, body.email, operator=body.operator, language=body.language, hashed=hashed)
        except accounts.AccountError as error:
            raise HTTPException(409, str(error)) from None
        for name in body.hostings:
            if accounts.may_see(connection, user if user.operator else _as_operator(user), name) is None:
                raise HTTPException(404, f"no hosting named {name}")
            accounts.grant(connection, user, name)
        row = _user_row(connection, user.id)
        audit.record(connection, _actor(caller), "user.create", user.email, context.clock(), after=row)
        return row

    row = await context.write(add)
    return UserCreated(**_user_out(row).model_dump(), password=password)


def _as_operator(user: accounts.User) -> accounts.User:
    return accounts.User(user.id, user.email, True, user.language)


@router.delete("/users/{user_id}", response_model=UserOut, summary="Delete a user and their tokens",
               responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def delete_user(request: Request, user_id: Id, caller: Manager) -> UserOut:
    context = _context(request)

    def remove(connection) -> dict[str, Any]:
        row = _user_row(connection, user_id)
        if row is None:
            raise HTTPException(404, f"no user {user_id}")
        if row["operator"] and not caller.may("provision"):
            raise HTTPException(403, "only a provision token may delete an operator")
        accounts.delete_user(connection, row["email"])
        audit.record(connection, _actor(caller), "user.delete", row["email"], context.clock(), before=row)
        return row

    return _user_out(await context.write(remove))


@router.put("/users/{user_id}/hostings/{name}", response_model=UserOut, summary="Let a customer see and control a hosting",
            responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def grant_hosting(request: Request, user_id: Id, name: HostingName, caller: Manager) -> UserOut:
    return await _change_grant(request, user_id, name, caller, give=True)


@router.delete("/users/{user_id}/hostings/{name}", response_model=UserOut, summary="Take a hosting away from a customer",
               responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def revoke_hosting(request: Request, user_id: Id, name: HostingName, caller: Manager) -> UserOut:
    return await _change_grant(request, user_id, name, caller, give=False)


async def _change_grant(request: Request, user_id: int, name: str, caller: accounts.Caller, give: bool) -> UserOut:
    context = _context(request)

    def change(connection) -> dict[str, Any]:
        user = accounts.find_user(connection, user_id=user_id)
        if user is None:
            raise HTTPException(404, f"no user {user_id}")
        if accounts.may_see(connection, _as_operator(user), name) is None:
            raise HTTPException(404, f"no hosting named {name}")
        before = _user_row(connection, user_id)
        if give:
            accounts.grant(connection, user, name)
        elif name in before["hostings"]:
            accounts.revoke(connection, user, name)
        after = _user_row(connection, user_id)
        if after != before:
            audit.record(connection, _actor(caller), "user.grant" if give else "user.revoke", user.email, context.clock(),
                         before=before, after=after)  # fmt: skip
        return after

    return _user_out(await context.write(change))


@router.get("/tokens", response_model=list[TokenOut], summary="API tokens (never their secret)",
            responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def list_tokens(request: Request, caller: Reader, user_id: Annotated[int, Query(ge=1, le=MAX_ID)]) -> list[TokenOut]:
    def read(connection) -> list[TokenOut]:
        user = accounts.find_user(connection, user_id=user_id)
        if user is None:
            raise HTTPException(404, f"no user {user_id}")
        return [TokenOut(user_id=user_id, **row) for row in accounts.tokens_of(connection, user)]

    return await _context(request).read(read)


@router.post("/tokens", response_model=TokenCreated, status_code=201, summary="Create a token (shown once)",
             responses=responses(401, 403, 404, 409, 422, 429))  # fmt: skip
async def create_token(request: Request, body: TokenCreate, caller: Manager) -> TokenCreated:
    context = _context(request)
    if body.scope is not None and not caller.may(body.scope):
        raise HTTPException(403, f"a token may not create a token of a larger scope than its own ({body.scope!r})")

    def create(connection) -> TokenCreated:
        user = accounts.find_user(connection, user_id=body.user_id)
        if user is None:
            raise HTTPException(404, f"no user {body.user_id}")
        if user.operator and body.scope is None and not caller.may("provision"):
            raise HTTPException(403, "only a provision token may create an operator's unscoped token")
        try:
            token_id, token = accounts.create_token(connection, user, body.label, scope=body.scope)
        except accounts.AccountError as error:  # a scope for a customer: the user's role, not the body, is wrong
            raise HTTPException(409, str(error)) from None
        audit.record(connection, _actor(caller), "token.create", user.email, context.clock(),
                     after={"id": token_id, "label": body.label, "scope": body.scope})  # fmt: skip
        return TokenCreated(id=token_id, token=token)

    return await context.write(create)


@router.delete("/tokens/{token_id}", response_model=None, status_code=204, summary="Revoke a token at once",
               responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def revoke_token(request: Request, token_id: Id, caller: Manager) -> Response:
    context = _context(request)

    def revoke(connection) -> None:
        try:
            accounts.revoke_token(connection, token_id)
        except accounts.AccountError as error:
            raise HTTPException(404, str(error)) from None
        audit.record(connection, _actor(caller), "token.revoke", str(token_id), context.clock())

    await context.write(revoke)
    return Response(status_code=204)


# --- plans and the audit log -------------------------------------------------------------


@router.get("/plans", response_model=list[Plan], summary="The configured plans", responses=responses(401, 403, 429))
async def list_plans(request: Request, caller: Reader) -> list[Plan]:
    plans = _context(request).settings.plans
    return [Plan(name=name, hourly=p.hourly, max_per_day=p.max_per_day, policies=p.policies, bounce_ratio=p.bounce_ratio)
            for name, p in sorted(plans.items())]  # fmt: skip


@router.get("/audit", response_model=AuditPage, summary="Changes made through the admin API, the CLI, the areas and the customer API, newest first",
            responses=responses(401, 403, 422, 429))  # fmt: skip
async def list_audit(
    request: Request, caller: Reader,
    target: Annotated[str, Query(max_length=400, pattern=_TEXT, description="A hosting's name, a user's address...")] = "",
    action: Annotated[str, Query(max_length=64, pattern=_TEXT, description="e.g. `hosting.create`.")] = "",
    token_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    hosting: Annotated[str, Query(max_length=253, pattern=_TEXT, description="Only the changes of this hosting.")] = "",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:  # fmt: skip
    rows, total = await _context(request).read(
        lambda c: audit.entries(c, target=target, action=action, token_id=token_id, hosting=hosting, offset=offset, limit=limit)
    )
    return AuditPage(items=[AuditEntry(**row) for row in rows], total=total, offset=offset, limit=limit)




# --- platform-wide webhook endpoints ----------------------------------------------------------
# The same endpoints as a customer's (store.webhooks with hosting=None): every hosting's events
# reach them, and platform events (a platform suppression entry) reach only them. `read` lists
# them and their delivery log; `manage` changes them, each change in the audit log.

EventName = Literal[(*(event.value for event in SUBSCRIBABLE), "*")]  # type: ignore[valid-type]


class AdminWebhookCreate(_Strict):
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL, pattern=r"^https?://[\x21-\x7e]+$",
                              description="http(s) URL that receives the events (POST, JSON), without user or password.")]  # fmt: skip
    events: Annotated[list[EventName], Field(min_length=1, max_length=len(SUBSCRIBABLE) + 1, description="Event types, or `[\"*\"]` for all.")]  # noqa: E501
    description: Annotated[str, Field(max_length=200, pattern=_TEXT)] = ""


def _platform_endpoint(connection, endpoint_id: int) -> webhooks.Endpoint:
    try:
        return webhooks.get_endpoint(connection, endpoint_id, None)
    except webhooks.EndpointError as error:
        raise HTTPException(404, str(error)) from None


@router.get("/webhooks", response_model=list[WebhookEndpoint], summary="The platform-wide webhook endpoints",
            responses=responses(401, 403, 429))  # fmt: skip
async def list_platform_webhooks(request: Request, caller: Reader) -> list[WebhookEndpoint]:
    found = await _context(request).read(lambda c: webhooks.list_endpoints(c, None))
    return [webhook_public(endpoint) for endpoint in found]


@router.post("/webhooks", response_model=WebhookCreated, status_code=201, summary="Add a platform-wide webhook endpoint",
             responses=responses(400, 401, 403, 409, 422, 429))  # fmt: skip
async def create_platform_webhook(request: Request, body: AdminWebhookCreate, caller: Manager) -> WebhookCreated:
    """It receives the chosen events of every hosting, and the platform's own. The answer carries the
    signing secret, once. 409 when the platform has `webhooks.max_platform_endpoints` already."""
    context = _context(request)

    def create(connection) -> tuple[webhooks.Endpoint, str]:
        try:
            endpoint, secret = webhooks.create_endpoint(
                connection, None, body.url, list(body.events), context.clock(), " ".join(body.description.split()), caller.user.email,
                cap=context.settings.webhooks.max_platform_endpoints,
            )
        except webhooks.EndpointCapReached as error:
            raise HTTPException(409, str(error)) from None
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        audit.record(connection, _actor(caller), "webhook.create", f"webhook {endpoint.id}", context.clock(), after=audit.webhook(endpoint))
        return endpoint, secret

    endpoint, secret = await context.write(create)
    return WebhookCreated(**webhook_public(endpoint).model_dump(), secret=secret)


@router.get("/webhooks/{endpoint_id}", response_model=WebhookEndpoint, summary="One platform-wide webhook endpoint",
            responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def get_platform_webhook(request: Request, endpoint_id: Id, caller: Reader) -> WebhookEndpoint:
    return webhook_public(await _context(request).read(lambda c: _platform_endpoint(c, endpoint_id)))


@router.delete("/webhooks/{endpoint_id}", response_model=None, status_code=204, summary="Remove a platform-wide webhook endpoint",
               responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def delete_platform_webhook(request: Request, endpoint_id: Id, caller: Manager) -> Response:
    context = _context(request)

    def remove(connection) -> None:
        endpoint = _platform_endpoint(connection, endpoint_id)
        webhooks.remove_endpoint(connection, endpoint_id, None)
        audit.record(connection, _actor(caller), "webhook.remove", f"webhook {endpoint_id}", context.clock(), before=audit.webhook(endpoint))

    await context.write(remove)
    return Response(status_code=204)


@router.post("/webhooks/{endpoint_id}/rotate", response_model=WebhookSecret, summary="A new signing secret (shown once)",
             responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def rotate_platform_webhook(request: Request, endpoint_id: Id, caller: Manager) -> WebhookSecret:
    """The previous secret also signs for `webhooks.rotation_grace` seconds, so the receiver can switch."""
    context = _context(request)
    grace = context.settings.webhooks.rotation_grace

    def rotate(connection) -> str:
        _platform_endpoint(connection, endpoint_id)
        secret = webhooks.rotate_secret(connection, endpoint_id, context.clock(), grace, None)
        audit.record(connection, _actor(caller), "webhook.rotate", f"webhook {endpoint_id}", context.clock())
        return secret

    return WebhookSecret(secret=await context.write(rotate), previous_valid_seconds=grace)


@router.post("/webhooks/{endpoint_id}/enable", response_model=WebhookEndpoint, summary="Send to a disabled endpoint again",
             responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def enable_platform_webhook(request: Request, endpoint_id: Id, caller: Manager) -> WebhookEndpoint:
    context = _context(request)

    def enable(connection) -> webhooks.Endpoint:
        before = _platform_endpoint(connection, endpoint_id)
        webhooks.enable_endpoint(connection, endpoint_id, None)
        if before.disabled_at is not None:
            audit.record(connection, _actor(caller), "webhook.enable", f"webhook {endpoint_id}", context.clock(),
                         before={"disabled_reason": before.disabled_reason})  # fmt: skip
        return webhooks.get_endpoint(connection, endpoint_id, None)

    return webhook_public(await context.write(enable))


@router.post("/webhooks/{endpoint_id}/test", response_model=WebhookTest, status_code=202, summary="Send a test event",
             responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def test_platform_webhook(request: Request, endpoint_id: Id, caller: Manager) -> WebhookTest:
    """Queues a `webhook.test` event for this endpoint (disabled or not); its outcome appears in the deliveries."""
    context = _context(request)

    def queue(connection) -> int:
        _platform_endpoint(connection, endpoint_id)
        return webhooks.queue_test(connection, endpoint_id, context.clock(), None)

    return WebhookTest(webhook_id=f"msg_{await context.write(queue)}")


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=list[WebhookDelivery], summary="The endpoint's delivery log",
            responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def platform_webhook_deliveries(
    request: Request, endpoint_id: Id, caller: Reader,
    limit: Annotated[int, Query(ge=1, le=200, description="How many attempts, newest first.")] = 50,
) -> list[WebhookDelivery]:  # fmt: skip
    def read(connection) -> list[dict[str, Any]]:
        _platform_endpoint(connection, endpoint_id)
        return webhooks.delivery_log(connection, endpoint_id, limit)

    return [webhook_delivery(entry) for entry in await _context(request).read(read)]
