"""The peers' virtual environments of bench/bench_peers.py, and the Spark Kafka connector's jars.

    python bench/peer_venvs.py          # create or update them (``make bench-peers`` does)

Each peer has a folder under ``bench/peers/`` with its program (``app.py``)
and its pinned ``requirements.txt``; its environment is
``bench/peers/.venvs/NAME`` (git-ignored), made again when the requirements
change. The Spark Kafka connector and its runtime dependencies come from Maven
Central by ``mvn dependency:copy-dependencies`` on ``bench/peers/spark/pom.xml``
into ``bench/peers/.venvs/spark-jars``; the jars pyspark already ships (Scala,
Hadoop client, compression codecs) are left out, so one version of each is on
the classpath.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["PEERS", "PeerSetupError", "ensure", "ensure_spark_jars", "peer_python", "versions"]

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT / "bench" / "peers"
VENVS = PEERS_DIR / ".venvs"
JARS = VENVS / "spark-jars"
#: The peers that run in environments of their own.
PEERS = ("quix", "spark")
_STAMP = ".requirements-sha256"
#: What each environment reports of itself (printed as one JSON object).
_VERSIONS = {
    "quix": (
        "import json, confluent_kafka, importlib.metadata as m; print(json.dumps({"
        "'quixstreams': m.version('quixstreams'), 'confluent-kafka': m.version('confluent-kafka'),"
        " 'librdkafka': confluent_kafka.libversion()[0]}))"
    ),
    "spark": "import json, pyspark; print(json.dumps({'pyspark': pyspark.__version__}))",
}


class PeerSetupError(Exception):
    """An environment or the jars could not be made (the message is one line)."""


def _say(text: str) -> None:
    print(f"peers: {text}", file=sys.stderr, flush=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def peer_python(name: str) -> Path:
    """The interpreter of peer ``name``'s environment."""
    return VENVS / name / "bin" / "python"


def _run(command: list[str], what: str) -> None:
    """Run ``command``; on failure a :class:`PeerSetupError` with its last output line."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit {result.returncode}"
        raise PeerSetupError(f"{what} failed: {last}")


def ensure(name: str) -> Path:
    """Create or update peer ``name``'s environment from its requirements; its interpreter."""
    requirements = PEERS_DIR / name / "requirements.txt"
    venv, python = VENVS / name, peer_python(name)
    stamp = venv / _STAMP
    wanted = _digest(requirements)
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    pins = ", ".join(line for line in lines if line)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        _say(f"{name}: environment up to date ({pins})")
        return python
    started = time.monotonic()
    if not python.exists():
        _say(f"{name}: creating {venv.relative_to(ROOT)}")
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], f"{name}: python -m venv")
    _say(f"{name}: installing {pins} (pip)")
    _run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
         f"{name}: pip install -r {requirements.relative_to(ROOT)}")  # fmt: skip
    stamp.write_text(wanted)
    _say(f"{name}: ready in {time.monotonic() - started:.0f} s")
    return python


def ensure_spark_jars(python: Path) -> list[Path]:
    """The Kafka connector's jars (fetched by Maven when the pom changed), less pyspark's own."""
    pom = PEERS_DIR / "spark" / "pom.xml"
    stamp = JARS / _STAMP
    if not (stamp.exists() and stamp.read_text() == _digest(pom)):
        if shutil.which("mvn") is None:
            raise PeerSetupError(
                "spark: Maven is not installed (`apt-get install maven`): it fetches the "
                "Kafka connector's jars from Maven Central"
            )
        _say("spark: fetching the Kafka connector's jars from Maven Central (mvn)")
        shutil.rmtree(JARS, ignore_errors=True)
        JARS.mkdir(parents=True)
        _run(["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
              "-DincludeScope=runtime", f"-DoutputDirectory={JARS}"],
             "spark: mvn dependency:copy-dependencies")  # fmt: skip
        stamp.write_text(_digest(pom))
    shipped, version = subprocess.run(
        [str(python), "-c",
         "import pyspark, os; print(os.path.dirname(pyspark.__file__)); print(pyspark.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if version != _pom_spark_version():
        raise PeerSetupError(
            f"spark: pyspark {version} but the connector of pom.xml is {_pom_spark_version()}: "
            "make them equal"
        )
    own = {_artifact(p.name) for p in Path(shipped, "jars").glob("*.jar")}
    jars = sorted(p for p in JARS.glob("*.jar") if _artifact(p.name) not in own)
    if not any(p.name.startswith("spark-sql-kafka") for p in jars):
        raise PeerSetupError(f"spark: no spark-sql-kafka jar in {JARS.relative_to(ROOT)}")
    return jars


def _artifact(jar: str) -> str:
    """``kafka-clients`` of ``kafka-clients-3.9.2.jar``: the name without its version."""
    parts = jar.removesuffix(".jar").split("-")
    while parts and parts[-1][:1].isdigit():
        parts.pop()
    return "-".join(parts)


def versions(name: str) -> dict[str, str]:
    """The versions peer ``name``'s environment reports (its packages; Java for Spark)."""
    result = subprocess.run(
        [str(peer_python(name)), "-c", _VERSIONS[name]], capture_output=True, text=True, check=True
    )
    found = json.loads(result.stdout)
    if name == "spark":
        java = subprocess.run(["java", "-version"], capture_output=True, text=True)
        found["java"] = (java.stderr.splitlines() or ["unknown"])[0]
        found["spark-sql-kafka"] = _pom_spark_version()
    return found


def _pom_spark_version() -> str:
    text = (PEERS_DIR / "spark" / "pom.xml").read_text()
    return text.split("<spark.version>", 1)[1].split("<", 1)[0]


def main() -> int:
    try:
        for name in PEERS:
            python = ensure(name)
            if name == "spark":
                jars = ensure_spark_jars(python)
                _say(f"spark: {len(jars)} connector jars in {JARS.relative_to(ROOT)}")
    except PeerSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
