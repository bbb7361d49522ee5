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


PROXY = """[STREAM_FAILED] Query [id = 7, runId = 8] terminated with exception: An exception \
was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/py4j/clientserver.py", line 617, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
  File "/venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 120, in call
    raise e
  File "/app/marketpulse/spark/writer.py", line 88, in __call__
    rows = frame.count()
KeyError: 'bar_start'

\tat py4j.Protocol.getReturnValue(Protocol.java:476)
\tat org.apache.spark.sql.execution.streaming.sources.PythonForeachBatchHelper$..."""


def test_a_python_error_in_a_micro_batch_is_its_exception_line_not_the_traceback():
    assert _why(query(SimpleNamespace(desc=PROXY))) == "KeyError: 'bar_start'"


def test_of_chained_python_errors_the_last_raised_is_the_line():
    chained = PROXY.replace(
        "KeyError: 'bar_start'\n",
        "KeyError: 'bar_start'\n\nDuring handling of the above exception, another exception "
        'occurred:\n\nTraceback (most recent call last):\n  File "w.py", line 3, in f\n'
        "ValueError: a bar without its start\n",
    )
    assert _why(query(SimpleNamespace(desc=chained))) == "ValueError: a bar without its start"


def test_a_jvm_error_behind_a_py4j_call_in_a_micro_batch_is_the_line():
    java = PROXY.replace(
        "KeyError: 'bar_start'\n",
        "py4j.protocol.Py4JJavaError: An error occurred while calling o94.collectToPython.\n"
        ": org.apache.spark.SparkException: Python worker failed to connect back.\n",
    )
    line = _why(query(SimpleNamespace(desc=java)))
    assert line == "org.apache.spark.SparkException: Python worker failed to connect back."


def test_a_query_that_did_not_fail_has_no_line():
    assert _why(query(None)) is None
