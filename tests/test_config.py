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
