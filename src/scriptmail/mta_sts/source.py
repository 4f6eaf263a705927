"""Finding a recipient domain's MTA-STS policy: its `_mta-sts` TXT record through the configured
resolver, the policy file over HTTPS (httpx2), both cached in this process.

The HTTPS request goes to an address of `mta-sts.<domain>` found through the same resolver as the
MX lookups, with that name as TLS name and Host header. Redirects are refused (§3.3), as are
answers other than 200, bodies that are not text/plain and bodies over 64 KiB.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from collections.abc import Callable
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx2
import idna

from scriptmail.config import DeliverySettings
from scriptmail.mta_sts.cache import Cached, Step, next_step, refresh_due
from scriptmail.mta_sts.policy import MAX_POLICY_BYTES, Policy, PolicyError, parse_policy, parse_record
from scriptmail.mta_sts.trust import verifying_context

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 10.0  # seconds for the whole HTTPS exchange; delivery to the domain waits for it
FAILURE_PAUSE = 600.0  # after a failed fetch, the same id is not fetched again for this long
_RECHECK_MIN, _RECHECK_MAX = 60.0, 3600.0  # bounds on how long a TXT answer is believed
_CACHE_MAX = 10_000
USER_AGENT = "scriptmail-mta-sts/1.0"


class FetchError(Exception):
    """The policy file could not be fetched or is not a policy."""


class PolicyStore(Protocol):
    """Where policies outlive the process (store/mta_sts.py): RFC 8461 §5.1 wants a policy kept
    until its max_age even across a restart, or blocking the lookups after one would switch it off."""

    async def load(self, domain: str) -> Cached | None: ...
    async def save(self, domain: str, cached: Cached) -> None: ...
    async def forget(self, domain: str) -> None: ...


class PolicySource:
    def __init__(
        self, settings: DeliverySettings, clock: Callable[[], float] = time.time, store: PolicyStore | None = None
    ) -> None:
        resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        if settings.nameservers:
            resolver.nameservers = list(settings.nameservers)
        resolver.port = settings.dns_port
        resolver.lifetime = 20.0
        resolver.timeout = 5.0
        self._resolver = resolver
        self._port = settings.mta_sts_port
        self._clock = clock
        self.tls: ssl.SSLContext = verifying_context(settings.tls_ca_file)
        self._http = httpx2.AsyncClient(
            verify=self.tls, timeout=httpx2.Timeout(FETCH_TIMEOUT), follow_redirects=False, trust_env=False,
            limits=httpx2.Limits(max_connections=20, max_keepalive_connections=0),
        )  # fmt: skip
        self._cache: dict[str, Cached] = {}
        self._checked: dict[str, tuple[float, str | None]] = {}  # domain -> (believed until, id)
        self._locks: dict[str, asyncio.Lock] = {}
        self._store = store
        self._loaded: set[str] = set()  # domains whose stored policy was read once by this process
        self._failed: dict[str, tuple[str, float]] = {}  # domain -> (id whose fetch failed, until)

    async def close(self) -> None:
        await self._http.aclose()

    async def policy(self, domain: str) -> Policy | None:
        """The policy in force for `domain`, or None. Never raises: failures are logged and
        leave a fresh cached policy in force, else none. One lookup per domain at a time: the
        batches waiting behind it find the answer cached."""
        if len(self._locks) >= _CACHE_MAX:
            self._locks = {name: lock for name, lock in self._locks.items() if lock.locked()}
        lock = self._locks.setdefault(domain, asyncio.Lock())
        async with lock:
            try:
                return await self._policy(domain)
            except Exception:  # noqa: BLE001 - a bug here must not stop delivery
                log.exception("MTA-STS lookup for %s failed", domain)
                cached = self._cache.get(domain)
                return cached.policy if cached is not None and cached.fresh(self._clock()) else None

    async def _policy(self, domain: str) -> Policy | None:
        now = self._clock()
        checked = self._checked.get(domain)
        if checked is not None and checked[0] > now:
            published_id = checked[1]
        else:
            published_id, ttl = await self._record(domain)
            self._remember_check(domain, now + min(max(ttl, _RECHECK_MIN), _RECHECK_MAX), published_id)
            await self._load(domain)
        cached = self._cache.get(domain)
        step = next_step(cached, published_id, now)
        if step is Step.USE_CACHED:
            assert cached is not None
            return cached.policy
        if step is Step.NO_POLICY:
            if self._cache.pop(domain, None) is not None:
                await self._keep(domain, None)
            return None
        assert published_id is not None
        fallback = cached.policy if cached is not None and cached.fresh(now) else None
        failed = self._failed.get(domain)
        if failed is not None and failed[0] == published_id and failed[1] > now:
            return fallback  # a policy host that hangs must not hold every batch to the domain
        try:
            policy = await self.fetch(domain)
        except FetchError as error:
            log.warning("MTA-STS policy of %s (id %s) not usable: %s", domain, published_id, error)
            if len(self._failed) >= _CACHE_MAX:
                self._failed.clear()
            self._failed[domain] = (published_id, now + FAILURE_PAUSE)
            return fallback
        self._failed.pop(domain, None)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
            self._loaded.clear()  # read from the store again when next needed
        self._cache[domain] = Cached(policy, published_id, now)
        await self._keep(domain, self._cache[domain])
        log.info(
            "MTA-STS policy of %s (id %s): %s, %d mx, max_age %d",
            domain,
            published_id,
            policy.mode.value,
            len(policy.mx),
            policy.max_age,
        )
        return policy

    async def keep_fresh(self, interval: float) -> None:
        """Refresh the cached policies every `interval` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    async def refresh(self) -> int:
        """One background pass over the cached policies: ask DNS for each domain's id, and fetch the
        policy again when the id changed or its max_age is running out (cache.refresh_due), so that a
        policy host that is down when it expires does not turn MTA-STS off. A failed fetch keeps the
        cached policy. Returns how many were fetched anew."""
        renewed = 0
        for domain in list(self._cache):
            async with self._locks.setdefault(domain, asyncio.Lock()):
                try:
                    renewed += await self._refresh(domain)
                except Exception:  # noqa: BLE001 - one domain's trouble must not stop the others
                    log.exception("MTA-STS refresh of %s failed", domain)
        return renewed

    async def _refresh(self, domain: str) -> int:
        cached = self._cache.get(domain)
        if cached is None:
            return 0
        now = self._clock()
        published_id, ttl = await self._record(domain)
        self._remember_check(domain, now + min(max(ttl, _RECHECK_MIN), _RECHECK_MAX), published_id)
        if published_id is None and not cached.fresh(now):
            del self._cache[domain]  # no record and past its max_age: the domain has no policy any more
            await self._keep(domain, None)
            return 0
        if not refresh_due(cached, published_id, now):
            return 0
        assert published_id is not None
        failed = self._failed.get(domain)
        if failed is not None and failed[0] == published_id and failed[1] > now:
            return 0
        try:
            policy = await self.fetch(domain)
        except FetchError as error:
            until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cached.fetched_at + cached.policy.max_age))
            state = f"the cached one (id {cached.policy_id}) stays in force until {until}" if cached.fresh(now) else "none in force"
            log.warning("MTA-STS policy of %s (id %s) not refreshed: %s; %s", domain, published_id, error, state)
            if len(self._failed) >= _CACHE_MAX:
                self._failed.clear()
            self._failed[domain] = (published_id, now + FAILURE_PAUSE)
            return 0
        self._failed.pop(domain, None)
        self._cache[domain] = Cached(policy, published_id, now)
        await self._keep(domain, self._cache[domain])
        log.info("MTA-STS policy of %s refreshed (id %s): %s, max_age %d", domain, published_id, policy.mode.value, policy.max_age)
        return 1

    async def _load(self, domain: str) -> None:
        """Once per process, the policy an earlier run (or another node) fetched for `domain`."""
        if self._store is None or domain in self._loaded or domain in self._cache:
            return
        if len(self._loaded) >= _CACHE_MAX:
            self._loaded.clear()
        self._loaded.add(domain)
        try:
            stored = await self._store.load(domain)
        except Exception as error:  # noqa: BLE001 - the store down: go on with what DNS and HTTPS say
            log.warning("cannot read the stored MTA-STS policy of %s: %s", domain, error)
            self._loaded.discard(domain)
            return
        if stored is not None:
            self._cache[domain] = stored

    async def _keep(self, domain: str, cached: Cached | None) -> None:
        if self._store is None:
            return
        try:
            if cached is None:
                await self._store.forget(domain)
            else:
                await self._store.save(domain, cached)
        except Exception as error:  # noqa: BLE001 - kept in memory all the same
            log.warning("cannot store the MTA-STS policy of %s: %s", domain, error)

    def _remember_check(self, domain: str, until: float, published_id: str | None) -> None:
        if len(self._checked) >= _CACHE_MAX:
            self._checked.clear()
        self._checked[domain] = (until, published_id)

    async def _record(self, domain: str) -> tuple[str | None, float]:
        """The id of the domain's TXT record and how long to believe it; (None, …) when there is
        no usable record or DNS fails (a fresh cached policy then stays in force)."""
        try:
            name = "_mta-sts." + idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None, _RECHECK_MAX
        try:
            answer = await self._resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None, _RECHECK_MAX
        except dns.exception.DNSException as error:
            log.warning("DNS lookup of %s TXT failed: %s", name, error)
            return None, 0.0
        texts = [b"".join(record.strings).decode("ascii", "replace") for record in answer]
        ttl = float(answer.rrset.ttl) if answer.rrset is not None else _RECHECK_MIN
        return parse_record(texts), ttl

    async def fetch(self, domain: str) -> Policy:
        """GET https://mta-sts.<domain>/.well-known/mta-sts.txt and parse it; FetchError otherwise."""
        try:
            host = "mta-sts." + idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise FetchError(f"{domain!r} is not a domain name: {error}") from None
        address = await self._address(host)
        literal = f"[{address}]" if ":" in address else address
        url = f"https://{literal}:{self._port}/.well-known/mta-sts.txt"
        headers = {"host": host if self._port == 443 else f"{host}:{self._port}", "user-agent": USER_AGENT}
        request = self._http.build_request("GET", url, headers=headers, extensions={"sni_hostname": host})
        try:
            async with asyncio.timeout(FETCH_TIMEOUT):
                response = await self._http.send(request, stream=True)
                try:
                    if 300 <= response.status_code < 400:
                        where = response.headers.get("location", "?")[:200]
                        raise FetchError(
                            f"{host} answered {response.status_code}, a redirect to {where!r}: not followed (RFC 8461 §3.3)"
                        )
                    if response.status_code != 200:
                        raise FetchError(f"{host} answered {response.status_code}")
                    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if media != "text/plain":
                        raise FetchError(f"{host} sent {media or 'no content type'!r}, not text/plain")
                    body = b""
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > MAX_POLICY_BYTES:
                            raise FetchError(f"{host} sent more than {MAX_POLICY_BYTES} bytes")
                finally:
                    await response.aclose()
        except TimeoutError:
            raise FetchError(f"{host} gave no complete answer within {FETCH_TIMEOUT:g} s") from None
        except httpx2.HTTPError as error:
            raise FetchError(f"{host}: {error.__class__.__name__}: {error}"[:300]) from None
        except OSError as error:
            raise FetchError(f"{host}: {error}"[:300]) from None
        try:
            return parse_policy(body)
        except PolicyError as error:
            raise FetchError(f"{host}: {error}") from None

    async def _address(self, host: str) -> str:
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(host, rdtype, search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as error:
                raise FetchError(f"DNS lookup of {host} {rdtype} failed: {error}") from None
            for record in answer:
                address = record.to_text()
                ipaddress.ip_address(address)
                return address
        raise FetchError(f"{host} has no address")
