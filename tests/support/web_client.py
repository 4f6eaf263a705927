"""A minimal browser over real HTTP for the area's tests, and the users they log in as."""

from __future__ import annotations

import re

import httpx2

OTHER = "other.example"  # customer B's hosting; customer A owns tests.support.gateway.HOSTING
PASSWORD = "correct horse battery"
A, B, OPERATOR = "a@users.test", "b@users.test", "op@users.test"


class Browser:
    """A minimal browser over httpx2: keeps the cookies itself (they are Secure, and this is
    plain HTTP on loopback) and sends the page's CSRF token back with forms."""

    def __init__(self, base: str) -> None:
        self.client = httpx2.Client(base_url=base, timeout=30, follow_redirects=False)
        self.cookies: dict[str, str] = {}
        self.origin = base

    def _remember(self, response: httpx2.Response) -> httpx2.Response:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if "max-age=0" in header.lower() or 'expires=thu, 01 jan 1970' in header.lower() or value in ('""', ""):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def _headers(self, extra: dict | None = None) -> dict:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {**({"Cookie": cookie} if cookie else {}), **(extra or {})}

    def get(self, path: str, **kwargs) -> httpx2.Response:
        return self._remember(self.client.get(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs))

    def post(self, path: str, data: dict, origin: str | None = "self", **kwargs) -> httpx2.Response:
        extra = {"Origin": self.origin} if origin == "self" else ({"Origin": origin} if origin else {})
        return self._remember(self.client.post(path, data=data, headers=self._headers(extra), **kwargs))

    @staticmethod
    def csrf(response: httpx2.Response) -> str:
        found = re.search(r'name="csrf"\s+value="([^"]*)"', response.text) or re.search(r'value="([^"]*)"\s+name="csrf"', response.text)
        assert found, "no CSRF token in the page"
        return found.group(1)

    def login(self, email: str, password: str = PASSWORD) -> httpx2.Response:
        form = self.get("/login")
        return self.post("/login", {"email": email, "password": password, "csrf": self.csrf(form)})
