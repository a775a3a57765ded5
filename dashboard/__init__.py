"""Panorama's core. Each sub-package is one room: ``core`` < ``storage`` < ``feeds`` < the domain (``dispatch``,
``panorama``, ``figures``, ``briefings``) < ``gateway`` and ``web`` < ``run`` (docs/architecture.md)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # ``from dashboard import create_app`` (gunicorn's app.py, the tests) without importing Dash and the whole
    # web layer whenever any sub-package is imported.
    if name == "create_app":
        from dashboard.run.app import create_app
        return create_app
    raise AttributeError(name)
