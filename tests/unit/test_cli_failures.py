"""Runtime failures end a command with exit code 1 and one line saying what was not stored."""

from __future__ import annotations

import errno
import importlib
import sys

import pytest

from marketpulse.cli.failures import failure_line, made_by, os_failure
from marketpulse.exceptions import ConfigError, RunFailure
from marketpulse.runtime import Metrics
from marketpulse.sinks.exceptions import StorageLostError

cli_app = importlib.import_module("marketpulse.cli.app")


def test_the_line_counts_what_was_stored_and_what_was_made_but_not_stored():
    metrics = Metrics()
    metrics.add(ticks=1_000, bars=44_846, indicators=44_846, alerts=474)
    failure = StorageLostError("PostgreSQL at postgresql://u:****@db/x: unreachable", "PostgreSQL")
    failure.stored = {"bars": 397, "indicators": 397, "alerts": 0, "custom": 0}
    line = failure_line(failure, made_by(metrics.snapshot()))
    assert line == (
        "PostgreSQL at postgresql://u:****@db/x: unreachable; stored in PostgreSQL: bars 397, "
        "indicator rows 397; not stored: bars 44,449 of 44,846, indicator rows "
        "44,449 of 44,846, alerts 474 of 474"
    )
    failure.stored = dict.fromkeys(failure.stored, 0)
    assert "; stored in PostgreSQL: nothing; not stored: bars 44,846 of 44,846" in failure_line(
        failure, made_by(metrics.snapshot())
    )
    failure.stored = None  # not known: the message alone
    assert failure_line(failure, made_by(metrics.snapshot())) == str(failure)


@pytest.mark.parametrize(
    ("exc", "code"),
    [(RunFailure("the lake's disk is full"), 1), (ConfigError("bad setting"), 2),
     (OSError(errno.ENOSPC, "No space left on device", "/data/alerts.jsonl"), 1)],
)  # fmt: skip
def test_exit_codes_of_failures(monkeypatch, capsys, exc, code):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.delenv("MARKETPULSE_TRACEBACK", raising=False)
    monkeypatch.setattr(cli_app, "settings_from", fail)
    monkeypatch.setattr(sys, "argv", ["marketpulse", "config", "show"])
    with pytest.raises(SystemExit) as exit_info:
        cli_app.main()
    assert exit_info.value.code == code
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "internal error" not in line and "Traceback" not in line


def test_a_full_disk_elsewhere_names_the_file():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/alerts.jsonl")
    assert os_failure(full) == "No space left on device writing /data/alerts.jsonl"
    assert os_failure(OSError(errno.ENOENT, "No such file")) is None
    assert os_failure(ValueError("x")) is None
