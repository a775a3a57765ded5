"""CI fails when a test is skipped: a missing service or browser must not pass as green."""

from __future__ import annotations

import pytest

SKIPPING = """
import pytest

def test_runs():
    assert True

def test_needs_a_browser():
    pytest.skip("no Chromium")
"""


def test_a_skipped_test_fails_the_run_with_fail_on_skip(pytester):
    pytester.makepyfile(SKIPPING)
    strict = pytester.runpytest("-p", "tests.strict_skips", "--fail-on-skip")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.assert_outcomes(passed=1, skipped=1)
    strict.stdout.fnmatch_lines(["*--fail-on-skip: 1 test(s) skipped*"])
    lenient = pytester.runpytest("-p", "tests.strict_skips")
    assert lenient.ret == pytest.ExitCode.OK


def test_a_clean_run_still_passes_with_fail_on_skip(pytester):
    pytester.makepyfile("def test_runs():\n    assert True\n")
    assert pytester.runpytest("-p", "tests.strict_skips", "--fail-on-skip").ret == pytest.ExitCode.OK
