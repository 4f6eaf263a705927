"""The per-token API rate limit is kept in the store: two web servers on one store give a token
one allowance between them, each answering 429 with Retry-After once it is spent."""

from __future__ import annotations

import httpx2

from scriptmail.store import accounts
from scriptmail.store.engine import for_writing


def test_two_web_servers_share_a_tokens_allowance(make_gateway) -> None:
    limits = {"api_rate_per_minute": 6, "api_burst": 4}
    first = make_gateway(parts=("web",), web=limits)
    second = make_gateway(parts=("web",), web=limits)
    assert first.gateway.web_port != second.gateway.web_port
    with for_writing(first.engine).begin() as connection:
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        token = {"Authorization": f"Bearer {accounts.create_token(connection, operator, 'one', scope='read')[1]}"}
    answers = []
    with httpx2.Client(timeout=30) as client:
        for index in range(6):
            server = (first, second)[index % 2]
            answers.append(client.get(f"http://127.0.0.1:{server.gateway.web_port}/1.0/admin/plans", headers=token))
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
    assert all(1 <= int(a.headers["retry-after"]) <= 10 for a in answers[4:])
    assert answers[-1].headers["content-type"].startswith("application/problem+json")
