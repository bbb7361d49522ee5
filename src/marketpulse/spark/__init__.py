"""The Spark route: MarketPulse's processor inside Spark Structured Streaming.

``ticks`` come from Spark's Kafka source, grouped by their Kafka partition (a
*bucket*: what a partition is to the ``process`` service, by the same key
hash), and each bucket runs through a stateful operator
(``transformWithStateInPandas``) that holds the bucket's processor state in
Spark's state store (RocksDB), so Spark's checkpoints recover it. The
operator's output is the records ``process`` would produce; each micro-batch
of them is written from ``foreachBatch`` to the output topics (in one Kafka
transaction, skipped when that batch id is already committed), to the lake
(files named after the bucket and the batch id) and to the databases (upserts),
so a micro-batch Spark runs again writes nothing twice.

Spark is an optional extra (``pip install marketpulse[spark]``): nothing else
in the package imports this part, and this module imports no Spark.
"""

from marketpulse.spark.options import SparkOptions

__all__ = ["SparkOptions"]
