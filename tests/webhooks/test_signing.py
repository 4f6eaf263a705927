"""Our signatures, checked by the specification's reference library (standardwebhooks)."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from scriptmail.webhooks import signing
from scriptmail.webhooks.events import EventType, body


def test_a_signed_request_verifies_with_the_reference_library() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    payload = body(EventType.TEST, 1_700_000_000, {"hosting": "shop.example", "text": "ñandú €"}).encode()
    now = int(time.time())
    headers = signing.headers("msg_1", now, payload, [secret])
    assert Webhook(secret).verify(payload, headers)["data"]["text"] == "ñandú €"


def test_a_changed_body_id_or_secret_fails_verification() -> None:
    secret, other = signing.new_secret(), signing.new_secret()
    payload = b'{"type":"webhook.test"}'
    now = int(time.time())
    headers = signing.headers("msg_1", now, payload, [secret])
    for data, hook, sent in (
        (payload + b" ", Webhook(secret), headers),
        (payload, Webhook(other), headers),
        (payload, Webhook(secret), {**headers, "webhook-id": "msg_2"}),
    ):
        with pytest.raises(WebhookVerificationError):
            hook.verify(data, sent)


def test_during_a_rotation_both_secrets_sign() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    payload = b"{}"
    headers = signing.headers("msg_9", int(time.time()), payload, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(payload, headers)
    Webhook(new).verify(payload, headers)


def test_secrets_are_random() -> None:
    assert len({signing.new_secret() for _ in range(50)}) == 50
