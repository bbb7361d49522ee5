"""Processing a poll's batches together gives what processing them one by one gives."""

import msgspec
import numpy as np
import pytest

from marketpulse.alerts import default_rules
from marketpulse.bus import Batch, Message
from marketpulse.models import Quote, Trade
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.json_scan import scan_trades

S = 1_000_000_000
T0 = 1_381_152_600 * S  # 2013-10-07 13:30 UTC
PARTITIONS = 4
SYMBOLS = [f"S{i:02d}" for i in range(12)]


def polls(seed, late=False, bad=False, quotes=False):
    """Polls of raw trade records: a few records per partition each, in time order.

    Symbol ``i`` lives on partition ``i % PARTITIONS``; ``late`` adds trades
    behind the watermark, ``bad`` a malformed record now and then, ``quotes``
    a quote of the symbol before about half the trades (as the simulator sends
    them), and now and then a batch of quotes alone.
    """
    rng = np.random.default_rng(seed)
    offsets = [0] * PARTITIONS
    ts = T0
    out = []
    for poll in range(60):
        batches = []
        for p in rng.permutation(PARTITIONS):
            n = int(rng.integers(0, 6))
            if n == 0:
                continue
            values = []
            for _ in range(n):
                ts += int(rng.integers(1, 300_000_000))
                symbol = SYMBOLS[p + PARTITIONS * int(rng.integers(0, len(SYMBOLS) // PARTITIONS))]
                stamp = ts - 3 * S if late and rng.random() < 0.1 else ts
                price = round(100 + rng.random(), 2)  # as quoted: the fast decoder takes it
                if quotes and rng.random() < 0.5:
                    quote = Quote(symbol, stamp - 1000, price - 0.01, 300.0, price + 0.01, 200.0)
                    values.append(msgspec.json.encode(quote))
                if not (quotes and poll % 15 == 4):  # then a batch of quotes alone, now and then
                    values.append(msgspec.json.encode(Trade(symbol, stamp, price, 10.0)))
            if not values:
                continue
            n = len(values)
            if bad and poll % 20 == 7:
                values[0] = b'{"type": "trade", "symbol": '
            messages = [Message(None, v, offsets[p] + i) for i, v in enumerate(values)]
            batches.append(Batch("ticks", int(p), offsets[p], offsets[p] + n - 1,
                                 messages=messages))  # fmt: skip
            offsets[p] += n
        out.append(batches)
    return out


def rows(outputs):
    """Everything an output holds, comparable."""
    return [
        (o.bars.to_pylist(), o.indicators.to_pylist(), o.alerts,
         [(d.reason, d.offset, d.partition, d.value) for d in o.dead], o.accepted,
         [q.to_pylist() for q in o.quotes], [t.to_pylist() for t in o.trades])
        for o in outputs
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("late", "bad", "quotes"),
    [(False, False, False), (True, False, False), (False, True, False), (False, False, True),
     (True, True, True)],
)  # fmt: skip
def test_batches_of_a_poll_together_give_the_outputs_and_state_of_one_by_one(late, bad, quotes):
    # records the fast decoder takes, so the polls are decoded together
    _, accepted = scan_trades([m.value for b in polls(3)[0] for m in b.messages])
    assert accepted.all()
    settings = ProcessorSettings(intervals=("1s", "1m"), lateness=0)
    one, each = Processor(settings, default_rules()), Processor(settings, default_rules())
    closed, dead = 0, 0
    for batches in polls(3, late, bad, quotes):
        expected = [one.process(b) for b in batches]
        got = each.process_each(batches)
        assert rows(got) == rows(expected)
        closed += sum(o.bars.num_rows for o in got)
        dead += sum(len(o.dead) for o in got)
    assert closed > 100  # bars did close along the way
    assert (dead > 0) == (late or bad)
    for p in range(PARTITIONS):
        # the same symbols in the same order: a partition holds only its own symbols
        assert each.checkpoint("ticks", p) == one.checkpoint("ticks", p)
    last = each.finish()
    assert rows([last]) == rows([one.finish()])
    # with quotes, the bars took the quotes in force: their quote columns are not all null
    assert any(bar.get("last_bid") is not None for bar in last.bars.to_pylist()) == quotes


def test_late_and_malformed_records_of_a_poll_become_dead_letters_naming_their_offsets():
    settings = ProcessorSettings(intervals=("1s",), lateness=0)
    proc = Processor(settings)
    good = [msgspec.json.encode(Trade("S00", T0 + i * S, 10.0, 1.0)) for i in range(3)]
    behind = msgspec.json.encode(Trade("S00", T0, 10.0, 1.0))
    first = Batch("ticks", 0, 10, 12, messages=[Message(None, v, 10 + i) for i, v in
                                                  enumerate(good)])  # fmt: skip
    other = Batch("ticks", 1, 5, 6, messages=[Message(None, behind, 5),
                                              Message(None, good[0], 6)])  # fmt: skip
    proc.process_each([first, other])
    late = Batch("ticks", 0, 13, 13, messages=[Message(None, behind, 13)])
    again = Batch("ticks", 1, 7, 7, messages=[Message(None, b"{not json", 7)])
    outs = proc.process_each([late, again])
    assert [(d.reason, d.partition, d.offset) for d in outs[0].dead] == [("late", 0, 13)]
    assert [(d.reason, d.partition, d.offset) for d in outs[1].dead] == [("schema", 1, 7)]


def test_closing_says_whether_an_active_partition_has_yet_to_close_a_boundary():
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0))

    def trade(partition, symbol, ts, offset):
        value = msgspec.json.encode(Trade(symbol, ts, 100.0, 1.0))
        return Batch("ticks", partition, offset, offset, messages=[Message(None, value, offset)])

    proc.process_each([trade(0, "A", T0 + S // 2, 0), trade(1, "B", T0 + S // 3, 0)])
    boundary = T0 + S
    out = proc.process(trade(0, "A", T0 + S + 1, 1))  # partition 0 crosses: its bar closes
    assert out.bars.column("bar_end").to_pylist() == [boundary]
    now = proc.state("ticks", 0).last_input
    assert proc.closing(boundary, now)  # partition 1 has not crossed yet
    proc.process(trade(1, "B", T0 + S + 2, 1))
    now = proc.state("ticks", 1).last_input
    assert not proc.closing(boundary, now)
    assert proc.closing(boundary + S, now)  # the next boundary is open everywhere
    assert not proc.closing(boundary + S, now + 5.0)  # ... unless the partitions went quiet
