"""Make a skipped test fail the run when asked (``--fail-on-skip``): CI must not pass on a missing service."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--fail-on-skip", action="store_true", default=False,
                     help="exit non-zero when any test was skipped (a missing service, browser or binary)")


def pytest_sessionfinish(session, exitstatus):
    if not session.config.getoption("--fail-on-skip") or exitstatus != pytest.ExitCode.OK:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"--fail-on-skip: {len(skipped)} test(s) skipped; every test must run here",
                            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
