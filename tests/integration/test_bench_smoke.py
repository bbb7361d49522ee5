"""Every benchmark script still runs and its output still fits its section of docs/benchmarks.md.

``bench/run_all.py --smoke`` runs each script on tiny inputs and renders its
section from the output, saving nothing; a script that crashes, prints no
result or drops a figure its section reads fails here instead of at the next
``make bench``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from sections import SECTIONS  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_benchmark_section_runs_and_renders(section, request, tmp_path):
    env = dict(os.environ)
    if section in ("kafka", "kafka-consumer", "kafka-floor", "peers", "scale", "soak"):
        env["MARKETPULSE_KAFKA_BOOTSTRAP"] = request.getfixturevalue("kafka_bootstrap")
    if section == "storage":
        env["MARKETPULSE_POSTGRES_URL"] = request.getfixturevalue("postgres_admin_url")
    before = sorted((ROOT / "bench" / "results").rglob("*.json"))
    doc = (ROOT / "docs" / "benchmarks.md").read_bytes()
    result = subprocess.run(
        [sys.executable, "bench/run_all.py", "--smoke", "--only", section],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"{section}: rendered" in result.stderr
    # a smoke run measures nothing worth keeping: no result saved, the document untouched
    assert sorted((ROOT / "bench" / "results").rglob("*.json")) == before
    assert (ROOT / "docs" / "benchmarks.md").read_bytes() == doc


def test_smoke_fails_when_a_script_fails(tmp_path):
    """The smoke run is a real check: a failing script makes it exit non-zero."""
    script = tmp_path / "broken.py"
    script.write_text("raise SystemExit(3)\n")
    code = (
        "import sys; sys.path.insert(0, 'bench'); import run_all; "
        f"from sections import Script, Section; "
        f"run_all.SECTIONS = {{'x': Section('x', (Script('b', ({str(script)!r},), ()),), "
        "lambda r, h: '')}; sys.argv = ['run_all', '--smoke']; sys.exit(run_all.main())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "exited 3" in result.stderr


def test_the_scale_benchmark_refuses_a_bad_symbol_list():
    """A bad ``--symbols`` is a usage error (exit 2, one line), before any broker is touched."""
    result = subprocess.run(
        [sys.executable, "bench/bench_scale.py", "--symbols", "ten,100", "--svg", ""],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--symbols: not a list of whole numbers: 'ten,100'" in result.stderr
    assert "Traceback" not in result.stderr
