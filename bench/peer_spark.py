"""The Spark route as peers of bench/bench_peers.py: ``marketpulse spark``, and its other operator.

Four peers, on the preloaded ``ticks`` topic, each ``--available-now`` with a
checkpoint and a query name of its own, writing the same topics as
``marketpulse process`` (its ``bars`` are read back from the offsets they had
before the peer started):

* ``marketpulse-spark-local1``, ``marketpulse-spark-local2``: ``marketpulse
  spark --master local[N]`` as a command (``transformWithStateInPandas``);
* ``marketpulse-spark-apply-local1``, ``marketpulse-spark-apply-local2``: the
  same command with its bucket operator in ``applyInPandasWithState``
  (bench/peers/marketpulse_spark/apply_app.py).

Times come from Spark's own progress reports, which the driver logs with its
log settings plus one line (:func:`log_settings`): start-up runs from the
launch to the first micro-batch's start (its ``timestamp``), the run to the
end of the last micro-batch (its ``timestamp`` plus its ``batchDuration``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SPARK_PEERS",
    "SparkPeer",
    "ensure_connector",
    "log_settings",
    "progress_reports",
    "spark_command",
    "spark_env",
    "spark_timing",
]

ROOT = Path(__file__).resolve().parents[1]
APPLY_APP = ROOT / "bench" / "peers" / "marketpulse_spark" / "apply_app.py"
#: What Spark logs before each micro-batch's progress report (as JSON).
PROGRESS = "Streaming query made progress: "
#: The driver's loggers that may log the progress reports (Spark 4.2), besides the query's
#: (MicroBatchExecution: the package's ``logger.query``, whose level is raised).
PROGRESS_LOGGERS = ("org.apache.spark.sql.execution.streaming.runtime",)
#: The query's own lines (MicroBatchExecution at INFO): a batch's offsets written, with
#: its time (``batchTimestampMs``: the trigger's start), and the end of the query.
_COMMITTED = re.compile(
    r"^(\S+ \S+) INFO spark\.MicroBatchExecution: Committed offsets for batch (\d+)\. "
    r"Metadata OffsetSeqMetadata\(-?\d+,(\d+)", re.M,
)  # fmt: skip
_FINISHED = re.compile(
    r"^(\S+ \S+) INFO spark\.MicroBatchExecution: Finished processing all available data", re.M
)
#: The command's own progress lines (marketpulse.spark.progress): micro-batches and ticks.
_READ = re.compile(r"spark: (\d+) micro-batches, ([\d,]+) ticks")


@dataclass(frozen=True)
class SparkPeer:
    """One run of the Spark route: its stateful operator and Spark's master."""

    operator: str  # transformWithStateInPandas or applyInPandasWithState
    master: str

    @property
    def cores(self) -> int:
        """The cores Spark's local master runs tasks on."""
        return int(self.master.removeprefix("local[").removesuffix("]"))


SPARK_PEERS = {
    "marketpulse-spark-local1": SparkPeer("transformWithStateInPandas", "local[1]"),
    "marketpulse-spark-local2": SparkPeer("transformWithStateInPandas", "local[2]"),
    "marketpulse-spark-apply-local1": SparkPeer("applyInPandasWithState", "local[1]"),
    "marketpulse-spark-apply-local2": SparkPeer("applyInPandasWithState", "local[2]"),
}


def spark_command(
    name: str, bootstrap: str, prefix: str, checkpoint: Path, options: tuple[str, ...]
) -> list[str]:
    """The command of Spark peer ``name``: its own checkpoint and query name (so its own
    transactional id and progress record), the topics of ``prefix``."""
    peer = SPARK_PEERS[name]
    program = (["-m", "marketpulse", "spark"] if peer.operator == "transformWithStateInPandas"
               else [str(APPLY_APP)])  # fmt: skip
    return [sys.executable, *program, "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
            "--checkpoint", str(checkpoint), "--master", peer.master, "--available-now",
            "--name", f"bench-{name}", *options]  # fmt: skip


def log_settings(folder: Path) -> Path:
    """The driver's log settings: the package's, the progress reports' loggers at INFO."""
    import marketpulse.spark

    package = Path(marketpulse.spark.__file__).with_name("log4j2.properties").read_text()
    lines = [f"logger.bench{i}.name = {name}\nlogger.bench{i}.level = info"
             for i, name in enumerate(PROGRESS_LOGGERS)]  # fmt: skip
    # a later key wins: MicroBatchExecution's level of the package (off) becomes info
    overrides = "\n".join([*lines, "logger.query.level = info"])
    path = folder / "spark-log4j2.properties"
    path.write_text(f"{package}\n# bench/peer_spark.py: the progress reports\n{overrides}\n")
    return path


def spark_env(settings: Path) -> dict[str, str]:
    """The environment of a Spark peer: no ``MARKETPULSE_*``, the log settings given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    env["PYSPARK_SUBMIT_ARGS"] = (
        f'--driver-java-options "-Dlog4j2.configurationFile={settings}" pyspark-shell'
    )
    return env


def progress_reports(log: str) -> list[dict[str, Any]]:
    """Every progress report in a driver's log, in order."""
    decoder = json.JSONDecoder()
    reports, at = [], log.find(PROGRESS)
    while at >= 0:
        start = log.find("{", at)
        try:
            report, end = decoder.raw_decode(log, start)
        except json.JSONDecodeError:
            end = start + 1
        else:
            reports.append(report)
        at = log.find(PROGRESS, end)
    return reports


def _epoch(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def spark_timing(log: str) -> dict[str, Any]:
    """Start and end (epoch seconds) of the query's micro-batches; what they read and kept.

    From Spark's progress reports where the log has them; else from the query's
    own lines (the batches' offsets written, with their trigger time, and the
    end of an ``availableNow`` query) and the command's progress lines.

    Raises:
        ValueError: the log says neither.
    """
    reports = progress_reports(log)
    ran = [r for r in reports if int(r.get("numInputRows", 0)) > 0]
    if ran:
        return _from_reports(reports, ran)
    committed = _COMMITTED.findall(log)
    finished = _FINISHED.findall(log)
    if not committed or not finished:
        raise ValueError("no micro-batch start or query end in the driver's log")
    return {
        "ready": int(committed[0][2]) / 1000,
        "done": _local(finished[-1]),
        "micro_batches": len({batch for _, batch, _ in committed}),
        "ticks_read": sum(int(ticks.replace(",", "")) for _, ticks in _READ.findall(log)),
    }


def _local(stamp: str) -> float:
    """A log line's time (log4j's ``%d``: this machine's local time) in epoch seconds."""
    return dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _from_reports(reports: list[dict[str, Any]], ran: list[dict[str, Any]]) -> dict[str, Any]:
    ends = [_epoch(r["timestamp"]) + r["batchDuration"] / 1000 for r in reports]
    state = [op for r in ran for op in r.get("stateOperators", [])]
    last = ran[-1].get("stateOperators") or [{}]
    durations: dict[str, float] = {}
    for report in ran:
        for step, ms in report.get("durationMs", {}).items():
            durations[step] = durations.get(step, 0.0) + ms / 1000
    return {
        "ready": _epoch(ran[0]["timestamp"]),
        "done": max(ends),
        "micro_batches": len(ran),
        "ticks_read": sum(int(r["numInputRows"]) for r in ran),
        "steps_seconds": durations,
        "state_commit_seconds": sum(op.get("commitTimeMs", 0) for op in state) / 1000,
        "state_rows": sum(op.get("numRowsTotal", 0) for op in last),
        "state_memory_bytes": sum(op.get("memoryUsedBytes", 0) for op in last),
        "state_metrics": {k: v for op in last for k, v in op.get("customMetrics", {}).items()},
    }


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def ensure_connector(work: Path) -> None:
    """Have Ivy fetch the Kafka connector once, so no peer's start-up includes the download.

    ``marketpulse spark`` resolves ``spark.jars.packages`` at every start (from
    Ivy's cache after the first); a session of this interpreter's pyspark with
    the same package does the first.
    """
    from marketpulse.spark.job import KAFKA_PACKAGE

    code = (
        "import sys; from pyspark.sql import SparkSession; "
        "s = SparkSession.builder.master('local[1]').config('spark.jars.packages', sys.argv[1])"
        ".config('spark.driver.host', '127.0.0.1').config('spark.driver.bindAddress', "
        "'127.0.0.1').config('spark.ui.enabled', 'false').getOrCreate(); s.stop()"
    )
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    result = subprocess.run([sys.executable, "-c", code, KAFKA_PACKAGE], capture_output=True,
                            text=True, env=env, cwd=work, timeout=600)  # fmt: skip
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"fetching {KAFKA_PACKAGE}: {lines[-1] if lines else 'failed'}")


def java_version() -> str:
    """``java -version``'s first line."""
    if shutil.which("java") is None:
        return "no java"
    java = subprocess.run(["java", "-version"], capture_output=True, text=True)
    return (java.stderr.splitlines() or ["unknown"])[0]
