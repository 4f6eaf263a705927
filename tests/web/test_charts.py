"""The charts of a hosting's mail (web/charts.py, templates/_charts.html): pure functions, no server."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from markupsafe import Markup

from scriptmail.web import charts, i18n
from scriptmail.web.charts import Bar, Series

SVG = "{http://www.w3.org/2000/svg}"
TWO = [Series("sent", "sent"), Series("bounced", "bounced")]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))


def segments(root: ET.Element) -> list[ET.Element]:
    return root.findall(f".//{SVG}rect[@data-series]")


def bars_of(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "chart-bar"]


def x_labels(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text") if "chart-x-label" in t.get("class", "")]


def tick_texts(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text") if "chart-tick" in t.get("class", "")]


def daily(days: int = 30, **values: int) -> list[dict]:
    start = date(2026, 11, 28) - timedelta(days=days - 1)
    return [
        {"date": (start + timedelta(days=i)).isoformat(), "accepted": 0, "sent": 0, "bounced": 0, "expired": 0, **values}
        for i in range(days)
    ]


def hourly(hours: int = 48, **values: int) -> list[dict]:
    zone = timezone(timedelta(hours=1))
    start = datetime(2026, 11, 28, 15, tzinfo=zone) - timedelta(hours=hours - 1)
    return [
        {"hour": (start + timedelta(hours=i)).isoformat(timespec="minutes"), "accepted": 0, "sent": 0, "bounced": 0, **values}
        for i in range(hours)
    ]


# Nice ticks


@pytest.mark.parametrize(
    ("maximum", "expected"),
    [
        (0, [0, 1]),
        (1, [0, 1, 2]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 5, 10]),
        (120, [0, 50, 100, 150]),
        (999, [0, 500, 1000]),
        (10**9, [0, 500_000_000, 1_000_000_000]),
    ],
)
def test_nice_ticks(maximum, expected):
    assert charts.nice_ticks(maximum) == expected


@pytest.mark.parametrize("maximum", [2, 3, 5, 9, 11, 17, 33, 99, 101, 250, 4321, 77_777, 123_456_789, 10**12 + 1])
def test_ticks_are_3_to_5_nice_steps_covering_the_maximum(maximum):
    ticks = charts.nice_ticks(maximum)
    step = ticks[1]
    assert 3 <= len(ticks) <= 5
    assert ticks == [i * step for i in range(len(ticks))]
    assert ticks[-1] >= maximum > ticks[-2]
    mantissa = step // 10 ** int(math.log10(step))
    assert mantissa in (1, 2, 5) and step % 10 ** int(math.log10(step)) == 0


def test_tick_labels_are_short():
    assert charts.tick_label(1500, 500) == "1500"
    assert charts.tick_label(250_000, 50_000) == "250k"
    assert charts.tick_label(1_000_000_000, 500_000_000) == "1000M"
    assert charts.tick_label(2_000_000_000, 1_000_000_000) == "2G"
    assert charts.tick_label(0, 1_000_000_000) == "0G"


# The drawing


def test_svg_parses_and_is_an_image_named_by_its_title_and_desc():
    svg = charts.bar_chart("c1", "Mail per day", TWO, [Bar("11-28", "2026-11-28", (120, 3))])
    assert isinstance(svg, Markup)
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").get("id") == "c1-title"
    assert root.find(f"{SVG}title").text == "Mail per day"
    assert root.find(f"{SVG}desc").get("id") == "c1-desc"
    assert root.find(f"{SVG}desc").text == "120 sent, 3 bounced"


def test_svg_scales_and_obeys_the_content_security_policy():
    svg = str(charts.bar_chart("c1", "t", TWO, [Bar("a", "a", (1, 2))] * 30))
    root = parse(svg)
    assert root.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}"
    assert root.get("width") == "100%"
    assert root.get("height") is None
    assert "style" not in svg and "<script" not in svg
    assert all("style" not in element.attrib for element in root.iter())


def test_each_bar_has_a_tooltip():
    root = parse(charts.bar_chart("c1", "t", TWO, [Bar("", "2026-11-28", (120, 3)), Bar("", "2026-11-29", (0, 0))]))
    titles = [bar.find(f"{SVG}title").text for bar in bars_of(root)]
    assert titles == ["2026-11-28: 120 sent, 3 bounced", "2026-11-29: 0 sent, 0 bounced"]
    # a bar of zero height still has a column that answers to the pointer
    assert all(bar.find(f"{SVG}rect[@class='chart-hit']") is not None for bar in bars_of(root))


def test_bar_heights_are_proportional_and_stacked_in_series_order():
    bars = [Bar("", "a", (40, 10)), Bar("", "b", (20, 0)), Bar("", "c", (5, 30))]
    root = parse(charts.bar_chart("c1", "t", TWO, bars))
    height = {(rect.get("data-series"), int(rect.get("data-count"))): float(rect.get("height")) for rect in segments(root)}
    unit = height[("sent", 40)] / 40
    assert unit > 0
    for (_, count), h in height.items():
        assert h == pytest.approx(count * unit, abs=0.02)
    assert ("bounced", 0) not in height  # nothing drawn for a zero
    for bar in bars_of(root):
        rects = bar.findall(f"{SVG}rect[@data-series]")
        order = [rect.get("data-series") for rect in rects]
        assert order == [s for s in ("sent", "bounced") if s in order]
        # each segment sits right on top of the one below it
        for below, above in zip(rects, rects[1:]):
            assert float(above.get("y")) + float(above.get("height")) == pytest.approx(float(below.get("y")), abs=0.02)


def test_the_top_tick_sits_at_the_top_of_the_plot():
    root = parse(charts.bar_chart("c1", "t", TWO, [Bar("", "a", (100, 50))]))  # 150: ticks 0, 50, 100, 150
    assert tick_texts(root) == ["0", "50", "100", "150"]
    grid = {float(line.get("y1")) for line in root.iter(f"{SVG}line") if line.get("class") == "chart-grid"}
    tallest = min(float(rect.get("y")) for rect in segments(root))
    assert tallest == pytest.approx(min(grid), abs=0.02)


def test_series_colours_come_from_classes_and_the_striped_one_from_its_pattern():
    series = [Series("sent", "sent"), Series("bounced", "bounced"), Series("expired", "expired", striped=True)]
    root = parse(charts.bar_chart("c1", "t", series, [Bar("", "a", (1, 1, 1))]))
    classes = {rect.get("data-series"): rect.get("class") for rect in segments(root)}
    assert "chart-fill-sent" in classes["sent"] and "chart-fill-bounced" in classes["bounced"]
    stripes = [rect for rect in segments(root) if rect.get("data-series") == "expired"][0]
    assert stripes.get("fill") == "url(#c1-stripes-expired)"
    assert root.find(f".//{SVG}pattern[@id='c1-stripes-expired']") is not None
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-text" and t.get("text-anchor") is None]
    assert legend == ["sent", "bounced", "expired"]  # legend order = stacking order, bottom first


def test_hostile_labels_are_escaped():
    hostile = "<script>alert(1)</script>"
    series = [Series("sent", '"><script>x</script>'), Series("bounced", "a & b")]
    svg = str(charts.bar_chart("c1", hostile, series, [Bar(hostile, hostile, (1, 2))], description=hostile, empty_text=hostile))
    assert "<script" not in svg
    root = parse(svg)  # still well-formed XML
    assert root.find(f"{SVG}title").text == hostile
    assert root.find(f"{SVG}desc").text == hostile
    assert x_labels(root) == [hostile]
    assert bars_of(root)[0].find(f"{SVG}title").text == f'{hostile}: 1 "><script>x</script>, 2 a & b'


def test_ids_and_keys_that_would_break_the_svg_are_refused():
    with pytest.raises(ValueError):
        charts.bar_chart('x" onload="alert(1)', "t", TWO, [])
    with pytest.raises(ValueError):
        charts.bar_chart("c1", "t", [Series("a b", "x")], [])
    with pytest.raises(ValueError):
        charts.bar_chart("c1", "t", TWO, [Bar("", "a", (1,))])


def test_all_zero_data_draws_an_empty_0_to_1_axis_and_says_so():
    root = parse(charts.bar_chart("c1", "t", TWO, [Bar("", "a", (0, 0))] * 30, empty_text="No mail in this period"))
    assert tick_texts(root) == ["0", "1"]
    assert segments(root) == []
    empty = [t.text for t in root.iter(f"{SVG}text") if "chart-empty" in t.get("class", "")]
    assert empty == ["No mail in this period"]


def test_no_bars_at_all():
    root = parse(charts.bar_chart("c1", "t", TWO, []))
    assert bars_of(root) == []
    assert root.find(f"{SVG}desc").text == "0 sent, 0 bounced"


def test_one_huge_value():
    bars = [Bar("", str(i), (0, 0)) for i in range(29)] + [Bar("", "big", (10**9, 1))]
    root = parse(charts.bar_chart("c1", "t", TWO, bars))
    assert tick_texts(root)[-1] == "1500M"  # 1e9 + 1 rounds up to the next tick
    sent = [rect for rect in segments(root) if rect.get("data-series") == "sent"][0]
    assert 0 < float(sent.get("height")) < charts.HEIGHT
    assert all(math.isfinite(float(rect.get("y"))) for rect in segments(root))
    assert "1000000000 sent, 1 bounced" in bars_of(root)[-1].find(f"{SVG}title").text


def test_many_bars_stay_inside_the_drawing():
    root = parse(charts.bar_chart("c1", "t", TWO, [Bar("", str(i), (i, 1)) for i in range(48)]))
    for rect in segments(root):
        x, width = float(rect.get("x")), float(rect.get("width"))
        assert 0 <= x and x + width <= charts.WIDTH
        assert 0 <= float(rect.get("y")) and float(rect.get("y")) + float(rect.get("height")) <= charts.HEIGHT


def test_a_long_legend_wraps_inside_the_drawing():
    series = [Series(f"s{i}", "a rather long translated label") for i in range(4)]
    root = parse(charts.bar_chart("c1", "t", series, [Bar("", "a", (1, 1, 1, 1))]))
    legend = [t for t in root.iter(f"{SVG}text") if t.get("class") == "chart-text" and t.get("text-anchor") is None]
    assert len({t.get("y") for t in legend}) > 1
    for t in legend:
        assert float(t.get("x")) + len(t.text) * charts.FONT_SIZE * 0.62 <= charts.WIDTH


def test_thin_labels_keeps_one_in_n_ending_with_the_last():
    labels = [str(i) for i in range(30)]
    thinned = charts.thin_labels(labels, 5)
    assert [label for label in thinned if label] == ["4", "9", "14", "19", "24", "29"]
    assert len(thinned) == 30


# The hosting's two charts


def test_hosting_charts_days_and_hours():
    days = daily(sent=120, bounced=3, expired=1, held=2)
    hours = hourly(sent=5, bounced=1, held=4)
    day_chart, hour_chart = charts.hosting_charts(days, hours, lambda message: message)

    assert day_chart.id == "chart-daily" and day_chart.title == "Mail per day, last 30 days"
    assert day_chart.columns == ("Date", "sent", "bounced", "expired", "put on hold")
    assert len(day_chart.rows) == 30 and day_chart.rows[-1].label == "2026-11-28" and day_chart.rows[-1].cells == (120, 3, 1, 2)
    assert day_chart.totals == (3600, 90, 30, 60) and not day_chart.empty
    root = parse(day_chart.svg)
    assert x_labels(root) == ["11-03", "11-08", "11-13", "11-18", "11-23", "11-28"]
    assert root.find(f"{SVG}desc").text == "From 2026-10-30 to 2026-11-28: 3600 sent, 90 bounced, 30 expired, 60 put on hold."
    assert bars_of(root)[-1].find(f"{SVG}title").text == "2026-11-28: 120 sent, 3 bounced, 1 expired, 2 put on hold"

    assert hour_chart.id == "chart-hourly" and hour_chart.title == "Mail per hour, last 48 hours"
    assert hour_chart.columns == ("Hour", "sent", "bounced", "put on hold")
    assert hour_chart.rows[-1].label == "2026-11-28 15:00" and hour_chart.rows[0].label == "2026-11-26 16:00"
    root = parse(hour_chart.svg)
    assert x_labels(root) == ["18h", "0h", "6h", "12h", "18h", "0h", "6h", "12h"]
    assert bars_of(root)[-1].find(f"{SVG}title").text == "2026-11-28 15:00: 5 sent, 1 bounced, 4 put on hold"


def test_hosting_charts_with_no_mail():
    day_chart, hour_chart = charts.hosting_charts(daily(), hourly(), lambda message: message)
    assert day_chart.empty and hour_chart.empty
    assert "No mail in this period" in str(day_chart.svg)


def test_the_repeated_hour_of_the_end_of_summer_time_is_told_apart():
    hours = [
        {"hour": "2026-10-25T02:00+02:00", "sent": 1, "bounced": 0},
        {"hour": "2026-10-25T02:00+01:00", "sent": 2, "bounced": 0},
        {"hour": "2026-10-25T03:00+01:00", "sent": 3, "bounced": 0},
    ]
    _, hour_chart = charts.hosting_charts(daily(), hours, lambda message: message)
    assert [row.label for row in hour_chart.rows] == [
        "2026-10-25 02:00 (+02:00)",
        "2026-10-25 02:00 (+01:00)",
        "2026-10-25 03:00",
    ]


@pytest.mark.parametrize("language", [code for code in i18n.CODES if code != "en"])
def test_every_text_of_the_charts_is_translated(language):
    seen = []

    def gettext(message: str) -> str:
        seen.append(message)
        return i18n.gettext(language, message)

    charts.hosting_charts(daily(sent=1), hourly(sent=1), gettext)
    known = set()
    for path in (Path(i18n.__file__).parent / "translations" / language / "LC_MESSAGES").glob("*.po"):
        with path.open("rb") as po:
            known |= {message.id for message in read_po(po) if message.id and message.string}
    assert set(seen) | {"Show as a table", "Total"} <= known


@pytest.mark.parametrize("language", i18n.CODES)
def test_the_partial_renders_figures_with_a_table(language):
    charts_ = charts.hosting_charts(daily(sent=7, bounced=2), hourly(sent=1), lambda m: i18n.gettext(language, m))
    html = i18n.environment(language).get_template("_charts.html").render(charts=charts_)
    assert html.count("<figure") == 2 and html.count("<figcaption") == 2
    assert html.count("<details") == 2 and html.count("<summary>") == 2
    assert html.count("<svg") == 2  # the SVG is markup, not escaped text
    assert 'role="img"' in html
    assert "style=" not in html and "<style" not in html and "<script" not in html
    assert '<td class="num">210</td>' in html  # the daily total of sent (30 × 7)
    root = ET.fromstring(html)  # the partial is well-formed too
    assert root.tag == "div"


def test_the_partial_renders_nothing_without_charts():
    assert i18n.environment("en").get_template("_charts.html").render(charts=[]).strip() == ""


def test_x_labels_stay_inside_the_drawing():
    bars = [Bar("2026-11-28", str(i), (1, 0)) for i in range(30)]
    root = parse(charts.bar_chart("c1", "t", TWO, bars))
    for text in root.iter(f"{SVG}text"):
        if "chart-x-label" not in text.get("class", ""):
            continue
        x, width = float(text.get("x")), len(text.text) * charts.FONT_SIZE * 0.62
        left = {"start": x, "middle": x - width / 2, "end": x - width}[text.get("text-anchor")]
        assert 0 <= left and left + width <= charts.WIDTH


def test_no_msgid_of_charts_po_duplicates_messages_po():
    for language in (code for code in i18n.CODES if code != "en"):
        folder = Path(i18n.__file__).parent / "translations" / language / "LC_MESSAGES"
        ids = {}
        for name in ("charts.po", "messages.po"):
            with (folder / name).open("rb") as po:
                ids[name] = {message.id for message in read_po(po) if message.id}
        assert ids["charts.po"] and not ids["charts.po"] & ids["messages.po"]
