"""``--metrics-port`` on every Kafka service command, and the setting behind it."""

from __future__ import annotations

import pytest
import typer.main

from marketpulse.cli.app import app
from marketpulse.config import load_settings
from marketpulse.exceptions import ConfigError

SERVICES = [["produce"], ["process"], ["sink", "lake"], ["sink", "postgres"], ["sink", "influx"]]


def _command(path: list[str]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", SERVICES, ids=" ".join)
def test_every_service_takes_a_metrics_port(path):
    command = _command(path)
    (option,) = [p for p in command.params if "--metrics-port" in p.opts]
    assert option.default is None  # unset: the setting decides (0: none)
    context = command.make_context("marketpulse", ["--metrics-port", "9100"])
    assert context.params["metrics_port"] == 9100
    with pytest.raises(Exception, match="65535"):
        command.make_context("marketpulse", ["--metrics-port", "65536"])


def test_the_setting_and_its_variable():
    assert load_settings(environ={}).metrics_port == 0
    assert load_settings(environ={}).metrics_host == "0.0.0.0"
    env = {"MARKETPULSE_METRICS_PORT": "9100", "MARKETPULSE_METRICS_HOST": "127.0.0.1"}
    settings = load_settings(environ=env)
    assert (settings.metrics_port, settings.metrics_host) == (9100, "127.0.0.1")
    with pytest.raises(ConfigError, match="metrics_port: expected a number at most 65535"):
        load_settings(environ={"MARKETPULSE_METRICS_PORT": "65536"})
    with pytest.raises(ConfigError, match="metrics_port: expected a number at least 0"):
        load_settings(environ={"MARKETPULSE_METRICS_PORT": "-1"})
