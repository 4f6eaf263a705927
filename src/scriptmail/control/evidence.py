"""What an automatic block saw, as plain values (stored with the state change as JSON), and its
telling in the owner's language (pure).

The evidence is {"signal", "figures", "window", "samples"}: the figures against their threshold,
the window they were counted in (seconds, or the last N recipients attempted), and up to 10 of
the hosting's messages that show it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent

from scriptmail.catalogues import N_

SAMPLES = 10

BOUNCE_RATIO = "bounce_ratio"
SPAM_CONTENT = "spam_content"
VOLUME = "volume"
UNKNOWN_USERS = "unknown_users"
COMPLAINTS = "complaints"

SIGNALS = {
    BOUNCE_RATIO: N_("Share of recipients that bounced"),
    SPAM_CONTENT: N_("Messages that look like spam"),
    VOLUME: N_("Sudden volume"),
    UNKNOWN_USERS: N_("Messages to addresses that do not exist"),
    COMPLAINTS: N_("Spam complaints"),
}
FIGURES = {
    BOUNCE_RATIO: N_("{bounced} of the last {attempted} recipients bounced ({ratio} > {threshold})"),
    SPAM_CONTENT: N_("{flagged} of the {accepted} messages of the last hour look like spam ({ratio} > {threshold})"),
    VOLUME: N_("{accepted} messages in the last hour, more than {factor} times the usual {usual} per hour (and more than {floor})"),
    UNKNOWN_USERS: N_("{count} messages to addresses that do not exist (the limit is {limit})"),
    COMPLAINTS: N_("{count} recipients reported the messages as spam (the limit is {limit})"),
}
WINDOW_RECIPIENTS = N_("Window: the last {count} recipients attempted")
WINDOW_SECONDS = N_("Window: {minutes} minutes, from {start} to {end}")
TEXTS = (*SIGNALS.values(), *FIGURES.values(), WINDOW_RECIPIENTS, WINDOW_SECONDS)


def evidence(signal: str, figures: dict[str, Any], window: dict[str, Any]) -> dict[str, Any]:
    """The evidence of one detection; samples are added by the store."""
    return {"signal": signal, "figures": figures, "window": window, "samples": []}


def describe(found: dict[str, Any], gettext: Callable[[str], str], language: str, zone: ZoneInfo) -> dict[str, str]:
    """The evidence told in a language: {"signal", "figures", "window"} sentences."""
    signal = found.get("signal", "")
    if signal not in FIGURES:
        return {"signal": signal, "figures": "", "window": ""}
    locale = {"es": "es_ES", "fr": "fr_FR"}.get(language, "en_US")
    values = {
        key: format_percent(value, locale=locale) if key in ("ratio", "threshold") else format_decimal(value, locale=locale)
        for key, value in found.get("figures", {}).items()
    }
    window = found.get("window", {})
    if "recipients" in window:
        window_text = gettext(WINDOW_RECIPIENTS).format(count=window["recipients"])
    else:
        start, end = (datetime.fromtimestamp(window.get(key, 0), zone).strftime("%Y-%m-%d %H:%M %Z") for key in ("start", "end"))
        window_text = gettext(WINDOW_SECONDS).format(minutes=format_decimal(window.get("seconds", 0) // 60, locale=locale), start=start, end=end)
    return {"signal": gettext(SIGNALS[signal]), "figures": gettext(FIGURES[signal]).format(**values), "window": window_text}
