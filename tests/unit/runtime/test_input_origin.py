"""A replay's identity: stable across processes, and naming the declared indicators."""

from __future__ import annotations

import subprocess
import sys

from marketpulse.indicators import parse_set
from marketpulse.runtime.segments import input_origin
from marketpulse.stream import ProcessorSettings

_PRINT = """
from marketpulse.indicators import parse_set
from marketpulse.runtime.segments import input_origin
from marketpulse.stream import ProcessorSettings

class Feed:
    def identity(self):
        return "file.csv:1234"

print(input_origin(Feed(), ProcessorSettings(indicators=parse_set({text!r})), []))
"""


class _Feed:
    def identity(self) -> str:
        return "file.csv:1234"


def _origin_in_a_new_process(text: str) -> str:
    code = _PRINT.format(text=text)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def test_the_same_declarations_give_the_same_origin_in_every_process() -> None:
    text = "ema(50), bb=bbands(20, 2.5)"
    here = input_origin(_Feed(), ProcessorSettings(indicators=parse_set(text)), [])
    assert here == _origin_in_a_new_process(text) == _origin_in_a_new_process(text)


def test_other_declarations_give_another_origin_and_the_default_keeps_its_own() -> None:
    a = input_origin(_Feed(), ProcessorSettings(indicators=parse_set("ema(50)")), [])
    b = input_origin(_Feed(), ProcessorSettings(indicators=parse_set("ema(51)")), [])
    default = input_origin(_Feed(), ProcessorSettings(), [])
    assert len({a, b, default}) == 3
    # lakes written before declared indicators keep their files' names
    assert "indicators" not in repr(ProcessorSettings())
    assert "fill_gaps" not in repr(ProcessorSettings())
    filled = input_origin(_Feed(), ProcessorSettings(fill_gaps=True), [])
    assert filled not in (a, b, default)


def test_the_default_rules_and_settings_keep_the_origin_of_lakes_written_before() -> None:
    """The Lean day's origin with the default settings and rules, as the code before computed it."""
    from pathlib import Path

    from marketpulse.alerts import default_rules
    from marketpulse.feeds import FileReplay

    trades = (
        Path(__file__).resolve().parents[3].parent / "shared/data/lean-2013-10-07/trades.csv.gz"
    )
    feed = FileReplay(trades)
    # computed by the code of commit b6353fb (before declared indicators and timeframes)
    assert input_origin(feed, ProcessorSettings(), default_rules()) == "3f6bb14f2e0de0bb"
