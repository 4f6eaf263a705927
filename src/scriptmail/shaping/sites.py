"""Which provider "site" a recipient domain belongs to, and the limits the site is configured with.

The shipped table (providers.toml) is read once; the operator's `[delivery.sites]` is laid over
it key by key. Lookups are dictionary hits on the domain and on each suffix of an MX host name.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

SITE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_LIMIT_KEYS = ("connections", "messages_per_connection", "per_minute", "per_hour")
_KEYS = {"mx", "domains", *_LIMIT_KEYS}


class SiteTableError(ValueError):
    """A site definition cannot be used; the message names the site and the key."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What a site may take. 0 for a rate means no limit."""

    connections: int
    messages_per_connection: int
    per_minute: int = 0
    per_hour: int = 0


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    limits: Limits
    mx: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    shipped: bool = False  # from providers.toml (possibly overridden), not only the operator's


@dataclass
class SiteTable:
    """The sites by name, and the indexes that map a domain or an MX suffix to one."""

    default: Limits
    sites: dict[str, Site] = field(default_factory=dict)
    _by_domain: dict[str, str] = field(default_factory=dict)
    _by_suffix: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for site in self.sites.values():
            for suffix in site.mx:
                _claim(self._by_suffix, suffix, site.name, "mx")
            for domain in site.domains:
                _claim(self._by_domain, domain, site.name, "domains")

    def site_of(self, domain: str, mx_hosts: Iterable[str] = ()) -> str:
        """The site of `domain`: named in a site's `domains`, else the first MX host that ends in a
        site's suffix, else the domain itself (a domain with its own MX is its own site)."""
        named = self._by_domain.get(domain)
        if named is not None:
            return named
        for host in mx_hosts:
            labels = host.lower().rstrip(".").split(".")
            for start in range(len(labels) - 1):
                found = self._by_suffix.get(".".join(labels[start:]))
                if found is not None:
                    return found
        return domain

    def limits(self, site: str) -> Limits:
        known = self.sites.get(site)
        return known.limits if known is not None else self.default


def _claim(index: dict[str, str], key: str, site: str, what: str) -> None:
    other = index.get(key)
    if other is not None and other != site:
        raise SiteTableError(f"sites.{site}.{what}: {key!r} already belongs to site {other!r}")
    index[key] = site


def shipped_sites() -> dict[str, dict[str, Any]]:
    """The table that ships in the package, as plain TOML values."""
    text = resources.files(__package__).joinpath("providers.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def build_table(
    default: Limits, overrides: Mapping[str, Mapping[str, Any]], shipped: Mapping[str, Mapping[str, Any]] | None = None
) -> SiteTable:
    """The shipped sites with the operator's keys laid over them; raises SiteTableError."""
    base = shipped_sites() if shipped is None else shipped
    sites: dict[str, Site] = {}
    for name in {*base, *overrides}:
        merged = {**base.get(name, {}), **{k: v for k, v in overrides.get(name, {}).items() if v is not None}}
        sites[name] = _site(name, merged, default, shipped=name in base)
    return SiteTable(default, dict(sorted(sites.items())))


def _site(name: str, values: Mapping[str, Any], default: Limits, shipped: bool) -> Site:
    if not SITE_NAME_RE.match(name):
        raise SiteTableError(f"sites.{name}: a site name is lower-case letters, digits, '.', '-', '_' (at most 63)")
    unknown = set(values) - _KEYS
    if unknown:
        raise SiteTableError(f"sites.{name}: unknown key {sorted(unknown)[0]!r}")
    mx = tuple(_names(name, "mx", values.get("mx", ())))
    domains = tuple(_names(name, "domains", values.get("domains", ())))
    if not mx and not domains:
        raise SiteTableError(f"sites.{name}: give `mx` (MX host suffixes) or `domains`, or the site matches no mail")
    limits = default
    for key in _LIMIT_KEYS:
        if key in values:
            limits = replace(limits, **{key: _count(name, key, values[key])})
    return Site(name, limits, mx, domains, shipped)


def _names(site: str, key: str, value: Any) -> Iterable[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SiteTableError(f"sites.{site}.{key}: a list of host names")
    for item in value:
        name = item.strip().lower().rstrip(".") if isinstance(item, str) else ""
        if not _HOST_RE.match(name) or "." not in name:
            raise SiteTableError(f"sites.{site}.{key}: {item!r} is not a host name with a dot (e.g. google.com)")
        yield name


_HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def _count(site: str, key: str, value: Any) -> int:
    lowest = 1 if key in ("connections", "messages_per_connection") else 0
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= 1_000_000:
        raise SiteTableError(f"sites.{site}.{key}: a whole number from {lowest} to 1000000, not {value!r}")
    return value
