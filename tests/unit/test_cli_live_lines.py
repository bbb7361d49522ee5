"""Piped output of `run` and `replay`: the kernels' compile progress, then the figures lines."""

import threading
import time

import marketpulse.cli.live as live
import marketpulse.kernel_progress as kernel_progress
from marketpulse.kernel_progress import CompileProgress
from marketpulse.runtime import Metrics


def test_while_kernels_compile_the_progress_is_printed_and_no_line_of_zero_ticks(
    monkeypatch, capsys
):
    state = {"progress": CompileProgress(3, 30, False)}
    monkeypatch.setattr(kernel_progress, "current", lambda: state["progress"])
    monkeypatch.setattr(live, "_LINE_EVERY", 0.5)
    metrics, done = Metrics(), threading.Event()
    shower = threading.Thread(target=live._show_lines, args=(done, metrics))
    shower.start()
    time.sleep(1.2)
    state["progress"] = CompileProgress(30, 30, True)
    metrics.add(ticks=1_000)
    time.sleep(0.8)
    done.set()
    shower.join()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "compiling kernels: 3/30 (first run only; later runs load them)"
    compiling = [i for i, line in enumerate(lines) if line.startswith("compiling kernels")]
    figures = [i for i, line in enumerate(lines) if line.startswith("ticks ")]
    assert compiling and figures and max(compiling) < min(figures)
    assert not any(line.startswith("ticks 0 ") for line in lines)


def test_with_nothing_to_compile_the_figures_lines_print_as_before(monkeypatch, capsys):
    monkeypatch.setattr(kernel_progress, "current", lambda: CompileProgress(0, 0, False))
    monkeypatch.setattr(live, "_LINE_EVERY", 0.3)
    metrics, done = Metrics(), threading.Event()
    metrics.add(ticks=10)
    shower = threading.Thread(target=live._show_lines, args=(done, metrics))
    shower.start()
    time.sleep(0.8)
    done.set()
    shower.join()
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("ticks 10 ") for line in lines)
