import fcntl
import gc
import importlib.util
import logging
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
LEAN_TRADES = DATA / "lean-2013-10-07" / "trades.csv.gz"
LEAN_BARS = DATA / "lean-2013-10-07" / "minute_bars.csv.gz"
KAGGLE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"


def _load_beside(name):
    """Load a module beside this file (pytest runs with --import-mode=importlib)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"marketpulse_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", autouse=True)
def _spark_scratch_in_the_runs_temporary_folder(tmp_path_factory):
    """Spark's scratch folders (RocksDB working copies, shipped files: 86 MB a driver)
    under the run's temporary folder: a driver the tests kill leaves its own behind,
    in /tmp otherwise, where nothing removes them."""
    os.environ["SPARK_LOCAL_DIRS"] = str(tmp_path_factory.mktemp("spark-scratch"))


@pytest.fixture(scope="session", autouse=True)
def _brokers_the_tests_start_compile_less():
    """The Kafka brokers the tests start (private ones, the three-node cluster) run with
    the JVM's first compiler only (``KAFKA_OPTS``, read by scripts/kafka_broker.py): they
    live for seconds or minutes, in which the optimising compiler's own work is most of
    a broker's CPU (start-up 3.7 CPU-s against 6.5, a replayed day through it 11 against
    14-21, measured here). The session's broker (.ci/run, ``MARKETPULSE_KAFKA_BOOTSTRAP``)
    is started before, with the same option."""
    os.environ.setdefault("KAFKA_OPTS", "-XX:TieredStopAtLevel=1")


@pytest.fixture(scope="session", autouse=True)
def _spark_drivers_the_tests_start_compile_less():
    """The same for the JVMs of the Spark drivers the tests start (``SPARK_SUBMIT_OPTS``,
    read by Spark's launcher for the driver it starts): each lives for one query of a few
    micro-batches. Measured here on the tests' two Lean mornings, nine micro-batches to a
    lake: the driver's JVM 29-30 CPU-s against 51-53, the run 39-41 s against 48-51."""
    os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")


@pytest.fixture(autouse=True)
def _services_a_test_started_end_with_it():
    """A service a test started (kafka_tools.start) and left running is stopped when the
    test ends: one without ``--exit-when-idle`` that a failed test never reached the end
    of stayed for the rest of the run, joining its group again on the next broker started
    on the same port. Those started by a module's or a class's fixtures are set up before
    this fixture and are theirs to stop."""
    from .kafka_tools import STARTED, stop_started_since

    count = len(STARTED)
    yield
    left = stop_started_since(count)
    if left:
        logging.getLogger(__name__).warning("stopped %d service(s) the test left running", left)


# Kafka broker fixtures: pytest collects fixtures found in a conftest's namespace.
_kafka_fixtures = _load_beside("kafka_fixtures")
kafka_bootstrap = _kafka_fixtures.kafka_bootstrap
topic_prefix = _kafka_fixtures.topic_prefix
private_broker = _kafka_fixtures.private_broker


# PostgreSQL, InfluxDB and S3 API servers (Debian packages, moto)
_db_fixtures = _load_beside("db_fixtures")
postgres_admin_url = _db_fixtures.postgres_admin_url
postgres_url = _db_fixtures.postgres_url
private_postgres = _db_fixtures.private_postgres
influx_base_url = _db_fixtures.influx_base_url
influx_url = _db_fixtures.influx_url
s3_endpoint = _db_fixtures.s3_endpoint


def marketpulse(*args, cwd=None, timeout=600, env=None):
    """Run the marketpulse command as a user would; return the completed process."""
    command = [sys.executable, "-m", "marketpulse", *map(str, args)]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    environ.update(env or {})
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environ
    )


@pytest.fixture
def cli(cli_in_process):
    """Run marketpulse in a fresh working directory, inside this process
    (:func:`marketpulse_in_process`); fail on a non-zero exit unless told. A test of how
    the command runs as a process (start-up, signals, standard input) calls
    :func:`marketpulse` or starts it itself."""
    return cli_in_process


def marketpulse_in_process(*args, cwd, env=None):
    """Run the marketpulse command inside this process; return what the subprocess run would.

    The same entry point (``marketpulse.cli.main``: its one-line errors and exit
    codes) without an interpreter's start-up and imports, for the tests that check
    what a command prints, returns and writes. Each run gets the environment
    without ``MARKETPULSE_*`` (plus ``env``), ``cwd`` as working directory, empty
    standard input and fresh standard output and error (typer's test runner), and
    leaves the process as it found it: environment, working directory, logging,
    the repeat limiter, the cycle collector. Tests of how a user runs the command
    (start-up, signals, standard input, services) keep :func:`marketpulse`.
    """
    from typer._click import formatting as typer_formatting
    from typer.testing import CliRunner

    from marketpulse import log_repeats
    from marketpulse.cli import main

    saved_environ = dict(os.environ)
    root = logging.getLogger()
    saved_logging = (root.handlers[:], root.level, logging.root.manager.disable)
    saved_gc = (gc.get_threshold(), gc.get_freeze_count())
    runner = CliRunner()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in list(os.environ):
                if name.startswith("MARKETPULSE_"):
                    mp.delenv(name)
            for name, value in (env or {}).items():
                mp.setenv(name, value)
            mp.chdir(cwd)
            mp.setattr(sys, "argv", ["marketpulse", *map(str, args)])
            with runner.isolation() as (stdout, stderr, _):
                # help as a subprocess writes it (the runner's fixed 80 columns; click takes 78)
                typer_formatting.FORCED_WIDTH = None
                try:
                    main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
                    if isinstance(exc.code, str):
                        sys.stderr.write(exc.code + "\n")
                log_repeats.flush_repeats()  # what the exit hook prints after a process's last line
                sys.stdout.flush()
                sys.stderr.flush()
                out = stdout.getvalue().decode()
                err = stderr.getvalue().decode()
    finally:
        log_repeats._installed.clear()
        root.handlers[:], level, disable = saved_logging
        root.setLevel(level)
        logging.disable(disable)
        if not saved_gc[1]:  # a service command froze its start-up's objects (runtime.heap)
            gc.unfreeze()
        gc.set_threshold(*saved_gc[0])
        os.environ.clear()
        os.environ.update(saved_environ)
    command = [sys.executable, "-m", "marketpulse", *map(str, args)]
    return subprocess.CompletedProcess(command, code, out, err)


@pytest.fixture
def cli_in_process(tmp_path):
    """``cli`` inside this process (:func:`marketpulse_in_process`): same arguments and result."""

    def run(*args, ok=True, cwd=None, env=None, timeout=None):
        result = marketpulse_in_process(*args, cwd=cwd or tmp_path, env=env)
        if ok:
            assert result.returncode == 0, result.stderr + result.stdout
        return result

    return run


@pytest.fixture
def sql(cli_in_process):
    """Query a lake through `marketpulse sql --format json`."""
    import json

    def query(lake, text):
        return json.loads(cli_in_process("sql", text, "--lake", lake, "--format", "json").stdout)

    return query


@dataclass(frozen=True)
class LeanLake:
    """The lake and alerts file of one ``marketpulse replay`` of the Lean day, default options."""

    lake: Path
    alerts_file: Path
    replay: subprocess.CompletedProcess


def _files(lake: Path) -> list[tuple[str, int, int]]:
    # the .locks folder is where readers take their locks: reading may touch it
    return sorted(
        (p.relative_to(lake).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in lake.rglob("*")
        if p.is_file() and ".locks" not in p.relative_to(lake).parts
    )


def once_per_run(tmp_path_factory, name, make):
    """``make()``'s result, made once for the whole run by whichever test process asks
    first, the others (pytest-xdist's workers) waiting for it and loading it.

    A session fixture is otherwise made once in each worker that needs it: the Lean day's
    replay and its Kafka reference runs were made up to four times a run. ``make`` gets
    the run's shared folder for its files and returns plain data (pickled beside them).
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    folder = shared / f"once-{name}"
    with open(shared / f"once-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        made = folder / "made.pickle"
        if made.exists():
            return pickle.loads(made.read_bytes())
        folder.mkdir(exist_ok=True)
        value = make(folder)
        made.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def lean_lake(tmp_path_factory):
    """The Lean day replayed once per run (``replay FILE --lake L --alerts-file A``).

    Read it, never write it: a test that changes a lake copies this one first
    (``shutil.copytree`` into its ``tmp_path``). Teardown checks that no file changed.
    """

    def make(root):
        lake, alerts = root / "lake", root / "alerts.jsonl"
        replay = marketpulse("replay", LEAN_TRADES, "--lake", lake, "--alerts-file", alerts,
                             cwd=root)  # fmt: skip
        assert replay.returncode == 0, replay.stderr + replay.stdout
        return str(lake), str(alerts), replay.args, replay.stdout, replay.stderr

    lake, alerts, args, stdout, stderr = once_per_run(tmp_path_factory, "lean-lake", make)
    replay = subprocess.CompletedProcess(args, 0, stdout, stderr)
    files = _files(Path(lake))
    yield LeanLake(Path(lake), Path(alerts), replay)
    assert _files(Path(lake)) == files, "a test wrote into the shared lean_lake: copy it first"


@pytest.fixture(scope="session")
def lean_default_reference(tmp_path_factory, kafka_bootstrap):
    """Records sent and outputs of one uninterrupted `process` run with the default
    settings (made once per run)."""
    from .kafka_tools import lean_default_outputs

    return once_per_run(tmp_path_factory, "lean-default-reference",
                        lambda _: lean_default_outputs(kafka_bootstrap, LEAN_TRADES))  # fmt: skip


@pytest.fixture(scope="session")
def lean_reference(tmp_path_factory, kafka_bootstrap):
    """Records sent and outputs of one uninterrupted `process` run over the Lean day
    (made once per run)."""
    from .kafka_tools import lean_reference_outputs

    return once_per_run(tmp_path_factory, "lean-reference",
                        lambda _: lean_reference_outputs(kafka_bootstrap, LEAN_TRADES))  # fmt: skip
