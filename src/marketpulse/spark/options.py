"""How the Spark route runs: where its checkpoint is, how it reads, what it writes."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_OFFSETS_PER_TRIGGER", "SparkOptions"]

#: Ticks a micro-batch reads at most, unless told otherwise.
MAX_OFFSETS_PER_TRIGGER = 200_000


@dataclass(frozen=True, slots=True)
class SparkOptions:
    """How the Spark job runs (the processing settings are the processor's own).

    Attributes:
        checkpoint: the query's checkpoint folder (a local path or any URI
            Spark writes, e.g. ``s3a://`` or ``hdfs://``): Spark's offsets, its
            state store (the buckets' processor state) and its commit log.
        master: Spark's master URL; ``None``: the one ``spark-submit`` gave, else
            ``local[*]``.
        starting_offsets: where a new query starts reading ``ticks``:
            ``earliest`` or ``latest`` (a restarted query resumes from its checkpoint).
        max_offsets_per_trigger: ticks read per micro-batch at most (``None``: all there
            are). The default bounds what a micro-batch holds: its outputs are collected in
            the driver (``foreachBatch``); one micro-batch of 777,000 ticks (two Lean
            days) failed in a local driver's shuffle block transfer here.
        trigger_seconds: seconds between micro-batches (0: each starts when the last ends;
            while bars close by the clock, :data:`~marketpulse.spark.job.CLOCK_TRIGGER_S`).
        available_now: read what the topic holds when the query starts, then stop.
        to_kafka: write the outputs to the output topics (in Kafka transactions).
        name: the query's name (in Spark's UI, and in the output transactions' id).
        shuffle_partitions: Spark's shuffle partitions, the tasks the buckets are
            spread over per micro-batch (``None``: as many as ``ticks`` has partitions).
    """

    checkpoint: str
    master: str | None = None
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = MAX_OFFSETS_PER_TRIGGER
    trigger_seconds: float = 0.0
    available_now: bool = False
    to_kafka: bool = True
    name: str = "marketpulse-spark"
    shuffle_partitions: int | None = None

    def __post_init__(self) -> None:
        if self.starting_offsets not in ("earliest", "latest"):
            raise ValueError("starting offsets must be earliest or latest")
        if self.max_offsets_per_trigger is not None and self.max_offsets_per_trigger < 1:
            raise ValueError("max offsets per trigger must be at least 1")
        if self.trigger_seconds < 0:
            raise ValueError("the trigger interval must not be negative")
