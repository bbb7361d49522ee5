"""Figures for people in the commands' summaries."""

from __future__ import annotations

import pytest

from marketpulse.human import human_bytes, human_duration, human_rate


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (512, "512 B"), (999, "999 B"), (1_234, "1.2 kB"), (999_949, "999.9 kB"),
     (999_950, "1.0 MB"), (12_345_678, "12.3 MB"), (269_000_000_000, "269.0 GB")],
)  # fmt: skip
def test_bytes(count, text):
    assert human_bytes(count) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0.00 s"), (0.234, "0.23 s"), (9.994, "9.99 s"), (42.13, "42.1 s"),
     (69.4, "1 min 9 s"), (725, "12 min 5 s"), (12_000, "3 h 20 min"),
     (float("nan"), "-")],
)  # fmt: skip
def test_durations(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("count", "seconds", "text"),
    [(1_234_567, 1.0, "1,234,567"), (2, 5.0, "0.4"), (0, 0.0, "0"), (10, 0.0, "0"),
     (52_345, 1.0, "52,345")],
)  # fmt: skip
def test_rates(count, seconds, text):
    assert human_rate(count, seconds) == text
