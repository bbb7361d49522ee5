"""The command's last line of defence: an unexpected exception is one line, not a traceback."""

import importlib
import sys

import pytest

cli_app = importlib.import_module("marketpulse.cli.app")


@pytest.fixture
def broken_config_show(monkeypatch):
    """`config show` raising what a bug would raise."""

    def boom(*args, **kwargs):
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr(cli_app, "settings_from", boom)
    monkeypatch.setattr(sys, "argv", ["marketpulse", "config", "show"])


def test_internal_error_is_one_line_with_exit_1(broken_config_show, monkeypatch, capsys):
    monkeypatch.delenv("MARKETPULSE_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli_app.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "RuntimeError" in err and "something unforeseen" in err
    assert len(err.strip().splitlines()) == 1


def test_traceback_on_request(broken_config_show, monkeypatch):
    monkeypatch.setenv("MARKETPULSE_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="something unforeseen"):
        cli_app.main()
