"""The processor's warm-up readies the kernels of the ticks as its bus carries them."""

from __future__ import annotations

import itertools
import sys

from numba.core.dispatcher import Dispatcher

from marketpulse.alerts import default_rules
from marketpulse.bus import Batch
from marketpulse.feeds import Simulator
from marketpulse.kernel_progress import needed
from marketpulse.models import Quote, Trade
from marketpulse.stream import Processor, ProcessorSettings, json_scan
from marketpulse.stream.decode import tick_columns


def _signatures() -> dict[str, set[tuple]]:
    """The signatures of the package's kernels this process has (compiled or loaded)."""
    found: dict[str, set[tuple]] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("marketpulse."):
            for value in vars(module).values():
                if isinstance(value, Dispatcher):
                    key = f"{name}.{value.py_func.__name__}"
                    found[key] = set(map(tuple, value.signatures))
    return found


def _simulated(processor: Processor, batches: int) -> None:
    """Feed a simulated market's batches as the in-memory bus delivers them."""
    feed = Simulator(symbols=5, rate=2000, seed=3, realtime=False, batch_size=500, quotes=True)
    first = 0
    for item in itertools.islice(feed.batches(), batches):
        batch = Batch("ticks", 0, first, first + item.data.num_rows - 1, item.kind, item.data)
        first += item.data.num_rows
        if item.kind == "quote":
            processor.add_quotes(batch)
        else:
            processor.process(batch)
    processor.finish()


def test_ticks_as_columns_need_no_json_kernels_and_messages_do():
    processor = Processor(ProcessorSettings(), default_rules())
    scan = needed(json_scan.KERNELS)
    assert not needed(processor.kernels(columns=True)) & scan
    assert scan <= needed(processor.kernels())


def test_a_warm_up_on_columns_readies_every_kernel_a_simulated_market_calls():
    processor = Processor(ProcessorSettings(), default_rules())
    processor.warm_up(columns=True)
    warm = _signatures()
    _simulated(processor, 40)
    # none compiled or loaded from the cache after the warm-up: the first batch waits for none
    assert _signatures() == warm


def test_tick_columns_are_quotes_then_trades_as_the_bus_carries_them():
    ticks = [Quote("A", 1, 9.9, 1.0, 10.1, 1.0), Trade("A", 1, 10.0, 5.0), Trade("B", 2, 20.0, 1.0)]
    columns = tick_columns(ticks)
    assert [(kind, data.num_rows) for kind, data in columns] == [("quote", 1), ("trade", 2)]
    trades = columns[1][1]
    assert trades.column("symbol").dictionary.to_pylist() == ["A", "B"]
    assert trades.column("price").to_pylist() == [10.0, 20.0]
    assert tick_columns([Trade("A", 1, 10.0, 5.0)])[0][0] == "trade"
