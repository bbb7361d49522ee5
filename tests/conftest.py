"""Rules for the whole suite: under CI a skipped test is a failed one.

A skip hides what it skips: ``importorskip("talib")`` would silently drop the
indicator reference tests, a missing data file the only Lean reference. When
the ``CI`` environment variable is set (``CI=true``, as CI services set it),
a skipped test is reported as a failure with its reason, a module skipped
at collection is listed too (the rest of the suite still runs), and the run
ends with a failing exit status and the list of what was skipped. Expected
failures (``xfail``) are left alone. Outside CI a skip stays a skip.
"""

from __future__ import annotations

import os

import pytest

SKIPPED_UNDER_CI = pytest.StashKey[list[tuple[str, str]]]()


def under_ci() -> bool:
    """Whether the suite runs under CI (``CI`` set to anything but empty, 0, false, no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SKIPPED_UNDER_CI] = []


def _record_skip(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> bool:
    """Remember a skip under CI; return whether it was one."""
    if not (under_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return False
    longrepr = report.longrepr
    reason = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)).removeprefix(
        "Skipped: "
    )
    config.stash[SKIPPED_UNDER_CI].append((report.nodeid, reason))
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    if _record_skip(item.config, report):
        reason = item.config.stash[SKIPPED_UNDER_CI][-1][1]
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (CI is set, so a skip fails the run): {reason}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    report = yield
    _record_skip(collector.config, report)  # failing it would stop the whole collection
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = config.stash[SKIPPED_UNDER_CI]
    if skipped:
        terminalreporter.section("skipped under CI: each one fails the run", red=True)
        for nodeid, reason in skipped:
            terminalreporter.line(f"{nodeid or '<session>'}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash[SKIPPED_UNDER_CI] and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
