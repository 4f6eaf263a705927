"""The frame's capability links: bound to one message of one hosting, one framing origin and a
time; an expired link is told apart from a forged or damaged one (410 against 403 at the edge)."""

from __future__ import annotations

import pytest

from scriptmail.viewer import token

KEY, NOW = b"k" * 32, 1_000_000.0


def _refused(link: str, now: float = NOW, key: bytes = KEY) -> token.Refused:
    with pytest.raises(token.Refused) as caught:
        token.verify(key, link, now)
    return caught.value


def test_a_frame_link_is_bound_to_its_message_its_hosting_its_framer_and_its_time() -> None:
    claim = token.Claim(1, 42, int(NOW) + 300, False, "http://localhost:8025")
    link = token.sign(KEY, claim)
    assert token.verify(KEY, link, NOW) == claim
    assert _refused(link, NOW + 301).expired  # genuine but too old
    assert not _refused(link, key=b"x" * 32).expired  # another key
    body, mac = link.split(".")
    forged = token.sign(b"guess", token.Claim(2, 42, int(NOW) + 300, False)).split(".")[0] + "." + mac
    assert not _refused(forged).expired  # another hosting with the first link's signature
    for bad in ("", ".", "a.b.c", "é.x", "x" * 500, body, "!!!.???", link[:-2]):
        assert not _refused(bad).expired


def test_only_a_plain_origin_is_signed_as_the_framer() -> None:
    for good in ("http://localhost:8025", "https://mail.example.net", "http://[::1]:8025", "http://127.0.0.1"):
        assert token.valid_origin(good)
    for bad in ("", "javascript:alert(1)", "http://a b", "http://x;script-src *", "http://x/path", "ftp://x", "http://x:123456"):
        assert not token.valid_origin(bad)
        if bad:
            with pytest.raises(ValueError):
                token.sign(KEY, token.Claim(1, 1, int(NOW) + 5, False, bad))


def test_a_signed_body_with_a_bad_framer_is_refused_as_not_valid() -> None:
    import base64
    import hashlib
    import hmac

    body = f"1.42.{int(NOW) + 300}.0.http://x;script-src *".encode()
    mac = hmac.new(KEY, b"viewer:" + body, hashlib.sha256).digest()[:16]
    link = base64.urlsafe_b64encode(body).rstrip(b"=").decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert not _refused(link).expired
