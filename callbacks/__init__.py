"""Callbacks by area; each module exposes ``register_callbacks(app)``."""

from callbacks import (alerts, alerts_page, dispatch, district, exports, live, login, major, mobile, panorama,
                       procedure, replay, rosters, router, wall_district)


def register_all(app) -> None:
    """Register every area's callbacks on the app."""
    router.register_callbacks(app)
    login.register_callbacks(app)
    live.register_callbacks(app)
    panorama.register_callbacks(app)
    wall_district.register_callbacks(app)
    replay.register_callbacks(app)
    district.register_callbacks(app)
    dispatch.register_callbacks(app)
    mobile.register_callbacks(app)
    alerts.register_callbacks(app)
    rosters.register_callbacks(app)
    alerts_page.register_callbacks(app)
    exports.register_callbacks(app)
    major.register_callbacks(app)
    procedure.register_callbacks(app)
