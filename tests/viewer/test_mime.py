"""The viewer's MIME walk and HTML cleaning, on sample messages (tests/viewer/samples.py):
charsets and encodings decoded, hostile structure bounded, nothing that runs or loads kept."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from scriptmail.viewer import html, mime
from tests.viewer import samples


def test_a_newsletter_is_read_as_a_mail_program_reads_it() -> None:
    view = mime.read(samples.newsletter())
    headers = dict(view.headers)
    assert headers["From"] == "Zoë <web@shop.example>"
    assert view.subject == "Café news"  # RFC 2047, ISO-8859-1
    assert view.text == "Hello Zoë, the text part."  # quoted-printable, UTF-8
    assert view.html is not None and "<h1 id=hello>Hello Zoë</h1>" in view.html  # base64, UTF-8
    logo, exe = view.attachments
    assert (logo.content_type, logo.content_id, logo.inline, logo.size) == (
        "image/png",
        "logo@shop.example",
        True,
        len(samples.PNG),
    )
    assert exe.filename == "invoice.pdf.exe" and exe.executable == ".exe disguised as .pdf" and not exe.inline
    assert view.images == {"logo@shop.example": logo.index}
    assert mime.part(samples.newsletter(), logo.index) == ("image/png", "", samples.PNG)
    assert mime.part(samples.newsletter(), 99) is None


def test_the_html_keeps_nothing_that_runs_or_loads_unless_allowed() -> None:
    view = mime.read(samples.newsletter())
    shown = html.render(view.html, lambda cid: f"/cid/{cid}", remote_allowed=False)
    assert shown.remote == 1
    lowered = shown.html.lower()
    for gone in ("<script", "onerror", "<form", "<input", "javascript:", "127.0.0.1:9", "<style", "document."):
        assert gone not in lowered, gone
    assert 'src="/cid/logo@shop.example"' in shown.html
    assert 'href="https://example.org/"' in shown.html and 'target="_blank"' in shown.html
    allowed = html.render(view.html, lambda cid: None, remote_allowed=True)
    assert "http://127.0.0.1:9/pixel.png" in allowed.html and "cid:" not in allowed.html


def test_windows_1252_and_mislabelled_latin_1_read_as_browsers_read_them() -> None:
    view = mime.read(samples.WINDOWS_1252)
    assert view.subject == "“Quoted” € price" and view.text == "“Smart quotes” cost € 5\n"
    assert mime.read(samples.LATIN_1_LABEL).text == "Café €uro\n"
    assert mime.read(samples.UNDECLARED_UTF8).text == "naïve résumé\n"


def test_broken_charsets_and_encodings_give_text_and_a_note_not_an_error() -> None:
    bad = mime.read(samples.BAD_CHARSET)
    assert bad.text.startswith("plain words") and any("x-no-such-thing" in p for p in bad.problems)
    assert mime.read(samples.BAD_BASE64).text is not None


def test_deep_nesting_and_huge_headers_are_bounded() -> None:
    started = time.monotonic()
    deep = mime.read(samples.nested(200))
    assert deep.text is None and any("nested deeper" in p for p in deep.problems)
    assert mime.read(samples.nested(5)).text == "bottom"
    many = mime.read(samples.huge_headers(2000, 50))
    assert len(many.headers) == mime.MAX_HEADERS and any("2001 header fields" in p for p in many.problems)
    long = mime.read(samples.huge_headers(3, 100_000))
    assert all(len(value) <= mime.HEADER_CHARS for _, value in long.headers)
    assert time.monotonic() - started < 5


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_read_without_an_error(data: bytes) -> None:
    view = mime.read(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" + data)
    if view.html is not None:
        html.render(view.html, lambda cid: None, remote_allowed=False)
