"""The command line starts without the heavy subsystems: they are imported by the commands
that use them, so ``sql``, ``report`` and ``lake`` start in a fraction of a second (the
Kaggle section of docs/benchmarks.md times ``report movers``)."""

import subprocess
import sys

HEAVY = ("pandas", "numba", "marketpulse.stream", "marketpulse.alerts",
         "marketpulse.runtime.runner", "marketpulse.feeds")  # fmt: skip


def _imported_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)  # fmt: skip
    return [m for m in result.stdout.strip().split(",") if m]


def test_the_check_sees_a_heavy_import():
    assert "numba" in _imported_after("import marketpulse.stream")


def test_the_cli_imports_none_of_them():
    assert _imported_after("import marketpulse.cli.app") == []


def test_reports_import_none_of_the_pipeline():
    imported = _imported_after("import marketpulse.analytics.reports")
    assert not {
        "numba",
        "marketpulse.stream",
        "marketpulse.runtime.runner",
        "marketpulse.feeds",
    } & set(imported)


def _modules_after(statement: str, names: tuple[str, ...]) -> list[str]:
    code = f"import sys; {statement}; print(','.join(m for m in {names!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)  # fmt: skip
    return [m for m in result.stdout.strip().split(",") if m]


def test_the_dashboard_imports_duckdb_with_its_first_query_not_at_start_up():
    assert _modules_after("import marketpulse.serve", ("duckdb",)) == []


def test_a_simulated_run_checks_its_options_without_the_vendors_clients():
    statement = (
        "from marketpulse.cli.feed_options import FeedName, LiveOptions, check_live_options; "
        "check_live_options(FeedName.simulator, LiveOptions())"
    )
    vendors = ("marketpulse.feeds.vendors", "httpx")
    assert _modules_after(statement, vendors) == []
    assert "marketpulse.feeds.vendors" in _modules_after(
        statement.replace("LiveOptions()", "LiveOptions(data_feed='sip')").replace(
            "FeedName.simulator", "FeedName.alpaca"
        ),
        vendors,
    )
