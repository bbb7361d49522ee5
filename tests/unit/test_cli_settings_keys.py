"""Every option of the pipeline commands sets a settings key, or is named here as not one.

A new option of ``run``, ``replay``, ``produce``, ``process``, ``sink``,
``notify`` or ``backfill`` fails these tests until it carries its settings key
(``cli/options.py``) or is added to the command's list of options that are
not settings, so the command line and the settings cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import typer

from marketpulse.cli import common, options
from marketpulse.cli.app import app, replay, run
from marketpulse.cli.notify_command import notify
from marketpulse.cli.produce_command import produce
from marketpulse.cli.services_command import process, sink_influx, sink_lake, sink_postgres
from marketpulse.cli.sql_command import backfill
from marketpulse.config import Secret, Settings

#: Options of the live vendor feeds: they open one feed, they are no settings.
_LIVE = {"url", "rest_url", "tickers", "watchlist", "data_feed", "bar_interval", "quotes",
         "history", "calendar", "rate_limit", "env_file"}  # fmt: skip
#: Options that describe the file replayed or published.
_FILE = {"format", "symbol", "columns", "include_suspicious", "adjust"}
#: Options of one Kafka service instance.
_SERVICE = {"group", "exit_when_idle", "config"}

#: Per command, the options that are not settings: what to run, not how.
NOT_SETTINGS = {
    run: _LIVE | {
        "feed_name", "duration", "view_interval", "no_dashboard", "config",
        "dataset",  # checked by dataset_for, then the dataset setting
        "sink", "postgres_tables",  # which sinks this run builds
        "host", "port", "token", "updates_per_s",  # the dashboard of this run
    },
    replay: _FILE | {"file", "speed", "dataset", "sink", "postgres_tables", "config"},
    produce: _LIVE | _FILE | {"feed", "file", "duration", "speed", "config"},
    process: {"group", "instance_id", "exit_when_idle", "dataset", "config"},
    sink_lake: _SERVICE | {"max_age"},
    sink_postgres: _SERVICE | {"max_age"},
    sink_influx: _SERVICE | {"max_age"},
    notify: _SERVICE | {"ledger", "commit_interval"},  # notify's own commit interval
    backfill: _FILE | {"file", "dataset", "config"},
}  # fmt: skip


def _has_key(key: str) -> bool:
    node: object = Settings
    for part in key.split("."):
        found = {f.name: f for f in dataclasses.fields(node)}.get(part)  # type: ignore[arg-type]
        if found is None:
            return False
        node = getattr(Settings(), part) if node is Settings else found.type
    return True


@pytest.mark.parametrize("command", list(NOT_SETTINGS), ids=lambda c: c.__name__)
def test_every_option_is_a_settings_key_or_named_as_not_one(command):
    parameters = set(inspect.signature(command).parameters)
    keys = options.setting_keys(command)
    unmapped = parameters - set(keys) - NOT_SETTINGS[command]
    assert not unmapped, f"{command.__name__}: options without a settings key: {sorted(unmapped)}"
    assert not NOT_SETTINGS[command] - parameters, "a name listed here is not an option"
    assert not set(keys) & NOT_SETTINGS[command]
    wrong = {name: s.key for name, s in keys.items() if not _has_key(s.key)}
    assert not wrong, f"{command.__name__}: keys not in the settings tree: {wrong}"


def test_every_settings_key_of_every_command_is_in_the_tree():
    commands = typer.main.get_command(app)
    callbacks = []

    def walk(group):
        for command in group.commands.values():
            if hasattr(command, "commands"):
                walk(command)
            elif command.callback is not None:
                callbacks.append(command.callback)

    walk(commands)
    for callback in callbacks:
        for name, setting in options.setting_keys(callback).items():
            assert _has_key(setting.key), (callback.__name__, name, setting.key)


def test_the_options_given_overlay_the_settings_file(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(common, "configure_logging", lambda level: None)
    for name in ("MARKETPULSE_LAKE", "MARKETPULSE_INTERVALS", "MARKETPULSE_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "marketpulse.toml"
    config.write_text('lake = "from-file"\nrules = "rules.yaml"\n[simulator]\nsymbols = 7\n')
    arguments = dict.fromkeys(inspect.signature(run).parameters)
    arguments |= {
        "config": config, "lake": "given", "intervals": "60m,1d", "seed": 3,
        "kafka": "broker:9092", "guarantee": "at-least-once", "plugin": [],
        "postgres_url": "postgresql://u:pw@db/market",
    }  # fmt: skip
    settings = options.overlay(run, arguments)
    assert settings.lake == "given"
    assert settings.rules == "rules.yaml"  # not given: the file's
    assert settings.intervals == ("1h", "1d")
    assert (settings.simulator.symbols, settings.simulator.seed) == (7, 3)
    assert settings.kafka.bootstrap == "broker:9092"
    assert settings.process.guarantee == "at-least-once"
    assert settings.plugins == ()
    assert isinstance(settings.postgres_url, Secret)
    assert settings.postgres_url.reveal() == "postgresql://u:pw@db/market"


def test_run_and_pipeline_set_the_same_keys_for_the_same_options():
    from marketpulse import pipeline

    names = {"plugin": "plugins"}  # run's repeated --plugin is Pipeline's plugins
    keys = {names.get(name, name): s.key for name, s in options.setting_keys(run).items()}
    shared = set(keys) & set(pipeline._SETTINGS)
    assert {"lake", "rules", "intervals", "plugins", "symbols"} <= shared
    assert {name: keys[name] for name in shared} == {
        name: pipeline._SETTINGS[name] for name in shared
    }
