"""Check what the Spark route of the compose stack wrote: once, and the same everywhere.

Run inside the marketpulse-spark image, on the compose network, by ``stack_smoke.sh``
(its spark phase), beside ``compare_stores.py``: the lake volume mounted at ``LAKE``
(default ``/data/lake``), PostgreSQL at ``MARKETPULSE_POSTGRES_URL``, InfluxDB at
``MARKETPULSE_INFLUX_URL``, Kafka at ``MARKETPULSE_KAFKA_BOOTSTRAP``. It counts the bars:

- on the ``bars`` topic, as a ``read_committed`` consumer reads them;
- in the lake: rows, and distinct keys (dataset, symbol, timeframe, bar start);
- in PostgreSQL, and the points of InfluxDB's ``bars`` measurement (a point per key);

and compares the lake with PostgreSQL row for row (``compare_stores.py``: bars,
indicators, alerts). Prints one line of counts. Exit status 0 when every count is
equal and above 0 and the rows agree (so no bar was written twice: a second writer
of the topic, or of the lake, doubles its count), 1 when they differ, 2 when a store
cannot be read yet. With ``--some``: 0 as soon as every store holds a bar.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import confluent_kafka as ck
import duckdb
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_stores  # noqa: E402 - beside this file, in the container too

TOPIC_PREFIX = os.environ.get("MARKETPULSE_KAFKA_TOPIC_PREFIX", "marketpulse.")
KEY = "dataset, symbol, timeframe, bar_start"


def topic_bars(bootstrap: str, topic: str) -> int:
    """The records of ``topic`` a ``read_committed`` consumer reads, up to its end."""
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap, "group.id": "marketpulse-check-spark-route",
        "isolation.level": "read_committed", "enable.auto.commit": False,
        "enable.partition.eof": True, "auto.offset.reset": "earliest",
    })  # fmt: skip
    try:
        metadata = consumer.list_topics(topic, timeout=15)
        partitions = metadata.topics[topic].partitions
        if metadata.topics[topic].error is not None or not partitions:
            raise RuntimeError(f"no topic {topic}")
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in partitions])
        done: set[int] = set()
        count = 0
        while len(done) < len(partitions):
            message = consumer.poll(10)
            if message is None:
                raise RuntimeError(f"{topic}: nothing read for 10 s")
            error = message.error()
            if error is None:
                count += 1
            elif error.code() == ck.KafkaError._PARTITION_EOF:
                done.add(message.partition())
            else:
                raise RuntimeError(f"{topic}: {error.str()}")
        return count
    finally:
        consumer.close()


def lake_bars(lake: Path) -> tuple[int, int]:
    """Rows and distinct bar keys of the lake's ``bars`` table."""
    if not any((lake / "bars").rglob("*.parquet")):
        return 0, 0
    source = f"read_parquet('{lake / 'bars'}/**/*.parquet', hive_partitioning = true)"
    ((rows, keys),) = duckdb.sql(
        f"SELECT count(*), count(DISTINCT ({KEY})) FROM {source}"  # noqa: S608
    ).fetchall()
    return rows, keys


def postgres_bars(url: str) -> int:
    """The rows of PostgreSQL's ``bars`` table."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM bars").fetchone()[0]


def influx_bars(url: str) -> int:
    """The points of the ``bars`` measurement (``close`` is in every one)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode(
        {"db": parts.path.strip("/"), "q": 'SELECT count("close") FROM "bars"'}
    )
    with urllib.request.urlopen(f"{parts.scheme}://{parts.netloc}/query?{query}", timeout=10) as r:
        answer = json.load(r)
    result = answer["results"][0]
    if "error" in result:
        raise RuntimeError(f"InfluxDB: {result['error']}")
    series = result.get("series")
    return int(series[0]["values"][0][1]) if series else 0


def main() -> int:
    """Count, compare; the exit status says whether the stores agree."""
    lake = Path(os.environ.get("LAKE", "/data/lake"))
    pg_url = os.environ["MARKETPULSE_POSTGRES_URL"]
    try:
        on_topic = topic_bars(os.environ["MARKETPULSE_KAFKA_BOOTSTRAP"], f"{TOPIC_PREFIX}bars")
        rows, keys = lake_bars(lake)
        in_pg = postgres_bars(pg_url)
        in_influx = influx_bars(os.environ["MARKETPULSE_INFLUX_URL"])
    except (OSError, RuntimeError, ck.KafkaException, duckdb.Error, psycopg.Error) as exc:
        print(f"check_spark_route: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    print(f"bars: topic {on_topic}, lake {rows} rows {keys} keys, postgres {in_pg}, "
          f"influxdb {in_influx}")  # fmt: skip
    counts = {on_topic, rows, keys, in_pg, in_influx}
    if "--some" in sys.argv[1:]:
        return 1 if 0 in counts else 0
    if len(counts) != 1 or 0 in counts:
        return 1
    os.environ.setdefault("LAKE", str(lake))
    return compare_stores.main()  # prints its own line of counts; 1 when rows differ


if __name__ == "__main__":
    sys.exit(main())
