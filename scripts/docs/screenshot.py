"""Screenshots of the web dashboard for the README and the docs, made from real data.

Replays the Lean day of real trades (``../shared/data/lean-2013-10-07/trades.csv.gz``,
the file the tests use) into a temporary lake with ``marketpulse replay``, serves that
lake with ``marketpulse dashboard`` on a free port, opens its pages in a headless
Chromium (Debian's ``chromium``, driven by Playwright as the browser tests drive it),
waits until each has drawn and saves a 1400x900 PNG of it:

- ``dashboard.png``: SPY's 1-minute candles with the overlays, volume, the RSI and
  MACD panes and the alerts raised on them;
- ``alerts.png``: the alerts feed and the rules' track record;
- ``pipeline.png``: the pipeline page over the lake: what it holds of the dataset.

The dashboard is stopped (Ctrl-C, as a user stops it) before the script ends, and the
temporary lake removed. One line is printed per file written; a failure prints one
line and exits 1 (2 for bad arguments, e.g. a data file that is not there)::

    make screenshots                                  # into docs/images/
    .venv/bin/python scripts/docs/screenshot.py --out /tmp/shots
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[2]
LEAN_TRADES = ROOT.parent / "shared" / "data" / "lean-2013-10-07" / "trades.csv.gz"
OUT = ROOT / "docs" / "images"
CHROMIUM = Path("/usr/bin/chromium")
# the browser tests' flags (tests/integration/test_dashboard_browser.py)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1400, "height": 900}
SYMBOL = "SPY"
TIMEFRAME = "1m"
REPLAY_TIMEOUT_S = 300.0
START_TIMEOUT_S = 60.0
DRAW_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


# what a page showed when it did not draw in time, for the error message
SEEN = """() => {
    const chart = document.getElementById('chart'), track = document.getElementById('track');
    const last = document.getElementById('last');
    return JSON.stringify({
        bars: chart ? chart.dataset.bars : null, rsi: chart ? chart.dataset.rsi : null,
        macd: chart ? chart.dataset.macd : null,
        candles: document.querySelectorAll('#chart g.trace.boxes path').length,
        rules: track ? track.dataset.rules : null,
        alerts: document.querySelectorAll('#alerts tbody tr').length,
        live: document.body.dataset.liveDataset || null, last: last ? last.textContent : null,
    });
}"""


class ScreenshotError(Exception):
    """A step failed; the message is the one line printed."""


@dataclass(frozen=True)
class Shot:
    """One page to photograph: its file, its address and when it has drawn."""

    name: str
    path: str
    drawn: str  # a JavaScript expression, true once the page shows what it should
    what: str  # what the page waits for, for the error message


SHOTS = (
    Shot(
        name="dashboard.png",
        path=f"symbol?symbol={SYMBOL}&timeframe={TIMEFRAME}",
        # candles with both indicator panes, drawn as SVG, and the live price pushed
        drawn="""() => {
            const chart = document.getElementById('chart');
            return !!chart && Number(chart.dataset.bars || 0) > 100
                && Number(chart.dataset.rsi || 0) > 50 && Number(chart.dataset.macd || 0) > 50
                && document.querySelectorAll('#chart g.trace.boxes path').length > 100
                && !!document.body.dataset.liveDataset
                && document.getElementById('last').textContent !== '';
        }""",
        what=f"{SYMBOL}'s {TIMEFRAME} candles, RSI and MACD",
    ),
    Shot(
        name="alerts.png",
        path="alerts",
        drawn="""() => Number(document.getElementById('track').dataset.rules || 0) > 0
            && document.querySelectorAll('#alerts tbody tr').length > 0
            && !!document.body.dataset.liveDataset""",
        what="the alerts feed and the track record",
    ),
    Shot(
        name="pipeline.png",
        path="pipeline",
        drawn="""() => document.querySelectorAll('#tables tbody tr').length > 0
            && !!document.body.dataset.liveDataset""",
        what="the lake's tables of the dataset",
    ),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Exit 2 with one line, as the marketpulse command does for bad use."""
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="screenshot.py",
        description="Write PNG screenshots of the dashboard over a replay of the Lean day.",
    )
    parser.add_argument(
        "--data", type=Path, default=LEAN_TRADES, metavar="FILE",
        help=f"trades file to replay [default: {LEAN_TRADES}]",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=OUT, metavar="DIR",
        help=f"directory the PNG files are written to [default: {OUT}]",
    )  # fmt: skip
    parser.add_argument(
        "--chromium", type=Path, default=CHROMIUM, metavar="PATH",
        help=f"Chromium executable Playwright drives [default: {CHROMIUM}]",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    problem = None
    if not args.data.is_file():
        problem = f"data file not found: {args.data}"
    elif not args.chromium.is_file():
        problem = f"Chromium not found: {args.chromium}; `make browser` installs Debian's"
    if problem:
        print(f"{parser.prog}: error: {problem}", file=sys.stderr)
        return 2
    # a kill (SIGTERM) unwinds like Ctrl-C, so the dashboard is stopped on the way out too
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        for path in take_screenshots(args.data, args.out, args.chromium):
            print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    except ScreenshotError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    return 0


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def take_screenshots(data: Path, out: Path, chromium: Path) -> Iterator[Path]:
    """Replay ``data`` into a temporary lake, photograph the dashboard's pages into ``out``.

    Yields:
        Each file once written, in the order of :data:`SHOTS`.

    Raises:
        ScreenshotError: a step failed (the replay, the dashboard, a page).
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ScreenshotError(f"Playwright is missing ({exc}): make install") from None
    with tempfile.TemporaryDirectory(prefix="marketpulse-screenshots-") as tmp:
        work = Path(tmp)
        _replay(data, work)
        with _dashboard(work) as url, sync_playwright() as playwright:
            try:
                browser = playwright.chromium.launch(
                    executable_path=str(chromium), args=CHROMIUM_ARGS
                )
            except PlaywrightError as exc:
                raise ScreenshotError(f"cannot start {chromium}: {_first_line(exc)}") from None
            try:
                for shot in SHOTS:
                    target = out / shot.name
                    _save_png(_photograph(browser, url, shot), target)
                    yield target
            finally:
                browser.close()


def _environment() -> dict[str, str]:
    """This environment without MARKETPULSE_* settings: the pictures show the replay alone."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}


def _marketpulse(*args: str) -> list[str]:
    return [sys.executable, "-m", "marketpulse", *args]


def _replay(data: Path, work: Path) -> None:
    """Replay ``data`` into ``work/lake`` (the default intervals, indicators and rules)."""
    try:
        result = subprocess.run(
            _marketpulse("replay", str(data.resolve()), "--lake", str(work / "lake")),
            cwd=work, env=_environment(), capture_output=True, text=True,
            timeout=REPLAY_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ScreenshotError(f"marketpulse replay took over {REPLAY_TIMEOUT_S:.0f} s") from None
    if result.returncode != 0:
        raise ScreenshotError(f"marketpulse replay failed: {_last_line(result.stderr)}")


@contextlib.contextmanager
def _dashboard(work: Path) -> Iterator[str]:
    """Serve ``work/lake`` with ``marketpulse dashboard`` on a free port; yield its URL.

    The dashboard is stopped with SIGINT (Ctrl-C) on the way out, killed if it has not
    stopped within :data:`STOP_TIMEOUT_S`. Its output goes to files, not pipes, so it
    can never block on a full pipe nobody reads.
    """
    stdout_path, stderr_path = work / "dashboard.out", work / "dashboard.err"
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            _marketpulse("dashboard", "--lake", str(work / "lake"), "--port", "0"),
            cwd=work, env=_environment(), stdout=stdout, stderr=stderr,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        yield _wait_for_url(process, stdout_path, stderr_path)
    finally:
        _stop(process)


def _wait_for_url(process: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> str:
    """Return the URL the dashboard prints first, once it has printed it."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        match = re.match(r"dashboard: (http://\S+/)", stdout.read_text())
        if match:
            return match.group(1)
        if process.poll() is not None:
            raise ScreenshotError(
                f"marketpulse dashboard exited ({process.returncode}): "
                f"{_last_line(stderr.read_text())}"
            )
        time.sleep(0.1)
    raise ScreenshotError(f"marketpulse dashboard printed no URL within {START_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _photograph(browser: Any, url: str, shot: Shot) -> bytes:
    """Open ``shot``'s page, wait until it has drawn; return the PNG of the viewport."""
    from playwright.sync_api import Error as PlaywrightError

    page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        try:
            page.goto(url + shot.path)
        except PlaywrightError as exc:
            raise ScreenshotError(f"cannot open {url + shot.path}: {_first_line(exc)}") from None
        try:
            page.wait_for_function(shot.drawn, timeout=DRAW_TIMEOUT_S * 1000, polling=200)
        except PlaywrightError:
            seen = f"; the page reported: {errors[0]}" if errors else ""
            try:
                seen += f"; it showed {page.evaluate(SEEN)}"
            except PlaywrightError:  # the page is gone: its error says why
                pass
            raise ScreenshotError(
                f"{shot.name}: {url + shot.path} did not show {shot.what} "
                f"within {DRAW_TIMEOUT_S:.0f} s{seen}"
            ) from None
        if errors:
            raise ScreenshotError(f"{shot.name}: the page reported an error: {errors[0]}")
        # two frames: whatever the last update scheduled is painted
        page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        return page.screenshot(full_page=False, animations="disabled", caret="hide")
    finally:
        page.close()


def _save_png(png: bytes, target: Path) -> None:
    """Write ``png`` to ``target``, recompressed by Pillow when it is installed."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with the dev extra (matplotlib); without it, as taken
        data = png
    else:
        buffer = io.BytesIO()
        with Image.open(io.BytesIO(png)) as image:
            image.convert("RGB").save(buffer, format="PNG", optimize=True)
        data = buffer.getvalue()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise ScreenshotError(f"cannot write {target}: {exc.strerror}") from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return re.sub(r"^error:\s*", "", lines[-1]) if lines else "no message"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
