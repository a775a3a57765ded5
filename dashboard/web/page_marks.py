"""The page's marks on ``<html>`` (is-wall, is-mobile, in-replay, has-major, shell-empty), set from the first paint.

The stylesheets read these classes instead of ``:has()`` anchored on html, body or the page: with ``:has()``
every node inserted anywhere made the browser match those rules again over the whole page (assets/page_marks.js
says more, and keeps the marks as the live page changes). The server sets them in the HTML, from the page it
draws first, so that the first paint is styled as the live page will be (the wall's type size, no bar on it).
"""

from __future__ import annotations

from typing import Any

# mark -> the class whose presence anywhere in the page sets it (assets/page_marks.js: MARKS, the same rules)
MARKS = (("is-wall", "page-wall"), ("is-mobile", "page-mobile"), ("in-replay", "replay-banner"),
         ("has-major", "major-view"))
SHELL_EMPTY = "shell-empty"  # the shell's top bar holds neither navigation nor user: nobody signed in


def _classes(node: Any) -> set[str]:
    return set(str(getattr(node, "className", None) or "").split())


def _walk(node: Any):
    """Yield every component of ``node``'s tree (a component, text or a list of them)."""
    if isinstance(node, (list, tuple)):
        for child in node:
            yield from _walk(child)
    elif hasattr(node, "to_plotly_json"):
        yield node
        yield from _walk(getattr(node, "children", None))


def marks_of(tree: Any) -> list[str]:
    """Return the marks ``tree`` (the page as drawn) calls for, in MARKS' order, then shell-empty."""
    found: set[str] = set()
    empty_top = False
    for node in _walk(tree):
        classes = _classes(node)
        found |= classes
        if "shell-top" in classes:
            inside = set().union(*(_classes(n) for n in _walk(getattr(node, "children", None))))
            empty_top = empty_top or not inside & {"user-bar", "shell-nav"}
    return [mark for mark, cls in MARKS if cls in found] + ([SHELL_EMPTY] if empty_top else [])


def with_marks(page: str, marks: list[str]) -> str:
    """Return the page's HTML with ``marks`` as its html element's classes."""
    if not marks:
        return page
    return page.replace("<html ", f'<html class="{" ".join(marks)}" ', 1)
