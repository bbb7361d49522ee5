"""A partition's state, saved as ``state`` records and restored, continues exactly."""

import dataclasses

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from marketpulse.alerts import default_rules
from marketpulse.bus import Batch
from marketpulse.feeds import Simulator
from marketpulse.indicators import parse_set
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream import checkpoint as checkpoint_module
from marketpulse.stream.checkpoint import META_KEY, NAMES_KEY, CheckpointError

SETTINGS = ProcessorSettings(intervals=("1s", "1m", "5m"), lateness=0.5)


def simulated(n_events=80_000, batch_size=2_000, rate=40):
    feed = Simulator(symbols=40, rate=rate, seed=7, realtime=False, batch_size=batch_size,
                     max_events=n_events)  # fmt: skip
    batches, offset = [], 0
    for item in feed.batches():
        data = item.data
        batches.append(Batch("ticks", 3, offset, offset + data.num_rows - 1, "trade", data))
        offset += data.num_rows
    return batches


def rows(outputs):
    bars = pa.concat_tables([o.bars for o in outputs]).to_pylist()
    indicators = pa.concat_tables([o.indicators for o in outputs]).to_pylist()
    alerts = [a for o in outputs for a in o.alerts]
    return bars, indicators, alerts


def test_restored_state_continues_exactly_like_an_uninterrupted_run():
    batches = simulated()
    reference = Processor(SETTINGS, default_rules())
    expected = [reference.process(b) for b in batches]

    first = Processor(SETTINGS, default_rules())
    compacted: dict[bytes, bytes] = {}  # what a compacted state topic keeps: the latest per key
    outputs = []
    split = len(batches) * 2 // 3
    for batch in batches[:split]:
        outputs.append(first.process(batch))
        compacted.update(first.checkpoint("ticks", 3))
    second = Processor(SETTINGS, default_rules())
    restored = second.restore("ticks", 3, compacted)
    outputs += [second.process(b) for b in batches[split:]]

    assert restored == 40
    want_bars, want_indicators, want_alerts = rows(expected)
    got_bars, got_indicators, got_alerts = rows(outputs)
    assert len(want_bars) > 1_000 and want_alerts
    assert got_bars == want_bars
    assert got_indicators == want_indicators
    assert got_alerts == want_alerts


def test_a_checkpoint_holds_only_the_symbols_changed_since_the_last_one():
    proc = Processor(SETTINGS)
    batches = simulated(n_events=4_000, batch_size=1_000)
    proc.process(batches[0])
    first = [k for k, _ in proc.checkpoint("ticks", 3)]
    assert first[:2] == [META_KEY, NAMES_KEY + b"0"] and len(first) == 2 + 40
    assert [k for k, _ in proc.checkpoint("ticks", 3)] == [META_KEY]
    one = batches[1].columns.filter(pa.compute.equal(batches[1].columns["symbol"], "SPY"))
    proc.process(Batch("ticks", 3, 1_000, 1_000 + one.num_rows - 1, "trade", one))
    keys = [k for k, _ in proc.checkpoint("ticks", 3)]
    assert keys[0] == META_KEY and b"SPY" in keys
    assert not [k for k in keys if k.startswith(NAMES_KEY)]  # no new symbol: no names record


def test_only_the_names_record_whose_names_grew_is_written_and_they_restore_in_order(
    monkeypatch,
):
    """The symbols' names, in the order first seen, go in records of a few names each; a
    checkpoint writes again only the records holding names added since the last one,
    never the whole list (at 100,000 symbols 130 kB in every transaction)."""
    monkeypatch.setattr(checkpoint_module, "NAMES_PER_RECORD", 16)
    batches = simulated(n_events=20_000, batch_size=500)
    proc, compacted = Processor(SETTINGS), {}
    written = []  # the names records of each checkpoint
    for batch in batches[:20]:
        proc.process(batch)
        records = proc.checkpoint("ticks", 3)
        written.append([k for k, _ in records if k.startswith(NAMES_KEY)])
        compacted.update(records)
    names = proc.state("ticks", 3).names.tolist()
    assert len(names) == 40  # 40 symbols: records 0, 1 and 2 (16, 16 and 8 names)
    assert sorted(k for k in compacted if k.startswith(NAMES_KEY)) == [
        NAMES_KEY + b"0", NAMES_KEY + b"1", NAMES_KEY + b"2"
    ]  # fmt: skip
    assert written[0] and written[-1] == []  # the names stopped growing: none written
    # a record is written again only while its names grow: record 0 never after it is full
    full = next(i for i, keys in enumerate(written) if NAMES_KEY + b"1" in keys)
    assert all(NAMES_KEY + b"0" not in keys for keys in written[full + 1 :])
    other = Processor(SETTINGS)
    assert other.restore("ticks", 3, compacted) == 40
    assert other.state("ticks", 3).names.tolist() == names  # the order bars close in
    # the restored processor writes no name again until a new symbol comes
    assert not [k for k, _ in other.checkpoint("ticks", 3) if k.startswith(NAMES_KEY)]
    # a names record lost: refused in one line, not restored with the ids shifted
    del compacted[NAMES_KEY + b"1"]
    with pytest.raises(CheckpointError, match=r"names 40 symbols, and __names__:1 is missing"):
        Processor(SETTINGS).restore("ticks", 3, compacted)


def test_state_of_the_first_version_with_the_names_in_the_partition_record_restores():
    proc = Processor(SETTINGS)
    batches = simulated(n_events=4_000, batch_size=1_000)
    proc.process(batches[0])
    records = dict(proc.checkpoint("ticks", 3))
    names = msgspec.msgpack.decode(records.pop(NAMES_KEY + b"0"))
    meta = msgspec.msgpack.decode(records[META_KEY])
    assert meta["names"] == [] and meta["count"] == len(names) == 40
    meta.update(version=1, names=names)
    del meta["count"]
    records[META_KEY] = msgspec.msgpack.encode(meta)
    other = Processor(SETTINGS)
    assert other.restore("ticks", 3, records) == 40
    assert other.state("ticks", 3).names.tolist() == names
    assert [o.bars.to_pylist() for o in map(other.process, batches[1:])] == [
        o.bars.to_pylist() for o in map(proc.process, batches[1:])
    ]


def test_state_written_with_other_intervals_is_refused_with_the_reason():
    proc = Processor(SETTINGS)
    proc.process(simulated(n_events=1_000, batch_size=1_000)[0])
    records = dict(proc.checkpoint("ticks", 3))
    other = Processor(ProcessorSettings(intervals=("1s", "1m"), lateness=0.5))
    with pytest.raises(CheckpointError, match="intervals 1s,1m,5m"):
        other.restore("ticks", 3, records)


def test_symbols_cut_into_bytes_together_give_each_symbol_s_own_bytes():
    proc = Processor(SETTINGS, default_rules())
    for batch in simulated(n_events=20_000)[:7]:
        proc.process(batch)
    state = proc.state("ticks", 3)
    sids = np.array([5, 0, 39, 17, 17, 60])  # unordered, repeated, one never seen
    windows = state.windows.snapshot_symbols(sids)
    assert windows == [state.windows.snapshot_symbols(np.array([s]))[0] for s in sids]
    keys = np.array([0, 3, 41, 8 * 39 + 2, 10**6])  # the last: beyond the arrays
    counts = state.indicators.bar_counts(keys)
    assert counts.tolist() == [state.indicators.bars(int(k)) for k in keys]
    assert counts[0] > 0 and counts[-1] == 0
    assert state.indicators.snapshots(keys) == [state.indicators.snapshot(int(k)) for k in keys]


def test_state_written_before_the_pending_jump_was_kept_restores():
    """Partition records of older versions hold three clock values, not four."""
    proc = Processor(SETTINGS)
    proc.process(simulated(n_events=1_000, batch_size=1_000)[0])
    records = dict(proc.checkpoint("ticks", 3))
    meta = msgspec.msgpack.decode(records[META_KEY])
    assert len(meta["clock"]) == 4
    meta["clock"] = meta["clock"][:3]
    records[META_KEY] = msgspec.msgpack.encode(meta)
    other = Processor(SETTINGS)
    assert other.restore("ticks", 3, records) == 40
    state, original = other.state("ticks", 3), proc.state("ticks", 3)
    assert state.windows.max_ts == original.windows.max_ts
    assert state.windows.watermark == original.windows.watermark


def test_state_of_another_dataset_is_refused_and_state_from_before_datasets_restores():
    settings = ProcessorSettings(intervals=("1s", "1m", "5m"), lateness=0.5, dataset="lean")
    proc = Processor(settings)
    proc.process(simulated(n_events=1_000, batch_size=1_000)[0])
    records = dict(proc.checkpoint("ticks", 3))
    assert msgspec.msgpack.decode(records[META_KEY])["dataset"] == "lean"
    other = Processor(ProcessorSettings(intervals=("1s", "1m", "5m"), lateness=0.5))  # live
    with pytest.raises(CheckpointError, match="dataset lean, not live"):
        other.restore("ticks", 3, records)
    assert Processor(settings).restore("ticks", 3, records) == 40
    meta = msgspec.msgpack.decode(records[META_KEY])
    del meta["dataset"]  # written before datasets: restores under any
    records[META_KEY] = msgspec.msgpack.encode(meta)
    assert other.restore("ticks", 3, records) == 40


def test_a_declared_set_restores_exactly_and_another_set_is_refused_with_the_difference():
    declared = parse_set("ema(50), rsi(7), bb=bbands(20, 2.5), stoch, adx")
    settings = ProcessorSettings(intervals=("1s", "1m"), lateness=0.5, indicators=declared)
    batches = simulated(n_events=40_000)
    reference = Processor(settings)
    expected = [reference.process(b) for b in batches]
    first = Processor(settings)
    compacted: dict[bytes, bytes] = {}
    split = len(batches) // 2
    outputs = []
    for batch in batches[:split]:
        outputs.append(first.process(batch))
        compacted.update(first.checkpoint("ticks", 3))
    second = Processor(settings)
    assert second.restore("ticks", 3, compacted) == 40
    outputs += [second.process(b) for b in batches[split:]]
    want, got = rows(expected)[1], rows(outputs)[1]
    assert set(want[0]) >= {"ema_50", "rsi_7", "bb_upper", "stoch_k", "adx"}
    assert sum(r["ema_50"] is not None for r in want) > 100
    assert got == want

    changed = dataclasses.replace(settings, indicators=parse_set("ema(50), rsi(8)"))
    with pytest.raises(CheckpointError) as caught:
        Processor(changed).restore("ticks", 3, compacted)
    message = str(caught.value)
    assert "other declared indicators" in message
    assert "(not declared now: rsi_7, bb, stoch, adx; new: rsi_8)" in message
    # records from before declared indicators hold none: they are the default set's
    meta = msgspec.msgpack.decode(compacted[META_KEY])
    del meta["indicators"]
    old = {**compacted, META_KEY: msgspec.msgpack.encode(meta)}
    with pytest.raises(CheckpointError, match="other declared indicators"):
        Processor(settings).restore("ticks", 3, old)
