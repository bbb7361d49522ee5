"""Storage settings: URLs and S3 credentials from the environment, never printed."""

from marketpulse.config import Secret, load_settings, masked, redact_url


def test_urls_and_s3_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no marketpulse.toml
    settings = load_settings(
        None,
        environ={
            "MARKETPULSE_POSTGRES_URL": "postgresql://app:p%40ss@db:5432/market",
            "MARKETPULSE_INFLUX_URL": "http://influx:8086/market",
            "MARKETPULSE_S3_ENDPOINT": "http://127.0.0.1:9000",
            "MARKETPULSE_S3_SECRET_ACCESS_KEY": "wJalr",
        },
    )
    assert settings.postgres_url == Secret("postgresql://app:p%40ss@db:5432/market")
    assert settings.s3.endpoint == "http://127.0.0.1:9000"
    shown = masked(settings)
    assert shown["postgres_url"] == "postgresql://app:********@db:5432/market"
    assert shown["influx_url"] == "http://influx:8086/market"
    assert shown["s3"]["secret_access_key"] == "********"
    assert "p%40ss" not in repr(settings) and "wJalr" not in repr(settings)


def test_redact_url_keeps_everything_but_the_password():
    assert redact_url("postgresql://u:pw@h/db?sslmode=require") == (
        "postgresql://u:********@h/db?sslmode=require"
    )
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("http://h:8086/db") == "http://h:8086/db"
    assert redact_url("not a url") == "not a url"
