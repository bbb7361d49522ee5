"""`marketpulse notify` on a real broker: committed alerts only, once each, across a crash."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
import uuid

import httpx
import pytest

from marketpulse.models import Alert

from .conftest import _load_beside
from .kafka_tools import bus_for, committed_offsets, create_topics, start, wait_log

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

servers = _load_beside("notify_servers")

BAR = 1_381_152_600 * 10**9


def _alert(i: int, symbol: str = "SPY") -> Alert:
    return Alert(id=f"news_move|{symbol}|1s|{BAR + i * 10**9}", rule="news_move", symbol=symbol,
                 timeframe="1s", bar_start=BAR + i * 10**9, bar_end=BAR + (i + 1) * 10**9,
                 severity="warning", message=f"move {i}")  # fmt: skip


def _notify(bootstrap, prefix, rules, ledger, *extra):
    return [sys.executable, "-m", "marketpulse", "notify", "--bootstrap-servers", bootstrap,
            "--topic-prefix", prefix, "--group", f"{prefix}notify", "--rules", str(rules),
            "--ledger", str(ledger), *extra]  # fmt: skip


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_notified_once_per_committed_alert_across_a_crash(kafka_bootstrap, tmp_path):
    prefix = f"nt-{uuid.uuid4().hex[:8]}."
    topics = create_topics(kafka_bootstrap, prefix, partitions=2)
    bus = bus_for(kafka_bootstrap)
    committed = [_alert(i, symbol) for i in range(6) for symbol in ("SPY", "QQQ")]
    with bus.producer() as producer:
        producer.send_alerts(topics.name("alerts"), committed)
    aborted = bus.transactional_producer(f"{prefix}aborted")
    aborted.init()
    aborted.begin()
    aborted.send_alerts(topics.name("alerts"), [_alert(100), _alert(101, "QQQ")])
    aborted.flush()
    aborted.abort()
    aborted.close()

    http = servers.HttpReceiver()
    http.hang_after["/hook"] = 5  # five answered, then the receiver stops answering
    web = servers.start_http(http)
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""
notifiers:
  hook: {{type: webhook, url: "{http.url}/hook", timeout: 300, retries: 0}}
routes:
  warning: [hook]
rules:
  - {{name: news_move, type: pct_change, window: 10, threshold: 0.5}}
""")
    ledger = tmp_path / "notified.ids"
    # no commit before the crash: every alert is read again after it
    first = start(_notify(kafka_bootstrap, prefix, rules, ledger, "--commit-interval", "3600"))
    try:
        _wait(lambda: len(http.received("/hook")) >= 6)  # 5 answered, the 6th hangs
        _wait(lambda: ledger.exists() and len(ledger.read_text().splitlines()) == 5)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    # the crash happened, before any offset was committed
    assert first.returncode == -signal.SIGKILL
    assert committed_offsets(kafka_bootstrap, f"{prefix}notify", topics.name("alerts")) == 0
    delivered_before = [json.loads(p.body)["id"] for p in http.acked]
    assert len(delivered_before) == 5

    http.hang_after.clear()
    port = _free_port()
    second = start(_notify(kafka_bootstrap, prefix, rules, ledger, "--exit-when-idle", "8",
                           "--metrics-port", str(port)))  # fmt: skip
    _wait(lambda: len(ledger.read_text().splitlines()) == 12)
    figures = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'marketpulse_notifications_total{channel="hook",outcome="sent"} 7.0' in figures
    assert "marketpulse_notify_alerts_skipped_total 5.0" in figures
    log = wait_log(second, 180)
    web.shutdown()
    assert second.returncode == 0, log
    assert "alerts read 12, already notified 5" in log, log
    ids = [json.loads(p.body)["id"] for p in http.acked]
    assert sorted(ids) == sorted(a.id for a in committed)  # each committed alert once
    assert len(ids) == len(set(ids))
    assert not {_alert(100).id, _alert(101, "QQQ").id} & {json.loads(p.body)["id"]
                                                         for p in http.posts}  # fmt: skip
    assert committed_offsets(kafka_bootstrap, f"{prefix}notify", topics.name("alerts")) == 12


def test_notify_without_channels_is_refused(tmp_path):
    from .conftest import marketpulse

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: r, type: rsi, above: 70}\n")
    result = marketpulse("notify", "--bootstrap-servers", "127.0.0.1:1", "--rules", rules,
                         cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [
        "error: notify: --rules FILE with a 'notifiers:' table is required"
    ]
