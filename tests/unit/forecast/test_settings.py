"""The forecast settings: from the environment or a config file to the processor's."""

import pytest

from marketpulse.assemble import processor_settings
from marketpulse.config import load_settings
from marketpulse.exceptions import ConfigError
from marketpulse.forecast.stage import ForecastSettings


def test_models_and_horizons_from_the_environment_reach_the_processor(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MARKETPULSE_FORECAST_MODELS", "drift, random")
    monkeypatch.setenv("MARKETPULSE_FORECAST_HORIZONS", "1,5")
    settings = processor_settings(load_settings(None))
    assert settings.forecast == ForecastSettings(models=("drift", "random"), horizons=(1, 5))


def test_none_by_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert processor_settings(load_settings(None)).forecast.models == ()


def test_a_config_file_takes_a_list_of_whole_numbers(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.toml").write_text(
        'forecast_models = ["persistence"]\nforecast_horizons = [2, 3]\n'
    )
    settings = load_settings(tmp_path / "m.toml")
    assert (settings.forecast_models, settings.forecast_horizons) == (("persistence",), (2, 3))


@pytest.mark.parametrize("value", ["one", "1.5"])
def test_horizons_that_are_not_whole_numbers_are_named(monkeypatch, tmp_path, value):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MARKETPULSE_FORECAST_HORIZONS", value)
    with pytest.raises(ConfigError, match="forecast_horizons"):
        load_settings(None)
