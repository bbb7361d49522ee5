"""FileReplay(exclude_conditions=...): leaving trades out by their sale condition."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketpulse.exceptions import InputError
from marketpulse.feeds import FileReplay, open_feed
from marketpulse.feeds.conditions import CONDITION_PRESETS, lean_excludes_price

HEADER = "timestamp,symbol,price,size,exchange,condition,suspicious\n"


def row(second: int, condition: str, symbol: str = "SPY", suspicious: str = "0") -> str:
    return f"2013-10-07T14:00:{second:02d}.000Z,{symbol},10.5,100,P,{condition},{suspicious}\n"


def replay(feed):
    batches = list(feed.batches())
    rows = [r for b in batches for r in b.data.to_pylist()]
    return rows, [d for b in batches for d in b.dead]


@pytest.mark.parametrize(
    ("condition", "excluded"),
    [
        ("1", False),  # Regular
        ("20000020", True),  # IntermarketSweep | TradeThroughExempt
        ("20", True),  # IntermarketSweep
        ("20000000", True),  # TradeThroughExempt
        ("80000000", True),  # OddLot
        ("20100200", True),  # TTE | AveragePrice | DerivativelyPriced: no included flag
        ("20000008", True),  # TTE | Seller: Seller is not an included flag
        ("20002020", False),  # ISO | TTE | ExtendedHours: ExtendedHours is included
        ("20000001", False),  # TTE | Regular
        ("20000002", False),  # TTE | Cash
        ("20000004", False),  # TTE | NextDay
        ("20000040", False),  # TTE | OpeningPrints
        ("20000080", False),  # TTE | ClosingPrints
        ("20200040", False),  # TTE | Cross | OpeningPrints
        ("80000400", False),  # OddLot | FormT
        ("4000000", False),  # OfficialOpen
        ("1000000", False),  # OfficialClose
        ("4800", False),  # Sold | OutOfSequence: no excluded flag either
        ("100000", False),  # AveragePrice alone
        ("0", False),
        (" 20 ", True),  # surrounding blanks are ignored, as by Lean's uint.Parse
        ("2a0000020", False),  # more than 32 bits: not a Lean condition
        ("0x20", False),
        ("2_0", False),
        ("-20", False),
        ("F", False),
        ("@F", False),
        ("", False),
        (None, False),
    ],
)
def test_lean_rule(condition, excluded):
    assert lean_excludes_price(condition) is excluded


def test_default_keeps_every_trade(write_file):
    path = write_file("t.csv", HEADER + row(1, "1") + row(2, "20000020") + row(3, "20"))
    feed = FileReplay(path)
    rows, dead = replay(feed)
    assert [r["condition"] for r in rows] == ["1", "20000020", "20"]
    assert feed.excluded == 0 and dead == []


def test_lean_preset(write_file):
    path = write_file(
        "t.csv",
        HEADER
        + row(1, "1")
        + row(2, "20000020")
        + row(3, "20002020")
        + row(4, "20")
        + row(5, "")
        + row(6, "4000000"),
    )
    feed = FileReplay(path, exclude_conditions="lean")
    rows, dead = replay(feed)
    assert [(r["line"], r["condition"]) for r in rows] == [
        (2, "1"),
        (4, "20002020"),
        (6, None),  # no condition: kept
        (7, "4000000"),
    ]
    assert dead == []
    assert feed.excluded == 2 and feed.rows == 4
    assert "lean" in CONDITION_PRESETS


def test_codes(write_file):
    path = write_file("t.csv", HEADER + row(1, "1") + row(2, "20") + row(3, "020") + row(4, "X"))
    feed = FileReplay(path, exclude_conditions=["20", "X"])
    rows, _ = replay(feed)
    assert [r["condition"] for r in rows] == ["1", "020"]  # exact text, not the number
    assert feed.excluded == 2


def test_empty_collection_keeps_every_trade(write_file):
    path = write_file("t.csv", HEADER + row(1, "20"))
    feed = FileReplay(path, exclude_conditions=set())
    assert len(replay(feed)[0]) == 1 and feed.excluded == 0


def test_counts_only_rows_otherwise_kept(write_file):
    path = write_file(
        "t.csv",
        HEADER
        + row(1, "20", suspicious="1")  # suspicious first: counted there
        + row(2, "20", symbol="IBM")  # another symbol: not replayed at all
        + "2013-10-07T14:00:03.000Z,SPY,abc,100,P,20,0\n"  # unreadable: a dead letter
        + row(4, "20")
        + row(5, "1"),
    )
    feed = FileReplay(path, symbol="SPY", exclude_conditions="lean")
    rows, dead = replay(feed)
    assert [r["line"] for r in rows] == [6]
    assert [(d.reason, d.line) for d in dead] == [("parse", 4)]
    assert (feed.suspicious, feed.excluded, feed.dead, feed.rows) == (1, 1, 1, 1)


def test_counts_reset_for_each_replay(write_file):
    path = write_file("t.csv", HEADER + row(1, "20") + row(2, "1"))
    feed = FileReplay(path, exclude_conditions="lean", batch_size=1)
    for _ in range(2):
        rows, _ = replay(feed)
        assert len(rows) == 1 and feed.excluded == 1


def test_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    table = pa.table(
        {
            "timestamp": ["2013-10-07T14:00:01Z", "2013-10-07T14:00:02Z", "2013-10-07T14:00:03Z"],
            "symbol": ["SPY"] * 3,
            "price": [10.0, 10.1, 10.2],
            "size": [100, 200, 300],
            "condition": ["1", "20000020", None],
        }
    )
    pq.write_table(table, path)
    feed = FileReplay(path, exclude_conditions="lean")
    rows, _ = replay(feed)
    assert [r["size"] for r in rows] == [100.0, 300.0]
    assert feed.excluded == 1


def test_open_feed_passes_the_option(write_file):
    path = write_file("t.csv", HEADER + row(1, "20") + row(2, "1"))
    feed = open_feed(path, exclude_conditions="lean")
    assert len(replay(feed)[0]) == 1


def test_unknown_preset(write_file):
    path = write_file("t.csv", HEADER + row(1, "1"))
    with pytest.raises(ValueError, match="unknown exclude_conditions preset 'algoseek'.*lean"):
        FileReplay(path, exclude_conditions="algoseek")


def test_codes_must_be_text(write_file):
    path = write_file("t.csv", HEADER + row(1, "1"))
    with pytest.raises(TypeError, match="strings"):
        FileReplay(path, exclude_conditions=[20])


def test_needs_a_condition_column(write_file):
    path = write_file("t.csv", "timestamp,symbol,price,size\n2013-10-07T14:00:01Z,SPY,1,1\n")
    with pytest.raises(InputError, match="needs a condition column.*timestamp, symbol"):
        FileReplay(path, exclude_conditions="lean")
    assert FileReplay(path).format == "trades"


def test_trades_only(write_file):
    path = write_file("b.csv", "date,open,high,low,close\n2020-01-02,1,2,0.5,1.5\n")
    with pytest.raises(ValueError, match="applies to trades"):
        FileReplay(path, symbol="X", exclude_conditions="lean")
