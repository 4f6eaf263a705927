"""What every page of the customer and operator areas shares: the request's session and language,
rendering a template, checking a posted form (CSRF), and answering 404 for a hosting the user
may not see. The routes live in area.py, area_log.py, account.py and operator.py."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scriptmail import catalogues
from scriptmail.catalogues import N_
from scriptmail.control.evidence import describe
from scriptmail.control.states import Action, Actor, Context, TransitionNotAllowed, decide
from scriptmail.model import HostingState
from scriptmail.store import accounts, audit, customer_changes, web_sessions
from scriptmail.web import i18n
from scriptmail.web.context import WebContext

SESSION_COOKIE = "__Host-scriptmail-session"
LOGIN_COOKIE = "__Host-scriptmail-login"  # the login form's CSRF token, before there is a session
LANGUAGE_COOKIE = "scriptmail-language"
EXPIRED_FORM = "this form has expired or comes from another site; reload the page and try again"
NOT_FOUND = "This service does not exist"
# What the flash message says once an action asked for in the customer or operator area is done.
DONE = {
    Action.BLOCK: N_("Sending is blocked."),
    Action.PURGE: N_("The purge has started."),
    Action.UNBLOCK: N_("Sending is unblocked."),
}

# The fields of the areas' forms, each bounded: a posted value longer than this is a 422, not work.
CsrfField = Annotated[str, Form(max_length=100)]
EmailField = Annotated[str, Form(max_length=320)]
PasswordField = Annotated[str, Form(max_length=1000)]
FlagField = Annotated[str, Form(max_length=10)]  # a confirmation box, a yes/no choice, an action code
HostingField = Annotated[str, Form(max_length=253)]

STATE_LABELS = {
    HostingState.ACTIVE: "enabled",
    HostingState.BLOCKED: "disabled",
    HostingState.PURGING: "purge",
    HostingState.SPAM: "spam",
    HostingState.BOUNCE: "bounce",
    HostingState.FORCED: "force",
}


class Redirect(Exception):
    """Raised deep in a handler to send the browser elsewhere (the login page)."""

    def __init__(self, location: str) -> None:
        self.location = location


class Page:
    """What one request knows: its context, language, session (if any)."""

    def __init__(self, request: Request, context: WebContext, session: web_sessions.Session | None, session_id: str) -> None:
        self.request = request
        self.context = context
        self.session = session
        self.session_id = session_id
        self.lang = (
            session.user.language
            if session
            else i18n.choose(request.headers.get("accept-language"), request.cookies.get(LANGUAGE_COOKIE))
        )

    @property
    def user(self) -> accounts.User:
        if self.session is None:
            raise Redirect("/login")
        return self.session.user

    @property
    def audit_actor(self) -> audit.Actor:
        """Who the audit log says made a change from this page: `user EMAIL`, or `operator EMAIL`."""
        return audit.Actor.session(self.user.email, self.user.operator)

    @property
    def locale(self) -> str:
        """The Babel locale that formats this page's numbers (web/i18n.locale)."""
        return i18n.locale(self.lang)

    def _(self, message: str, **values: object) -> str:
        return i18n.gettext(self.lang, message, **values)

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        return i18n.ngettext(self.lang, singular, plural, n, **values)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.context.settings.timezone)

    def when(self, at: float | None, seconds: bool = False) -> str:
        """A moment as every page shows it: in the platform's time zone (config `timezone`)."""
        if not at:
            return ""
        return datetime.fromtimestamp(at, self.zone).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")

    def state_label(self, state: HostingState) -> str:
        return self._(STATE_LABELS[state])

    def history(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """State-history rows as _history.html shows them: the time in the platform's zone, the
        states by the same names as the badge."""
        return [
            {**event, "at": self.when(event["at"]), "from_state": self.state_label(HostingState(event["from_state"])),
             "to_state": self.state_label(HostingState(event["to_state"])), **self.evidence(event.get("evidence"))}
            for event in events
        ]  # fmt: skip

    def evidence(self, found: dict[str, Any] | None) -> dict[str, Any]:
        """An automatic block's evidence as the pages show it: its sentences in the user's language
        (the same catalogue as the owner's notice) and its sample messages with their times."""
        if not found:
            return {"told": None, "samples": []}
        gettext = catalogues.translations(catalogues.MAIL, self.lang).gettext
        samples = [{**sample, "at": self.when(sample.get("at"))} for sample in found.get("samples", [])]
        return {"told": describe(found, gettext, self.lang, self.zone), "samples": samples}

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        flash = None
        if self.session and self.session.flash:
            kind, _, text = self.session.flash.partition(":")
            flash = {"kind": kind, "text": text}
        html = (
            i18n.environment(self.lang)
            .get_template(template)
            .render(
                lang=self.lang,
                user_email=self.session.user.email if self.session else None,
                is_operator=bool(self.session and self.session.user.operator),
                csrf=self.session.csrf if self.session else values.pop("login_csrf", ""),
                languages=i18n.LANGUAGES,
                flash=flash,
                static="/static",
                path=self.request.url.path,
                refresh=values.pop("refresh", False),
                **values,
            )
        )
        return HTMLResponse(html, status_code=status)

    async def flash(self, kind: str, text: str) -> None:
        """A message for the next page this session sees (after the redirect of a form)."""
        await self.context.write(lambda c: web_sessions.touch(c, self.session_id, self.context.clock(), flash=f"{kind}:{text}"))

    async def change(
        self, name: str, action: Action, actor: Actor, reason: str, target: HostingState | None = None
    ) -> tuple[str, str]:
        """Change a hosting's state (audited with the signed-in user) and wait until it holds (once
        the page says "blocked", nothing more goes out). Returns the flash to show: ("ok", what happened) or ("error", why not)."""
        try:
            change = await self.context.write(
                lambda c: customer_changes.state(c, self.audit_actor, name, action, actor, self.context.clock(), reason, target)
            )
        except TransitionNotAllowed as refused:
            return "error", self._(refused.reason)
        await self.context.settle(change)
        if action is Action.UNBLOCK and change.before is HostingState.SPAM:
            return "ok", self._("The spam block is lifted: held mail goes back to the queue.")
        if action is Action.SET:
            return "ok", self._("%(name)s is now %(state)s.", name=name, state=self.state_label(change.after))
        return "ok", self._(DONE[action])

    async def owned(self, name: str) -> int:
        """The id of a hosting this user may see; 404 for every other name, known or not."""
        hosting_id = await self.context.visible_hosting(self.user, name)
        if hosting_id is None:
            raise HTTPException(404, self._(NOT_FOUND))
        return hosting_id


def too_many_attempts(page: Page, seconds: int) -> str:
    """What the login and the password change say while the throttle makes the user wait."""
    return page.ngettext(
        "Too many failed attempts: try again in %(seconds)s second.",
        "Too many failed attempts: try again in %(seconds)s seconds.",
        seconds,
        seconds=seconds,
    )


async def current_page(request: Request) -> Page:
    context: WebContext = request.app.state.context
    session_id = request.cookies.get(SESSION_COOKIE, "")
    session = None
    if session_id:
        now = context.clock()
        session = await context.read_small(lambda c: web_sessions.find_session(c, session_id, now))
        if session is not None and (session.flash or now - session.seen_at > web_sessions.TOUCH_SECONDS):
            await context.write(lambda c: web_sessions.touch(c, session_id, now, flash="" if session.flash else None))
    return Page(request, context, session, session_id)


async def logged_in(request: Request) -> Page:
    """The page of a logged-in user; anyone else is sent to the login page."""
    page = await current_page(request)
    if page.session is None:
        raise Redirect("/login")
    return page


def allowed(state: HostingState, action: Action, actor: Actor, repeat_spam: bool) -> tuple[bool, str]:
    """Whether the state machine lets `actor` do `action` now, and if not, its reason."""
    try:
        decide(state, action, actor, context=Context(repeat_spam=repeat_spam))
    except TransitionNotAllowed as refused:
        return False, refused.reason
    return True, ""


def same_origin(request: Request) -> bool:
    """A browser says where a form came from; refuse another site's (CSRF, second line)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
    return urlsplit(origin).netloc == request.headers.get("host")


def check_form(request: Request, page: Page, csrf: str) -> None:
    """A form of a logged-in page: the session's token, from this site; else 403 (or log in)."""
    if page.session is None:
        raise Redirect("/login")
    if not same_origin(request) or not secrets.compare_digest(csrf, page.session.csrf):
        raise HTTPException(403, EXPIRED_FORM)


async def posted(request: Request, csrf: str) -> Page:
    page = await current_page(request)
    check_form(request, page, csrf)
    return page


def see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax")
