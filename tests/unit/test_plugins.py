"""Plugins: loading ``module:function``, calling them on closed bars, checking what they return."""

import math
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.bus import Batch
from marketpulse.bus.codec import decode_rows, encode_rows
from marketpulse.bus.topics import PLUGIN_TOPICS, Topics, topic_specs
from marketpulse.exceptions import ConfigError
from marketpulse.models import BAR_SCHEMA, CUSTOM_SCHEMA, TRADE_SCHEMA, Alert
from marketpulse.plugins import (
    Plugin,
    PluginResult,
    alert,
    load_plugin,
    load_plugins,
    plugin,
    plugin_input,
    run_plugins,
)
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.output import indicators_table

S = 1_000_000_000
T0 = 1_381_152_600 * S  # 2013-10-07 13:30 UTC


def bars_and_indicators(n=4):
    """``n`` closed 1s bars of AAPL and MSFT, with indicators (bb_* set on the later rows)."""
    symbols = np.array(["AAPL", "MSFT"] * (n // 2), object)
    start = np.array([T0 + (i // 2) * S for i in range(n)], np.int64)
    close = np.arange(n, dtype=np.float64) + 100.0
    bars = pa.table(
        {
            "symbol": pa.array(symbols, pa.string()),
            "timeframe": pa.array(["1s"] * n, pa.string()),
            "bar_start": start,
            "bar_end": start + S,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.full(n, 10.0),
            "vwap": close,
            "trades": np.ones(n, np.int64),
            "dataset": pa.array(["test"] * n, pa.string()),
        },  # fmt: skip
        schema=BAR_SCHEMA,
    )
    values = np.full((n, 13), np.nan)
    values[:, 8] = close - 0.5  # bb_middle
    values[:, 7] = close + 1.5  # bb_upper: sigma 1
    values[:, 11] = 42.0  # the session vwap
    indicators = indicators_table(symbols, np.array(["1s"] * n, object), start, start + S,
                                  close, values)  # fmt: skip
    return bars, indicators


def arrow(fn, spec="t:fn"):
    return Plugin(spec, fn, False)


# loading


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("mp_plug_")]:
        del sys.modules[name]


def write_module(where, name, text):
    (where / f"{name}.py").write_text(textwrap.dedent(text))


def test_a_spec_loads_its_function_and_the_pandas_mark(module_dir):
    write_module(module_dir, "mp_plug_ok", """
        from marketpulse.plugins import plugin

        def arrow_fn(bars):
            return None

        @plugin(pandas=True)
        def frame_fn(frame):
            return None

        class Holder:
            @staticmethod
            def method(bars):
                return None
    """)  # fmt: skip
    specs = ["mp_plug_ok:arrow_fn", "mp_plug_ok:frame_fn", "mp_plug_ok:Holder.method"]
    loaded = load_plugins(specs)
    assert [(p.spec, p.pandas) for p in loaded] == [
        ("mp_plug_ok:arrow_fn", False), ("mp_plug_ok:frame_fn", True),
        ("mp_plug_ok:Holder.method", False),
    ]  # fmt: skip
    assert loaded[0].function(None) is None
    # the repr names the spec only: a run's identity does not change with memory addresses
    assert repr(loaded[0]) == "Plugin(spec='mp_plug_ok:arrow_fn', pandas=False)"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no_colon_here", "expected module:function"),
        (":fn", "expected module:function"),
        ("mp_plug_ok2:", "expected module:function"),
        ("mp_plug_absent:fn", "no module named 'mp_plug_absent'"),
        ("mp_plug_ok2:missing", "has no attribute 'missing'"),
        ("mp_plug_ok2:NUMBER", "NUMBER is not callable"),
        ("mp_plug_broken:fn", "importing mp_plug_broken failed: ZeroDivisionError"),
    ],
)
def test_a_bad_spec_is_one_line_naming_it(module_dir, spec, says):
    write_module(module_dir, "mp_plug_ok2", "NUMBER = 3\ndef fn(bars):\n    return None\n")
    write_module(module_dir, "mp_plug_broken", "1 / 0\n")
    with pytest.raises(ConfigError) as caught:
        load_plugin(spec)
    message = str(caught.value)
    assert says in message and repr(spec) in message and "\n" not in message


def test_a_spec_given_twice_is_refused(module_dir):
    write_module(module_dir, "mp_plug_twice", "def fn(bars):\n    return None\n")
    with pytest.raises(ConfigError, match="given twice"):
        load_plugins(["mp_plug_twice:fn", "mp_plug_twice:fn"])


def test_the_function_attribute_marks_a_pandas_plugin_too(module_dir):
    write_module(module_dir, "mp_plug_attr", """
        def fn(frame):
            return None
        fn.marketpulse_pandas = True
    """)  # fmt: skip
    assert load_plugin("mp_plug_attr:fn").pandas


# the input


def test_the_input_is_the_bars_with_their_indicators_as_the_lake_view_names_them():
    bars, indicators = bars_and_indicators()
    data = plugin_input(bars, indicators)
    assert data.column_names[:5] == ["dataset", "symbol", "timeframe", "bar_start", "bar_end"]
    assert {"open", "close", "vwap", "trades", "bb_middle", "rsi_14", "session_vwap"} <= set(
        data.column_names
    )
    assert data.column("vwap").to_pylist() == bars.column("close").to_pylist()  # the bar's own
    assert data.column("session_vwap").to_pylist() == [42.0] * 4  # the indicators'


# what plugins return


def test_arrow_columns_become_long_rows_one_per_bar_and_name():
    bars, indicators = bars_and_indicators()
    seen = []

    def fn(data):
        seen.append(type(data))
        close = data.column("close").to_numpy()
        return pa.table({"double_close": close * 2, "one": np.ones(len(close), np.int64)})

    made = run_plugins([arrow(fn)], bars, indicators, "test")
    assert seen == [pa.Table]
    assert made.dead == [] and made.alerts == []
    assert made.custom.schema == CUSTOM_SCHEMA
    rows = made.custom.to_pylist()
    assert len(rows) == 2 * bars.num_rows
    doubles = [r for r in rows if r["name"] == "double_close"]
    assert [r["value"] for r in doubles] == [2 * c for c in bars.column("close").to_pylist()]
    assert [(r["symbol"], r["bar_start"], r["bar_end"], r["timeframe"], r["dataset"])
            for r in doubles] == [
        (s, b, e, "1s", "test") for s, b, e in zip(
            bars.column("symbol").to_pylist(), bars.column("bar_start").to_pylist(),
            bars.column("bar_end").to_pylist(), strict=True)
    ]  # fmt: skip
    assert {r["value"] for r in rows if r["name"] == "one"} == {1.0}


def test_nan_values_are_stored_as_null():
    bars, indicators = bars_and_indicators()
    made = run_plugins([arrow(lambda d: {"x": [math.nan, 1.0, None, 2.0]})], bars, indicators, "t")
    assert made.custom.column("value").to_pylist() == [None, 1.0, None, 2.0]


def test_a_pandas_plugin_gets_a_dataframe_and_may_return_one():
    pd = pytest.importorskip("pandas")
    bars, indicators = bars_and_indicators()

    @plugin(pandas=True)
    def fn(frame):
        assert isinstance(frame, pd.DataFrame)
        return pd.DataFrame({"spread": frame["high"] - frame["low"]}, index=frame.index)

    made = run_plugins([Plugin("t:fn", fn, True)], bars, indicators, "test")
    assert made.dead == []
    assert made.custom.column("value").to_pylist() == [2.0] * 4


def test_a_pandas_plugin_whose_rows_are_reordered_is_refused():
    pytest.importorskip("pandas")
    bars, indicators = bars_and_indicators()

    def fn(frame):
        return frame[["close"]].rename(columns={"close": "c"}).iloc[::-1]

    made = run_plugins([Plugin("t:fn", fn, True)], bars, indicators, "test")
    assert made.custom.num_rows == 0
    assert [d.reason for d in made.dead] == ["plugin"]
    assert "not aligned" in made.dead[0].error


@pytest.mark.parametrize(
    ("returned", "says"),
    [
        (lambda d: {"x": [1.0, 2.0]}, "returned 2 rows for 4 bars"),
        (lambda d: pa.table({"x": [1.0] * 5}), "returned 5 rows for 4 bars"),
        (lambda d: {"Zscore": [1.0] * 4}, "column name 'Zscore'"),
        (lambda d: {"1x": [1.0] * 4}, "column name '1x'"),
        (lambda d: {"close": [1.0] * 4}, "column 'close' clashes"),
        (lambda d: {"session_vwap": [1.0] * 4}, "column 'session_vwap' clashes"),
        (lambda d: {"x": ["a", "b", "c", "d"]}, "column 'x' is not numbers"),
        (lambda d: [1, 2, 3], "returned a list"),
        (lambda d: PluginResult(alerts=["not an alert"]), "alerts must be a list"),
    ],
)
def test_unusable_output_is_a_dead_letter_naming_the_plugin(returned, says):
    bars, indicators = bars_and_indicators()
    made = run_plugins([arrow(returned, "mine:bad")], bars, indicators, "test")
    assert made.custom.num_rows == 0 and made.alerts == []
    (letter,) = made.dead
    assert letter.reason == "plugin"
    assert letter.error.startswith("plugin mine:bad: ") and says in letter.error


def test_a_name_an_earlier_plugin_made_is_refused_to_the_later_one():
    bars, indicators = bars_and_indicators()
    first = arrow(lambda d: {"x": [1.0] * 4}, "a:first")
    second = arrow(lambda d: {"x": [2.0] * 4}, "b:second")
    made = run_plugins([first, second], bars, indicators, "test")
    assert made.custom.column("value").to_pylist() == [1.0] * 4
    assert [d.error for d in made.dead] == [
        "plugin b:second: column 'x' clashes with an input column or an earlier plugin's"
    ]


def test_a_plugin_that_raises_loses_its_output_and_the_others_go_on():
    bars, indicators = bars_and_indicators()

    def boom(data):
        raise KeyError("no_such_column")

    good = arrow(lambda d: {"y": [3.0] * 4}, "a:good")
    made = run_plugins([arrow(boom, "a:boom"), good], bars, indicators, "test")
    assert made.custom.column("name").to_pylist() == ["y"] * 4
    (letter,) = made.dead
    assert letter.reason == "plugin"
    assert letter.error == "plugin a:boom: KeyError: 'no_such_column'"
    assert letter.ts == T0 and b'"plugin":"a:boom"' in letter.value


def test_alerts_get_an_id_and_the_dataset():
    bars, indicators = bars_and_indicators()

    def fn(data):
        row = 3
        made = alert("big", data.column("symbol")[row].as_py(), "1s",
                     data.column("bar_start")[row].as_py(), data.column("bar_end")[row].as_py(),
                     "close is big", details={"close": 103})  # fmt: skip
        return PluginResult(alerts=[made])

    first = run_plugins([arrow(fn)], bars, indicators, "test").alerts
    again = run_plugins([arrow(fn)], bars, indicators, "test").alerts
    other = run_plugins([arrow(fn)], bars, indicators, "other").alerts
    (found,) = first
    assert isinstance(found, Alert)
    assert (found.rule, found.symbol, found.dataset, found.details) == (
        "big",
        "MSFT",
        "test",
        {"close": 103.0},
    )
    assert len(found.id) == 16 and found.id == again[0].id != other[0].id


# in the processor


def trade_batch(rows, first=0):
    columns = {
        "symbol": pa.array([r[0] for r in rows], pa.string()).dictionary_encode(),
        "ts": pa.array([r[1] for r in rows], pa.int64()),
        "price": pa.array([r[2] for r in rows], pa.float64()),
        "size": pa.array([r[3] for r in rows], pa.float64()),
        "exchange": pa.nulls(len(rows), pa.string()),
        "condition": pa.nulls(len(rows), pa.string()),
        "dataset": pa.nulls(len(rows), pa.string()),
    }
    data = pa.RecordBatch.from_pydict(columns, schema=TRADE_SCHEMA)
    return Batch("ticks", 0, first, first + data.num_rows - 1, kind="trade", columns=data)


def test_the_processor_adds_plugin_rows_and_a_failure_goes_to_the_dlq_while_bars_go_on():
    calls = []

    def flaky(data):
        calls.append(data.num_rows)
        if len(calls) == 1:
            raise RuntimeError("first batch fails")
        return PluginResult(
            columns={"twice": pc_mul(data.column("close"))},
            alerts=[alert("seen", s, tf, b, e, "a bar")
                    for s, tf, b, e in zip(*(data.column(n).to_pylist() for n in
                                             ("symbol", "timeframe", "bar_start", "bar_end")),
                                           strict=True)],
        )  # fmt: skip

    settings = ProcessorSettings(intervals=("1s",), lateness=0, dataset="ds",
                                 plugins=(Plugin("t:flaky", flaky, False),))  # fmt: skip
    proc = Processor(settings)
    out1 = proc.process(trade_batch([("AAPL", T0, 10.0, 1), ("AAPL", T0 + S, 11.0, 1)]))
    assert out1.bars.num_rows == 1 and out1.custom.num_rows == 0
    assert [(d.reason, d.error) for d in out1.dead] == [
        ("plugin", "plugin t:flaky: RuntimeError: first batch fails")
    ]
    out2 = proc.process(trade_batch([("AAPL", T0 + 2 * S, 12.0, 1)], first=2))
    assert out2.bars.num_rows == 1 and out2.dead == []
    assert out2.custom.to_pylist() == [
        {"symbol": "AAPL", "timeframe": "1s", "bar_start": T0 + S, "bar_end": T0 + 2 * S,
         "name": "twice", "value": 22.0, "dataset": "ds"}
    ]  # fmt: skip
    assert [a.rule for a in out2.alerts] == ["seen"] and out2.alerts[0].dataset == "ds"
    out3 = proc.finish()
    assert out3.custom.column("value").to_pylist() == [24.0]
    # the warm-up runs no plugin
    before = len(calls)
    Processor(settings).warm_up()
    assert len(calls) == before


def pc_mul(column):
    return column.to_numpy() * 2


# on the wire


def test_custom_rows_round_trip_through_the_codec():
    rows = pa.table(
        {"symbol": ["A", "B"], "timeframe": ["1m", "1m"], "bar_start": [1, 2], "bar_end": [3, 4],
         "name": ["z", "z"], "value": [1.5, None], "dataset": ["d", "d"]},
        schema=CUSTOM_SCHEMA,
    )  # fmt: skip
    keys, values = encode_rows("custom", rows)
    assert keys == ["A", "B"]
    decoded, errors = decode_rows("custom", values)
    assert errors == [] and decoded.equals(rows)


def test_the_custom_topic_is_created_with_the_others():
    names = [spec.name for spec in topic_specs(Topics("p."))]
    assert PLUGIN_TOPICS == ("custom",) and "p.custom" in names


# settings


def test_plugins_come_from_the_config_file_and_the_environment(tmp_path):
    from marketpulse.config import load_settings

    config = tmp_path / "marketpulse.toml"
    config.write_text('plugins = ["a.b:c", "d:e"]\n')
    assert load_settings(config, environ={}).plugins == ("a.b:c", "d:e")
    environ = {"MARKETPULSE_PLUGINS": "x:y, z:w"}
    assert load_settings(config, environ=environ).plugins == ("x:y", "z:w")
    assert load_settings(None, environ={}).plugins == ()


# the sink service


@pytest.mark.parametrize("custom_exists", [True, False])
@pytest.mark.parametrize("trades_exists", [True, False])
def test_the_sink_service_reads_custom_and_trades_only_where_the_topics_exist(
    tmp_path, custom_exists, trades_exists
):
    import threading
    from types import SimpleNamespace

    from marketpulse.exceptions import BusError
    from marketpulse.runtime.sink import SinkService
    from marketpulse.sinks import LakeSink

    subscribed = []
    missing = {"s.custom"} - ({"s.custom"} if custom_exists else set())
    missing |= set() if trades_exists else {"s.trades"}

    def partitions(topic):
        if topic in missing:
            raise BusError(f"topic {topic} does not exist")
        return 1

    def consumer(group, topics, **callbacks):
        subscribed.extend(topics)
        return SimpleNamespace(close=lambda: None)

    bus = SimpleNamespace(settings=SimpleNamespace(bootstrap="fake"), partitions=partitions,
                          consumer=consumer)  # fmt: skip
    stop = threading.Event()
    stop.set()
    SinkService(bus, Topics("s."), LakeSink(tmp_path / "lake"), stop=stop).run()  # type: ignore[arg-type]
    outputs = ["s.bars", "s.indicators", "s.alerts", "s.dlq"]  # always required
    optional = [
        t
        for t in ("s.custom", "s.trades", "s.quotes", "s.predictions")  # not news: its own
        if t not in missing
    ]
    assert subscribed == outputs + optional


def test_the_sink_service_still_requires_the_processor_outputs(tmp_path):
    from types import SimpleNamespace

    from marketpulse.exceptions import BusError
    from marketpulse.runtime.sink import SinkService
    from marketpulse.sinks import LakeSink

    def partitions(topic):
        raise BusError(f"topic {topic} does not exist")

    bus = SimpleNamespace(settings=SimpleNamespace(bootstrap="fake"), partitions=partitions)
    with pytest.raises(BusError, match="s.bars does not exist"):
        SinkService(bus, Topics("s."), LakeSink(tmp_path / "lake")).run()  # type: ignore[arg-type]


def test_plugins_see_the_declared_indicators():
    from marketpulse.indicators import parse_set

    seen = []

    def look(data):
        seen.append(data.column_names)

    settings = ProcessorSettings(intervals=("1s",), lateness=0, dataset="ds",
                                 indicators=parse_set("ema(2), bb=bbands(2, 1.5)"),
                                 plugins=(Plugin("t:look", look, False),))  # fmt: skip
    proc = Processor(settings)
    proc.process(trade_batch([("AAPL", T0 + i * S, 10.0 + i, 1) for i in range(4)]))
    assert seen
    declared = [n for n in seen[0] if n in ("ema_2", "bb_upper", "bb_middle", "bb_lower")]
    assert declared == ["ema_2", "bb_upper", "bb_middle", "bb_lower"]
    assert "rsi_14" not in seen[0] and "dataset" in seen[0]
