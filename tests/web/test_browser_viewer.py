"""The held-mail viewer in a real Chromium: an HTML mail with a <script>, an onerror handler, a
form, a javascript: link, a remote image and a cid: image. Nothing runs, the remote image is not
fetched (a loopback HTTP server counts the requests) until "Show them", the cid: image shows, and
the frame can read neither the area's cookies nor its page."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import httpx2
import pytest
from sqlalchemy import select

from scriptmail.control.states import Action, Actor
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from scriptmail.store.schema import messages
from tests.support.browser import log_in, owner_chromium
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.viewer import samples

playwright = pytest.importorskip("playwright.sync_api")


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(samples.PNG)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def remote():
    """A loopback HTTP server standing for a tracking pixel's host; it counts what it is asked."""
    _Counter.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["own host name", "same host, own port"])
def gateway(request: pytest.FixtureRequest, make_gateway) -> RunningGateway:
    """The frame on a host name of its own (127.0.0.1, the area being localhost), as README
    advises; or by default on the area's host name with a port of its own, where the frame
    element's `credentialless` keeps Chromium from sending the area's cookie to it."""
    if request.param == "same host, own port":
        return make_gateway()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return make_gateway(web={"frame_listen": f"127.0.0.1:{port}", "frame_origin": f"http://127.0.0.1:{port}"})


@pytest.fixture
def chromium(gateway: RunningGateway, database_url: str):
    yield from owner_chromium(gateway, database_url)


def test_a_hostile_html_mail_runs_nothing_and_loads_nothing_until_allowed(gateway: RunningGateway, chromium, remote) -> None:
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.BLOCK, Actor.CUSTOMER, time.time(), reason="testing my scripts")
    pixel = f"http://127.0.0.1:{remote.server_address[1]}/pixel.png"
    submit(gateway.smtp_port, samples.newsletter(remote_url=pixel), ["reader@sink.test"])
    wait_status(gateway.engine, "held", 1)
    with gateway.engine.connect() as connection:
        message_id = connection.execute(select(messages.c.id)).scalar_one()
    base = f"http://localhost:{gateway.gateway.web_port}"
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{base}/login")
    log_in(page, base)

    page.goto(f"{base}/hostings/{HOSTING}/held")
    page.get_by_role("link", name="Café news").click()
    page.wait_for_url(f"{base}/hostings/{HOSTING}/mail/{message_id}")
    frame = page.frame_locator("#mail-frame")
    inline = frame.locator("img[alt=logo]")
    playwright.expect(inline).to_be_visible()
    page.wait_for_function("document.querySelector('#mail-frame').contentDocument === null")  # not the area's origin
    # The cid: image is the message's own picture, loaded and decoded.
    playwright.expect(frame.locator("h1")).to_have_text("Hello Zoë")
    assert inline.evaluate("img => img.complete && img.naturalWidth") == 1
    # Nothing ran: neither the <script>s nor the onerror handler; no form, no javascript: link.
    body = frame.locator("body")
    assert body.get_attribute("data-ran") is None and not dialogs
    assert frame.locator("form, input, script").count() == 0
    assert frame.get_by_text("click").get_attribute("href") is None
    # The frame is another origin: the area's cookies and page are out of its reach.
    reach = body.evaluate(
        """() => { const seen = [];
            try { seen.push(document.cookie); } catch (e) { seen.push('no cookie'); }
            try { seen.push(window.parent.document.title); } catch (e) { seen.push('no parent'); }
            return seen; }"""
    )
    assert reach == ["no cookie", "no parent"]
    # On the server's side: the frame and its image were asked for, and never with a cookie.
    frames = gateway.gateway.frame_app.state
    assert frames.requests >= 2 and frames.cookie_requests == 0
    assert page.context.cookies(base)  # while the area does hold its session cookie
    # The viewer fits a phone: nothing sticks out sideways at 360 px.
    page.set_viewport_size({"width": 360, "height": 800})
    page.wait_for_timeout(150)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the viewer overflows at 360 px"
    page.set_viewport_size({"width": 1280, "height": 900})
    # The remote image was not fetched, and the page says so.
    page.wait_for_timeout(300)
    assert _Counter.hits == []
    notice = page.locator("#remote-notice")
    playwright.expect(notice).to_contain_text("1 remote image is blocked.")

    page.get_by_role("link", name="Show them").click()
    page.wait_for_url(f"{base}/hostings/{HOSTING}/mail/{message_id}?images=1#html-title")
    playwright.expect(page.frame_locator("#mail-frame").locator("img[alt=remote]")).to_be_visible()
    deadline = time.monotonic() + 10
    while not _Counter.hits:
        assert time.monotonic() < deadline, "the allowed remote image was never fetched"
        time.sleep(0.05)
    assert _Counter.hits == ["/pixel.png"]
    assert page.frame_locator("#mail-frame").locator("body").get_attribute("data-ran") is None
    assert frames.cookie_requests == 0
    # The check itself sees a cookie when one is sent.
    link = page.locator("#mail-frame").get_attribute("src")
    assert httpx2.get(link, headers={"Cookie": "a=b"}).status_code == 200 and frames.cookie_requests == 1
