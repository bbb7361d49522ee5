"""Masking connection strings: every URL and libpq form loses its secrets and nothing else."""

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from marketpulse.config import load_settings, masked
from marketpulse.redaction import MASK, redact_text, redact_url, secret_values

SECRET = "S3CRET"

#: (connection string, the secret it holds, parts that must stay readable)
FORMS = [
    # PostgreSQL URLs
    ("postgresql://app:S3CRET@db:5432/market", SECRET, ["postgresql://app:", "@db:5432/market"]),
    (
        "postgres://app:S3CRET@db/market?sslmode=require",
        SECRET,
        ["app", "db/market", "sslmode=require"],
    ),
    ("postgresql://h/m?user=a&password=S3CRET", SECRET, ["postgresql://h/m?user=a&password="]),
    ("postgresql://h/m?password=S3CRET&sslmode=require", SECRET, ["h/m", "&sslmode=require"]),
    ("postgresql://h/m?sslpassword=S3CRET&sslkey=/etc/k.pem", SECRET, ["sslkey=/etc/k.pem"]),
    (
        "postgresql://h/m?passfile=/home/a/.pgpass&password=S3CRET",
        SECRET,
        ["passfile=/home/a/.pgpass"],
    ),
    ("postgresql://a:S3%40CR%2FET@h/m", "S3@CR/ET", ["postgresql://a:", "@h/m"]),
    ("postgresql://a:S3%40CR%2FET@h/m", "S3%40CR%2FET", ["@h/m"]),
    (
        "postgresql://a:S3CRET@h1:5432,h2:5433/m?target_session_attrs=read-write",
        SECRET,
        ["h1:5432,h2:5433/m", "target_session_attrs"],
    ),
    ("postgresql://a:S3CRET@[::1]:5432/m", SECRET, ["[::1]:5432/m"]),
    ("postgresql://h?user=me@corp&password=S3CRET", SECRET, ["user=me@corp"]),
    ("postgresql://a:S3?CRET@h/m", "S3?CRET", ["@h/m"]),
    ("postgresql://h/m?Password=S3CRET", SECRET, ["h/m"]),
    ("  postgresql://a:S3CRET@h/m", SECRET, ["@h/m"]),
    # libpq key=value
    ("host=h password=S3CRET", SECRET, ["host=h password="]),
    ("host=h password=S3CRET dbname=m user=a", SECRET, ["host=h", "dbname=m user=a"]),
    ("password=S3CRET host=h", SECRET, [" host=h"]),
    ("host=h password = S3CRET port=5432", SECRET, ["host=h", "port=5432"]),
    ("host=h password='S3 CRET' user=a", "S3 CRET", ["host=h", "user=a"]),
    ("host=h password='S3CRET' user=a", SECRET, ["user=a"]),
    (r"host=h password='S3\'CRET' user=a", r"S3\'CRET", ["user=a"]),
    (r"host=h password=S3\ CRET user=a", "CRET", ["user=a"]),
    ("host=h sslpassword=S3CRET sslkey=/etc/k.pem", SECRET, ["sslkey=/etc/k.pem"]),
    ("host=h\tpassword=S3CRET\nuser=a", SECRET, ["host=h", "user=a"]),
    ("host=h password='S3CRET", SECRET, ["host=h"]),
    # InfluxDB URLs
    ("http://u:S3CRET@influx:8086/market", SECRET, ["http://u:", "@influx:8086/market"]),
    ("https://influx:8086/market?p=S3CRET", SECRET, ["https://influx:8086/market?p="]),
    ("http://influx:8086/market?u=admin&p=S3CRET&rp=week", SECRET, ["u=admin", "&rp=week"]),
    ("http://influx:8086/bucket?token=S3CRET", SECRET, ["influx:8086/bucket"]),
    ("http://influx:8086/bucket?authorization=Token%20S3CRET", SECRET, ["influx:8086/bucket"]),
    ("http://:S3CRET@influx:8086/bucket", SECRET, ["@influx:8086/bucket"]),
]


@pytest.mark.parametrize(("conninfo", "secret", "readable"), FORMS)
def test_every_form_loses_its_secret_and_keeps_the_rest(conninfo, secret, readable):
    shown = redact_url(conninfo)
    assert secret not in shown
    assert MASK in shown
    for part in readable:
        assert part in shown, (part, shown)


@pytest.mark.parametrize(
    "conninfo",
    ["postgresql://app@db/market", "postgresql://db:5432/market?sslmode=require",
     "host=db port=5432 dbname=market user=app passfile=/home/app/.pgpass",
     "http://influx:8086/market?rp=week", "not a url"],
)  # fmt: skip
def test_strings_without_a_secret_are_left_as_they_are(conninfo):
    assert redact_url(conninfo) == conninfo


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1)


@given(_TEXT)
def test_any_password_percent_encoded_in_a_url_is_masked(password):
    secret = "Zq" + password
    for url in (
        f"postgresql://app:{quote(secret, safe='')}@db:5432/market",
        f"postgresql://db/market?user=app&password={quote(secret, safe='')}",
        f"http://influx:8086/market?u=app&p={quote(secret, safe='')}",
    ):
        shown = redact_url(url)
        assert secret not in shown and quote(secret, safe="") not in shown
        assert "db" in shown or "influx" in shown


@given(_TEXT)
def test_any_password_quoted_by_libpq_rules_is_masked(password):
    secret = "Zq" + password.replace("\x00", "")
    dsn = make_conninfo(host="db", port=5432, password=secret, user="app")
    assert conninfo_to_dict(dsn)["password"] == secret  # libpq reads back the same secret
    shown = redact_url(dsn)
    assert secret not in shown
    assert "host=db" in shown and "user=app" in shown


def test_error_text_loses_secrets_libpq_quotes_from_a_connection_string():
    dsn = r"host=h password=S3\ CRETX"  # a blank escaped: libpq reads S3 CRETX
    secrets = secret_values(dsn)
    shown = redact_text('missing "=" after "CRETX" in connection info string', secrets)
    assert "CRETX" not in shown and "connection info string" in shown
    text = "connect to postgresql://a:S3CRET@h/m?password=S3CRET failed: password=S3CRET host=h"
    shown = redact_text(text)
    assert SECRET not in shown and "host=h" in shown and "@h/m" in shown
    shown = redact_text("the secret S3CRET again", secret_values(f"password={SECRET}"))
    assert SECRET not in shown and "again" in shown


@pytest.mark.parametrize(("conninfo", "secret", "readable"), FORMS)
def test_settings_shown_keep_where_a_url_points_but_not_its_secret(
    conninfo, secret, readable, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)  # no marketpulse.toml
    settings = load_settings(
        None, environ={"MARKETPULSE_POSTGRES_URL": conninfo, "MARKETPULSE_INFLUX_URL": conninfo}
    )
    shown = masked(settings)
    for key in ("postgres_url", "influx_url"):
        assert secret not in shown[key]
        assert all(part in shown[key] for part in readable)
