"""End to end: ``--conditions lean`` rebuilds Lean's own minute bars from the same trades.

Lean's ``minute_bars.csv.gz`` of 2013-10-07 (2,309 bars) and the day's trades
(``trades.csv.gz``): ``marketpulse replay --conditions lean`` makes every one
of Lean's bars, open, high, low and close exact and volume to the share, in
one pass (the rules: :mod:`marketpulse.stream.tape`, found in
``test_lean_bars.py``). ``--lateness 120``: the closing prints, moved to the
close, arrive up to 65 s after it (IBM's at 16:01:04 ET).
"""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest

from marketpulse.bus import Batch
from marketpulse.feeds import FileReplay
from marketpulse.stream import Processor, ProcessorSettings

from .conftest import LEAN_BARS, LEAN_TRADES

pytestmark = pytest.mark.integration


BAR_FIELDS = ("open", "high", "low", "close", "volume")


def lean_bars():
    """Lean's bars: {(symbol, bar start ns): (open, high, low, close, volume)}."""
    table = pa_csv.read_csv(
        LEAN_BARS, convert_options=pa_csv.ConvertOptions(column_types={"timestamp": pa.string()})
    )
    start = pc.cast(pc.cast(table["timestamp"], pa.timestamp("ns", "UTC")), pa.int64())
    values = (pc.cast(table[n], pa.float64()).to_pylist() for n in BAR_FIELDS)
    rows = zip(table["symbol"].to_pylist(), start.to_pylist(), *values, strict=True)
    return {(s, t): tuple(v) for s, t, *v in rows}


def lake_bars(sql, lake):
    rows = sql(
        lake,
        "SELECT symbol, epoch_ns(bar_start) AS start, open, high, low, close, volume, vwap, "
        "trades FROM bars WHERE timeframe = '1m'",
    )
    return {(r["symbol"], r["start"]): r for r in rows}


def differences(ours, lean):
    """Lean's bars that ours lack or get wrong (any price, or volume to the share), and extras."""
    wrong = {k for k, v in lean.items() if k not in ours or ours[k] != v}
    return wrong, set(ours) - set(lean)


def replay(cli, tmp_path, conditions, name):
    lake = tmp_path / name
    alerts = tmp_path / f"{name}.jsonl"
    cli("replay", LEAN_TRADES, "--intervals", "1m", "--conditions", conditions,
        "--lateness", "120", "--lake", lake, "--alerts-file", alerts)  # fmt: skip
    return lake


def test_replay_with_lean_conditions_gives_leans_minute_bars(cli, sql, tmp_path):
    lean = lean_bars()
    assert len(lean) == 2309
    lake = replay(cli, tmp_path, "lean", "lean")
    rows = lake_bars(sql, lake)
    ours = {k: tuple(r[f] for f in BAR_FIELDS) for k, r in rows.items()}
    assert differences(ours, lean) == (set(), set())  # every bar, OHLC exact, volume to the share
    assert sql(lake, "SELECT count(*) AS n FROM dlq")[0]["n"] == 0

    # today's behaviour (every trade sets prices): 525 of Lean's bars differ, one bar more
    plain = lake_bars(sql, replay(cli, tmp_path, "none", "none"))
    wrong, extra = differences({k: tuple(r[f] for f in BAR_FIELDS) for k, r in plain.items()}, lean)
    assert (len(wrong), len(extra)) == (525, 1)
    # the same day's trades in both: lean leaves out only auction prints and reports, and
    # moves the volume of its minute without a price (AIG 13:47 ET) to the bar before
    assert sum(r["volume"] for r in rows.values()) < sum(r["volume"] for r in plain.values())


def test_backfill_with_lean_conditions_rebuilds_leans_bars_from_the_lakes_trades(
    cli, sql, tmp_path
):
    """A lake replayed without tape rules, recomputed with them: Lean's bars, from the lake."""
    lake = replay(cli, tmp_path, "none", "lake")
    cli("backfill", "--lake", lake, "--intervals", "1m", "--conditions", "lean",
        "--lateness", "120")  # fmt: skip
    ours = {k: tuple(r[f] for f in BAR_FIELDS) for k, r in lake_bars(sql, lake).items()}
    assert differences(ours, lean_bars()) == (set(), set())


def test_the_setting_and_the_environment_take_the_same_values(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    (tmp_path / "marketpulse.toml").write_text('conditions = "lean"\nlateness = 120\n')
    cli("replay", LEAN_TRADES, "--intervals", "1m", "--lake", lake,
        "--alerts-file", tmp_path / "a.jsonl")  # fmt: skip
    ours = {k: tuple(r[f] for f in BAR_FIELDS) for k, r in lake_bars(sql, lake).items()}
    assert differences(ours, lean_bars()) == (set(), set())


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--conditions", "nope"], {}, ["nope", "none, lean"]),
        ([], {"MARKETPULSE_CONDITIONS": "nope"}, ["nope", "none, lean"]),
        (["--conditions", "lean", "--fill-gaps"], {}, ["--fill-gaps", "--conditions lean"]),
    ],
)
@pytest.mark.parametrize("command", ["replay", "run", "process", "backfill"])
def test_bad_conditions_one_line_exit_2(cli, tmp_path, command, args, env, words):
    where = {
        "replay": [LEAN_TRADES, "--lake", tmp_path / "lake"],
        "run": ["--duration", "1", "--no-dashboard", "--lake", tmp_path / "lake"],
        "process": ["--bootstrap-servers", "127.0.0.1:1", "--exit-when-idle", "1"],
        "backfill": ["--lake", tmp_path / "lake"],
    }[command]
    result = cli(command, *where, *args, env=env, ok=False)
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert all(w in line for w in words), line
    assert not (tmp_path / "lake").exists()


def test_processor_checkpoint_mid_day_restores_held_bars_and_auction_state():
    """Lean's day through the processor with a checkpoint/restore every 50,000 trades."""
    settings = ProcessorSettings(intervals=("1m", "5m"), lateness=120, conditions="lean")

    def run(restore_every):
        processor, offset, tables, store = Processor(settings), 0, [], {}
        for batch in FileReplay(LEAN_TRADES).batches():
            for lo in range(0, batch.data.num_rows, 50_000):
                data = batch.data.slice(lo, 50_000)
                n = data.num_rows
                tables.append(processor.process(
                    Batch("ticks", 0, offset, offset + n - 1, kind=batch.kind, columns=data)
                ).bars)  # fmt: skip
                offset += n
                if restore_every:
                    store.update(processor.checkpoint("ticks", 0))  # a compacted topic
                    processor = Processor(settings)
                    processor.restore("ticks", 0, store)
        tables.append(processor.finish().bars)
        return pa.concat_tables(tables)

    once, restored = run(False), run(True)
    assert once.num_rows > 2309 and restored.equals(once)
    minute = once.filter(pc.equal(once["timeframe"], "1m"))
    ours = {
        (s, t): (o, h, lo, c, v)
        for s, t, o, h, lo, c, v in zip(
            *(minute[n].to_pylist() for n in ("symbol", "bar_start", *BAR_FIELDS)), strict=True
        )
    }
    assert differences(ours, lean_bars()) == (set(), set())
