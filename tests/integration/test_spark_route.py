"""``marketpulse spark``: the Spark route writes what ``process`` writes, to topics and lake.

The Lean day's first 40,000 trades (until 9:46 New York time) and a copy of
them one day later (a topic of two days: day boundaries, the daily session's restart)
go to two topic prefixes (the same records, so the same
partitions); ``process`` and ``sink lake`` run over one, ``marketpulse spark``
over the other, each as a user types it with the same processing settings
(bars close by input alone: ``--idle-timeout 0`` for ``process``, the Spark
route's only mode), and every output topic and lake table is compared.
"""

import gzip
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import psycopg
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from marketpulse.models import Trade, encode

from .conftest import LEAN_TRADES, marketpulse
from .db_fixtures import assert_influx_equals_lake
from .kafka_tools import (
    bus_for,
    create_topics,
    load_file,
    read_committed,
    resolved,
    start,
    wait_log,
)

pytestmark = pytest.mark.integration

TOPICS = ("bars", "indicators", "alerts", "trades", "dlq")
TABLES = ("bars", "indicators", "alerts", "trades")
LATER = 1_381_276_800 * 1_000_000_000  # 2013-10-09 00:00 UTC: after both days


def spark_command(bootstrap, prefix, checkpoint, *extra, master="local[2]"):
    return [
        sys.executable, "-m", "marketpulse", "spark", "--bootstrap-servers", bootstrap,
        "--topic-prefix", prefix, "--checkpoint", checkpoint, "--master", master, *extra,
    ]  # fmt: skip


def run_spark(bootstrap, prefix, checkpoint, *extra, timeout=600, master="local[2]", env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")} | (env or {})
    return subprocess.run(
        spark_command(bootstrap, prefix, checkpoint, *extra, master=master),
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def late_first_worker(folder):
    """A ``PYSPARK_PYTHON`` whose first driver-side Python worker of the stateful operator
    starts 12 s late: past the fixed 10 s Spark waits for it to connect back, as a busy CI
    machine made one (2026-11-30 and 12-01). Returns the script, and the folder its first
    such start makes (the proof that the fault came)."""
    marker, script = folder / "late-worker", folder / "python"
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -m pyspark.sql.streaming.transform_with_state_driver_worker"*)\n'
        f'  if mkdir "{marker}" 2>/dev/null; then sleep 12; fi ;;\n'
        "esac\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    script.chmod(0o755)
    return script, marker


def sorted_records(bootstrap, prefix):
    """Each output topic's committed records per partition, sorted: (key, value, headers),
    the headers with the topic prefix left out (a dead letter names its input topic)."""

    def headers(pairs):
        return tuple((k, v.replace(prefix.encode(), b"PREFIX.")) for k, v in pairs)

    def read(topic):  # the trades: references resolved, as a sink stores them
        got = read_committed(bootstrap, f"{prefix}{topic}")
        return resolved(bootstrap, got) if topic == "trades" else got

    return {
        topic: {p: sorted((k, _trade(v) if topic == "trades" else v, headers(h))
                          for k, v, h in rows)
                for p, rows in read(topic).items()}
        for topic in TOPICS
    }  # fmt: skip


def _trade(value):
    """A kept trade's fields. ``process`` sends a plain input record's own bytes (with the
    dataset), and encodes the others from columns ("size":300 for 300.0, no "type"): which
    one depends on what else its batch held (a bad record), in either route."""
    fields = msgspec.json.decode(value)
    fields.pop("type", None)
    return tuple(sorted((k, float(v) if isinstance(v, int) and k != "ts" else v)
                        for k, v in fields.items()))  # fmt: skip


#: Trades of the Lean day a run reads: the pre-market and the open (thousands of bars,
#: alerts), and the Spark route's runs a tenth as long as the whole day's. Spark was half
#: the CPU of the whole integration suite with 120,000 (sampled from /proc in a CI run):
#: its JVM's start and each micro-batch are costly, so the tests keep both few and small.
MORNING = 40_000


@pytest.fixture(scope="module")
def morning(tmp_path_factory):
    """The Lean day's first :data:`MORNING` trades, as a trades file."""
    part = tmp_path_factory.mktemp("lean") / "trades.csv"
    with gzip.open(LEAN_TRADES, "rt") as whole:
        part.write_text("".join(itertools.islice(whole, MORNING + 1)))  # and the header
    return part


def load_with_bad_records(bootstrap, prefix, morning):
    """The Lean day's morning and its copy a day later, then two records the processor
    refuses (to ``dlq``); the records sent."""
    sent = load_file(bootstrap, prefix, morning)
    sent += load_file(bootstrap, prefix, morning, shift_days=1)
    with bus_for(bootstrap).producer() as producer:
        producer.send(f"{prefix}ticks", "AIG", b"not json")
        producer.send(f"{prefix}ticks", "AIG", encode(Trade("AIG", LATER, -1.0, 5.0)))
    return sent + 2


def lake_rows(lake, table):
    """A lake table's rows without its partition columns, in one order: an Arrow table
    sorted by every column (hundreds of thousands of trades in a second, not a minute),
    or, with a nested column (alerts' details map), Python values sorted."""
    rows = ds.dataset(lake / table, format="parquet", partitioning="hive").to_table()
    columns = sorted(c for c in rows.column_names if c not in ("date", "year"))
    rows = rows.select(columns)
    if any(pa.types.is_nested(field.type) for field in rows.schema):
        return sorted(rows.to_pylist(), key=repr)
    return rows.sort_by([(column, "ascending") for column in columns]).combine_chunks()


@pytest.fixture(scope="module")
def process_run(kafka_bootstrap, tmp_path_factory, morning):
    """The two days through `process` (bars close by input alone) and `sink lake`."""
    prefix = f"sp{os.getpid()}p."
    create_topics(kafka_bootstrap, prefix)
    sent = load_with_bad_records(kafka_bootstrap, prefix, morning)
    common = ("--bootstrap-servers", kafka_bootstrap, "--topic-prefix", prefix)
    proc = start([sys.executable, "-m", "marketpulse", "process", *common, "--group",
                  f"{prefix}process", "--idle-timeout", "0", "--exit-when-idle", "5"])  # fmt: skip
    log = wait_log(proc, 600)
    assert proc.returncode == 0, log
    lake = tmp_path_factory.mktemp("process") / "lake"
    sink = marketpulse("sink", "lake", *common, "--group", f"{prefix}sink", "--lake", lake,
                       "--exit-when-idle", "5")  # fmt: skip
    assert sink.returncode == 0, sink.stderr
    return sent, sorted_records(kafka_bootstrap, prefix), lake


#: Each test a group of its own for ``make test``'s workers (tests/conftest.py), but the
#: two that compare with one `process` run (its module fixture, made once a worker).
TWO_DAYS = pytest.mark.xdist_group("test_spark_route.py::two_days")


def _own_group(test):
    return pytest.mark.xdist_group(f"test_spark_route.py::{test.__name__}")(test)


@TWO_DAYS
@pytest.mark.timeout(1200)  # two mornings of ticks and process's run of them, a busy machine
def test_the_spark_route_writes_what_process_writes_on_the_topics_and_in_the_stores(
    kafka_bootstrap, process_run, morning, tmp_path, sql, postgres_url, influx_url,
    influx_base_url,
):  # fmt: skip
    sent, expected, expected_lake = process_run
    prefix = f"sp{os.getpid()}s."
    create_topics(kafka_bootstrap, prefix)
    assert load_with_bad_records(kafka_bootstrap, prefix, morning) == sent
    lake = tmp_path / "lake"
    # a task may run again, as on a cluster (local[2, 3]: three attempts): under CI's load
    # a Python worker Spark starts sometimes misses its fixed 10 s to connect back (seen
    # twice in 2026-11-30's runs), and a task run again must leave the same outputs
    result = run_spark(kafka_bootstrap, prefix, tmp_path / "checkpoint", "--available-now",
                       "--lake", lake, "--postgres-url", postgres_url,
                       "--influx-url", influx_url, master="local[2,3]")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    got = sorted_records(kafka_bootstrap, prefix)
    assert sum(len(v) for v in got["bars"].values()) > 1000  # the day's bars, not a few
    assert sum(len(v) for v in got["alerts"].values()) > 0
    assert sum(len(v) for v in got["dlq"].values()) >= 2  # the bad records, as process sends them
    for topic in TOPICS:
        assert got[topic] == expected[topic], topic
    for table in TABLES:
        assert lake_rows(lake, table) == lake_rows(expected_lake, table), table
    # the default cap of ticks per micro-batch (200,000): the 80,002 ticks in one
    batches = int(re.search(r"spark: (\d+) micro-batches", result.stdout).group(1))
    assert batches == 1, result.stdout

    # PostgreSQL, through the same sink: the bars of process's lake, and as many rows
    order = " ORDER BY dataset, symbol, timeframe, bar_start"
    expected_bars = sql(expected_lake, "SELECT dataset, symbol, timeframe, epoch_ns(bar_start)"
                        " AS t, close, volume, trades FROM bars" + order)  # fmt: skip
    with psycopg.connect(postgres_url) as conn:
        bars = conn.execute(
            "SELECT dataset, symbol, timeframe, (extract(epoch FROM bar_start) * 1e9)::bigint,"
            " close, volume, trades FROM bars" + order
        ).fetchall()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM indicators), (SELECT count(*) FROM alerts)"
        ).fetchone()
    assert bars == [tuple(row.values()) for row in expected_bars]
    assert counts == (len(lake_rows(expected_lake, "indicators")),
                      len(lake_rows(expected_lake, "alerts")))  # fmt: skip
    days = sql(lake, "SELECT DISTINCT CAST(bar_start AS DATE) AS day FROM bars")
    assert {r["day"] for r in days} == {"2013-10-07", "2013-10-08"}

    # InfluxDB, through the same sink: every bar, indicator and alert of process's lake
    datasets = {r["dataset"] for r in sql(expected_lake, "SELECT DISTINCT dataset FROM bars")}
    database = influx_url.rsplit("/", 1)[1]
    assert_influx_equals_lake(sql, expected_lake, influx_base_url, database, datasets)


@_own_group
def test_spark_without_its_ticks_topic_says_so_in_one_line(kafka_bootstrap, tmp_path):
    result = run_spark(kafka_bootstrap, "nosuchprefix.", tmp_path / "c", "--available-now",
                       timeout=120)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "nosuchprefix.ticks" in lines[-1]
    assert "Traceback" not in result.stderr


@_own_group
def test_spark_bad_uses_are_one_line_errors(tmp_path):
    missing = marketpulse("spark", "--available-now")
    assert missing.returncode == 2 and "--checkpoint" in missing.stderr
    nothing = marketpulse("spark", "--checkpoint", tmp_path / "c", "--no-topics")
    assert nothing.returncode == 2 and "--no-topics leaves nothing to write" in nothing.stderr
    offsets = marketpulse("spark", "--checkpoint", tmp_path / "c", "--starting-offsets", "x")
    assert offsets.returncode == 2 and "earliest or latest" in offsets.stderr
    for result in (missing, nothing, offsets):
        assert "Traceback" not in result.stderr


def _last(folder):
    """The newest batch id with a file in a checkpoint folder (``offsets``, ``commits``)."""
    ids = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.exists() else []
    return max(ids, default=-1)


@TWO_DAYS
@pytest.mark.timeout(1500)  # six driver starts, two mornings of ticks, a busy machine
def test_a_driver_killed_mid_batch_at_random_moments_loses_and_duplicates_nothing(
    kafka_bootstrap, process_run, morning, tmp_path
):
    """SIGKILL the driver (its process group: the JVM and the Python workers too) while a
    micro-batch is under way, three times at random moments, restarting from the
    checkpoint each time: the topics and the lake equal process's uninterrupted run. Then
    the last micro-batch is run again (nothing is written twice), and other settings on
    the checkpoint are refused in one line (one test: each Spark driver start costs a
    busy CI machine most of a minute)."""
    _, expected, expected_lake = process_run
    rng = random.Random(int(os.environ.get("MARKETPULSE_TEST_SEED", time.time_ns())))
    prefix = f"sp{os.getpid()}k."
    create_topics(kafka_bootstrap, prefix)
    load_with_bad_records(kafka_bootstrap, prefix, morning)
    checkpoint, lake = tmp_path / "checkpoint", tmp_path / "lake"
    # nine micro-batches: each run commits one, waits, and is killed in one of the next two
    args = ("--lake", lake, "--max-offsets-per-trigger", "10000")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    kills = 0
    for _ in range(3):
        driver = subprocess.Popen(
            spark_command(kafka_bootstrap, prefix, checkpoint, *args), env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            started = _last(checkpoint / "commits")
            while _last(checkpoint / "commits") <= started:  # this run committed a batch
                assert driver.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
            time.sleep(rng.uniform(0, 4))
            while _last(checkpoint / "offsets") <= _last(checkpoint / "commits"):
                assert driver.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)  # until a micro-batch is under way
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(60)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
        # the fault: the kill landed while a batch was planned and not committed
        if _last(checkpoint / "offsets") > _last(checkpoint / "commits"):
            kills += 1
    assert kills == 3 and driver.returncode == -signal.SIGKILL
    # a task may run again (local[2,3]), as in the other comparison; and the driver's own
    # Python worker of the operator's set-up starts late, past the 10 s Spark waits (what
    # failed CI runs' queries under load): the command starts the query again, once
    python, late = late_first_worker(tmp_path)
    final = run_spark(kafka_bootstrap, prefix, checkpoint, "--available-now", *args,
                      master="local[2,3]", env={"PYSPARK_PYTHON": str(python)})  # fmt: skip
    assert final.returncode == 0, final.stderr[-3000:]
    assert late.is_dir()  # the fault came
    assert final.stderr.count("starting it again from its checkpoint (start 2 of 3)") == 1
    assert final.stderr.count("started (id ") == 2  # one progress log for the two starts
    assert "Traceback" not in final.stderr  # nor the late worker's, once it gave up
    got = sorted_records(kafka_bootstrap, prefix)
    for topic in TOPICS:
        assert got[topic] == expected[topic], topic
    for table in TABLES:
        assert lake_rows(lake, table) == lake_rows(expected_lake, table), table

    # Restarted with its checkpoint on a topic it has read, the query writes no record
    # twice: the last micro-batch undone, as if the driver died before Spark recorded it.
    files = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))
    commits = checkpoint / "commits"
    last = _last(commits)
    assert last >= 2  # several micro-batches of at most 10,000 ticks
    (commits / str(last)).unlink()
    (commits / f".{last}.crc").unlink(missing_ok=True)  # its checksum
    again = run_spark(kafka_bootstrap, prefix, checkpoint, "--available-now", *args,
                      master="local[2,3]")  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"batch {last} is already on the topics" in again.stderr  # the batch ran again
    assert sorted_records(kafka_bootstrap, prefix) == got
    assert sorted(p.relative_to(lake) for p in lake.rglob("*.parquet")) == files

    # other settings on the same checkpoint: one line, before anything is written
    with bus_for(kafka_bootstrap).producer() as producer:
        producer.send(f"{prefix}ticks", "AIG", encode(Trade("AIG", LATER + 1, 30.0, 1.0)))
    other = run_spark(kafka_bootstrap, prefix, checkpoint, "--available-now", *args,
                      "--intervals", "1m")  # fmt: skip
    assert other.returncode == 1, other.stderr[-3000:]
    last_line = other.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: spark: the query stopped: bucket "), last_line
    assert "state was written with intervals 1s,1m,5m" in last_line
    assert "start a new --checkpoint" in last_line
    assert "Traceback" not in other.stderr
    assert sorted_records(kafka_bootstrap, prefix) == got


@_own_group
def test_a_live_query_closes_a_quiet_buckets_bars_by_the_clock_and_stops_on_ctrl_c(
    kafka_bootstrap, tmp_path
):
    """Live (not --available-now) with --idle-timeout 1: two trades in one second, then
    nothing. No input closes their 1-second bar; the clock does, on the bars topic. Then
    SIGINT (Ctrl-C) stops the query: exit 130, its figures printed, no traceback."""
    prefix = f"sp{os.getpid()}c."
    create_topics(kafka_bootstrap, prefix)
    t0 = 1_381_150_800 * 1_000_000_000  # 2013-10-07 13:00:00 UTC
    with bus_for(kafka_bootstrap).producer() as producer:
        for ts, price, size in ((t0, 30.0, 100.0), (t0 + 400_000_000, 30.5, 50.0)):
            producer.send(f"{prefix}ticks", "AIG", encode(Trade("AIG", ts, price, size)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    # 1-second bars only: on a busy machine the first micro-batch the timer starts may
    # come more than a minute after the input, when the clock closes a 1-minute bar too
    command = spark_command(kafka_bootstrap, prefix, str(tmp_path / "checkpoint"),
                            "--idle-timeout", "1", "--intervals", "1s")  # fmt: skip
    driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        bars = []
        while not bars:
            assert driver.poll() is None, driver.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no bar closed by the clock within 300 s"
            time.sleep(1)
            written = read_committed(kafka_bootstrap, f"{prefix}bars")
            bars = [msgspec.json.decode(v) for rows in written.values() for _, v, _ in rows]
        os.kill(driver.pid, signal.SIGINT)
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert [(b["symbol"], b["timeframe"], b["bar_start"], b["close"], b["volume"])
            for b in bars] == [("AIG", "1s", t0, 30.5, 150.0)]  # fmt: skip
    assert "bars close after 1 s without input" in err
    assert driver.returncode == 130, err[-3000:]
    assert "spark: " in out and "Traceback" not in err


def _jvms_of(pid):
    """The pids of the JVMs (Spark's drivers) whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"pyspark-shell" in command:
            found.append(int(entry))
    return found


@_own_group
def test_ctrl_c_while_spark_starts_stops_at_once_without_a_trace(kafka_bootstrap, tmp_path):
    """SIGINT while the driver's JVM starts (pyspark's own handler would raise
    KeyboardInterrupt inside a py4j call, its traces printed): the command stops while
    Spark starts, not once it has (the line saying so), exits 130 with no traceback, and
    the JVM goes with it. No bound on the seconds it takes: a busy CI machine took 32."""
    prefix = f"sp{os.getpid()}i."
    create_topics(kafka_bootstrap, prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    command = spark_command(kafka_bootstrap, prefix, str(tmp_path / "checkpoint"))
    driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (jvms := _jvms_of(driver.pid)):
            assert driver.poll() is None, driver.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no JVM started within 120 s"
            time.sleep(0.05)
        time.sleep(random.uniform(0.2, 2.0))  # the JVM starting, Spark's context not yet made
        os.kill(driver.pid, signal.SIGINT)
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert "spark: stopped while Spark started" in err, err[-3000:]  # the signal landed there
    assert driver.returncode == 130, err[-3000:]
    assert "spark: 0 micro-batches" in out, out  # no query ran
    assert "Traceback" not in err and "Exception" not in err, err[-3000:]
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{jvm}") for jvm in jvms):
        assert time.monotonic() < deadline, f"the JVM {jvms} outlived the command"
        time.sleep(0.2)
