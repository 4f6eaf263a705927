"""The area fixture: a running gateway with customer A (owns HOSTING), customer B (owns OTHER)
and an operator, all with tests.support.web_client.PASSWORD, and a Browser factory for it."""

from __future__ import annotations

import pytest

from scriptmail.store import accounts
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.web_client import OPERATOR, OTHER, PASSWORD, A, B, Browser


@pytest.fixture
def area(gateway: RunningGateway):
    with for_writing(gateway.engine).begin() as connection:
        hosting_store.add_hosting(connection, OTHER, "owner@other.example", plan="unlimited")
        for email, owns, operator in ((A, HOSTING, False), (B, OTHER, False), (OPERATOR, None, True)):
            user = accounts.add_user(connection, email, PASSWORD, operator=operator)
            if owns:
                accounts.grant(connection, user, owns)
    base = f"http://127.0.0.1:{gateway.gateway.web_port}"
    yield lambda: Browser(base)
