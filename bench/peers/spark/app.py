"""The PySpark peer of bench/bench_peers.py: 1-minute bars per symbol, Structured Streaming.

Runs in its own virtual environment (bench/peers/.venvs/spark, from
requirements.txt beside this file) with the Kafka connector's jars fetched from
Maven Central (pom.xml beside this file), on ``local[2]``: the Kafka source
from the earliest offsets, ``from_json``, a one-minute tumbling ``window`` on
the trade's event time with a watermark of 0 seconds, the bar aggregated
(open and close: the price of the first and last trade by Kafka offset, as
every trade of a symbol is in one partition; ``max``/``min``/``sum``), written
to a Kafka topic in append mode with ``trigger(availableNow=True)``; the
shuffle has 2 partitions (Spark's default of 200 is meant for clusters).

In append mode a window is emitted once the watermark (the largest event time
seen, over all partitions) passes its end: each symbol's last window is not
emitted unless another symbol's trades run later; the benchmark leaves every
symbol's last window out of the comparison for every engine.

Prints a JSON line ``{"ready": T}`` once the session is up and ``{"done": T}``
when the query has finished (``T``: ``time.time()``).
"""

from __future__ import annotations

import argparse
import json
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SCHEMA = "symbol STRING, ts LONG, price DOUBLE, size DOUBLE"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True, help="the preloaded ticks topic")
    parser.add_argument("--output", required=True, help="the topic the bars go to")
    parser.add_argument("--checkpoint", required=True, help="the query's checkpoint folder")
    parser.add_argument("--jars", required=True, help="the Kafka connector's jars, comma-separated")
    args = parser.parse_args()

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("marketpulse-bench-peers")
        .config("spark.jars", args.jars)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    print(json.dumps({"ready": time.time()}), flush=True)

    trades = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(F.from_json(F.col("value").cast("string"), SCHEMA).alias("t"), "offset")
        .select("t.*", "offset")
        .withColumn("time", F.expr("timestamp_micros(ts div 1000)"))
    )
    bars = (
        trades.withWatermark("time", "0 seconds")
        .groupBy("symbol", F.window("time", "1 minute"))
        .agg(
            F.min_by("price", "offset").alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.max_by("price", "offset").alias("close"),
            F.sum("size").alias("volume"),
        )
        .select(
            F.col("symbol").alias("key"),
            F.to_json(
                F.struct(
                    F.unix_millis(F.col("window.start")).alias("start"),
                    "open",
                    "high",
                    "low",
                    "close",
                    "volume",
                )  # fmt: skip
            ).alias("value"),
        )
    )
    query = (
        bars.writeStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("topic", args.output)
        .option("checkpointLocation", args.checkpoint)
        .outputMode("append")
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    print(json.dumps({"done": time.time()}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
