"""`make screenshots` (scripts/docs/screenshot.py): the dashboard photographed over the Lean day.

The script runs as the target runs it, into a temporary directory: it replays the Lean
day, serves it with `marketpulse dashboard` and saves the pages Chromium draws. The
pictures must be drawn pages (candles, indicator panes, alert markers; the track
record's boxes), not a page still waiting for its data, and the dashboard and its
temporary lake must be gone when it ends. The README and the dashboard guide show the
files it wrote into docs/images/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from .conftest import LEAN_TRADES, ROOT

pytestmark = pytest.mark.integration

SCRIPT = ROOT / "scripts" / "docs" / "screenshot.py"
CHROMIUM = Path("/usr/bin/chromium")
SIZE = (1400, 900)
MAX_BYTES = 300_000
BACKGROUND = (15, 20, 25)  # the pages' #0f1419
# the colours the pages draw their data in (src/marketpulse/serve/static/*.js)
CANDLE_UP, CANDLE_DOWN, ALERT_MARKER = (47, 191, 113), (229, 83, 75), (224, 165, 38)
ALERTS_BOX, RANDOM_BARS_BOX = (214, 39, 40), (127, 127, 127)


def _screenshot(*args, cwd: Path, tmpdir: Path | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)  # the script's temporary lake goes here, to be looked for
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=540,
    )  # fmt: skip


def _colours(path: Path) -> dict[tuple[int, int, int], int]:
    """Pixels per colour of an image of the right size."""
    with Image.open(path) as image:
        assert image.size == SIZE
        return {colour: n for n, colour in image.convert("RGB").getcolors(SIZE[0] * SIZE[1])}


def _processes_naming(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        if text in command:
            found.append(command)
    return found


@pytest.fixture
def scratch():
    """A temporary directory of its own for the script (TMPDIR), with a short path.

    Chromium cannot start under a long TMPDIR (its sockets' paths would pass the
    108-byte limit), so not one under pytest's tmp_path.
    """
    path = Path(tempfile.mkdtemp(prefix="mp-shots-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(600)
def test_screenshots_show_the_drawn_dashboard_and_nothing_is_left_running(tmp_path, scratch):
    if not LEAN_TRADES.exists():
        pytest.skip(f"{LEAN_TRADES} is missing")
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (.ci/run does it)")
    result = _screenshot("--out", "shots", cwd=tmp_path, tmpdir=scratch)
    assert result.returncode == 0, result.stderr
    # one line per file written, and those files only
    assert result.stdout.splitlines() == [
        "shots/dashboard.png",
        "shots/alerts.png",
        "shots/pipeline.png",
    ]
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == [
        "alerts.png",
        "dashboard.png",
        "pipeline.png",
    ]
    assert "Traceback" not in result.stderr

    shots = tmp_path / "shots"
    for path in shots.iterdir():
        assert path.stat().st_size < MAX_BYTES, path
    dashboard = _colours(shots / "dashboard.png")
    # a page with no data yet: a few hundred colours, 94 % background
    assert len(dashboard) > 2000
    assert dashboard[BACKGROUND] < 0.9 * SIZE[0] * SIZE[1]
    for colour in (CANDLE_UP, CANDLE_DOWN, ALERT_MARKER):
        assert dashboard.get(colour, 0) > 500, colour
    alerts = _colours(shots / "alerts.png")
    assert alerts[BACKGROUND] < 0.9 * SIZE[0] * SIZE[1]
    for colour in (ALERTS_BOX, RANDOM_BARS_BOX):  # the track record drawn
        assert alerts.get(colour, 0) > 500, colour

    # the dashboard it started is stopped, its temporary lake removed
    assert _processes_naming(str(scratch)) == []
    assert not [p for p in scratch.iterdir() if p.name.startswith("marketpulse-screenshots-")]


def test_a_missing_data_file_is_one_line_and_writes_nothing(tmp_path):
    missing = tmp_path / "missing.csv.gz"
    result = _screenshot("--data", missing, "--out", tmp_path / "shots", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"screenshot.py: error: data file not found: {missing}"]
    assert result.stdout == ""
    assert not (tmp_path / "shots").exists()


def test_an_unknown_option_is_one_line(tmp_path):
    result = _screenshot("--frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "unrecognized arguments: --frobnicate" in line
    assert result.stdout == ""


@pytest.mark.parametrize("page", ["README.md", "docs/guides/dashboard.md"])
def test_the_docs_show_screenshots_the_script_writes(page):
    text = (ROOT / page).read_text()
    shown = re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", text)
    assert shown, f"{page} shows no screenshot"
    written = {"dashboard.png", "alerts.png", "pipeline.png"}  # scripts/docs/screenshot.py's SHOTS
    for link in shown:
        path = (ROOT / page).parent / link
        assert path.resolve().parent == ROOT / "docs" / "images" and path.name in written, link
        assert path.stat().st_size < MAX_BYTES, link
        with Image.open(path) as image:
            assert image.size == SIZE, link
