"""`marketpulse spark` starts its query again after Spark's transient worker start failure."""

import logging
import threading
from types import SimpleNamespace

import pytest

import marketpulse.spark.job as job
from marketpulse.cli import spark_command

LATE = (
    "[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: Python worker "
    "failed to connect back. SQLSTATE: XXKST\n  at org.apache.spark.api.python..."
)
OTHER = (
    "[STREAM_FAILED] Query [id = 1, runId = 3] terminated with exception: Multiple "
    "streaming queries are concurrently using file:/c/commits. SQLSTATE: XXKST"
)


class Query:
    """A query that has ended, failed with ``desc`` (``None``: it did not fail)."""

    isActive = False

    def __init__(self, desc: str | None) -> None:
        self.desc = desc

    def awaitTermination(self, timeout: float) -> None:  # noqa: N802 - pyspark's name
        raise AssertionError("an ended query is not waited on")

    def exception(self):
        return None if self.desc is None else SimpleNamespace(desc=self.desc)


def run(monkeypatch, *ends):
    """Run `_query` with queries that end as ``ends`` say, in turn; (its line, starts)."""
    starts = []

    def start(*args, **kwargs):
        starts.append(args)
        return Query(ends[len(starts) - 1])

    closed = []
    monkeypatch.setattr(job, "start", start)
    session = SimpleNamespace(stop=lambda: closed.append("session"))
    monkeypatch.setattr(spark_command, "_session", lambda options, stop: session)
    writer = SimpleNamespace(close=lambda: closed.append("writer"))
    settings = SimpleNamespace(process=SimpleNamespace(store_trades=True))
    line = spark_command._query(settings, None, [], None, writer, None, None, threading.Event())
    assert closed == ["session", "writer"]  # whatever happened, both closed once
    return line, len(starts)


def test_a_late_python_worker_restarts_the_query_once_and_says_so(monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, "marketpulse.cli.spark_command"):
        assert run(monkeypatch, LATE, None) == (None, 2)
    assert [r.getMessage() for r in caplog.records] == [
        "spark: the query failed (Python worker failed to connect back.): starting it again "
        "from its checkpoint (start 2 of 3)"
    ]


@pytest.mark.parametrize("ends", [(LATE, LATE, LATE), (LATE, LATE, LATE, None)])
def test_after_three_starts_a_late_worker_is_the_commands_error(monkeypatch, ends):
    assert run(monkeypatch, *ends) == ("Python worker failed to connect back.", 3)


def test_another_failure_is_not_retried(monkeypatch):
    line, starts = run(monkeypatch, OTHER, None)
    assert (line, starts) == ("Multiple streaming queries are concurrently using "
                              "file:/c/commits.", 1)  # fmt: skip
