"""A trades file with bid and ask columns replays the quote in force at each trade."""

from marketpulse.feeds.replay import FileReplay

CSV = """symbol,ts,price,size,bid,ask,ask_size
XYZ,2024-01-02T15:00:00.100Z,10.10,100,10.00,10.10,3
XYZ,2024-01-02T15:00:00.500Z,10.10,200,oops,10.20,3
XYZ,2024-01-02T15:00:00.600Z,10.05,300,10.00,10.20,
ABC,2024-01-02T15:00:00.700Z,5.00,10,4.99,5.01,7
XYZ,2024-01-02T15:00:00.800Z,bad,50,10.00,10.20,1
"""


def test_quotes_come_before_the_trades_of_their_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    feed = FileReplay(path, batch_size=2)
    batches = list(feed.batches())
    assert [b.kind for b in batches] == ["quote", "trade", "quote", "trade"]
    quotes = [b.data.to_pylist() for b in batches if b.kind == "quote"]
    trades = [b.data.column("line").to_pylist() for b in batches if b.kind == "trade"]
    assert trades == [[2, 3], [4, 5]]  # line 6's price is bad: a dead letter, and no quote
    # line 3's bid is not a number: the trade stays, without a quote
    assert [[q["line"] for q in part] for part in quotes] == [[2], [4, 5]]
    assert quotes[1][1] == {"symbol": "ABC", "ts": quotes[1][1]["ts"], "bid": 4.99,
                            "bid_size": None, "ask": 5.01, "ask_size": 7.0, "dataset": None,
                            "line": 5}  # fmt: skip
    assert feed.quotes == 3 and feed.rows == 4 and feed.dead == 1


def test_a_trades_file_without_bid_and_ask_yields_no_quotes(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("symbol,ts,price,size,bid\nXYZ,2024-01-02T15:00:00Z,10,1,9.9\n")
    feed = FileReplay(path)
    assert [b.kind for b in feed.batches()] == ["trade"]
    assert feed.quotes == 0
