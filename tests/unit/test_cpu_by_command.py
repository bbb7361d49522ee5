"""scripts/cpu_by_command.py: the kinds of process the CI's CPU table counts under."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def script():
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module("cpu_by_command")
    finally:
        sys.path.remove(str(SCRIPTS))


WORKERS = "pytest workers (the tests' own code)"


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("/usr/bin/java\0-cp\0/x/libs/*\0kafka.Kafka\0server.properties", "java: Kafka broker"),
        ("/usr/bin/java\0-Dkafka.logs.dir=/dev/shm/marketpulse-kafka-ci.x1/logs\0kafka.Kafka",
         "java: Kafka broker (the CI's)"),
        ("/usr/lib/jvm/bin/java\0-cp\0/v/pyspark/jars/*\0o.a.s.deploy.SparkSubmit", "java: Spark"),
        ("bash\0/v/pyspark/bin/spark-class\0org.apache.spark.deploy.SparkSubmit", "java: Spark"),
        ("/v/bin/python\0-m\0pyspark.daemon", "python: Spark workers"),
        ("/v/bin/python\0-m\0marketpulse\0replay\0trades.csv.gz", "marketpulse replay"),
        ("/v/bin/python\0/v/bin/marketpulse\0lake\0ls\0--lake\0l", "marketpulse lake ls"),
        ("/v/bin/python\0-m\0marketpulse\0sql\0SELECT 1", "marketpulse sql"),
        ("/usr/lib/chromium/chromium\0--type=renderer", "chromium"),
        ("/v/bin/python\0-u\0-c\0import sys;exec(eval(sys.stdin.readline()))", WORKERS),
        ("/v/bin/python\0bench/run_all.py\0--smoke", "bench/run_all.py"),
        ("postgres\0-D\0/tmp/pg", "postgres"),
    ],
)  # fmt: skip
def test_each_process_is_counted_under_its_kind(script, cmdline, expected):
    assert script.kind(cmdline) == expected


def test_a_process_no_rule_names_is_counted_under_its_program_and_its_parent_s_kind(script):
    process = "/v/bin/python\0-m\0marketpulse\0process\0--kafka\0k:9092"
    assert script.kind("grep\0-q\0x", process) == "grep (under marketpulse process)"
    assert script.kind("/usr/bin/python3\0-c\0pass", "bash\0-c\0x") == "python3 -c ... (under bash)"
    assert script.kind("/v/bin/python\0-m\0moto.server\0-p\01") == "python -m moto.server"
    assert script.kind("/v/bin/python\0/t/shot.py\0--out", "bash") == "python shot.py (under bash)"
    assert script.kind("grep\0-q\0x") == "grep"  # no parent known
    # one a rule names keeps its kind whatever its parent
    assert script.kind("/v/bin/python\0-m\0marketpulse\0sql\0q", "bash") == "marketpulse sql"


def test_the_command_s_status_is_the_script_s_and_a_table_follows(tmp_path):
    run = [sys.executable, str(SCRIPTS / "cpu_by_command.py")]
    ok = subprocess.run([*run, "--", sys.executable, "-c", "pass"], capture_output=True, text=True)
    failed = subprocess.run([*run, "--", "false"], capture_output=True, text=True)
    bad = subprocess.run(run, capture_output=True, text=True)
    assert (ok.returncode, failed.returncode, bad.returncode) == (0, 1, 2)
    assert ok.stdout.startswith("== CPU by kind of process: ") and "kind" in ok.stdout
    assert "usage: cpu_by_command.py -- COMMAND" in bad.stderr


def test_a_command_that_is_not_there_is_one_line_and_status_127(script, capsys):
    assert script.main(["--", "/no/such/command"]) == 127
    assert capsys.readouterr().err == (
        "cpu_by_command.py: /no/such/command: No such file or directory\n"
    )
