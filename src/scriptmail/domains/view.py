"""A sending domain as the CLI, the API and the area show it: states, and the exact records to publish."""

from __future__ import annotations

from typing import Any

from scriptmail.config import Settings
from scriptmail.domains.checks import check_domain
from scriptmail.domains.keys import Algorithm
from scriptmail.domains.names import display
from scriptmail.domains.records import dkim_record

# A listing does not query DNS for every domain: there SPF and DMARC say plainly that they were not
# checked; `with_checks` (show, check) looks them up.
UNCHECKED_SPF = {"result": "unchecked", "record": None, "advice": "SPF is not checked by this version yet"}
UNCHECKED_DMARC = {"result": "unchecked", "policy": None, "advice": "DMARC is not checked by this version yet"}


def _key(found: dict, key: dict) -> dict[str, Any]:
    record = dkim_record(key["selector"], found["domain"], Algorithm(key["algorithm"]), key["public_key"])
    role = "signing" if key["active"] else ("retiring" if key["retire_after"] is not None else "next")
    return {
        "selector": key["selector"], "algorithm": key["algorithm"], "role": role, "state": key["state"], "reason": key["reason"],
        "name": record.name, "value": record.value, "strings": list(record.strings), "zone": record.zone_line(),
        "keep_until": key["retire_after"],
    }  # fmt: skip


def describe(found: dict) -> dict[str, Any]:
    """`found` is store.domains.find_domain's row. `dkim` is the RSA key that signs (or will)."""
    keys = [_key(found, key) for key in found["keys"]]
    signing = [key for key in keys if key["role"] == "signing"]
    main = next((key for key in signing if key["algorithm"] == Algorithm.RSA.value), signing[0] if signing else None)
    return {
        "domain": display(found["domain"]),
        "a_label": found["domain"],
        "hosting": found["hosting"],
        "state": found["state"],
        "reason": found["reason"],
        "checked_at": found["checked_at"],
        "dkim": {k: main[k] for k in ("selector", "name", "value", "strings", "state", "reason")} if main else None,
        "records": keys,  # everything DNS must hold now: signing keys, the next key of a rotation, retiring keys
        "spf": dict(UNCHECKED_SPF),
        "dmarc": dict(UNCHECKED_DMARC),
    }


async def with_checks(view: dict[str, Any], settings: Settings, language: str = "en") -> dict[str, Any]:
    """The view with its SPF and DMARC checks (DNS lookups through `delivery.nameservers`). Mail is
    signed with the domain itself once it is verified, else with the platform's signing domain."""
    domain = view["a_label"]
    dkim_domain = domain if view["state"] == "verified" else (settings.domains.platform_domain or domain)
    checks = await check_domain(domain, settings, dkim_domain)
    return {**view, **checks.as_json(language)}
