import json
import logging
import threading
import time

import pyarrow as pa
import pytest

from marketpulse.bus.codec import encode_rows
from marketpulse.config import Secret, vendor_credentials
from marketpulse.exceptions import ConfigError
from marketpulse.feeds.vendors import Symbols, VendorOptions, open_vendor
from marketpulse.feeds.vendors.base import to_batches
from marketpulse.models import Quote, Trade, decode_tick


def test_keys_come_from_the_environment_before_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        '# keys\nexport MARKETPULSE_ALPACA_KEY="from-file"\n'
        "MARKETPULSE_ALPACA_SECRET=file-secret  # comment\n"
    )
    key, secret = vendor_credentials("alpaca", True, environ={}, env_file=env_file)
    assert (key.reveal(), secret.reveal()) == ("from-file", "file-secret")
    key, _ = vendor_credentials(
        "alpaca", True, environ={"MARKETPULSE_ALPACA_KEY": "env"}, env_file=env_file
    )
    assert key.reveal() == "env"
    assert "env" not in repr(key) and "env" not in str(key)


def test_a_missing_key_names_its_variable(tmp_path):
    with pytest.raises(ConfigError, match="MARKETPULSE_POLYGON_KEY"):
        vendor_credentials("polygon", environ={}, env_file=tmp_path / "none")
    with pytest.raises(ConfigError, match="MARKETPULSE_ALPACA_SECRET"):
        vendor_credentials(
            "alpaca", True, environ={"MARKETPULSE_ALPACA_KEY": "k"}, env_file=tmp_path / "none"
        )


def test_watchlist_changes_are_read_as_additions_and_removals(tmp_path):
    path = tmp_path / "watch.txt"
    path.write_text("AAPL, MSFT  # big ones\n\nNVDA\nAAPL\n")
    symbols = Symbols(("SPY",), path)
    assert symbols.current == ("SPY", "AAPL", "MSFT", "NVDA")
    assert symbols.refresh() == ((), ())  # unchanged
    path.write_text("MSFT\nTSLA\n")
    assert symbols.refresh() == (("TSLA",), ("AAPL", "NVDA"))
    assert symbols.current == ("SPY", "MSFT", "TSLA")
    path.write_text("")  # an empty file keeps the fixed symbols
    assert symbols.refresh() == ((), ("MSFT", "TSLA"))


def test_no_symbols_at_all_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--tickers"):
        Symbols(())
    with pytest.raises(ConfigError, match="watch"):
        Symbols((), tmp_path / "missing.txt")


def test_a_vendor_that_needs_a_key_refuses_to_open_without_one():
    with pytest.raises(Exception, match="no API key"):
        open_vendor("finnhub", VendorOptions(symbols=Symbols(("AAPL",))))


def test_quotes_and_vendor_extras_reach_the_ticks_topic_intact():
    trade = Trade("AAPL", 10, 189.5, 100.0, "V", "@", extra={"id": 7, "tape": "C"})
    quote = Quote("AAPL", 11, 189.49, 3.0, 189.51, 2.0, extra={"bid_exchange": "V"})
    batches = {b.kind: b for b in to_batches([trade, quote, Trade("MSFT", 12, 370.0, 5.0)], 3)}
    for kind, wanted in (("trade", [trade, Trade("MSFT", 12, 370.0, 5.0)]), ("quote", [quote])):
        data = batches[kind].data
        columns = pa.RecordBatch.from_arrays(
            [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in data.columns],
            names=data.schema.names,
        )
        keys, values = encode_rows(kind, columns)
        assert [decode_tick(v) for v in values] == wanted
        assert keys == [t.symbol for t in wanted]
    assert json.loads(encode_rows("quote", batches["quote"].data)[1][0])["type"] == "quote"


def test_secrets_stay_out_of_the_logs(helpers, caplog, fake_clock):
    caplog.set_level(logging.DEBUG)

    def route(path, query, n):
        return 200, {}, {"Information": "rate limit"}

    clock = fake_clock(1704470400 * 10**9)  # Friday 16:00 UTC, the market open
    with helpers.HttpServer(route) as http:
        feed = open_vendor(
            "alphavantage",
            VendorOptions(
                symbols=Symbols(("IBM",)),
                key=Secret("s3cr3t-key"),
                url=http.url,
                sleep=clock.sleep,
                now_ns=clock.now_ns,
                monotonic=clock.monotonic,
            ),
        )

        def close_after_two_requests():
            deadline = time.monotonic() + 20
            while feed.status.requests < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            feed.close()

        threading.Thread(target=close_after_two_requests, daemon=True).start()
        for _ in feed.batches():
            pass
    assert feed.status.rate_limited >= 1
    assert caplog.records and not any("s3cr3t-key" in r.getMessage() for r in caplog.records)
