"""What each service shows on /metrics, and when it is ready (runtime.service_figures).

The services are stand-ins holding the figures the real ones keep (stats,
lag, loop beat, group membership); a real sink service on the embedded bus
is scraped in test_endpoint.py, real ``process`` and ``sink lake`` on Kafka in
tests/integration/test_kafka_metrics_endpoint.py.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pyarrow as pa
from prometheus_client.parser import text_string_to_metric_families

from marketpulse.bus.base import Batch, Message, TopicPartition
from marketpulse.bus.topics import Topics
from marketpulse.runtime.endpoint import render
from marketpulse.runtime.outputs import OutputCounts
from marketpulse.runtime.process import ProcessStats
from marketpulse.runtime.produce import ProduceStats
from marketpulse.runtime.service_figures import (
    STALLED_AFTER,
    ProcessFigures,
    ProduceFigures,
    SinkFigures,
    batch_time,
)
from marketpulse.runtime.sink import SinkServiceStats
from marketpulse.stream.output import Output

TOPICS = Topics("t.")


def samples(*collectors) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = render(collectors).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def names(*collectors) -> set[str]:
    return {name for name, _ in samples(*collectors)}


def service(**figures) -> SimpleNamespace:
    """A consumer service that joined its group and whose loop just went round."""
    defaults = {
        "stop": threading.Event(), "joined": True, "beat": time.monotonic(), "lag": {},
        "stats": ProcessStats(),
        "topics": TOPICS, "options": SimpleNamespace(group="g"),
    }  # fmt: skip
    return SimpleNamespace(**{**defaults, **figures})


def output(bars: int = 0, indicators: int = 0) -> Output:
    out = Output()
    out.bars = pa.table({"x": list(range(bars))})
    out.indicators = pa.table({"x": list(range(indicators))})
    return out


# process


def test_process_counts_ticks_outputs_and_the_latency_from_the_produce_time():
    figures = ProcessFigures()
    produced_ms = int((time.time() - 0.2) * 1e3)  # the Kafka record timestamp of the last tick
    messages = [Message(b"A", b"{}", offset, timestamp=produced_ms) for offset in (5, 6, 8)]
    figures.on_output(output(bars=2, indicators=2), Batch(TOPICS.ticks, 0, 5, 8, messages=messages))
    figures.on_output(output(bars=1), None)  # closed by processing time: no ticks, no sample
    # the outputs count once their transaction commits, not when made
    assert samples(figures)[("marketpulse_bars_total", ())] == 0
    committed = OutputCounts()
    for out in (output(bars=2, indicators=2), output(bars=1)):
        committed.add(out)
    figures.on_commit(committed)
    figures.attach(service(
        stats=ProcessStats(records=3, transactions=2, aborted=1),
        lag={0: 12, 1: 0},
    ))  # fmt: skip
    got = samples(figures)
    assert got[("marketpulse_ticks_total", ())] == 3  # records, not offsets (8 - 5 + 1)
    assert got[("marketpulse_bars_total", ())] == 3
    assert got[("marketpulse_indicator_rows_total", ())] == 2
    assert got[("marketpulse_tick_to_indicator_seconds_count", ())] == 1
    assert 0.2 <= got[("marketpulse_tick_to_indicator_seconds_sum", ())] < 5
    assert got[("marketpulse_process_records_total", ())] == 3
    assert got[("marketpulse_process_transactions_total", ())] == 2
    assert got[("marketpulse_process_aborted_total", ())] == 1
    lag = (("group", "g"), ("partition", "0"), ("topic", "t.ticks"))
    assert got[("marketpulse_consumer_lag", lag)] == 12
    assert got[("marketpulse_ready", ())] == 1


def test_process_shows_the_dashboards_figures_under_the_same_names():
    from marketpulse.runtime import Metrics
    from marketpulse.serve.prometheus import render as dashboard_render
    from marketpulse.serve.push import Clients

    dashboard = {
        s.name
        for family in text_string_to_metric_families(
            dashboard_render(Metrics(), Clients()).decode()
        )
        for s in family.samples
        if not s.name.startswith("marketpulse_dashboard_")
    }
    assert dashboard <= names(ProcessFigures())


def test_process_readiness_follows_its_group_and_its_loop():
    figures = ProcessFigures()
    assert figures.ready() == (False, "starting")
    figures.attach(service(joined=False))
    assert figures.ready() == (False, "process has not joined consumer group g yet")
    now = time.monotonic()
    figures.attach(service(beat=now - STALLED_AFTER - 5))
    ready, reason = figures.ready(now)
    assert not ready and reason == f"process: no pass of its loop for {STALLED_AFTER + 5:.0f} s"
    assert samples(figures)[("marketpulse_ready", ())] == 0
    figures.attach(service(beat=now - 1))
    assert figures.ready(now) == (True, "")
    figures.service.stop.set()
    assert figures.ready(now) == (False, "process is stopping")


def test_batch_time_is_the_last_records_produce_time():
    kafka = Batch("t", 0, 0, 1, messages=[Message(b"", b"", 0, 1000), Message(b"", b"", 1, 2500)])
    assert batch_time(kafka) == 2.5
    assert batch_time(Batch("t", 0, 0, 0, sent_at=7.25)) == 7.25  # the embedded bus
    assert batch_time(Batch("t", 0, 0, 0)) is None and batch_time(None) is None


# sinks


def test_a_sink_shows_rows_per_table_commits_and_lag_per_topic_partition():
    sink = service(
        sink=SimpleNamespace(name="postgres"),
        stats=SinkServiceStats(records=9, rows={"bars": 6, "dlq": 3}, commits=2, undecodable=1),
        lag={TopicPartition("t.bars", 0): 4, TopicPartition("t.alerts", 1): 1},
    )  # fmt: skip
    got = samples(SinkFigures(sink))
    assert got[("marketpulse_sink_rows_total", (("sink", "postgres"), ("table", "bars")))] == 6
    assert got[("marketpulse_sink_rows_total", (("sink", "postgres"), ("table", "dlq")))] == 3
    assert got[("marketpulse_sink_records_total", (("sink", "postgres"),))] == 9
    assert got[("marketpulse_sink_commits_total", (("sink", "postgres"),))] == 2
    assert got[("marketpulse_sink_undecodable_total", (("sink", "postgres"),))] == 1
    lags = {dict(k[1])["topic"]: v for k, v in got.items() if k[0] == "marketpulse_consumer_lag"}
    assert lags == {"t.bars": 4, "t.alerts": 1}
    assert got[("marketpulse_ready", ())] == 1
    sink.joined = False
    assert SinkFigures(sink).ready() == (False, "sink postgres has not joined consumer group g yet")


# produce


def test_produce_counts_ticks_without_quotes_dead_letters_and_failures():
    shown = []
    figures = ProduceFigures(on_progress=shown.append)
    assert figures.ready() == (False, "produce has sent no batch of its feed yet")
    first = ProduceStats(ticks=100, quotes=20, dead=2)
    figures.progressed(first)
    figures.progressed(ProduceStats(ticks=250, quotes=50, dead=3, failed=1))
    assert shown[0] is first and len(shown) == 2  # the command's progress display still sees them
    got = samples(figures)
    assert got[("marketpulse_ticks_total", ())] == 200  # trades (and bars): what process takes in
    assert got[("marketpulse_dlq_total", ())] == 3
    assert got[("marketpulse_rejected_total", ())] == 3
    assert got[("marketpulse_produce_quotes_total", ())] == 50
    assert got[("marketpulse_produce_failed_total", ())] == 1
    assert ("marketpulse_ticks_per_second", ()) in got
    assert not {
        n for n in names(figures) if n.startswith(("marketpulse_bars", "marketpulse_tick_to"))
    }
    assert figures.ready() == (True, "")
    later = time.monotonic() + STALLED_AFTER + 1
    assert figures.ready(later)[0] is False
