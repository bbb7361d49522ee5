"""The Spark driver's standard error keeps what a user needs and leaves out the start's notices."""

import os
import subprocess
import sys
import textwrap

from marketpulse.spark.terminal import is_notice

#: A driver's start as it writes it (pyspark 4.2.0, Ivy resolving the Kafka connector from
#: its cache), then the stateful operator's Python worker's prints.
START = """\
WARNING: Using incubator modules: jdk.incubator.vector
:: loading settings :: url = jar:file:/venv/jars/ivy-2.5.3.jar!/org/apache/ivy/ivysettings.xml
Ivy Default Cache set to: /root/.ivy2.5.2/cache
The jars for the packages stored in: /root/.ivy2.5.2/jars
org.apache.spark#spark-sql-kafka-0-10_2.13 added as a dependency
:: resolving dependencies :: org.apache.spark#spark-submit-parent-8ff113d9;1.0
\tconfs: [default]
\tfound org.apache.spark#spark-sql-kafka-0-10_2.13;4.2.0 in central
\tfound org.apache.kafka#kafka-clients;3.9.2 in central
:: resolution report :: resolve 1648ms :: artifacts dl 43ms
\t:: modules in use:
\torg.apache.kafka#kafka-clients;3.9.2 from central in [default]
\t---------------------------------------------------------------------
\t|                  |            modules            ||   artifacts   |
\t|       conf       | number| search|dwnlded|evicted|| number|dwnlded|
\t|      default     |   11  |   0   |   0   |   0   ||   11  |   0   |
:: retrieving :: org.apache.spark#spark-submit-parent-8ff113d9
\tconfs: [default]
\t0 artifacts copied, 11 already retrieved (0kB/40ms)
Starting Streaming TransformWithStateInPandas Python worker.

Streaming TransformWithStateInPandas Python worker finish init stage of Python runner.
"""

#: Lines that stay: the project's log, Spark's warnings, a failed resolution.
KEPT = """\
2026-11-29 00:25:23,348 INFO marketpulse.spark.job: spark: query marketpulse-spark on Kafka
2026-11-29 00:25:25 WARN spark.NetworkClient: Connection to node 1 could not be established
\t::          UNRESOLVED DEPENDENCIES         ::
\t:: org.apache.spark#spark-sql-kafka-0-10_2.13;4.2.0: not found
:: problems summary ::
Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: x]
error: spark: the query stopped: bucket 3 of the checkpoint: ...
"""


def test_the_starts_notices_are_left_out_and_the_rest_kept():
    assert [line for line in START.splitlines(keepends=True) if not is_notice(line)] == []
    assert [line for line in KEPT.splitlines() if is_notice(line)] == []


def test_a_child_process_writes_through_the_filter_in_order():
    """Descriptor 2 of this process and of the children it starts goes through the filter."""
    script = textwrap.dedent("""
        import subprocess, sys
        from marketpulse.spark.terminal import QuietStderr
        with QuietStderr():
            print("mine before", file=sys.stderr, flush=True)
            child = "import os, sys; sys.stderr.write(os.environ['TEXT'])"
            subprocess.run([sys.executable, "-c", child], check=True)
            print("mine after", file=sys.stderr, flush=True)
        print("restored", file=sys.stderr, flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "TEXT": START + KEPT})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["mine before", *KEPT.splitlines(), "mine after",
                                          "restored"]  # fmt: skip


TRACE = """\
Exception in thread "stateConnectionListenerThread" java.nio.channels.ClosedByInterruptException
\tat java.base/sun.nio.ch.ServerSocketChannelImpl.accept(ServerSocketChannelImpl.java:399)
\t... 3 more
Caused by: java.lang.InterruptedException
"""


def test_once_stopped_the_jvms_thread_traces_are_left_out_and_the_rest_kept():
    """Before the stop, a JVM trace goes through (a failure says why); after it, the
    traces of the threads the stop interrupts are left out, other lines kept."""
    script = textwrap.dedent("""
        import os, sys, threading
        from marketpulse.spark.terminal import QuietStderr
        stopped = threading.Event()
        with QuietStderr(stopped):
            os.write(2, os.environ["TRACE"].encode())
            os.write(2, b"before the stop\\n")
            import time; time.sleep(0.3)
            stopped.set()
            os.write(2, os.environ["TRACE"].encode())
            os.write(2, b"after the stop\\n")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "TRACE": TRACE})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [*TRACE.splitlines(), "before the stop",
                                          "after the stop"]  # fmt: skip


#: A Python worker's traceback when it connects back after the 10 s Spark waited (pyspark
#: 4.2.0, seen with a worker held back 12 s), and another Python error's.
LATE = """\
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/venv/pyspark.zip/pyspark/worker_util.py", line 204, in get_sock_file_to_executor
pyspark.errors.exceptions.base.PySparkRuntimeError: [CANNOT_OPEN_SOCKET] Can not open socket: \
["tried to connect to ('127.0.0.1', 43525), but an error occurred: timed out"].
"""
OTHER = """\
Traceback (most recent call last):
  File "/venv/marketpulse/spark/writer.py", line 88, in __call__
    rows = frame.count()
KeyError: 'bar_start'
"""


def test_a_late_python_workers_traceback_is_left_out_and_other_tracebacks_kept():
    script = textwrap.dedent("""
        import subprocess, sys
        from marketpulse.spark.terminal import QuietStderr
        with QuietStderr():
            child = "import os, sys; sys.stderr.write(os.environ['TEXT'])"
            subprocess.run([sys.executable, "-c", child], check=True)
    """)
    text = "before\n" + LATE + "between\n" + OTHER + "after\n" + OTHER.rsplit("\n", 2)[0]
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "TEXT": text})  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the late worker's lines out; the other traceback whole, even cut off at the end
    unfinished = OTHER.rsplit("\n", 2)[0].splitlines()
    assert result.stderr.splitlines() == ["before", "between", *OTHER.splitlines(), "after",
                                          *unfinished]  # fmt: skip
