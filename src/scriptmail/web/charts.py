"""Charts of a hosting's mail for the customer area (issue 5): stacked bar charts drawn as SVG by the server.

Pure functions, no I/O. The SVG goes inline in the page, so it obeys the area's Content-Security-Policy
(default-src 'self'): no script, no `style` attribute, no <style> element. Colours are presentation
attributes (the fallback) and classes that static/charts.css maps onto the site's palette. The drawing
scales with its container (viewBox, width 100%); every text put in it is escaped.

`hosting_charts(daily, hourly, gettext)` turns the outputs of store.stats.daily_volumes and
store.stats.hourly_volumes into the `charts` list that templates/_charts.html renders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

# The drawing's coordinate system (user units); the page scales it to the width of its container.
WIDTH = 360
HEIGHT = 220
FONT_SIZE = 12
_CHAR_WIDTH = 0.62 * FONT_SIZE  # a generous estimate of one character's advance, for layout only
_LEFT = 44  # room for the y tick labels ("2000k" at most)
_RIGHT = 6
_BOTTOM = 20  # room for the x labels
_LEGEND_LINE = 16
_SWATCH = 10

# Fallback colours (presentation attributes); charts.css overrides them through the classes.
# Blue / vermillion / brown stripes: distinguishable with every common colour-vision deficiency,
# each at least 3:1 against white, and adjacent segments are also separated by a white gap.
_COLOURS = {"sent": "#0b57d0", "bounced": "#d55e00", "expired": "#8a4b00", "held": "#5b2a86"}
_SPARE_COLOURS = ("#0b57d0", "#d55e00", "#8a4b00", "#5b2a86", "#1f2328")
_TEXT = "#4b5563"
_GRID = "#c9ced6"
_AXIS = "#767d88"

_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_KEY = re.compile(r"[a-z][a-z0-9-]*\Z")

DAY_SERIES = ("sent", "bounced", "expired", "held")
HOUR_SERIES = ("sent", "bounced", "held")
# Legend texts that are not the series' key (the key "held" is also a status label elsewhere).
_LABELS = {"held": "put on hold"}


@dataclass(frozen=True)
class Series:
    """One stacked layer: `key` names its CSS class (chart-fill-KEY), `label` is the translated legend text."""

    key: str
    label: str
    striped: bool = False  # drawn with diagonal stripes, so it differs from its neighbours by more than colour


@dataclass(frozen=True)
class Bar:
    """One bar: `label` under the x axis ("" when thinned out), `name` in its tooltip and the table,
    `counts` one per series, bottom of the stack first."""

    label: str
    name: str
    counts: tuple[int, ...]


@dataclass(frozen=True)
class TableRow:
    label: str
    cells: tuple[int, ...]


@dataclass(frozen=True)
class Chart:
    """What templates/_charts.html renders: a figure with its caption, the SVG, and the same numbers as a table."""

    id: str
    title: str
    svg: Markup
    columns: tuple[str, ...]  # the table's header: the label column, then one per series
    rows: tuple[TableRow, ...]
    totals: tuple[int, ...]  # one per series
    empty: bool  # no mail at all in the period

    @property
    def table_rows(self) -> Markup:
        """The table's body rows, drawn here: a template loop per cell cost more than the chart itself."""
        cell = '\n              <td class="num">'
        return Markup(
            "".join(
                f'\n            <tr>\n              <th scope="row" class="nowrap">{escape(row.label)}</th>'
                + "".join(f"{cell}{int(count)}</td>" for count in row.cells)
                + "\n            </tr>"
                for row in self.rows
            )
        )


def nice_ticks(maximum: float) -> list[int]:
    """The y axis: 0 up to at least `maximum` in steps of 1, 2 or 5 × 10^n, 3 to 5 ticks (0 and 1 when all is zero)."""
    top = math.ceil(maximum) if maximum > 0 else 0
    if top <= 0:
        return [0, 1]
    step = 1
    while True:
        for factor in (1, 2, 5):
            candidate = step * factor
            intervals = -(-top // candidate)  # ceil for integers of any size
            if intervals <= 4:
                intervals = max(intervals, 2)
                return [i * candidate for i in range(intervals + 1)]
        step *= 10


def tick_label(value: int, step: int) -> str:
    """A tick value, short: the largest of k, M, G, T that divides the step (1500, 250k, 1G)."""
    for unit, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if step % unit == 0 and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def thin_labels(labels: Sequence[str], every: int) -> list[str]:
    """Keep one label in `every`, counting back from the last (the most recent bar is always labelled)."""
    last = len(labels) - 1
    return [label if (last - i) % every == 0 else "" for i, label in enumerate(labels)]


def summarize(series: Sequence[Series], counts: Sequence[int]) -> str:
    """'120 sent, 3 bounced': numbers before the (translated) series labels."""
    return ", ".join(f"{count} {s.label}" for s, count in zip(series, counts))


def totals_of(series: Sequence[Series], bars: Sequence[Bar]) -> tuple[int, ...]:
    return tuple(sum(bar.counts[i] for bar in bars) for i in range(len(series)))


def _fmt(number: float) -> str:
    if number.__class__ is int:
        return str(number)
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _colour(series: Series, index: int) -> str:
    return _COLOURS.get(series.key, _SPARE_COLOURS[index % len(_SPARE_COLOURS)])


def _fill(chart_id: str, series: Series, index: int) -> tuple[str, str]:
    """The (class, fill attribute) of a series' shapes; a striped series is painted by its pattern."""
    if series.striped:
        return "chart-striped", f"url(#{chart_id}-stripes-{series.key})"
    return f"chart-fill chart-fill-{series.key}", _colour(series, index)


def _legend(chart_id: str, series: Sequence[Series]) -> tuple[list[str], float]:
    """The legend's elements, wrapped on as many lines as needed, and its height."""
    parts, x, line = [], 0.0, 0
    for index, s in enumerate(series):
        width = _SWATCH + 4 + len(s.label) * _CHAR_WIDTH
        if x > 0 and x + width > WIDTH - _RIGHT:
            x, line = 0.0, line + 1
        y = line * _LEGEND_LINE
        css, fill = _fill(chart_id, s, index)
        parts.append(
            f'<g class="chart-legend-item">'
            f'<rect class="{css}" x="{_fmt(x)}" y="{_fmt(y + 1)}" width="{_SWATCH}" height="{_SWATCH}" fill="{fill}"'
            f' stroke="{_AXIS}" stroke-width="0.5"/>'
            f'<text class="chart-text" x="{_fmt(x + _SWATCH + 4)}" y="{_fmt(y + _SWATCH)}" font-size="{FONT_SIZE}"'
            f' fill="{_TEXT}">{escape(s.label)}</text></g>'
        )
        x += width + 14
    return parts, (line + 1) * _LEGEND_LINE


def _patterns(chart_id: str, series: Sequence[Series]) -> list[str]:
    out = []
    for index, s in enumerate(series):
        if s.striped:
            out.append(
                f'<pattern id="{chart_id}-stripes-{s.key}" patternUnits="userSpaceOnUse" width="4" height="4"'
                f' patternTransform="rotate(45)">'
                f'<rect class="chart-stripes-bg" width="4" height="4" fill="#ffffff"/>'
                f'<rect class="chart-fill chart-fill-{s.key}" width="2" height="4" fill="{_colour(s, index)}"/>'
                f"</pattern>"
            )
    return out


def bar_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    bars: Sequence[Bar],
    *,
    description: str | None = None,
    empty_text: str = "No mail in this period",
) -> Markup:
    """A stacked bar chart as inline SVG: one bar per entry of `bars`, stacked by `series` (first at the bottom).

    `role="img"`, named by its <title> and <desc> (`description`, by default the totals); each bar has a
    <title> tooltip ("2026-11-28: 120 sent, 3 bounced"). All-zero data draws an empty 0..1 axis and
    `empty_text`. `chart_id` prefixes the ids inside the SVG, so it must be unique in the page.
    """
    if not _ID.match(chart_id):
        raise ValueError(f"unusable chart id {chart_id!r}")
    for s in series:
        if not _KEY.match(s.key):
            raise ValueError(f"unusable series key {s.key!r}")
    for bar in bars:
        if len(bar.counts) != len(series) or any(count < 0 for count in bar.counts):
            raise ValueError(f"bar {bar.name!r} needs {len(series)} counts, none negative")
    totals = totals_of(series, bars)
    if description is None:
        description = summarize(series, totals)
    highest = max((sum(bar.counts) for bar in bars), default=0)
    ticks = nice_ticks(highest)
    top_value, step = ticks[-1], ticks[1] - ticks[0]

    legend, legend_height = _legend(chart_id, series)
    top = legend_height + 10
    bottom = HEIGHT - _BOTTOM
    plot_height = bottom - top
    plot_width = WIDTH - _LEFT - _RIGHT
    slot = plot_width / max(len(bars), 1)
    bar_width = max(slot * 0.72, 1.0)

    def y_of(value: float) -> float:
        return bottom - value * plot_height / top_value

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%"'
        f' preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    patterns = _patterns(chart_id, series)
    if patterns:
        parts.append("<defs>" + "".join(patterns) + "</defs>")
    parts.append('<g class="chart-legend">' + "".join(legend) + "</g>")

    grid = ['<g class="chart-y-axis">']
    for value in ticks:
        y = _fmt(y_of(value))
        grid.append(
            f'<line class="chart-grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y}" y2="{y}" stroke="{_GRID}" stroke-width="0.6"/>'
        )
        grid.append(
            f'<text class="chart-text chart-tick" x="{_LEFT - 5}" y="{y}" dy="0.35em" text-anchor="end" font-size="{FONT_SIZE}"'
            f' fill="{_TEXT}">{escape(tick_label(value, step))}</text>'
        )
    grid.append("</g>")
    parts.extend(grid)

    # Per bar only what differs is formatted; the rest of each element is built once here.
    hit_tail = f'" y="{_fmt(top)}" width="{_fmt(slot)}" height="{_fmt(plot_height)}" fill="transparent"/>'
    segment_heads = [
        f'<rect class="chart-seg {css}" data-series="{s.key}" data-count="'
        for (css, _), s in zip((_fill(chart_id, s, index) for index, s in enumerate(series)), series)
    ]
    segment_tails = [
        f'" width="{_fmt(bar_width)}" height="{{}}" fill="{fill}" stroke="#ffffff" stroke-width="0.75"/>'
        for _, fill in (_fill(chart_id, s, index) for index, s in enumerate(series))
    ]
    labels_of = [s.label for s in series]
    parts.append('<g class="chart-bars">')
    for i, bar in enumerate(bars):
        x = _fmt(_LEFT + i * slot + (slot - bar_width) / 2)
        tip = f"{bar.name}: " + ", ".join(f"{count} {label}" for label, count in zip(labels_of, bar.counts))
        # the whole column answers to the pointer, so a bar of zero height still shows its tooltip
        group = [
            f'<g class="chart-bar"><title>{escape(tip)}</title><rect class="chart-hit" x="{_fmt(_LEFT + i * slot)}{hit_tail}'
        ]
        stacked = 0
        for head, tail, count in zip(segment_heads, segment_tails, bar.counts):
            if count == 0:
                continue
            y_top, y_bottom = y_of(stacked + count), y_of(stacked)
            stacked += count
            group.append(f'{head}{count}" x="{x}" y="{_fmt(y_top)}{tail.format(_fmt(y_bottom - y_top))}')
        group.append("</g>")
        parts.append("".join(group))
    parts.append("</g>")

    parts.append(
        f'<line class="chart-axis" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_fmt(bottom)}" y2="{_fmt(bottom)}"'
        f' stroke="{_AXIS}" stroke-width="1"/>'
    )
    labels = ['<g class="chart-x-axis">']
    for i, bar in enumerate(bars):
        if bar.label:
            # centred under its bar, but kept inside the drawing at both ends
            x, anchor, half = _LEFT + (i + 0.5) * slot, "middle", len(bar.label) * _CHAR_WIDTH / 2
            if x + half > WIDTH:
                x, anchor = WIDTH - 1, "end"
            elif x - half < 0:
                x, anchor = 1, "start"
            labels.append(
                f'<text class="chart-text chart-x-label" x="{_fmt(x)}" y="{HEIGHT - 5}" text-anchor="{anchor}"'
                f' font-size="{FONT_SIZE}" fill="{_TEXT}">{escape(bar.label)}</text>'
            )
    labels.append("</g>")
    parts.extend(labels)

    if highest == 0:
        parts.append(
            f'<text class="chart-text chart-empty" x="{_fmt(_LEFT + plot_width / 2)}" y="{_fmt(top + plot_height / 2)}"'
            f' text-anchor="middle" font-size="{FONT_SIZE + 2}" fill="{_TEXT}">{escape(empty_text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def make_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    bars: Sequence[Bar],
    label_column: str,
    *,
    description: str | None = None,
    empty_text: str = "No mail in this period",
) -> Chart:
    """The chart and its table: one row per bar with its full name, plus the totals."""
    totals = totals_of(series, bars)
    return Chart(
        id=chart_id,
        title=title,
        svg=bar_chart(chart_id, title, series, bars, description=description, empty_text=empty_text),
        columns=(label_column, *(s.label for s in series)),
        rows=tuple(TableRow(bar.name, tuple(bar.counts)) for bar in bars),
        totals=totals,
        empty=not any(totals),
    )


def _count(row: Mapping[str, Any], key: str) -> int:
    return max(int(row.get(key) or 0), 0)


def hosting_charts(
    daily: Sequence[Mapping[str, Any]], hourly: Sequence[Mapping[str, Any]], gettext: Callable[[str], str]
) -> list[Chart]:
    """The two charts of a hosting's page, from stats.daily_volumes and stats.hourly_volumes (oldest first).

    `gettext` translates one msgid (page._ or i18n.gettext bound to a language); placeholders are filled here.
    Days are labelled "11-28" (every 5th, today included), hours "14h" (0h, 6h, 12h, 18h).
    """
    empty_text = gettext("No mail in this period")
    period = gettext("From %(start)s to %(end)s: %(totals)s.")

    day_series = [Series(key, gettext(_LABELS.get(key, key)), striped=key == "expired") for key in DAY_SERIES]
    day_labels = thin_labels([str(row["date"])[5:10] for row in daily], 5)
    day_bars = [
        Bar(label, str(row["date"]), tuple(_count(row, key) for key in DAY_SERIES)) for label, row in zip(day_labels, daily)
    ]

    hour_series = [Series(key, gettext(_LABELS.get(key, key))) for key in HOUR_SERIES]
    moments = [datetime.fromisoformat(str(row["hour"])) for row in hourly]
    names = [moment.strftime("%Y-%m-%d %H:%M") for moment in moments]
    # the hour repeated when summer time ends gets its UTC offset, so the two rows can be told apart
    names = [f"{name} ({moment.isoformat()[-6:]})" if names.count(name) > 1 else name for name, moment in zip(names, moments)]
    hour_bars = [
        Bar(f"{moment.hour}h" if moment.hour % 6 == 0 else "", name, tuple(_count(row, key) for key in HOUR_SERIES))
        for moment, name, row in zip(moments, names, hourly)
    ]

    charts = []
    for chart_id, title, series, bars, column in (
        ("chart-daily", gettext("Mail per day, last 30 days"), day_series, day_bars, gettext("Date")),
        ("chart-hourly", gettext("Mail per hour, last 48 hours"), hour_series, hour_bars, gettext("Hour")),
    ):
        description = None
        if bars:
            description = period % {
                "start": bars[0].name,
                "end": bars[-1].name,
                "totals": summarize(series, totals_of(series, bars)),
            }
        charts.append(make_chart(chart_id, title, series, bars, column, description=description, empty_text=empty_text))
    return charts
