"""Defaults defined once in config, settable from TOML and the environment.

The processor's defaults, the process service's timings and the Kafka
compression each have one definition (a :mod:`marketpulse.config` constant);
the settings, ``ProcessorSettings``, ``ProcessOptions``, ``ProduceOptions``
and ``RunnerOptions`` all start from it.
"""

import pytest

from marketpulse import config
from marketpulse.config import ProcessSettings, Settings, load_settings
from marketpulse.exceptions import ConfigError


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no ./marketpulse.toml


def _toml(tmp_path, text):
    path = tmp_path / "marketpulse.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_config_constants():
    settings = load_settings(None, environ={})
    assert settings.intervals == config.BAR_INTERVALS == ("1s", "1m", "5m")
    assert settings.lateness == config.LATENESS == 0.5
    assert settings.idle_timeout == config.IDLE_TIMEOUT == 2.0
    assert settings.max_time_jump == config.MAX_TIME_JUMP == 14 * 86_400.0
    assert settings.session_tz == config.SESSION_TZ
    assert settings.kafka.compression == config.COMPRESSION == "lz4"
    assert settings.kafka.partitions == config.TOPIC_PARTITIONS
    assert settings.process == ProcessSettings(
        commit_interval=0.1, quiet_commit_interval=2.5, output_grace=0.02, max_batch=20_000,
        transaction_timeout=10.0, step_timeout=15.0,
    )  # fmt: skip


def test_the_lower_packages_take_their_defaults_from_config():
    from marketpulse.runtime.process import ProcessOptions
    from marketpulse.runtime.produce import ProduceOptions
    from marketpulse.stream import ProcessorSettings

    process = ProcessOptions()
    assert process.settings == ProcessSettings()  # the [process] section, nested as it is
    assert process.compression == ProduceOptions().compression == config.COMPRESSION
    proc = ProcessorSettings()
    settings = Settings()
    for name in ("intervals", "lateness", "idle_timeout", "session_tz", "max_time_jump"):
        assert getattr(proc, name) == getattr(settings, name), name


def test_new_keys_from_the_toml_file(tmp_path):
    path = _toml(
        tmp_path,
        "idle_timeout = 0\nmax_time_jump = 60\n\n"
        '[kafka]\ncompression = "zstd"\n\n'
        "[process]\ncommit_interval = 0.25\nquiet_commit_interval = 5\n"
        "output_grace = 0\nmax_batch = 500\ntransaction_timeout = 30\nstep_timeout = 20\n",
    )
    settings = load_settings(path, environ={})
    assert settings.idle_timeout == 0.0
    assert settings.max_time_jump == 60.0
    assert settings.kafka.compression == "zstd"
    assert settings.process == ProcessSettings(0.25, 5.0, 0.0, 500, 30.0, 20.0)


def test_new_keys_from_the_environment():
    settings = load_settings(
        None,
        environ={
            "MARKETPULSE_PROCESS_COMMIT_INTERVAL": "0.5",
            "MARKETPULSE_PROCESS_MAX_BATCH": "1000",
            "MARKETPULSE_KAFKA_COMPRESSION": "gzip",
            "MARKETPULSE_IDLE_TIMEOUT": "0",
        },
    )
    assert settings.process.commit_interval == 0.5
    assert settings.process.max_batch == 1000
    assert settings.process.step_timeout == config.STEP_TIMEOUT  # untouched
    assert settings.kafka.compression == "gzip"
    assert settings.idle_timeout == 0.0


def test_precedence_defaults_toml_environment_option(tmp_path):
    path = _toml(
        tmp_path,
        '[process]\ncommit_interval = 0.3\noutput_grace = 0.05\n\n[kafka]\ncompression = "zstd"\n',
    )
    from_file = load_settings(path, environ={})
    assert from_file.process.commit_interval == 0.3
    assert from_file.process.quiet_commit_interval == config.QUIET_COMMIT_INTERVAL  # default
    env = {"MARKETPULSE_PROCESS_COMMIT_INTERVAL": "0.7", "MARKETPULSE_KAFKA_COMPRESSION": "snappy"}
    from_env = load_settings(path, environ=env)
    assert from_env.process.commit_interval == 0.7  # the environment wins over the file
    assert from_env.process.output_grace == 0.05  # the file's, where the environment is silent
    assert from_env.kafka.compression == "snappy"
    # a command-line option wins over both; an option not given (None) changes nothing
    final = from_env.replace(**{"process.commit_interval": 0.01, "process.max_batch": None})
    assert final.process.commit_interval == 0.01
    assert final.process.max_batch == config.MAX_BATCH
    assert final.process.output_grace == 0.05 and final.kafka.compression == "snappy"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("MARKETPULSE_PROCESS_COMMIT_INTERVAL", "0", "commit_interval: expected a number above 0"),
        ("MARKETPULSE_PROCESS_MAX_BATCH", "0", "max_batch: expected a number at least 1"),
        ("MARKETPULSE_PROCESS_OUTPUT_GRACE", "-1", "output_grace: expected a number at least 0"),
        (
            "MARKETPULSE_PROCESS_STEP_TIMEOUT",
            "soon",
            "step_timeout: expected a number above 0, got 'soon'",
        ),
        ("MARKETPULSE_IDLE_TIMEOUT", "-1", "idle_timeout: expected a number at least 0"),
        ("MARKETPULSE_MAX_TIME_JUMP", "-5", "max_time_jump: expected a number at least 0"),
        ("MARKETPULSE_KAFKA_COMPRESSION", "brotli", "compression: expected one of lz4, zstd"),
    ],
)
def test_a_bad_value_from_the_environment_is_one_line_naming_the_key(variable, value, words):
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={variable: value})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("environment")
    assert words in message and value in message


#: A bad file value, and the line that names it (after the file's name).
BAD_IN_FILE = [
    ("[process]\ncommit_interval = -0.1\n",
     " [process]: commit_interval: expected a number above 0, got -0.1"),
    ("[process]\ncommit_every = 1\n",
     " [process]: unknown setting 'commit_every' (known: commit_interval, guarantee, "
     "max_batch, output_grace, quiet_commit_interval, step_timeout, store_trades, "
     "transaction_timeout)"),
    ('[kafka]\ncompression = "brotli"\n',
     " [kafka]: compression: expected one of lz4, zstd, snappy, gzip, none, got 'brotli'"),
    ("process = 3\n", ": [process] must be a table"),
    # a value of the wrong type: what the setting takes, in words, with its bounds
    ('max_symbols = "many"\n', ": max_symbols: expected a whole number at least 1, got 'many'"),
    ("intervals = 5\n", ": intervals: expected a list, or comma-separated text, got 5"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), BAD_IN_FILE)
def test_a_bad_value_in_the_file_is_one_line_naming_file_section_and_key(tmp_path, text, expected):
    path = _toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == f"{path}{expected}"


def test_idle_timeout_zero_means_never_in_the_processor():
    from marketpulse.cli.common import processor_settings
    from marketpulse.stream import ProcessorSettings

    assert processor_settings(Settings(idle_timeout=0.0)).idle_timeout is None
    assert processor_settings(Settings(idle_timeout=3.0)).idle_timeout == 3.0
    assert ProcessorSettings(idle_timeout=None).idle_timeout is None
    with pytest.raises(ValueError, match="idle_timeout"):
        ProcessorSettings(idle_timeout=0.0)  # never is None, not 0 (nor a huge number)


def test_the_readme_configuration_example_loads_and_shows_the_defaults(tmp_path):
    from pathlib import Path

    guide = Path(__file__).resolve().parents[2] / "docs" / "guides" / "configuration.md"
    section = guide.read_text().split("# Configuration", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    settings = load_settings(_toml(tmp_path, example), environ={})
    assert settings.process == ProcessSettings()  # the example shows the defaults
    assert settings.kafka.compression == config.COMPRESSION
    assert settings.idle_timeout == config.IDLE_TIMEOUT
