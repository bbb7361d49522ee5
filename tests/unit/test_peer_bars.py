"""The bar checker of bench/bench_peers.py: equal bars pass, the first differing one is named."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from peer_bars import (  # noqa: E402
    PeerDisagrees,
    check_equal,
    closed_by_event_time,
    first_difference,
    reference_bars,
)

T0 = 1_381_132_800_000  # 2013-10-07T08:00:00Z in ms
MIN = 60_000


def bars():
    return {
        ("SPY", T0): (167.41, 167.5, 167.4, 167.45, 1600.0),
        ("IBM", T0): (185.0, 185.2, 184.9, 185.1, 300.0),
        ("SPY", T0 + MIN): (167.45, 167.46, 167.3, 167.3, 200.0),
    }


def test_equal_bars_pass_and_are_counted():
    assert check_equal("quix", bars(), bars()) == 3
    assert first_difference(bars(), bars()) is None


def test_a_changed_field_is_named_with_its_peer_bar_and_values():
    other = bars()
    other[("IBM", T0)] = (185.0, 185.2, 184.9, 185.11, 300.0)
    with pytest.raises(PeerDisagrees) as caught:
        check_equal("spark", bars(), other)
    assert str(caught.value) == (
        "spark disagrees with marketpulse: first differing bar IBM 2013-10-07T08:00:00Z: "
        "close 185.11, reference 185.1; of 3 bars 0 missing, 1 different, 0 more"
    )


def test_the_first_difference_in_time_is_reported():
    other = bars()
    other[("SPY", T0 + MIN)] = (167.45, 167.46, 167.3, 167.3, 201.0)
    other[("SPY", T0)] = (167.41, 167.5, 167.4, 167.45, 1601.0)
    assert first_difference(bars(), other).startswith("bar SPY 2013-10-07T08:00:00Z: volume 1601.0")


def test_missing_and_extra_bars_are_reported():
    fewer = bars()
    del fewer[("IBM", T0)]
    assert first_difference(bars(), fewer).startswith("bar IBM 2013-10-07T08:00:00Z missing")
    more = {**bars(), ("AIG", T0 + 2 * MIN): (48.9, 48.9, 48.9, 48.9, 100.0)}
    assert first_difference(bars(), more) == (
        "bar AIG 2013-10-07T08:02:00Z not in the reference "
        "(open=48.9 high=48.9 low=48.9 close=48.9 volume=100.0)"
    )


def test_no_reference_bars_is_a_failure_not_a_pass():
    with pytest.raises(PeerDisagrees, match="no bars to compare"):
        check_equal("quix", {}, {})


def test_each_symbols_last_window_is_left_out():
    kept = closed_by_event_time(bars(), {"SPY": T0 + MIN, "IBM": T0})
    assert kept == {("SPY", T0): bars()[("SPY", T0)]}


def test_reference_bars_take_open_and_close_in_arrival_order():
    ns = 1_000_000
    trades = [
        ("SPY", T0 * ns + 5, 10.0, 100.0),
        ("SPY", T0 * ns + 5, 11.0, 50.0),  # the same millisecond: open stays the first
        ("SPY", T0 * ns + 7, 9.0, 25.0),
        ("SPY", T0 * ns + 7, 9.5, 25.0),  # the same millisecond: close is the last
        ("SPY", (T0 + MIN) * ns, 12.0, 1.0),
    ]
    got, last = reference_bars(trades)
    assert got[("SPY", T0)] == (10.0, 11.0, 9.0, 9.5, 200.0)
    assert last == {"SPY": T0 + MIN}


def test_a_failing_peer_is_one_line_naming_it(tmp_path):
    from bench_peers import PeerFailed, run_peer

    command = [sys.executable, "-c", "import sys; print('noise', file=sys.stderr); "
               "sys.exit('ConnectionError: no broker at 127.0.0.1:1')"]  # fmt: skip
    with pytest.raises(PeerFailed) as caught:
        run_peer("quix-exactly-once", command, tmp_path / "q.log", None, 10)
    message = str(caught.value)
    assert message.startswith("quix-exactly-once exited 1: ConnectionError: no broker")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--peers", "raw,flink"], "unknown peer 'flink'"),
        (["--peers", "quix-exactly-once"], "include marketpulse"),
    ],
)
def test_bench_peers_bad_use_is_one_line_exit_2(args, says):
    result = subprocess.run(
        [sys.executable, "bench/bench_peers.py", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert says in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
