"""Paint a page before its scripts run: Dash's scripts deferred, the page's first drawing sent in its HTML.

A phone on a slow network waited for the renderer, the component bundles and three round trips (layout,
dependencies, the router's callback) before it painted anything the commander could read (/m: largest paint
after 4.4 s on Lighthouse's mobile preset). Now the HTML carries the page as the server draws it at that moment
(the same render function, the same access check as the router's callback), painted as soon as the HTML and
the stylesheets are in; the scripts load deferred. When Dash has drawn the page itself, assets/first_paint.js
removes the drawing. The drawing is inert: no ids (they stay unique on the page, the live one's), nothing to
focus or click, hidden from assistive technology, which reads the live page alone.
"""

from __future__ import annotations

import logging
import re
from html import escape
from typing import Any, Callable

from flask import request

from dashboard.web.page_marks import marks_of, with_marks

log = logging.getLogger(__name__)

# The language the browser chose (layouts/shell.py keeps it in localStorage; callbacks/router.py copies it
# into this cookie so that the server can draw the first paint, and set <html lang>, in the same language).
LANG_COOKIE = "panorama_lang"
RENDERER = ("window.addEventListener('DOMContentLoaded', function () { window.renderer = new DashRenderer(); });")

_VOID = {"area", "br", "col", "embed", "hr", "img", "input", "source", "track", "wbr"}
_ATTRS = {"className": "class", "title": "title", "role": "role", "href": "href", "src": "src", "alt": "alt",
          "lang": "lang", "dir": "dir", "colSpan": "colspan", "rowSpan": "rowspan", "dateTime": "datetime",
          "width": "width", "height": "height", "type": "type", "placeholder": "placeholder"}
_IDREFS = {"aria-labelledby", "aria-describedby", "aria-controls", "aria-owns", "aria-activedescendant",
           "aria-errormessage", "aria-details", "aria-flowto", "htmlFor"}
_BOOL = {"hidden": "hidden", "disabled": "disabled", "open": "open"}
# Components that draw nothing a person reads before the scripts run (stores, timers, the socket, the URL).
_SILENT = {"Store", "Interval", "Location", "WebSocket", "Download", "Upload", "ConfirmDialog", "Tooltip",
           "Loading"}
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S)


def lang_of(cookies) -> str:
    """Return the language the browser chose, from its cookie ('zh' unless it says 'en')."""
    return "en" if cookies.get(LANG_COOKIE) == "en" else "zh"


_CAMEL = re.compile(r"([A-Z])")


# React writes a bare number as pixels, but for these.
_UNITLESS = {"opacity", "zIndex", "fontWeight", "lineHeight", "flex", "flexGrow", "flexShrink", "order",
             "zoom", "gridRow", "gridColumn"}


def _css(style: dict) -> str:
    def value(k, v):
        return f"{v}px" if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in _UNITLESS else v
    return "; ".join(_CAMEL.sub(r"-\1", k).lower() + f": {value(k, v)}" for k, v in style.items()
                     if isinstance(v, (str, int, float)))


def _attributes(props: dict) -> str:
    out = []
    for key, value in props.items():
        if value is None or value is False:
            continue
        if key in _BOOL:
            if value:
                out.append(f" {_BOOL[key]}")
        elif key == "style" and isinstance(value, dict):
            out.append(f' style="{escape(_css(value))}"')
        elif key in _IDREFS:
            continue  # they name ids, which the drawing has none of
        elif key in _ATTRS or key.startswith(("aria-", "data-")):
            out.append(f' {_ATTRS.get(key, key)}="{escape(str(value))}"')
    return "".join(out)


def to_html(node: Any) -> str:
    """Return ``node`` (a Dash component tree, text or a list of them) as inert HTML: text escaped, ids left
    out, HTML components as their elements, links as anchors, graphs as their empty box, the rest not drawn."""
    if node is None or isinstance(node, bool):
        return ""
    if isinstance(node, (str, int, float)):
        return escape(str(node))
    if isinstance(node, (list, tuple)):
        return "".join(to_html(n) for n in node)
    kind, namespace = getattr(node, "_type", ""), getattr(node, "_namespace", "")
    props = {k: v for k, v in node.to_plotly_json()["props"].items() if v is not None}
    children = props.pop("children", None)
    if namespace == "dash_html_components" and kind in ("Iframe", "Embed", "Object", "Video", "Audio"):
        # their box only: the live page loads what they show, once
        props = {k: v for k, v in props.items() if k in ("className", "style")}
        return f"<div{_attributes(props)}></div>"
    if namespace == "dash_html_components":
        tag = kind.lower()
    elif kind == "Link":
        tag = "a"
    elif kind == "Graph":  # its box, so that nothing moves when the chart comes
        props = {k: v for k, v in props.items() if k in ("className", "style")}
        props["className"] = " ".join(filter(None, ("dash-graph", props.get("className"))))
        return f"<div{_attributes(props)}></div>"
    elif kind in ("RadioItems", "Checklist"):
        return _options(kind, props)
    elif kind == "Dropdown":
        return _dropdown(props)
    elif kind in ("Input", "Textarea"):  # empty and disabled: what a person types goes into the live one
        keep = {k: v for k, v in props.items() if k in ("className", "style", "placeholder", "type")}
        tag = "input" if kind == "Input" else "textarea"
        return f"<{tag}{_attributes(keep)} disabled>" + ("" if tag == "input" else "</textarea>")
    elif kind in _SILENT:
        return ""
    else:
        return to_html(children) if children is not None and kind in ("Markdown",) else ""
    if tag in _VOID:
        return f"<{tag}{_attributes(props)}>"
    return f"<{tag}{_attributes(props)}>{to_html(children)}</{tag}>"


def _labelled(options) -> list[tuple[Any, Any]]:
    """Return (value, label) of a Dash options prop: a list of dicts, of plain values, or a dict."""
    if isinstance(options, dict):
        return list(options.items())
    return [(o.get("value"), o.get("label")) if isinstance(o, dict) else (o, o) for o in options or ()]


def _options(kind: str, props: dict) -> str:
    """Draw RadioItems or Checklist as Dash 4 does (its classes), so the page keeps its height at the swap."""
    chosen = props.get("value")
    chosen = set(chosen) if isinstance(chosen, list) else {chosen}
    inline = f" dash-{kind.lower()}-inline" if props.get("inline", kind == "RadioItems") else ""
    box = "radio" if kind == "RadioItems" else "checkbox"
    items = "".join(
        f'<label class="dash-options-list-option{" selected" if v in chosen else ""}{inline}">'
        f'<span class="dash-options-list-option-wrapper"><input type="{box}" disabled'
        f'{" checked" if v in chosen else ""} class="dash-options-list-option-checkbox"></span>'
        f'<span class="dash-options-list-option-text"><span>{to_html(label)}</span></span></label>'
        for v, label in _labelled(props.get("options")))
    cls = " ".join(filter(None, ("dash-options-list", f"dash-{kind.lower()}", props.get("className"))))
    return f'<div class="{escape(cls)}">{items}</div>'


def _dropdown(props: dict) -> str:
    """Draw a Dropdown's closed button with its chosen label, as Dash 4 does."""
    labels = dict(_labelled(props.get("options")))
    value = props.get("value")
    shown = "".join(f'<span class="dash-dropdown-value-item"><span>{to_html(labels.get(v, v))}</span></span>'
                    for v in (value if isinstance(value, list) else [value]) if v is not None)
    cls = " ".join(filter(None, ("dash-dropdown", props.get("className"))))
    return (f'<div class="dash-dropdown-wrapper"><button type="button" class="{escape(cls)}" disabled>'
            f'<span class="dash-dropdown-grid-container dash-dropdown-trigger"><span class="dash-dropdown-value">'
            f"{shown}</span></span></button></div>")


def deferred(scripts: str) -> str:
    """Return Dash's script tags with every external script deferred (run in order once the HTML is parsed)."""
    def one(m: re.Match) -> str:
        attrs = m.group(1)
        if re.search(r"\bsrc=", attrs) and not re.search(r"\bdefer\b", attrs):
            return f"<script defer{attrs}>{m.group(2)}</script>"
        return m.group(0)  # inline (its text is never looked into), or deferred already
    return _SCRIPT.sub(one, scripts)


def init_app(app, draw: Callable[[str, str, str | None], Any]) -> None:
    """Defer the Dash ``app``'s scripts and put ``draw(path, lang, search)`` (the page as the router would draw
    it for this visitor) into every page's HTML, ahead of the app's root."""
    # The renderer starts once the deferred scripts have run; its inline script is hashed for the CSP as is.
    app.renderer = RENDERER
    original = app.interpolate_index

    def interpolate_index(**kwargs):
        kwargs["scripts"] = deferred(kwargs.get("scripts", ""))
        drawing, marks = "", []
        if request and request.method == "GET":
            try:
                tree = draw(request.path, lang_of(request.cookies),
                            ("?" + request.query_string.decode()) if request.query_string else None)
                drawing, marks = to_html(tree), marks_of(tree)
            except Exception:  # noqa: BLE001 - the page still loads and draws itself; the failure is logged
                log.exception("first paint of %s failed", request.path)
        if drawing:
            kwargs["app_entry"] = (f'<div id="first-paint" class="first-paint" inert aria-hidden="true">{drawing}'
                                   f"</div>{kwargs.get('app_entry', '')}")
        # <html>'s marks for the stylesheets, as the drawing calls for them (assets/page_marks.js keeps them)
        return with_marks(original(**kwargs), marks)

    app.interpolate_index = interpolate_index
