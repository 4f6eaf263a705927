"""Sending domains in the store: who owns each, its DKIM keys and their DNS state, the From domains seen.

Private keys arrive here already encrypted (domains/vault.py); nothing in this module sees them clear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.sql.dml import Insert

from scriptmail.domains.answers import Finding, Verdict
from scriptmail.domains.keys import Algorithm
from scriptmail.store import pipeline
from scriptmail.store.activity import counter_upsert, stripe_of
from scriptmail.store.hostings import SYSTEM_HOSTING
from scriptmail.store.schema import dkim_keys, from_domains, hostings, sending_domains


class DomainTaken(Exception):
    """The domain belongs to another hosting: only an operator can move it."""


class DomainExists(Exception):
    """The hosting has this domain already."""


class NoSuchDomain(LookupError):
    pass


class RotationRefused(Exception):
    """A rotation is already waiting for DNS, or the domain is not verified yet."""


@dataclass(frozen=True, slots=True)
class NewKey:
    selector: str
    algorithm: Algorithm
    public: str
    encrypted: bytes  # the private key under the master key


def add_domain(connection: Connection, hosting_id: int, domain: str, keys: list[NewKey], now: float, move: bool = False) -> int:
    """Add `domain` (an A-label) to the hosting with its first keys, pending; its id.

    A domain of another hosting is refused (DomainTaken) unless `move` (an operator's decision),
    which hands it over with fresh keys: the old owner's keys are deleted.
    """
    row = connection.execute(
        select(sending_domains.c.id, sending_domains.c.hosting_id, hostings.c.name)
        .join(hostings, hostings.c.id == sending_domains.c.hosting_id)
        .where(sending_domains.c.domain == domain)
    ).first()
    if row is not None:
        if row.hosting_id == hosting_id:
            raise DomainExists(f"{domain} is already a sending domain of this hosting")
        if not move:
            raise DomainTaken(f"{domain} belongs to another hosting; an operator can move it (domain add --move)")
        connection.execute(delete(sending_domains).where(sending_domains.c.id == row.id))
    domain_id = connection.execute(
        sending_domains.insert().values(hosting_id=hosting_id, domain=domain, state="pending", created_at=now)
    ).inserted_primary_key[0]
    _insert_keys(connection, domain_id, keys, now, active=True)
    return domain_id


def owners(connection: Connection, domains: Iterable[str]) -> dict[str, str]:
    """The hosting name that has each of these domains (A-labels), for those that are taken."""
    names = sorted(set(domains))
    if not names:
        return {}
    rows = connection.execute(
        select(sending_domains.c.domain, hostings.c.name)
        .join(hostings, hostings.c.id == sending_domains.c.hosting_id)
        .where(sending_domains.c.domain.in_(names))
    )
    return {domain: name for domain, name in rows}


def _insert_keys(connection: Connection, domain_id: int, keys: list[NewKey], now: float, active: bool) -> None:
    connection.execute(
        dkim_keys.insert(),
        [
            {
                "domain_id": domain_id, "selector": key.selector, "algorithm": key.algorithm.value, "public_key": key.public,
                "private_key": key.encrypted, "state": "pending", "active": int(active), "created_at": now,
            }
            for key in keys
        ],
    )  # fmt: skip


def has_keys(connection: Connection) -> bool:
    """Whether any key is stored (then a missing master key file is an error, not a first use)."""
    return connection.execute(select(dkim_keys.c.id).limit(1)).first() is not None


def remove_domain(connection: Connection, domain: str) -> None:
    domain_id = _domain_id(connection, domain)
    connection.execute(delete(dkim_keys).where(dkim_keys.c.domain_id == domain_id))
    connection.execute(delete(sending_domains).where(sending_domains.c.id == domain_id))


def _domain_id(connection: Connection, domain: str) -> int:
    found = connection.execute(select(sending_domains.c.id).where(sending_domains.c.domain == domain)).scalar()
    if found is None:
        raise NoSuchDomain(f"no sending domain {domain}")
    return found


def find_domain(connection: Connection, domain: str) -> dict | None:
    """One domain with its hosting's name and every key (newest first), or None."""
    row = connection.execute(
        select(sending_domains, hostings.c.name.label("hosting"))
        .join(hostings, hostings.c.id == sending_domains.c.hosting_id)
        .where(sending_domains.c.domain == domain)
    ).mappings().first()
    if row is None:
        return None
    keys = connection.execute(
        select(dkim_keys.c.id, dkim_keys.c.selector, dkim_keys.c.algorithm, dkim_keys.c.public_key, dkim_keys.c.state,
               dkim_keys.c.reason, dkim_keys.c.active, dkim_keys.c.created_at, dkim_keys.c.retire_after)
        .where(dkim_keys.c.domain_id == row["id"]).order_by(dkim_keys.c.id.desc())
    ).mappings().all()  # fmt: skip
    return {**dict(row), "keys": [dict(key) for key in keys]}


def list_domains(connection: Connection, hosting_id: int | None = None) -> list[dict]:
    """Sending domains (with their hosting), then the From domains seen but not set up, by hosting."""
    query = (
        select(sending_domains.c.domain, sending_domains.c.state, sending_domains.c.reason, sending_domains.c.checked_at,
               hostings.c.name.label("hosting"), sending_domains.c.hosting_id)
        .join(hostings, hostings.c.id == sending_domains.c.hosting_id)
        .order_by(hostings.c.name, sending_domains.c.domain)
    )  # fmt: skip
    if hosting_id is not None:
        query = query.where(sending_domains.c.hosting_id == hosting_id)
    rows = [dict(row) for row in connection.execute(query).mappings()]
    seen = select(from_domains.c.hosting_id, from_domains.c.domain, func.sum(from_domains.c.messages).label("messages"))
    if hosting_id is not None:
        seen = seen.where(from_domains.c.hosting_id == hosting_id)
    summed = seen.group_by(from_domains.c.hosting_id, from_domains.c.domain).subquery()
    seen_query = select(summed, hostings.c.name.label("hosting")).join(hostings, hostings.c.id == summed.c.hosting_id)
    counts = {(row.hosting_id, row.domain): row for row in connection.execute(seen_query)}
    for row in rows:
        seen = counts.pop((row["hosting_id"], row["domain"]), None)
        row["messages"] = int(seen.messages) if seen else 0
    for (_, domain), seen in sorted(counts.items(), key=lambda item: (item[1].hosting, item[0][1])):
        rows.append({"domain": domain, "state": "not-set-up", "reason": "seen, not set up", "checked_at": None,
                     "hosting": seen.hosting, "hosting_id": seen.hosting_id, "messages": int(seen.messages)})  # fmt: skip
    return rows


def rotate(connection: Connection, domain: str, keys: list[NewKey], now: float) -> None:
    """Add the next keys, inactive and pending: they sign only once DNS holds them (record_check)."""
    domain_id = _domain_id(connection, domain)
    waiting = connection.execute(
        select(func.count()).where(dkim_keys.c.domain_id == domain_id, dkim_keys.c.active == 0, dkim_keys.c.retire_after.is_(None))
    ).scalar_one()
    if waiting:
        raise RotationRefused(f"a rotation of {domain} is already waiting for its new record in DNS")
    _insert_keys(connection, domain_id, keys, now, active=False)


def keys_to_check(connection: Connection, domain: str | None = None) -> list[dict]:
    """Every key DNS should hold now (active, waiting for a rotation, or retiring), with its domain."""
    query = (
        select(dkim_keys.c.id, dkim_keys.c.selector, dkim_keys.c.algorithm, dkim_keys.c.public_key, sending_domains.c.domain)
        .join(sending_domains, sending_domains.c.id == dkim_keys.c.domain_id)
        .where(dkim_keys.c.retire_after.is_(None))
        .order_by(sending_domains.c.domain, dkim_keys.c.id)
    )
    if domain is not None:
        query = query.where(sending_domains.c.domain == domain)
    return [dict(row) for row in connection.execute(query).mappings()]


def record_check(connection: Connection, key_id: int, verdict: Verdict, now: float, overlap: float) -> str | None:
    """Apply one key's DNS finding, then its domain's state and any rotation it completes; the new domain state."""
    key = connection.execute(select(dkim_keys).where(dkim_keys.c.id == key_id)).mappings().first()
    if key is None:
        return None
    if verdict.finding is Finding.MATCHES:
        state = "verified"
    elif verdict.finding is Finding.TEMPORARY:
        state = key["state"]  # a lookup that failed says nothing about the record: keep what we knew
    else:
        state = "failing" if key["state"] == "verified" else "pending"
    connection.execute(update(dkim_keys).where(dkim_keys.c.id == key_id).values(state=state, reason=verdict.reason[:500]))
    domain_id = key["domain_id"]
    if state == "verified" and not key["active"] and key["retire_after"] is None:
        # A rotation's new key is in DNS: it signs from now on; the old one stays published for the overlap.
        connection.execute(
            update(dkim_keys)
            .where(dkim_keys.c.domain_id == domain_id, dkim_keys.c.algorithm == key["algorithm"], dkim_keys.c.active == 1)
            .values(active=0, retire_after=now + overlap)
        )
        connection.execute(update(dkim_keys).where(dkim_keys.c.id == key_id).values(active=1))
    return _settle_domain(connection, domain_id, now)


def _settle_domain(connection: Connection, domain_id: int, now: float) -> str:
    active = connection.execute(
        select(dkim_keys.c.state, dkim_keys.c.reason, dkim_keys.c.selector).where(dkim_keys.c.domain_id == domain_id, dkim_keys.c.active == 1)
    ).all()
    states = {row.state for row in active}
    if states == {"verified"}:
        state, reason = "verified", ""
    elif "failing" in states:
        state, reason = "failing", "; ".join(f"{row.selector}: {row.reason}" for row in active if row.state == "failing")
    else:
        state, reason = "pending", "; ".join(f"{row.selector}: {row.reason}" for row in active if row.state == "pending" and row.reason)
    values: dict = {"state": state, "reason": reason[:1000], "checked_at": now}
    if state == "verified":
        values["verified_at"] = func.coalesce(sending_domains.c.verified_at, now)
    connection.execute(update(sending_domains).where(sending_domains.c.id == domain_id).values(**values))
    return state


def retire_keys(connection: Connection, now: float) -> int:
    """Delete replaced keys whose overlap is over: they leave the DNS instructions."""
    return connection.execute(delete(dkim_keys).where(dkim_keys.c.retire_after.is_not(None), dkim_keys.c.retire_after < now)).rowcount


def signing_keys(connection: Connection) -> list[tuple[int, int, str, str, str, bytes]]:
    """The keys mail may be signed with: active and found in DNS. (key id, hosting id, domain, selector,
    algorithm, encrypted private key); intake reads them every few seconds, never per message."""
    rows = connection.execute(
        select(dkim_keys.c.id, sending_domains.c.hosting_id, sending_domains.c.domain, dkim_keys.c.selector,
               dkim_keys.c.algorithm, dkim_keys.c.private_key)
        .join(sending_domains, sending_domains.c.id == dkim_keys.c.domain_id)
        .where(dkim_keys.c.active == 1, dkim_keys.c.state == "verified")
        .order_by(dkim_keys.c.id)
    ).all()  # fmt: skip
    return [(row[0], row[1], row[2], row[3], row[4], bytes(row[5])) for row in rows]


def count_from_domains(connection: Connection, items: Iterable[tuple[int, str, str, float]]) -> None:
    """Messages per (hosting, From domain) and how each was signed: items are (hosting id, domain,
    outcome, time) with outcome "signed", "platform", "failed" or "" (unsigned). One statement."""
    rows: dict[tuple[int, str], list] = {}
    for hosting_id, domain, outcome, at in items:
        if not domain:
            continue
        row = rows.setdefault((hosting_id, domain[:253]), [0, 0, 0, 0, 0.0])
        row[0] += 1
        row[1] += outcome == "signed"
        row[2] += outcome == "platform"
        row[3] += outcome == "failed"
        row[4] = max(row[4], at)
    if not rows:
        return
    stripe = stripe_of(connection)
    pipeline.later(
        connection,
        _from_domain_upsert(connection.dialect.name),
        [
            {"hosting_id": h, "domain": d, "stripe": stripe, "messages": m, "signed": s, "platform": p, "failed": f, "last_at": at}
            for (h, d), (m, s, p, f, at) in sorted(rows.items())
        ],
    )


def _from_domain_upsert(dialect: str) -> Insert:
    return counter_upsert(dialect, from_domains, ("hosting_id", "domain"), ("messages", "signed", "platform", "failed"), ("last_at",))


def signing_totals(connection: Connection) -> dict[tuple[str, str], int]:
    """Platform-wide messages by how they were signed, for the metrics: keyed by (mail, reason),
    mail being "hosting" (a customer's) or "platform" (scriptmail's own, under the system hosting)."""
    own = hostings.c.name == SYSTEM_HOSTING
    rows = connection.execute(
        select(own.label("own"), *(func.coalesce(func.sum(from_domains.c[name]), 0) for name in ("messages", "signed", "platform", "failed")))
        .select_from(from_domains.join(hostings, hostings.c.id == from_domains.c.hosting_id))
        .group_by(own)
    ).all()
    totals: dict[tuple[str, str], int] = {}
    for mail in ("hosting", "platform"):
        found = next((row for row in rows if bool(row[0]) == (mail == "platform")), None)
        messages, signed, platform, failed = (int(value) for value in found[1:]) if found else (0, 0, 0, 0)
        totals.update({(mail, "domain"): signed, (mail, "platform"): platform, (mail, "error"): failed,
                       (mail, "not-set-up"): messages - signed - platform - failed})  # fmt: skip
    return totals


def names_of(connection: Connection, hosting_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each hosting's sending domains (A-labels, sorted), for many hostings in one query."""
    ids = sorted(set(hosting_ids))
    found: dict[int, list[str]] = {hosting_id: [] for hosting_id in ids}
    if ids:
        rows = connection.execute(
            select(sending_domains.c.hosting_id, sending_domains.c.domain)
            .where(sending_domains.c.hosting_id.in_(ids))
            .order_by(sending_domains.c.domain)
        )
        for hosting_id, domain in rows:
            found[hosting_id].append(domain)
    return found
