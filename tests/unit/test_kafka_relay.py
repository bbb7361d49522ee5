"""The latency floor's relay (bench/kafka_relay.py) closes 1-second bars as the service does."""

import sys
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from kafka_relay import Closer  # noqa: E402

S = 1_000_000_000
T0 = 1_700_000_000 * S  # a whole second


def ticks(*pairs: tuple[str, int]) -> list[bytes | None]:
    return [
        msgspec.json.encode({"symbol": s, "ts": ts, "price": 1.0, "size": 1.0}) for s, ts in pairs
    ]


def test_a_bar_closes_on_the_first_trade_at_or_after_its_end_with_every_symbol_of_the_second():
    closer = Closer()
    assert closer.add(0, ticks(("B", T0 + 1), ("A", T0 + S // 2), ("B", T0 + S - 1))) == []
    # the trade stamped exactly at the end closes [T0, T0 + 1 s): one row per symbol
    assert closer.add(0, ticks(("C", T0 + S), ("C", T0 + S + 5))) == [("A", T0 + S), ("B", T0 + S)]
    # a gap of seconds with no trade closes only the second that had trades
    assert closer.add(0, ticks(("A", T0 + 5 * S + 7))) == [("C", T0 + 2 * S)]


def test_partitions_close_apart_and_all_past_waits_for_every_partition_with_recent_input():
    closer = Closer()
    closer.add(0, ticks(("A", T0)))
    closer.add(1, ticks(("B", T0 + 3)))
    assert closer.add(0, ticks(("A", T0 + S))) == [("A", T0 + S)]
    now = closer.heard[0]
    assert not closer.all_past(T0 + S, now)  # partition 1 has not closed that second yet
    assert closer.add(1, ticks(("B", T0 + S + 1))) == [("B", T0 + S)]
    assert closer.all_past(T0 + S, now)
    # a partition silent for over a second is not waited for
    closer.add(2, ticks(("C", T0)))
    assert not closer.all_past(T0 + S, closer.heard[2])
    assert closer.all_past(T0 + S, closer.heard[2] + 1.5)


def test_values_without_a_record_are_skipped():
    closer = Closer()
    assert closer.add(0, [None, *ticks(("A", T0))]) == []
    assert closer.end[0] == T0 + S
