"""`marketpulse indicators`: the list of kinds, one kind, --check; and their bad uses."""

import subprocess
import sys

import pytest

from marketpulse.indicators import KINDS, parse_set

pytestmark = pytest.mark.integration


DOCUMENTED = "ema(50), rsi(7), bb=bbands(20, 2.5)"


def _one_line_error(result, *words):
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, (word, line)
    return line


def test_list_shows_every_kind_with_defaults_columns_and_what_it_equals(cli):
    out = cli("indicators").stdout
    assert out.startswith(f"{len(KINDS)} indicator kinds")
    lines = out.splitlines()
    for kind in KINDS.values():
        (head,) = [i for i, line in enumerate(lines) if line.startswith(f"{kind.name}(")]
        signature, _, columns = lines[head].partition(" -> ")
        for param in kind.params:
            assert f"{param.name}=" in signature, (kind.name, signature)
        # the columns the kind declared without arguments makes
        assert columns == ", ".join(parse_set(kind.name).columns), lines[head]
        detail = lines[head + 1]
        assert detail.startswith(f"    {kind.summary}; ")
        if kind.talib:
            assert detail.endswith(f"equals TA-Lib {kind.talib}"), detail
        else:
            assert kind.reference and detail.endswith(f"reference: {kind.reference}"), detail
    # defaults as declared: bbands' down is up's value
    assert (
        "\nbbands(period=20, up=2, down=up, source=close) -> bbands_upper, bbands_middle, "
        "bbands_lower\n" in out
    )
    assert (
        "\nmacd(fast=12, slow=26, signal=9, source=close) -> macd, macd_signal, macd_hist\n" in out
    )
    assert "keltner(period=20, atr_period=10, multiplier=2) -> keltner_upper" in out


def test_one_kind_in_detail(cli):
    out = cli("indicators", "bbands").stdout.splitlines()
    assert out[0] == f"bbands: {KINDS['bbands'].summary}"
    assert out[1] == "equals TA-Lib BBANDS"
    params = {line.split()[0]: line for line in out if line.startswith("  ")}
    assert list(params) == ["period", "up", "down", "source"]
    # the default set's 20 bars (bb=bbands), TA-Lib's 5 named beside it
    assert params["period"].endswith("whole number, 2 to 100000; default 20 (TA-Lib's: 5)")
    assert params["up"].endswith("number, 0 to 1000; default 2")
    assert params["down"].endswith("default: the value of up")
    assert "hl2" in params["source"] and params["source"].endswith("default close")
    assert out[-2].startswith("columns: NAME_upper, NAME_middle, NAME_lower ")
    assert out[-1] == "example: bbands -> bbands_upper, bbands_middle, bbands_lower"


def test_kind_without_talib_names_its_reference_and_names_are_case_blind(cli):
    out = cli("indicators", "Keltner").stdout
    assert f"reference: {KINDS['keltner'].reference}" in out
    assert "equals TA-Lib" not in out
    assert cli("indicators", "PLUS_DI").stdout.startswith("plus_di: ")


def test_check_prints_each_declaration_and_the_columns(cli):
    result = cli("indicators", "--check", DOCUMENTED)
    assert result.stdout.splitlines() == [
        "ema_50=ema(period=50, source=close) -> ema_50",
        "rsi_7=rsi(period=7, source=close) -> rsi_7",
        "bb=bbands(period=20, up=2.5, down=2.5, source=close) -> bb_upper, bb_middle, bb_lower",
        "5 columns: ema_50, rsi_7, bb_upper, bb_middle, bb_lower",
    ]
    assert result.stderr == ""


def test_check_of_the_default_set_gives_the_thirteen_columns(cli):
    from marketpulse.indicators import COLUMNS, DEFAULT

    last = cli("indicators", "--check", DEFAULT.text).stdout.splitlines()[-1]
    assert last == f"13 columns: {', '.join(COLUMNS)}"


def test_a_declaration_without_parameters_is_the_default_set_s(cli):
    """`sma` and `bbands` are what the pipeline computes as sma_20 and bb_*: 20 bars."""
    from marketpulse.indicators import DEFAULT

    listed = cli("indicators").stdout.splitlines()
    assert "sma(period=20, source=close) -> sma" in listed
    default = {item.name: item.canonical.split("=", 1)[1] for item in DEFAULT.items}
    checked = cli("indicators", "--check", "sma, bb=bbands, sma(source=volume)").stdout
    lines = [line.split(" -> ")[0].split("=", 1)[1] for line in checked.splitlines()[:3]]
    assert lines == [default["sma_20"], default["bb"], default["volume_sma_20"]]
    assert lines[:2] == ["sma(period=20, source=close)",
                         "bbands(period=20, up=2, down=2, source=close)"]  # fmt: skip
    assert "default 20 (TA-Lib's: 30)" in cli("indicators", "sma").stdout
    # the catalogue names the default set as the pipeline declares it
    declared = listed[0].split("Without declarations: ", 1)[1].removesuffix(".")
    assert declared.startswith("sma_20=sma, ") and parse_set(declared) == DEFAULT


def test_unknown_kind_is_one_line_with_suggestions(cli):
    line = _one_line_error(cli("indicators", "emaa", ok=False), "unknown kind 'emaa'", "ema")
    assert "did you mean" in line
    line = _one_line_error(cli("indicators", "zzzz", ok=False), "unknown kind 'zzzz'")
    assert "did you mean" not in line and "marketpulse indicators" in line


@pytest.mark.parametrize(
    ("declarations", "words"),
    [
        ("ema(50), rsi(1)", ["--check", "rsi(1)", "period must be between 2 and 100000"]),
        ("ema(50), fancy(3)", ["unknown kind 'fancy'"]),
        ("ema(50), ema(50)", ["'ema_50' is declared twice"]),
        ("bbands(20, wide=3)", ["bbands has no parameter 'wide'"]),
        ("sma(20", ["expected kind(arguments)"]),
        (" ", ["no indicators declared"]),
    ],
    ids=["out-of-range", "unknown-kind", "twice", "unknown-parameter", "unclosed", "empty"],
)
def test_check_of_a_bad_declaration_is_one_line_exit_2(cli, declarations, words):
    _one_line_error(cli("indicators", "--check", declarations, ok=False), *words)


def test_kind_and_check_together_refused(cli):
    _one_line_error(cli("indicators", "ema", "--check", "ema(5)", ok=False), "not both")


def test_help_does_not_load_the_catalogue():
    # `marketpulse --help` stays fast: the kinds (numba kernels) load when the command runs
    code = "import sys, marketpulse.cli.app; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
