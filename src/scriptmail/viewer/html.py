"""A message's HTML made safe to show in the viewer's frame (belt and braces with the frame's
sandbox and CSP): no script, no form, no event handler, no javascript: link; `cid:` images point
at the message's own parts; remote images are dropped (and counted) unless allowed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nh3

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "body", "html", "head"}
_LAYOUT = {"width", "height", "align", "valign", "bgcolor", "color", "border", "cellpadding", "cellspacing", "style", "dir"}
_ATTRIBUTES = {tag: set(nh3.ALLOWED_ATTRIBUTES.get(tag, set())) | _LAYOUT for tag in _TAGS}
_ATTRIBUTES["font"] |= {"face", "size"}
_ATTRIBUTES["img"] |= {"src", "alt", "title"}
_ATTRIBUTES["a"] |= {"href", "title"}
# CSS properties kept in style attributes: layout and type, nothing that loads (background-image, url()).
_STYLES = {
    "color", "background-color", "font", "font-family", "font-size", "font-weight", "font-style", "text-align",
    "text-decoration", "line-height", "margin", "margin-top", "margin-bottom", "margin-left", "margin-right", "padding",
    "padding-top", "padding-bottom", "padding-left", "padding-right", "border", "border-collapse", "width", "height",
    "max-width", "display", "vertical-align", "white-space",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rendered:
    html: str
    remote: int  # remote images the message asks for (dropped unless allowed)


def render(html: str, cid_url: Callable[[str], str | None], remote_allowed: bool) -> Rendered:
    """The sanitised HTML; `cid_url` gives the link of an inline image by its content id."""
    remote = 0

    def attribute(tag: str, name: str, value: str) -> str | None:
        nonlocal remote
        if tag == "img" and name == "src":
            lowered = value.strip().lower()
            if lowered.startswith("cid:"):
                return cid_url(value.strip()[4:])
            if lowered.startswith(("http:", "https:", "//")):
                remote += 1
                return value if remote_allowed else None
            return None
        return value

    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "textarea", "select", "noscript", "template", "object"},
        attributes=_ATTRIBUTES,
        attribute_filter=attribute,
        url_schemes={"http", "https", "mailto", "cid"},
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=_STYLES,
        strip_comments=True,
    )
    return Rendered(cleaned, remote)
