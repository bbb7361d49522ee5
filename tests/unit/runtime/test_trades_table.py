"""The embedded pipeline's ``trades`` table holds the trades the processor kept."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from marketpulse.feeds.replay import FileReplay
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.stream.processor import ProcessorSettings

HEADER = "timestamp,symbol,price,size,exchange,condition,suspicious\n"


def _row(second: float, symbol: str, price: float) -> str:
    whole, ms = int(second), round((second % 1) * 1000)
    return f"2013-10-07T13:30:{whole:02d}.{ms:03d}Z,{symbol},{price},100,P,,0\n"


def _input(path: Path) -> tuple[Path, dict[float, str]]:
    """Two symbols, with a bad price, a far-future time and a late trade among them.

    Returns the file and, for every input row's (unique) price, what becomes
    of it: ``"trade"``, or the dlq reason.
    """
    rows = [(s / 4, "SPY" if s % 2 else "AIG", 100.0 + s / 100) for s in range(40)]
    fate = {price: "trade" for _, _, price in rows}
    lines = [_row(*r) for r in rows]
    lines.insert(10, _row(2.25, "SPY", -5.0))  # not a price
    fate[-5.0] = "price"
    lines.insert(20, "2030-01-01T00:00:00.000Z,SPY,167.41,100,P,,0\n")
    fate[167.41] = "future"
    lines.insert(30, _row(1.0, "AIG", 99.5))  # its 1s window closed long ago
    fate[99.5] = "late"
    path.write_text(HEADER + "".join(lines))
    return path, fate


@pytest.mark.parametrize("partitions", [1, 2])
def test_trades_table_holds_the_trades_the_processor_kept_and_the_dlq_the_others(
    tmp_path, partitions
):
    path, fate = _input(tmp_path / "day.csv")
    lake = tmp_path / "lake"
    options = RunnerOptions(
        lake=str(lake), processor=ProcessorSettings(intervals=("1s",)), partitions=partitions
    )
    EmbeddedPipeline(FileReplay(path, batch_size=7), options).run()
    dead = pq.read_table(lake / "dlq").to_pylist()
    # the faults happened: each bad row is in the dlq for its reason
    assert sorted(d["reason"] for d in dead) == ["future", "late", "price"]
    stored = sorted(pq.read_table(lake / "trades").column("price").to_pylist())
    # late trades are real trades that missed their bar: kept, and dlq says why
    # they are in no bar; those refused (not valid, too far ahead) are not
    assert stored == sorted(p for p, f in fate.items() if f in ("trade", "late"))
    assert len(stored) + sum(d["reason"] != "late" for d in dead) == len(fate)
