"""The optional content scanner: rspamd's `/checkv2` on its normal worker gives a message a score.

The scan is advisory. Whatever goes wrong on the way (scanner down, slow, broken answer), `scan`
logs a warning and returns None, and intake goes on without a score: a message is never refused
or lost because the scanner is unavailable.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

log = logging.getLogger(__name__)

SPAM_ACTIONS = ("reject", "add header", "rewrite subject")
MAX_SYMBOLS = 10


@dataclass(frozen=True, slots=True)
class ScanResult:
    score: float
    required_score: float
    action: str  # rspamd's action: "no action", "greylist", "add header", "rewrite subject", "soft reject", "reject"
    symbols: tuple[str, ...]  # names of the symbols that fired, highest score first, at most 10

    @property
    def is_spam(self) -> bool:
        """True when rspamd would mark or refuse the message, or its score reached the threshold."""
        return self.action in SPAM_ACTIONS or self.score >= self.required_score


class BadAnswer(ValueError):
    """rspamd answered, but not with a scan result we can read."""


def parse_result(answer: Any) -> ScanResult:
    """Read a decoded `/checkv2` JSON answer into a ScanResult, or raise BadAnswer."""
    if not isinstance(answer, dict):
        raise BadAnswer(f"expected a JSON object, got {type(answer).__name__}")
    if "error" in answer:
        raise BadAnswer(f"rspamd error: {answer['error']!r}")
    score = _number(answer, "score")
    required = _number(answer, "required_score")
    action = answer.get("action")
    if not isinstance(action, str):
        raise BadAnswer("no action in the answer")
    symbols = answer.get("symbols", {})
    if not isinstance(symbols, dict):
        raise BadAnswer("symbols is not an object")
    scored = []
    for name, symbol in symbols.items():
        weight = symbol.get("score", 0.0) if isinstance(symbol, dict) else 0.0
        scored.append((-(weight if _finite(weight) else 0.0), str(name)))
    return ScanResult(score, required, action, tuple(name for _, name in sorted(scored)[:MAX_SYMBOLS]))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(answer: dict, key: str) -> float:
    value = answer.get(key)
    if not _finite(value):
        raise BadAnswer(f"{key} is not a finite number: {value!r}")
    return float(value)


def envelope_headers(sender: str, recipients: Sequence[str], client_ip: str, user: str, password: str) -> list[tuple[str, bytes]]:
    """The request headers by which rspamd learns the SMTP envelope (one Rcpt per recipient)."""
    # UTF-8, not httpx's default ASCII: SMTPUTF8 addresses must not make the scan fail.
    headers = [("From", sender.encode())]
    headers += [("Rcpt", recipient.encode()) for recipient in recipients]
    if client_ip:
        headers.append(("IP", client_ip.encode()))
    if user:
        headers.append(("User", user.encode()))
    if password:
        headers.append(("Password", password.encode()))
    return headers


class RspamdScanner:
    """A client of one rspamd normal worker, e.g. "http://127.0.0.1:11333", with one connection pool."""

    def __init__(self, url: str, timeout: float = 5.0, password: str = "") -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._password = password
        # trust_env=False: a proxy set in the environment (for PHP scripts, say) must not carry the scans.
        self._client = httpx2.AsyncClient(base_url=self.url, timeout=timeout, trust_env=False)

    async def scan(
        self, data: bytes, *, sender: str, recipients: Sequence[str], client_ip: str = "", user: str = ""
    ) -> ScanResult | None:
        """Scan one message with its envelope; None (and a warning) if no usable answer came in time."""
        try:
            headers = envelope_headers(sender, recipients, client_ip, user, self._password)
            # httpx's timeout bounds each step; this bounds the whole scan, e.g. a server that trickles.
            async with asyncio.timeout(self.timeout):
                response = await self._client.post("/checkv2", content=data, headers=headers)
            if response.status_code != 200:
                raise BadAnswer(f"HTTP {response.status_code}: {response.text[:200]!r}")
            return parse_result(response.json())
        except (TimeoutError, httpx2.TimeoutException):
            log.warning("content scanner %s: no answer within %.1f s; going on without a scan", self.url, self.timeout)
        except Exception as error:  # noqa: BLE001 - the scan is advisory: nothing here may stop the message
            log.warning("content scanner %s: %s: %s; going on without a scan", self.url, type(error).__name__, error)
        return None

    async def close(self) -> None:
        """Close the connection pool; call once when intake stops."""
        await self._client.aclose()
