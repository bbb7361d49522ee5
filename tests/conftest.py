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
import resource

import pytest

SKIPPED_UNDER_CI = pytest.StashKey[list[tuple[str, str]]]()
#: Seconds of setup, call and teardown by worker (``main`` without xdist), and by file.
SECONDS_BY_WORKER = pytest.StashKey[dict[str, float]]()
SECONDS_BY_FILE = pytest.StashKey[dict[str, float]]()
#: CPU seconds by file: the test process's and its reaped subprocesses' (on a machine
#: whose cores the workers saturate, what the wall time is made of).
CPU_BY_FILE = pytest.StashKey[dict[str, float]]()
OWN_CPU_BY_FILE = pytest.StashKey[dict[str, float]]()
#: CPU seconds by test (its setup, call and teardown), for the costliest tests' list.
CPU_BY_TEST = pytest.StashKey[dict[str, float]]()
#: The CPU seconds used when a test's last phase report was made, in its worker.
_CPU_MARK = pytest.StashKey[float]()
_OWN_CPU_MARK = pytest.StashKey[float]()
#: Files, and tests, listed in the time summary at the end of a run.
_SLOWEST_FILES = 15
_COSTLIEST_TESTS = 25


def under_ci() -> bool:
    """Whether the suite runs under CI (``CI`` set to anything but empty, 0, false, no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SKIPPED_UNDER_CI] = []
    config.stash[SECONDS_BY_WORKER] = {}
    config.stash[SECONDS_BY_FILE] = {}
    config.stash[CPU_BY_FILE] = {}
    config.stash[OWN_CPU_BY_FILE] = {}
    config.stash[CPU_BY_TEST] = {}
    _CONFIG[:] = [config]


def _record_skip(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> bool:
    """Remember a skip under CI; return whether it was one."""
    if not (under_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return False
    longrepr = report.longrepr
    reason = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)).removeprefix(
        "Skipped: "
    )
    skipped = config.stash[SKIPPED_UNDER_CI]
    if (report.nodeid, reason) not in skipped:
        skipped.append((report.nodeid, reason))
    return True


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # under pytest-xdist, the workers collect: the controller sees their reports here
    if _CONFIG:
        _record_skip(_CONFIG[0], report)


def _cpu_seconds() -> tuple[float, float]:
    """The CPU seconds of this process and of the children it waited for, and its own alone."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    mine = own.ru_utime + own.ru_stime
    return mine + children.ru_utime + children.ru_stime, mine


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    # the CPU used since the last report: this phase's (the setup's includes the fixtures'
    # it starts, a file's first test the module's); carried to the controller with the report
    now, own = _cpu_seconds()
    report.user_properties.append(("cpu_seconds", now - item.config.stash.get(_CPU_MARK, now)))
    report.user_properties.append(
        ("own_cpu_seconds", own - item.config.stash.get(_OWN_CPU_MARK, own))
    )
    item.config.stash[_CPU_MARK], item.config.stash[_OWN_CPU_MARK] = now, own
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


#: The integration files that take longest (wall seconds in CI's table of the slowest
#: files), longest first: they start first, so the workers finish together.
SLOWEST_FIRST = (
    "test_spark_route.py",
    "test_docs_code_blocks.py",
    "test_bench_smoke.py",
    "test_kafka_cluster.py",
    "test_cli_lake_replay_again.py",
    "test_kafka_exactly_once_defaults.py",
    "test_dashboard_browser.py",
    "test_wheel_install.py",
    "test_s3_lake.py",
    "test_cli_run_memory.py",
    "test_kafka_security.py",
    "test_kafka_faults.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the integration tests by file for ``pytest -n 4 --dist loadgroup`` (``make test``).

    A file's tests run on one worker, one after another as without xdist (a
    module's fixtures are made once), unless the file sets its own groups (an
    ``xdist_group`` mark: the Spark route's tests, minutes each, spread over
    several workers); the groups go to whichever worker is free,
    the slowest first (:data:`SLOWEST_FIRST`), and the unit tests fill the gaps.
    The integration tests mostly wait (on brokers, servers, subprocesses): four
    workers keep two cores busy. They share nothing: every server they start
    takes a free port, every topic is the test's own, a broker a test stops is
    its own.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return
    rank = {name: at for at, name in enumerate(SLOWEST_FIRST)}
    for item in items:
        if "/tests/integration/" not in item.path.as_posix():
            continue
        if item.get_closest_marker("xdist_group") is None:  # a file may group its own
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    # a stable sort: the slowest files first, the others in their order
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add up where the time went (under xdist, the controller sees every worker's reports)."""
    if not _CONFIG:
        return
    node = getattr(report, "node", None)
    worker = node.gateway.id if node is not None else "main"
    for key, name in ((SECONDS_BY_WORKER, worker), (SECONDS_BY_FILE, report.nodeid.split("::")[0])):
        seconds = _CONFIG[0].stash[key]
        seconds[name] = seconds.get(name, 0.0) + report.duration
    name = report.nodeid.split("::")[0]
    for key, prop in ((CPU_BY_FILE, "cpu_seconds"), (OWN_CPU_BY_FILE, "own_cpu_seconds")):
        cpu = _CONFIG[0].stash[key]
        cpu[name] = cpu.get(name, 0.0) + sum(v for k, v in report.user_properties if k == prop)
    tests = _CONFIG[0].stash[CPU_BY_TEST]
    tests[report.nodeid] = tests.get(report.nodeid, 0.0) + sum(
        v for k, v in report.user_properties if k == "cpu_seconds"
    )


def _time_summary(terminalreporter, config: pytest.Config) -> None:
    """Print the seconds each worker spent and the slowest files, to balance the groups.

    Beside each file, the CPU seconds its tests and their subprocesses used (not the
    servers of the session: the Kafka broker, a fixture's database), and of those the
    CPU of the test process itself (the code that runs in pytest's worker).
    """
    workers, files = config.stash[SECONDS_BY_WORKER], config.stash[SECONDS_BY_FILE]
    if not workers:
        return
    cpu, own = config.stash[CPU_BY_FILE], config.stash[OWN_CPU_BY_FILE]
    terminalreporter.section("seconds by worker and slowest files")
    terminalreporter.line(", ".join(f"{w} {s:,.0f} s" for w, s in sorted(workers.items())))
    terminalreporter.line(
        f"CPU of the tests and their subprocesses: {sum(cpu.values()):,.0f} s, "
        f"of which in the test processes: {sum(own.values()):,.0f} s"
    )
    terminalreporter.line("  wall s    CPU s  own CPU s  file")

    def line(name: str) -> str:
        return (
            f"{files.get(name, 0.0):8.1f} {cpu.get(name, 0.0):8.1f} {own.get(name, 0.0):10.1f}"
            f"  {name}"
        )

    for name, _ in sorted(files.items(), key=lambda kv: -kv[1])[:_SLOWEST_FILES]:
        terminalreporter.line(line(name))
    for title, by in (("by CPU:", cpu), ("by CPU in the test process:", own)):
        terminalreporter.line(title)
        for name, _ in sorted(by.items(), key=lambda kv: -kv[1])[:_SLOWEST_FILES]:
            terminalreporter.line(line(name))
    terminalreporter.line("the costliest tests, CPU s of the test and its subprocesses:")
    tests = config.stash[CPU_BY_TEST]
    for name, seconds in sorted(tests.items(), key=lambda kv: -kv[1])[:_COSTLIEST_TESTS]:
        terminalreporter.line(f"{seconds:8.1f}  {name}")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    _time_summary(terminalreporter, config)
    skipped = config.stash[SKIPPED_UNDER_CI]
    if skipped:
        terminalreporter.section("skipped under CI: each one fails the run", red=True)
        for nodeid, reason in skipped:
            terminalreporter.line(f"{nodeid or '<session>'}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash[SKIPPED_UNDER_CI] and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
