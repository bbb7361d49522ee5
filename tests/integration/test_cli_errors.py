"""Bad input: one clear line naming the file and the problem, no traceback, non-zero exit."""

import json

import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


def _refused(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip()
    assert message.startswith("error:"), message
    for word in words:
        assert str(word) in message, (word, message)
    return message


def test_missing_file(cli, tmp_path):
    missing = tmp_path / "nope.csv"
    _refused(cli("replay", missing, "--lake", tmp_path / "lake", ok=False), missing, "no such file")


def test_unknown_format(cli, tmp_path):
    weird = tmp_path / "picture.png"
    weird.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    _refused(cli("replay", weird, "--lake", tmp_path / "lake", ok=False), weird)


def test_csv_with_columns_of_neither_layout(cli, tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("when,what,how_much\n2024-01-02,abc,3\n")
    _refused(cli("replay", odd, "--lake", tmp_path / "lake", ok=False), odd, "when")


def test_unmapped_column(cli, tmp_path):
    _refused(
        cli("replay", LEAN_TRADES, "--columns", "px=price", "--lake", tmp_path / "lake", ok=False),
        LEAN_TRADES,
        "px",
    )


def test_malformed_rows_go_to_the_dlq_and_the_replay_continues(cli, sql, tmp_path):
    data = tmp_path / "trades.csv"
    data.write_text(
        "timestamp,symbol,price,size\n"
        "2024-01-02T14:30:00.000Z,AAPL,185.10,100\n"
        "2024-01-02T14:30:00.500Z,AAPL,abc,100\n"  # line 3: not a number
        "2024-01-02T14:30:01.000Z,AAPL,185.20\n"  # line 4: a field short
        "2024-01-02T14:30:01.200Z,AAPL,-3,100\n"  # line 5: price <= 0
        "2024-01-02T14:30:02.000Z,AAPL,185.30,200\n"
    )
    lake = tmp_path / "lake"
    result = cli("replay", data, "--lake", lake)
    assert "ticks in 3" in result.stdout  # the good rows and the one failing validation
    assert "DLQ rows 3" in result.stdout
    assert "rejected input rows 3" in result.stdout
    rows = sql(lake, "SELECT source_line, reason, source_file, error FROM dlq ORDER BY 1")
    assert [(r["source_line"], r["reason"]) for r in rows] == [
        (3, "parse"), (4, "parse"), (5, "price")
    ]  # fmt: skip
    assert all(r["source_file"] == str(data) for r in rows)
    assert "price" in rows[0]["error"] and "abc" in rows[0]["error"]
    assert sql(lake, "SELECT count(*) AS n FROM trades")[0]["n"] == 2


@pytest.mark.parametrize(
    ("name", "text", "line", "reason"),
    [
        (
            "rules.yaml",
            "rules:\n  - name: a\n    type: rsi\n    above: 70\n  - name: b\n    type: nonsense\n",
            6,
            "nonsense",
        ),
        ("rules.yaml", "rules:\n  - name: a\n    type: price_cross\n    levle: 10\n", 4, "levle"),
        ("rules.toml", '[[rules]]\nname = "a"\ntype = "rsi"\nabove = "high"\n', 4, "above"),
        # YAML reports where it noticed the problem: the end of the file
        ("rules.yaml", "rules:\n  - name: a\n    type: [unclosed\n", 4, "invalid YAML"),
    ],
)
def test_bad_rules_file_is_refused_at_start(cli, tmp_path, name, text, line, reason):
    rules = tmp_path / name
    rules.write_text(text)
    result = cli("run", "--duration", "1", "--rules", rules, "--lake", tmp_path / "lake", ok=False)
    _refused(result, f"{rules}:{line}", reason)
    assert not (tmp_path / "lake").exists()  # refused before anything ran


def test_bad_speed(cli, tmp_path):
    _refused(cli("replay", LEAN_TRADES, "--speed", "fast", "--lake", tmp_path, ok=False), "--speed")


def test_bad_sql_names_the_problem(cli, tmp_path):
    (tmp_path / "lake").mkdir()
    _refused(cli("sql", "SELECT nope FROM bars", "--lake", tmp_path / "lake", ok=False), "nope")


def test_config_show_masks_secrets_and_layers_sources(cli, tmp_path):
    (tmp_path / "marketpulse.toml").write_text(
        'lake = "from-file"\n[simulator]\nrate = 10.0\n[kafka]\nsasl_password = "hunter2"\n'
    )
    result = cli("config", "show", env={"MARKETPULSE_SIMULATOR_RATE": "20"})
    shown = json.loads(result.stdout)
    assert shown["lake"] == "from-file"
    assert shown["simulator"]["rate"] == 20.0  # environment over file
    assert shown["kafka"]["sasl_password"] == "********"
    assert "hunter2" not in result.stdout + result.stderr


def test_bad_config_value_names_the_setting(cli, tmp_path):
    (tmp_path / "marketpulse.toml").write_text('[simulator]\nrate = "fast"\n')
    _refused(cli("config", "show", ok=False), "marketpulse.toml", "rate")


def test_help_describes_every_option(cli):
    for command in (["run"], ["replay"], ["sql"], ["backfill"], ["config", "show"]):
        text = cli(*command, "--help").stdout
        for line in text.splitlines():
            stripped = line.strip("│ ").strip()
            if stripped.startswith("--") and stripped != "--help":
                assert len(stripped.split(None, 2)) >= 2, f"{command}: option without help: {line}"
