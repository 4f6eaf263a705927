"""The Scripts e-mail page while it is kept (web/area_overview.py, web/page_cache.py): what it shows
follows the store at the very next view, whoever changed it, and a kept block never reaches
another hosting, another language or another kind of user."""

from __future__ import annotations

import re
import time

from sqlalchemy import Engine

from scriptmail.config import Settings
from scriptmail.control.states import Action, Actor
from scriptmail.model import HostingState
from scriptmail.store import accounts, activity, stats
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, repeated_spam
from scriptmail.web.area_overview import read_snapshot
from scriptmail.web.page_cache import PageCache
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.web_client import OPERATOR, OTHER, A, B, Browser

CSRF = re.compile(r'name="csrf" value="([^"]+)"')

PAGE = f"/hostings/{HOSTING}"


def fact(html: str, label: str) -> str:
    """The value shown beside a fact's label in the overview."""
    found = re.search(rf"<dt>{re.escape(label)}</dt>\s*<dd[^>]*>(.*?)</dd>", html, re.S)
    assert found, f"no fact {label!r} on the page"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def chart_totals(html: str, chart: str) -> list[int]:
    """The totals row of a chart's table (one per series)."""
    figure = html[html.index(f'id="{chart}-figure"') :]
    footer = figure[figure.index("<tfoot>") : figure.index("</tfoot>")]
    return [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', footer)]


def state_badge(html: str) -> str:
    found = re.search(r'<span class="badge [^"]*" role="status">(?:<span[^>]*></span>)?([^<]*)</span>', html)
    assert found, "no state badge"
    return found.group(1).strip()


def bump(gateway: RunningGateway, name: str, at: float | None = None, **counts: int) -> None:
    """Count mail for a hosting as delivery does when it records results."""
    with for_writing(gateway.engine).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=name).id
        activity.bump(connection, [(hosting_id, time.time() if at is None else at, counts)])


def daily_rows(html: str) -> dict[str, list[int]]:
    """The daily chart's table: date -> one count per series."""
    figure = html[html.index('id="chart-daily-figure"') :]
    body = figure[figure.index("<tbody>") : figure.index("</tbody>")]
    return {
        day: [int(n) for n in re.findall(r"<td class=\"num\">(\d+)</td>", cells)]
        for day, cells in re.findall(r'<th scope="row" class="nowrap">([^<]+)</th>(.*?)</tr>', body, re.S)
    }


def logged_in(area, email: str) -> Browser:
    browser = area()
    assert browser.login(email).status_code == 303
    return browser


def test_the_figures_and_charts_follow_the_counters_at_the_next_view(gateway: RunningGateway, area) -> None:
    browser = logged_in(area, A)
    bump(gateway, HOSTING, sent=3, bounced=1)
    first = browser.get(PAGE).text
    assert fact(first, "Total sent") == "3" and fact(first, "Total in error") == "1"
    assert chart_totals(first, "chart-daily") == [3, 1, 0, 0]
    assert browser.get(PAGE).text == first  # kept: the same page
    bump(gateway, HOSTING, sent=1200, expired=2, held=4)
    after = browser.get(PAGE).text
    assert fact(after, "Total sent") == "1,203" and fact(after, "Sent today") == "1,203"
    assert fact(after, "Total in error") == "3"
    assert chart_totals(after, "chart-daily") == [1203, 1, 2, 4]
    assert chart_totals(after, "chart-hourly") == [1203, 1, 4]


def test_an_action_shows_at_the_next_view_from_the_area_or_from_elsewhere(gateway: RunningGateway, area) -> None:
    browser = logged_in(area, A)
    before = browser.get(PAGE).text
    assert state_badge(before) == "enabled" and 'data-action="block"' in before
    token = CSRF.search(before).group(1)
    assert browser.post(f"{PAGE}/action", {"action": "BLOCK", "confirm": "yes", "csrf": token}).status_code == 303
    blocked = browser.get(PAGE).text
    assert state_badge(blocked) == "disabled" and "Sending is blocked." in blocked
    assert re.search(r'data-action="block"\s+disabled', blocked) and not re.search(r'data-action="unblock"\s+disabled', blocked)
    history = blocked[blocked.index('id="history-title"') :]
    assert "requested in the customer area by a@users.test" in history
    # Another process (the CLI, another node) changes the state: nothing told this web process.
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.UNBLOCK, Actor.OPERATOR, time.time(), reason="lifted by support from the CLI")
    unblocked = browser.get(PAGE).text
    assert state_badge(unblocked) == "enabled" and "lifted by support from the CLI" in unblocked
    assert not re.search(r'data-action="block"\s+disabled', unblocked)
    # The recipient of the error report, changed from the page, is on the next view.
    browser.post(f"{PAGE}/report-to", {"email": "errors@shop.example", "csrf": token})
    assert fact(browser.get(PAGE).text, "Error report recipient").startswith("errors@shop.example")


def test_each_language_gets_its_own_page(gateway: RunningGateway, area) -> None:
    with for_writing(gateway.engine).begin() as connection:
        accounts.set_language(connection, accounts.find_user(connection, email=A), "es")
    spanish = logged_in(area, A)
    english = logged_in(area, OPERATOR)
    for _ in range(2):  # the second views are served from what the first ones kept
        es, en = spanish.get(PAGE).text, english.get(PAGE).text
        assert "Total de mensajes enviados" in es and "Mensajes por día, últimos 30 días" in es and "Total sent" not in es
        assert "Total sent" in en and "Mail per day, last 30 days" in en and "Total de mensajes enviados" not in en
    token = CSRF.search(es).group(1)
    assert spanish.post("/language", {"language": "fr", "next": PAGE, "csrf": token}).status_code == 303
    fr = spanish.get(PAGE).text
    assert 'lang="fr"' in fr and "Total des e-mails envoyés" in fr and "E-mails par jour, 30 derniers jours" in fr
    assert "Total de mensajes enviados" not in fr and "Historial de estados" not in fr


def test_a_kept_page_never_reaches_another_hosting_or_its_owner(gateway: RunningGateway, area) -> None:
    """Both hostings have the same totals and the same today, but not the same past days: each
    owner sees their own days, and neither sees the other's page."""
    now = time.time()
    three_days_ago, two_days_ago = now - 3 * 86400, now - 2 * 86400
    bump(gateway, HOSTING, sent=2)
    bump(gateway, HOSTING, at=three_days_ago, sent=5)
    bump(gateway, OTHER, sent=2)
    bump(gateway, OTHER, at=two_days_ago, sent=5)
    owner_a, owner_b = logged_in(area, A), logged_in(area, B)
    a_page = owner_a.get(PAGE).text
    days = sorted(daily_rows(a_page))
    assert fact(a_page, "Total sent") == "7" and daily_rows(a_page)[days[-4]][0] == 5
    # B asks for A's page, kept a moment ago: it does not exist for B.
    refused = owner_b.get(PAGE)
    assert refused.status_code == 404 and "Total sent" not in refused.text and HOSTING not in refused.text
    b_page = owner_b.get(f"/hostings/{OTHER}").text
    assert fact(b_page, "Total sent") == "7" and HOSTING not in b_page
    assert daily_rows(b_page)[days[-3]][0] == 5 and daily_rows(b_page)[days[-4]][0] == 0
    assert daily_rows(owner_a.get(PAGE).text)[days[-3]][0] == 0
    assert owner_a.get(f"/hostings/{OTHER}").status_code == 404


def test_the_customer_and_support_each_see_their_own_actions(gateway: RunningGateway, area) -> None:
    """Spam detected twice in a week: only support may purge it. The customer's kept page must
    not be served to support, nor the other way round."""
    now = time.time()
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.DETECT_SPAM, Actor.POLICY, now - 60)
        change_state(connection, HOSTING, Action.SET, Actor.OPERATOR, now - 50, target=HostingState.ACTIVE)
        change_state(connection, HOSTING, Action.DETECT_SPAM, Actor.POLICY, now - 40)
    customer, support = logged_in(area, A), logged_in(area, OPERATOR)
    for _ in range(2):
        mine, theirs = customer.get(PAGE).text, support.get(PAGE).text
        assert re.search(r'data-action="purge"\s+disabled', mine) and "only support can lift this block" in mine
        assert not re.search(r'data-action="purge"\s+disabled', theirs)


def test_bad_page_parameters_are_answered_and_bounded(gateway: RunningGateway, area) -> None:
    browser = logged_in(area, A)
    assert browser.get(f"{PAGE}?limit=many").status_code == 422
    assert browser.get(f"{PAGE}?page=%00").status_code == 422
    for query in ("?limit=7", "?page=-3", "?page=99999999999999999999", "?limit=100&page=100000"):
        answer = browser.get(PAGE + query)
        assert answer.status_code == 200 and 'id="bounces-title"' in answer.text
    assert browser.get(f"/hostings/{'x' * 5000}").status_code == 404


def test_the_snapshot_says_what_the_stores_own_reads_say(engine: Engine) -> None:
    """One statement in place of stats.counters and repeated_spam: the same answers, on both stores."""
    now = time.time()
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "quiet.example", "owner@quiet.example", plan="unlimited")
        hosting_store.add_hosting(connection, "busy.example", "owner@busy.example", plan="default")
        busy = hosting_store.find_hosting(connection, name="busy.example")
        activity.bump(
            connection, [(busy.id, now, {"sent": 9, "bounced": 2, "expired": 1}), (busy.id, now - 3 * 86400, {"sent": 4})]
        )
        activity.adjust_totals(connection, busy.id, {"sent": -1, "suppressed": 1})
        change_state(connection, "busy.example", Action.DETECT_SPAM, Actor.POLICY, now - 100)
        change_state(connection, "busy.example", Action.SET, Actor.OPERATOR, now - 90, target=HostingState.ACTIVE)
        change_state(connection, "busy.example", Action.DETECT_SPAM, Actor.POLICY, now - 80)
    with engine.connect() as connection:
        for name in ("quiet.example", "busy.example"):
            hosting = hosting_store.find_hosting(connection, name=name)
            snapshot = read_snapshot(connection, hosting.id, now)
            assert snapshot is not None and snapshot.name == name and snapshot.state is hosting.state
            plan = Settings().plan(hosting.plan)
            assert snapshot.counters(plan) == stats.counters(connection, hosting.id, plan, now)
            assert snapshot.repeat_spam == repeated_spam(connection, hosting.id, now)
            assert snapshot.report_recipient == hosting.report_recipient
        busy_snapshot = read_snapshot(connection, hosting_store.find_hosting(connection, name="busy.example").id, now)
        assert busy_snapshot.repeat_spam and busy_snapshot.counters(Settings().plan("default"))["bounce"] == 4
        assert read_snapshot(connection, 999_999, now) is None


def test_the_cache_is_bounded_in_entries_and_in_characters() -> None:
    cache = PageCache(max_entries=3, max_chars=100)
    for index in range(5):
        cache.put((index, "es", "top"), "stamp", b"x" * 10, 10)
    assert len(cache) == 3 and cache.get((0, "es", "top"), "stamp") is None and cache.get((4, "es", "top"), "stamp") == b"x" * 10
    cache.put((9, "es", "volumes"), "stamp", b"y" * 95, 95)
    assert cache.chars <= 100 and cache.get((9, "es", "volumes"), "stamp") is not None
    cache.put((10, "es", "volumes"), "stamp", b"z" * 500, 500)  # larger than the whole cache: not kept
    assert cache.get((10, "es", "volumes"), "stamp") is None and cache.chars <= 100
    flood = PageCache(max_entries=1000, max_chars=10_000)
    for index in range(50_000):
        flood.put((index, "en", "bounces", 20, index), index, b"." * 7, 7)
    assert len(flood) <= 1000 and flood.chars <= 10_000


def test_a_block_is_served_only_for_the_stamp_it_was_drawn_from() -> None:
    cache = PageCache()
    cache.put((1, "es", "top"), (100, "active", 3), b"<p>3</p>", 8)
    assert cache.get((1, "es", "top"), (100, "active", 3)) == b"<p>3</p>"
    assert cache.get((1, "es", "top"), (100, "blocked", 3)) is None
    assert cache.get((1, "es", "top"), (101, "active", 3)) is None  # the next minute draws it again
    assert cache.get((1, "fr", "top"), (100, "active", 3)) is None
    assert cache.get((2, "es", "top"), (100, "active", 3)) is None
    cache.put((1, "es", "top"), (100, "blocked", 3), b"<p>b</p>", 8)
    assert cache.get((1, "es", "top"), (100, "active", 3)) is None and cache.chars == 8
    cache.put((2, "es", "top"), "s", b"two", 3)
    cache.forget(1)
    assert cache.get((1, "es", "top"), (100, "blocked", 3)) is None and cache.get((2, "es", "top"), "s") == b"two"
    assert cache.chars == 3
