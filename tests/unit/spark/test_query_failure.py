"""A failed Spark query is one line: the MarketPulse error inside Spark's message, or its cause."""

from types import SimpleNamespace

from marketpulse.cli.spark_command import _why

JAVA = """[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: Job aborted.
  at org.apache.spark.sql.execution...
Traceback (most recent call last):
  File "bucket_operator.py", line 120, in _processor
marketpulse.stream.checkpoint.CheckpointError: bucket 5 of the checkpoint: state was written \
with intervals 1s,1m,5m and lateness 0 s, not 1m and 0 s: keep the settings, or start a new \
--checkpoint
  at org.apache.spark.api.python..."""


def query(error):
    return SimpleNamespace(exception=lambda: error)


def test_a_marketpulse_error_inside_sparks_message_is_the_line():
    line = _why(query(SimpleNamespace(desc=JAVA)))
    assert line == (
        "bucket 5 of the checkpoint: state was written with intervals 1s,1m,5m and lateness "
        "0 s, not 1m and 0 s: keep the settings, or start a new --checkpoint"
    )


def test_sparks_own_failure_is_its_cause_without_the_query_ids_and_sqlstate():
    desc = (
        "[STREAM_FAILED] Query [id = 4, runId = 6] terminated with exception: Multiple "
        "streaming queries are concurrently using file:/c/commits. SQLSTATE: XXKST\n  at x"
    )
    line = _why(query(SimpleNamespace(desc=desc)))
    assert line == "Multiple streaming queries are concurrently using file:/c/commits."


def test_a_query_that_did_not_fail_has_no_line():
    assert _why(query(None)) is None
