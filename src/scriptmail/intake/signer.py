"""DKIM signing at intake, once, over the bytes delivery will send (lines already folded).

Keys and domains are read from the store every few seconds (like the Acceptor's hosting cache) and
decrypted once per key, so a message costs no query. Mail whose From domain (or a parent of it) is
a verified domain of the sending hosting is signed with that domain's keys; other mail with the
platform's own domain (`domains.platform_domain`) so DKIM at least passes. Signing runs in a thread
(about 1.4 ms of CPU for RSA 2048), and a failure sends the mail unsigned: it is never refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from dataclasses import replace

from sqlalchemy import Engine

from scriptmail.config import DomainsSettings
from scriptmail.delivery.wire import fold_long_lines
from scriptmail.domains.keys import Algorithm, KeyUnreadable, load_private
from scriptmail.domains.signing import SigningError, SigningKey, sign
from scriptmail.domains.vault import Vault, VaultError, open_vault
from scriptmail.model import Submission
from scriptmail.store.domains import signing_keys

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
_ORDER = {Algorithm.RSA: 0, Algorithm.ED25519: 1}  # RSA first: the signature every receiver checks


class Signer:
    def __init__(self, engine: Engine, settings: DomainsSettings, clock=time.time) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._domains: dict[str, tuple[int, list[SigningKey]]] = {}  # A-label -> (hosting id, keys)
        self._loaded: dict[int, SigningKey] = {}  # key id -> its decrypted key
        # Domains with verified keys that cannot be opened (a lost or corrupt master key): their
        # mail goes out unsigned, counted as a signing failure, not as a domain never set up.
        self._unusable: dict[str, int] = {}  # A-label -> hosting id
        self._refresh_at = 0.0
        self._refreshing: asyncio.Task | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dkim")
        self.failures = 0  # signing errors since start (the platform-wide metric is in the store)

    def close(self) -> None:
        self._executor.shutdown(wait=False)

    async def _fresh(self) -> None:
        if time.monotonic() < self._refresh_at:
            return
        if self._refreshing is None:
            self._refreshing = asyncio.create_task(asyncio.to_thread(self._reload))
        task = self._refreshing
        try:
            await asyncio.shield(task)
        except Exception as error:  # noqa: BLE001 - the store may be away: keep the keys we had
            log.warning("cannot refresh the DKIM keys: %s", error)
            self._refresh_at = time.monotonic() + REFRESH_SECONDS
        finally:
            if self._refreshing is task:
                self._refreshing = None

    def _reload(self) -> None:
        with self._engine.connect() as connection:
            rows = signing_keys(connection)
        vault: Vault | None = None
        loaded: dict[int, SigningKey] = {}
        domains: dict[str, tuple[int, list[SigningKey]]] = {}
        unusable: dict[str, int] = {}
        for key_id, hosting_id, domain, selector, algorithm, encrypted in rows:
            key = self._loaded.get(key_id)
            if key is None:
                try:
                    vault = vault or open_vault(self._settings.key_file)
                    algo = Algorithm(algorithm)
                    key = SigningKey(domain, selector, algo, load_private(algo, vault.decrypt(encrypted)))
                except (VaultError, KeyUnreadable, ValueError) as error:
                    log.error("DKIM key %s of %s cannot be used, mail goes out without it: %s", selector, domain, error)
                    unusable[domain] = hosting_id
                    continue
            loaded[key_id] = key
            domains.setdefault(domain, (hosting_id, []))[1].append(key)
        for _, keys in domains.values():
            keys.sort(key=lambda k: _ORDER[k.algorithm])
        self._loaded, self._domains = loaded, domains
        self._unusable = {domain: owner for domain, owner in unusable.items() if domain not in domains}
        self._refresh_at = time.monotonic() + REFRESH_SECONDS

    def choose(self, hosting_id: int, from_domain: str) -> tuple[str, list[SigningKey]]:
        """("signed", the domain's keys), ("platform", the platform's keys), ("failed", []) when the
        keys that would sign it cannot be opened, or ("", [])."""
        labels = from_domain.split(".") if from_domain else []
        for start in range(len(labels) - 1):
            name = ".".join(labels[start:])
            if self._unusable.get(name) == hosting_id:
                return "failed", []
            found = self._domains.get(name)
            if found is not None:
                if found[0] == hosting_id and any(k.algorithm is Algorithm.RSA for k in found[1]):
                    return "signed", found[1]
                break  # another hosting's domain (or one without a verified RSA key): not ours to sign
        platform = self._domains.get(self._settings.platform_domain) if self._settings.platform_domain else None
        if platform is not None:
            return "platform", platform[1]
        if self._settings.platform_domain in self._unusable:
            return "failed", []
        return "", []

    async def signed(self, submission: Submission) -> Submission:
        """The submission signed (its data with the DKIM-Signature fields), or unsigned with the reason."""
        await self._fresh()
        outcome, keys = self.choose(submission.hosting_id, submission.from_domain)
        if not keys:
            return replace(submission, dkim=outcome) if outcome else submission
        try:
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(self._executor, _fold_and_sign, submission.data, keys, self._clock())
        except (SigningError, ValueError, TypeError) as error:
            self.failures += 1
            log.warning("hosting %d: message from %s goes out unsigned: %s", submission.hosting_id, submission.from_domain, error)
            return replace(submission, dkim="failed")
        return replace(submission, data=data, dkim=outcome)


def _fold_and_sign(data: bytes, keys: list[SigningKey], now: float) -> bytes:
    # Delivery folds over-long lines at send time; doing it first makes the body hash cover the
    # bytes that will be sent (folding already folded data changes nothing).
    return sign(fold_long_lines(data), keys, now)
