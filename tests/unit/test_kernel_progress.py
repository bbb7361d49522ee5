"""Which kernels a start-up needs: read off the entry kernels' code."""

from __future__ import annotations

from marketpulse.indicators import parse_set
from marketpulse.indicators.state import kernels as indicator_kernels
from marketpulse.kernel_progress import CompileProgress, needed
from marketpulse.stream import json_scan, windows
from marketpulse.stream.processor import Processor, ProcessorSettings


def _names(kernels):
    return {kernel.py_func.__name__ for kernel in kernels}


def test_the_callees_of_the_entry_kernels_are_needed_and_inlined_ones_are_not():
    found = _names(needed(windows.KERNELS))
    # _add_ticks calls _close_due, which calls _hold, which calls _emit_held
    assert {"_add_ticks", "_close_due", "_hold", "_emit_held", "_session_window"} <= found
    scan = _names(needed(json_scan.KERNELS))
    assert {"_scan", "_record", "_symbol_codes", "_gather"} == scan  # _skip_space is inlined


def test_only_the_declared_indicators_kernels_are_needed():
    declared = parse_set(["ema(50)", "rsi"])
    assert _names(needed(indicator_kernels(declared))) == {"_count", "_ema", "_rsi"}
    processor = Processor(ProcessorSettings(indicators=declared))
    found = _names(needed(processor.kernels()))
    assert {"_ema", "_rsi", "_flow"} <= found
    assert not found & {"_sma", "_macd", "_bbands", "_atr", "_vwap", "_lag_and_push"}


def test_lean_conditions_need_no_quote_kernels():
    lean = Processor(ProcessorSettings(conditions="lean"))
    assert "_flow" not in _names(needed(lean.kernels()))


def test_the_progress_line_counts_kernels_and_is_active_only_while_compiling():
    assert CompileProgress(7, 28, False).line() == (
        "compiling kernels: 7/28 (first run only; later runs load them)"
    )
    assert CompileProgress(7, 28, False).active
    assert not CompileProgress(28, 28, True).active
    assert not CompileProgress(0, 0, False).active  # everything in the cache


def test_kernels_another_process_put_in_the_cache_count_as_compiled(monkeypatch):
    from marketpulse import kernel_progress

    cached: set = set()
    monkeypatch.setattr(kernel_progress, "_cached", lambda kernel: kernel in cached)
    with kernel_progress.compiling(windows.KERNELS) as start:
        assert start.done == 0 and start.total == len(needed(windows.KERNELS))
        cached.add(windows.KERNELS[0])  # compiled by a second process meanwhile
        progress = kernel_progress.current()
        assert progress is not None and progress.done == 1 and progress.total == start.total


def test_the_warm_up_compiles_the_indicators_aside_only_when_they_are_not_cached(monkeypatch):
    from marketpulse import kernel_progress
    from marketpulse.indicators import compile_aside

    started = []
    monkeypatch.setattr(compile_aside, "start", lambda declared: started.append(declared))
    monkeypatch.setattr(kernel_progress, "uncached", lambda kernels: set())
    Processor(ProcessorSettings()).warm_up(columns=True)
    assert started == []
    monkeypatch.setattr(kernel_progress, "uncached", set)  # nothing in the cache
    settings = ProcessorSettings(indicators=parse_set(["ema(50)", "rsi"]))
    Processor(settings).warm_up(columns=True)
    assert started == [settings.indicators]
