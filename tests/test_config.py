"""Configuration from the environment: every number setting arrives as a number, whatever its name."""

from __future__ import annotations

import pytest

from dashboard.core.config import default_config, load_config

NUMBERS = sorted(k for k, v in default_config().items() if isinstance(v, int) and not isinstance(v, bool))


@pytest.mark.parametrize("key", NUMBERS)
def test_every_number_setting_is_read_as_a_number_from_the_environment(key):
    # A setting left out of the parsing list stays a string, and the first comparison with it is a 500.
    env_key = "PANORAMA_SECRET_KEY" if key == "SECRET_KEY" else key
    assert load_config(environ={env_key: "7"})[key] == 7


def test_the_number_settings_include_the_stream_cap():
    assert "PANORAMA_STREAM_CAP" in NUMBERS


def test_the_time_zone_has_one_source_the_city_pack_unless_panorama_tz_overrides_it():
    from dashboard.core.city import load_city
    from dashboard.storage.services import build_services

    cfg = load_config(environ={"DATABASE_URL": "sqlite://"})
    assert cfg["PANORAMA_TZ"] is None  # nothing decided before the city is known
    svc = build_services(cfg)
    try:
        assert svc.config["PANORAMA_TZ"] == svc.city.timezone == load_city("shenzhen").timezone == "Asia/Shanghai"
        assert svc.city.rules.timezone == "Asia/Shanghai"
    finally:
        svc.close()
    over = build_services(load_config(environ={"DATABASE_URL": "sqlite://", "PANORAMA_TZ": "Asia/Tokyo"}))
    try:
        # one zone for the process: the config, the city and its rules' times of day all read it
        assert over.config["PANORAMA_TZ"] == over.city.timezone == over.city.rules.timezone == "Asia/Tokyo"
    finally:
        over.close()


def test_an_unknown_time_zone_is_refused_with_its_source():
    from dashboard.core.city import load_city

    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus' \\(PANORAMA_TZ\\)"):
        load_city("shenzhen", "Mars/Olympus")


def test_no_code_names_a_zone_of_its_own():
    """The zone is named in the city pack only: code reads it from there (or PANORAMA_TZ), never a literal."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = []
    for folder in ("dashboard", "feeds", "callbacks", "layouts"):
        for path in (root / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if re.search(r"[\"'](Asia|Europe|America|Africa|Australia|Pacific)/\w+[\"']", code):
                    offenders.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert offenders == []
