"""`marketpulse process` takes its timings from the settings: default < TOML < env < option.

The service and the bus are replaced by fakes that record what the command
built, so no broker is needed.
"""

import os

import pytest
from typer.testing import CliRunner

from marketpulse import config
from marketpulse.bus.topics import Topics
from marketpulse.cli.app import app


class _Stats:
    def line(self):
        return "0 records"


@pytest.fixture
def built(monkeypatch, tmp_path):
    """Run `process` with fakes; return a function giving what it built."""
    import marketpulse.cli.services_command as command
    import marketpulse.runtime.process as process
    from marketpulse.stream import Processor

    for name in [n for n in os.environ if n.startswith("MARKETPULSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no ./marketpulse.toml
    seen = {}

    class FakeService:
        def __init__(self, bus, topics, processor, options, stop, on_output=None, on_commit=None):
            seen["options"], seen["processor"] = options, processor.settings

        def run(self):
            return _Stats()

    monkeypatch.setattr(command, "open_bus", lambda settings: (None, Topics("t.")))
    monkeypatch.setattr(process, "ProcessService", FakeService)
    monkeypatch.setattr(Processor, "warm_up", lambda self: None)

    def run(*args, env=None, toml=None):
        extra = []
        if toml is not None:
            (tmp_path / "settings.toml").write_text(toml)
            extra = ["--config", str(tmp_path / "settings.toml")]
        result = CliRunner().invoke(app, ["process", *extra, *args], env=env or {})
        assert result.exit_code == 0, result.output
        return seen["options"], seen["processor"]

    return run


def test_defaults(built):
    options, processor = built()
    assert options.settings.commit_interval == config.COMMIT_INTERVAL
    assert options.compression == config.COMPRESSION
    assert options.settings.max_batch == config.MAX_BATCH
    assert processor.idle_timeout == config.IDLE_TIMEOUT


def test_toml_then_environment_then_option(built):
    toml = (
        "idle_timeout = 7\n\n[process]\ncommit_interval = 0.3\nmax_batch = 900\n"
        'step_timeout = 9\n\n[kafka]\ncompression = "zstd"\n'
    )
    options, processor = built(toml=toml)
    assert (
        options.settings.commit_interval,
        options.settings.max_batch,
        options.settings.step_timeout,
    ) == (0.3, 900, 9.0)
    assert options.compression == "zstd"  # `process` used lz4 whatever the setting said
    assert processor.idle_timeout == 7.0

    env = {"MARKETPULSE_PROCESS_COMMIT_INTERVAL": "0.4", "MARKETPULSE_IDLE_TIMEOUT": "5"}
    options, processor = built(toml=toml, env=env)
    assert (options.settings.commit_interval, options.settings.max_batch) == (0.4, 900)
    assert processor.idle_timeout == 5.0

    options, processor = built("--commit-interval", "0.05", "--idle-timeout", "3",
                               toml=toml, env=env)  # fmt: skip
    assert (options.settings.commit_interval, options.settings.max_batch) == (0.05, 900)
    assert processor.idle_timeout == 3.0


@pytest.mark.parametrize(
    ("args", "env", "toml"),
    [
        (["--idle-timeout", "0"], None, None),
        ([], {"MARKETPULSE_IDLE_TIMEOUT": "0"}, None),
        ([], None, "idle_timeout = 0\n"),
    ],
    ids=["option", "environment", "file"],
)
def test_idle_timeout_zero_is_never_whichever_way_it_is_given(built, args, env, toml):
    _, processor = built(*args, env=env, toml=toml)
    assert processor.idle_timeout is None


def test_an_option_of_zero_wins_over_a_setting(built):
    _, processor = built("--idle-timeout", "0", env={"MARKETPULSE_IDLE_TIMEOUT": "4"})
    assert processor.idle_timeout is None
