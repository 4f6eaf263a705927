"""Sending one signed webhook request (httpx2) to the address the resolver checked.

The connection goes to that address (the URL's host replaced by it; Host header and TLS name
stay the endpoint's), so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot send the request elsewhere. Redirects are not followed: a receiver answers
2xx, and following one would mean another check, another name and another body to trust for no
gain; a 3xx is logged as a failure that names where it pointed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx2

from scriptmail.webhooks import signing
from scriptmail.webhooks.addresses import UrlRefused, parse_url
from scriptmail.webhooks.resolve import Resolver

MAX_ANSWER = 64 * 1024  # bytes of an answer read at most; the rest is not waited for
EXCERPT = 500
USER_AGENT = "scriptmail-webhooks/1.0"


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int | None
    duration: float
    error: str = ""
    excerpt: str = ""


class Sender:
    def __init__(self, resolver: Resolver, timeout: float, clock=time.time) -> None:
        self._resolver = resolver
        self._timeout = timeout
        self._clock = clock
        self._client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(timeout), follow_redirects=False, trust_env=False,
            limits=httpx2.Limits(max_connections=100, max_keepalive_connections=0),
        )  # fmt: skip

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, message_id: str, url: str, body: bytes, secrets: list[str]) -> Answer:
        """POST the body, signed; never raises: every failure is an Answer with an error."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                return await self._send(message_id, url, body, secrets, started)
        except UrlRefused as refused:
            return Answer(None, time.monotonic() - started, f"refused: {refused}")
        except TimeoutError:
            return Answer(None, time.monotonic() - started, f"no complete answer within {self._timeout:g} s")
        except httpx2.HTTPError as error:
            return Answer(None, time.monotonic() - started, f"{error.__class__.__name__}: {error}"[:500])
        except OSError as error:
            return Answer(None, time.monotonic() - started, f"connection failed: {error}"[:500])

    async def _send(self, message_id: str, url: str, body: bytes, secrets: list[str], started: float) -> Answer:
        target = parse_url(url)
        address = await self._resolver.address(target)
        headers = {
            **signing.headers(message_id, int(self._clock()), body, secrets),
            "content-type": "application/json",
            "host": target.host_header,
            "user-agent": USER_AGENT,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._client.build_request("POST", target.url_for(address), content=body, headers=headers, extensions=extensions)
        response = await self._client.send(request, stream=True)
        try:
            data = b""
            async for chunk in response.aiter_raw():
                data += chunk
                if len(data) >= MAX_ANSWER:
                    break
        finally:
            await response.aclose()
        excerpt = data[:EXCERPT * 4].decode("utf-8", "replace")[:EXCERPT]
        error = ""
        if 300 <= response.status_code < 400:
            error = f"redirect to {response.headers.get('location', '?')[:300]} not followed"
        elif not 200 <= response.status_code < 300:
            error = f"answered {response.status_code}"
        return Answer(response.status_code, time.monotonic() - started, error, excerpt)
