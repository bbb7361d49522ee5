"""A track record as a section of a Markdown page, replaced in place on each run.

``forecast evaluate --doc docs/forecasts.md`` writes one section per dataset
between two markers (``<!-- forecast evaluate: NAME -->`` and its closing
``<!-- /forecast evaluate: NAME -->``); the rest of the page, its prose and
the other datasets' sections, is kept as it is. A dataset's first section is
added at the end. An evaluation with walk-forward models (which scores their
test windows' bars only) is a section of its own, ``NAME, walk-forward``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from marketpulse.forecast.evaluation import Evaluation

__all__ = ["render_section", "write_section"]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} %"


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _interval(low: float | None, high: float | None, show: Callable[[float], str]) -> str:
    if low is None or high is None:
        return ""
    return f"{show(low)} to {show(high)}"


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


def render_section(evaluation: Evaluation, command: str, title: str | None = None) -> str:
    """The dataset's section: what was evaluated, how, and the table.

    Args:
        evaluation: the evaluation.
        command: the command that gives it.
        title: the section's heading [default: the dataset].
    """
    rows = evaluation.record.to_pylist()
    timeframes = list(dict.fromkeys(str(r["timeframe"]) for r in rows))
    lines = [
        f"## {title or evaluation.dataset}",
        "",
        f"`{command}`: {evaluation.bars:,} bars ({', '.join(timeframes)}) of "
        f"{len(evaluation.symbols)} symbols ({', '.join(evaluation.symbols[:12])}"
        f"{', ...' if len(evaluation.symbols) > 12 else ''}), "
        f"{_day(evaluation.first)} to {_day(evaluation.last)} UTC (bar starts). "
        f"{evaluation.scored}",
        "",
        "| model | timeframe | horizon | predictions | moved | accuracy | 95 % CI "
        "| Brier | 95 % CI | MAE (bp) | 95 % CI |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['timeframe']} | {r['horizon']} | {r['predictions']:,} "
            f"| {r['moved']:,} | {_pct(r['accuracy_pct'])} "
            f"| {_interval(r['accuracy_low_pct'], r['accuracy_high_pct'], _pct)} "
            f"| {_num(r['brier'], 4)} "
            f"| {_interval(r['brier_low'], r['brier_high'], lambda v: _num(v, 4))} "
            f"| {_num(r['mae_bp'], 2)} "
            f"| {_interval(r['mae_bp_low'], r['mae_bp_high'], lambda v: _num(v, 2))} |"
        )
    return "\n".join(lines)


def write_section(path: Path, dataset: str, section: str) -> None:
    """Put ``section`` between the dataset's markers in ``path``, replacing what they held."""
    start, end = f"<!-- forecast evaluate: {dataset} -->", f"<!-- /forecast evaluate: {dataset} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Forecasts\n"
    block = f"{start}\n{section}\n{end}"
    if start in text and end in text.split(start, 1)[1]:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
