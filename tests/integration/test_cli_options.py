"""Every command and option, as the parser sees it: help, version, values out of range.

Commands and options are discovered from the typer app, so a new command gets
its help checked and a new numeric option must be given a bad value below.
"""

import re
import tomllib

import pytest
import typer.main
from typer.testing import CliRunner

from marketpulse.cli.app import app

from .conftest import LEAN_TRADES, ROOT, marketpulse

pytestmark = pytest.mark.integration


def _walk(command, path=()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(typer.main.get_command(app)))

NUMERIC = {
    (path, param.opts[0])
    for path, command in COMMANDS.items()
    for param in command.params
    if param.type_descriptor.annotation in (int, float)
}

#: Arguments a command needs before its options are looked at.
REQUIRED = {
    ("replay",): [LEAN_TRADES],
    ("spark",): ["--checkpoint", "unused-checkpoint"],
    **{("report", name): ["--start", "2020-01-01", "--end", "2020-12-31"]
       for name in ("daily", "movers", "volatility", "correlation")},
}  # fmt: skip

#: A value out of range for each numeric option.
OUT_OF_RANGE = {
    (("run",), "--symbols"): "0",
    (("run",), "--rate"): "-5",
    (("run",), "--seed"): "-1",
    (("run",), "--duration"): "-1",
    (("run",), "--lateness"): "-0.5",
    (("run",), "--port"): "70000",
    (("run",), "--updates-per-s"): "0",
    (("replay",), "--lateness"): "-1",
    (("backfill",), "--lateness"): "nan",
    (("produce",), "--symbols"): "0",
    (("produce",), "--rate"): "0",
    (("produce",), "--seed"): "-3",
    (("produce",), "--duration"): "-1",
    (("process",), "--commit-interval"): "0",
    (("process",), "--exit-when-idle"): "-1",
    (("process",), "--lateness"): "-1",
    (("process",), "--idle-timeout"): "-2",
    (("sink", "lake"), "--exit-when-idle"): "-1",
    (("sink", "lake"), "--max-age"): "-1",
    (("sink", "postgres"), "--exit-when-idle"): "inf",
    (("sink", "postgres"), "--max-age"): "-0.1",
    (("sink", "influx"), "--exit-when-idle"): "-5",
    (("sink", "influx"), "--max-age"): "nan",
    (("dashboard",), "--port"): "-1",
    (("dashboard",), "--updates-per-s"): "-4",
    (("dashboard",), "--duration"): "0",
    (("topics", "create"), "--partitions"): "0",
    (("topics", "create"), "--replication-factor"): "0",
    (("topics", "create"), "--min-insync-replicas"): "0",
    (("topics", "create"), "--retention-hours"): "-2",
    (("report", "movers"), "--top"): "0",
    (("produce",), "--metrics-port"): "65536",
    (("process",), "--metrics-port"): "-1",
    (("sink", "lake"), "--metrics-port"): "70000",
    (("sink", "postgres"), "--metrics-port"): "-5",
    (("sink", "influx"), "--metrics-port"): "1e3",
    (("lake", "compact"), "--min-files"): "1",
    (("backtest",), "--baseline"): "0",
    (("backtest",), "--seed"): "-1",
    (("forecast", "evaluate"), "--seed"): "-2",
    (("forecast", "evaluate"), "--folds"): "0",
    (("forecast", "train"), "--seed"): "-1",
    (("notify",), "--commit-interval"): "0",
    (("notify",), "--metrics-port"): "65536",
    (("notify",), "--exit-when-idle"): "-1",
    (("run",), "--max-symbols"): "0",
    (("replay",), "--max-symbols"): "-5",
    (("process",), "--max-symbols"): "0.5",
    (("backfill",), "--max-symbols"): "nan",
    (("spark",), "--max-offsets-per-trigger"): "0",
    (("spark",), "--trigger"): "-1",
    (("spark",), "--lateness"): "-2",
    (("spark",), "--max-symbols"): "0",
    (("spark",), "--idle-timeout"): "-2",
    (("news",), "--every"): "0",
    (("news",), "--duration"): "-1",
}


def _one_line_usage_error(result, *words):
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: marketpulse "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_every_numeric_option_has_a_bad_value_case():
    assert len(NUMERIC) > 25  # discovery works
    assert set(OUT_OF_RANGE) == NUMERIC


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p) or "marketpulse")
def test_help_of_every_command(path):
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="marketpulse")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join(('marketpulse', *path))} ")
    for param in COMMANDS[path].params:
        if param.opts[0].startswith("--"):
            assert param.opts[0] in result.output, (path, param.opts[0])
    for name, sub in getattr(COMMANDS[path], "commands", {}).items():
        assert sub.hidden or name in result.output  # hidden: an alias (lake list)


@pytest.mark.parametrize(
    ("case", "bad"),
    sorted(OUT_OF_RANGE.items()),
    ids=lambda v: " ".join(v[0]) + " " + v[1] if isinstance(v, tuple) else v,
)
def test_out_of_range_value_stops_the_command_at_parse_time(cli_in_process, tmp_path, case, bad):
    # in this process: the same main(), without a start-up per case (the tests below run the
    # command as a user does)
    path, option = case
    # --lake names a directory that must stay absent: the command never started
    lake = tmp_path / "lake"
    extra = ["--lake", lake] if any(p.opts[0] == "--lake" for p in COMMANDS[path].params) else []
    result = cli_in_process(*path, *REQUIRED.get(path, []), *extra, option, bad, ok=False)
    line = _one_line_usage_error(result, " ".join(path), option)
    # in MarketPulse's words (not the validation library's), naming the values allowed
    assert not any(words in line for words in _LIBRARY_WORDS), line
    assert re.search(r"expected (a whole number|a number) (at least|above|from|at most) ", line)
    assert not lake.exists()


#: What pydantic says, through typer, where MarketPulse should speak.
_LIBRARY_WORDS = ("Input should", "Value error", "unable to parse", "greater than or equal")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("sql", "--format", "xml", "SELECT 1"),
            "marketpulse sql: Invalid value for '--format': expected one of table, csv, json, "
            "parquet, got 'xml'",
        ),
        (
            ("replay", "x.csv", "--adjust", "maybe"),
            "marketpulse replay: Invalid value for '--adjust': expected one of none, splits, all, "
            "got 'maybe'",
        ),
        (
            ("report", "movers", "--start", "2020-01-01", "--end", "2020-01-02", "--top", "many"),
            "marketpulse report movers: Invalid value for '--top': expected a whole number at "
            "least 1, got 'many'",
        ),
        (
            ("dashboard", "--port", "99999"),
            "marketpulse dashboard: Invalid value for '--port': expected a whole number from 0 to "
            "65535, got 99999",
        ),
        (
            ("run", "--duration", "soon"),
            "marketpulse run: Invalid value for '--duration': expected a number above 0, "
            "got 'soon'",
        ),
    ],
    ids=["enum-format", "enum-adjust", "not-a-number", "range", "not-a-float"],
)
def test_a_bad_value_is_one_line_in_marketpulse_s_words(cli_in_process, args, expected):
    result = cli_in_process(*args, ok=False)
    line = _one_line_usage_error(result)
    assert line == f"error: {expected}"


@pytest.mark.parametrize(
    ("option", "kind"), [("--symbols", "a whole number at least 1"), ("--rate", "a number above 0")]
)
def test_not_a_number(cli, option, kind):
    _one_line_usage_error(cli("run", option, "many", ok=False), option, kind)


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("MARKETPULSE_SIMULATOR_SYMBOLS", "0", "symbols"),
        ("MARKETPULSE_SIMULATOR_RATE", "-5", "rate"),
        ("MARKETPULSE_LATENESS", "-1", "lateness"),
        ("MARKETPULSE_KAFKA_PARTITIONS", "0", "partitions"),
    ],
)
def test_out_of_range_setting_from_the_environment(cli, tmp_path, variable, value, setting):
    lake = tmp_path / "lake"
    result = cli("run", "--duration", "1", "--no-dashboard", "--lake", lake, ok=False,
                 env={variable: value})  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: environment")
    assert f"{setting}: expected a number" in line and value in line
    assert not lake.exists()


def test_out_of_range_setting_in_the_config_file_names_file_and_section(cli, tmp_path):
    config = tmp_path / "marketpulse.toml"
    config.write_text("[simulator]\nsymbols = 12\n\n[kafka]\nreplication = 0\n")
    result = cli("config", "show", ok=False)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    expected = "replication: expected a number at least 1, got 0"
    assert line == f"error: marketpulse.toml [kafka]: {expected}"


def test_version_is_the_package_version():
    """As a process (``python -m marketpulse``): the real entry point, not the function."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = marketpulse("--version")
    assert result.returncode == 0 and result.stdout == f"marketpulse {declared}\n"


def test_unknown_option_is_one_line():
    """As a process, as the version: a usage error's line and code through the entry point."""
    _one_line_usage_error(marketpulse("replay", LEAN_TRADES, "--sped", "2"), "--sped")
