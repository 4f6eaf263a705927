"""The served OpenAPI document: FastAPI's, plus what it does not know by itself — the problem
body of every error, the configured plans as an enum, and the guide for a panel integration."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from scriptmail.web.context import WebContext
from scriptmail.web.problems import Problem

DESCRIPTION = """\
Control and track the mail a hosting's scripts send.

**Authentication.** Every route takes `Authorization: Bearer <token>`. A customer's token (created
in the customer area) reaches that customer's hostings under `/1.0/hosting/web`; a hosting it may
not see answers 404, exactly like one that does not exist. An operator's token has a scope, each
including the one before:

| scope | reaches |
| --- | --- |
| `read` | every GET, on every hosting, and `/1.0/admin` reads |
| `manage` | also state changes and the report recipient of any hosting; users, grants and tokens |
| `provision` | also creating, changing and deleting hostings and rotating their SMTP passwords |

A customer's token on `/1.0/admin` answers 403; so does a token whose scope is too small.

**Errors** are RFC 9457 problem details (`application/problem+json`) with the reference API's
`message` member beside `detail`. Every status a route can answer is listed under it.

**Rate limit.** Each token may make `web.api_burst` requests at once, refilled at
`web.api_rate_per_minute`; beyond, 429 with `Retry-After` (seconds).

**Changes are audited**: every change through `/1.0/admin` is in `GET /1.0/admin/audit`, with the
id of the token that made it.

### A panel integration, step by step

With a `provision` token (`scriptmail token create ops@example.net --scope provision`):

1. Create the hosting; a retried request with the same key answers the same hosting:

       curl -X POST https://gw.example.net/1.0/admin/hostings \\
         -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: order-1234" \\
         -H "Content-Type: application/json" \\
         -d '{"name": "shop.example", "owner": "owner@shop.example", "plan": "pro", "uid": 10023}'

   (or `PUT /1.0/admin/hostings/shop.example` with the same body without `name`: 201, then 200.)
2. Give it an SMTP password; the answer holds it this once:

       curl -X POST https://gw.example.net/1.0/admin/hostings/shop.example/smtp-password \\
         -H "Authorization: Bearer $TOKEN"
       {"login": "shop.example", "password": "..."}

3. Read its counters, as the customer area does:

       curl https://gw.example.net/1.0/hosting/web/shop.example/email -H "Authorization: Bearer $TOKEN"
       {"bounce": 0, "email": null, "maxPerDay": 0, "sent": 12, "sentToday": 3, "state": "ok"}

4. Add its sending domain; the answer holds the DKIM record to publish (`records[].name`, `value`):

       curl -X POST https://gw.example.net/1.0/hosting/web/shop.example/email/domains \\
         -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"domain": "shop.example"}'

   (or set them with the hosting: `"sending_domains": ["shop.example", "bücher.example"]` in step 1,
   or in a PUT or PATCH, makes its list match; a domain of another hosting is 409 unless
   `"move_domains": true`. Then `GET .../email/domains/shop.example` gives the record.)

5. Once, for the support desk: a platform-wide webhook (a `manage` token) that gets every
   hosting's blocks and suppressions, signed as Standard Webhooks says with the secret answered once:

       curl -X POST https://gw.example.net/1.0/admin/webhooks -H "Authorization: Bearer $TOKEN" \\
         -H "Content-Type: application/json" \\
         -d '{"url": "https://desk.example.net/hooks", "events": ["hosting.state_changed", "suppression.added"]}'
       {"id": 1, "url": "https://desk.example.net/hooks", ..., "secret": "whsec_..."}

6. When the contract ends: `DELETE /1.0/admin/hostings/shop.example` (409 while mail is queued
   or held; `?purge=true` purges it). The log stays readable by operators for `control.log_days`
   under the name the answer gives (`deleted~<id>~shop.example`).
"""


def document(app: FastAPI, context: WebContext | None) -> dict[str, Any]:
    """The document, built once per application."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, summary=app.summary, description=DESCRIPTION, routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for path, item in spec.get("paths", {}).items():
        for operation in item.values():
            _every_error_is_a_problem(path, operation)
    if context is not None:
        plans = sorted(context.settings.plans)
        for model in ("HostingFields", "HostingCreate", "HostingPatch"):
            _set_enum(schemas.get(model, {}).get("properties", {}).get("plan"), plans)
        for path in spec.get("paths", {}).values():
            for operation in path.values():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "plan" and parameter["in"] == "query":
                        _set_enum(parameter["schema"], plans)
    app.openapi_schema = spec
    return spec


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_ALWAYS = {"401": "No valid bearer token", "422": "A parameter or the body is not what this document says", "429": "Too many requests for this token: wait Retry-After seconds"}


def _every_error_is_a_problem(path: str, operation: dict[str, Any]) -> None:
    """Whatever router a route lives in, its errors are documented as the server sends them: a
    problem+json body, with the answers every /1.0 route can give (and 404 where a name or id is
    in the path)."""
    if not isinstance(operation, dict) or "responses" not in operation:
        return
    responses = operation["responses"]
    if path.startswith("/1.0/"):
        for code, text in _ALWAYS.items():
            responses.setdefault(code, {"description": text})
        if "{" in path:
            responses.setdefault("404", {"description": "No such object for this caller"})
        if operation.get("requestBody"):
            responses.setdefault("400", {"description": "A value the store refuses (e.g. an address or URL that cannot be used)"})
    for code, answer in responses.items():
        if code.isdigit() and int(code) >= 400:
            answer["content"] = dict(_PROBLEM)


def _set_enum(schema: dict[str, Any] | None, plans: list[str]) -> None:
    """The configured plans are the only values the server takes; say so where the field is."""
    if schema is None:
        return
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string":
            option.pop("pattern", None)
            option["enum"] = plans
