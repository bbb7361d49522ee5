"""The notifiers rules file of docs/guides/alerts.md, end to end through `replay`; bad uses."""

from __future__ import annotations

import json
import re
import socket

import pytest

from .conftest import LEAN_TRADES, ROOT, _load_beside

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

servers = _load_beside("notify_servers")


def _readme_rules() -> str:
    text = (ROOT / "docs" / "guides" / "alerts.md").read_text()
    section = text[text.index("## Notifiers") :]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def _alerts_in(message: str) -> int:
    held = re.match(r"(\d+) alerts held back by the rate limit", message)
    return int(held.group(1)) if held else 1


def test_readme_rules_send_slack_messages_and_emails(cli, tmp_path):
    http = servers.HttpReceiver()
    web = servers.start_http(http)
    controller, smtp = servers.start_smtp(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text(_readme_rules())
    env = {
        "SLACK_WEBHOOK_URL": f"{http.url}/slack",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_USER": servers.SMTP_USER,
        "SMTP_PASSWORD": servers.SMTP_PASSWORD,
        "SSL_CERT_FILE": smtp.cafile,  # the test server's own CA
    }
    try:
        result = cli("replay", LEAN_TRADES, "--rules", rules, "--lake", tmp_path / "lake",
                     "--alerts-file", tmp_path / "alerts.jsonl", env=env)  # fmt: skip
    finally:
        web.shutdown()
        controller.stop()
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert len(alerts) >= 3, result.stdout
    assert {a["rule"] for a in alerts} == {"news_move"}
    # Slack: every alert, in single messages and (beyond 5 a minute) a digest
    posts = [json.loads(p.body) for p in http.received("/slack")]
    assert all(set(p) == {"text", "blocks"} and p["blocks"][0]["type"] == "section"
               for p in posts)  # fmt: skip
    assert sum(_alerts_in(p["text"]) for p in posts) == len(alerts)
    assert len(posts) < len(alerts)  # the rate limit held some back for a digest
    first = alerts[0]
    single = f"{first['symbol']} news_move ({first['timeframe']}): {first['message']}"
    assert single in [p["text"] for p in posts]
    # e-mail: the warning route, after STARTTLS and login, at most 2 a minute plus a digest
    assert set(smtp.logins) == {servers.SMTP_USER}
    assert sum(_alerts_in(m["Subject"]) for m in smtp.messages) == len(alerts)
    assert all(m["To"] == "risk@example.com" for m in smtp.messages)
    assert any(m["Subject"] == f"MarketPulse warning: {first['symbol']} news_move"
               for m in smtp.messages)  # fmt: skip


def test_undeliverable_alerts_go_to_the_dlq(cli, sql, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""
notifiers:
  hook: {{type: webhook, url: "http://127.0.0.1:{closed}/x", retries: 1, backoff: 0.01}}
routes:
  warning: [hook]
rules:
  - {{name: news_move, type: pct_change, window: 10, threshold: 0.5, intervals: [1s]}}
""")
    lake = tmp_path / "lake"
    result = cli("replay", LEAN_TRADES, "--rules", rules, "--lake", lake,
                 "--alerts-file", tmp_path / "alerts.jsonl")  # fmt: skip
    alerts = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert f"DLQ rows {len(alerts)}" in result.stdout, result.stdout
    rows = sql(lake, "select reason, error from dlq")
    assert len(rows) == len(alerts) and {r["reason"] for r in rows} == {"notify_failed"}
    assert all("notifier 'hook'" in r["error"] for r in rows)


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        ("notifiers:\n  desk: {type: slack, url: 'http://x'}\nrules:\n"
         "  - name: r\n    type: rsi\n    above: 70\n    notify: [dsek]\n",
         {}, [":7:", "unknown channel 'dsek'", "did you mean 'desk'"]),
        ("notifiers:\n  desk:\n    type: slack\n    url: ${NO_SUCH_URL}\nrules: []\n",
         {}, [":4:", "environment variable NO_SUCH_URL is not set"]),
        ("notifiers:\n  mail:\n    type: email\n    host: h\n    from: a@b.c\n    to: [x@y.z]\n"
         "    template: '{symbol} {price}'\nrules: []\n",
         {}, [":7:", "unknown field {price}"]),
        ("notifiers:\n  hook:\n    type: webhook\n    url: http://x\n    retries: many\n"
         "rules: []\n", {}, [":5:", "'retries': expected an integer"]),
        ("notifiers:\n  desk: {type: slack, url: 'http://x'}\nroutes:\n  urgent: [desk]\n"
         "rules: []\n", {}, [":4:", "unknown severity 'urgent'"]),
    ],
)  # fmt: skip
def test_bad_channels_stop_with_one_line(cli, tmp_path, text, env, words):
    rules = tmp_path / "bad.yaml"
    rules.write_text(text)
    result = cli("replay", LEAN_TRADES, "--rules", rules, "--lake", tmp_path / "lake",
                 ok=False, env=env)  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {rules}:"), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "lake").exists()  # stopped before anything started


@pytest.mark.parametrize("on_kafka", [False, True], ids=["embedded", "kafka"])
def test_run_on_the_simulator_notifies(cli, tmp_path, on_kafka, request):
    http = servers.HttpReceiver()
    web = servers.start_http(http)
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""
notifiers:
  desk: {{type: slack, url: "{http.url}/slack", template: "{{symbol}} {{rule}}"}}
rules:
  - {{name: any_move, type: pct_change, window: 1, threshold: 0.0001, intervals: [1s],
     cooldown: 3600, notify: [desk]}}
""")
    extra = []
    if on_kafka:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        prefix = request.getfixturevalue("topic_prefix")
        extra = ["--kafka", bootstrap, "--topic-prefix", prefix]
    try:
        cli("run", "--duration", "12", "--symbols", "3", "--rate", "600", "--no-dashboard",
            "--rules", rules, "--lake", tmp_path / "lake", "--alerts-file",
            tmp_path / "alerts.jsonl", *extra)  # fmt: skip
    finally:
        web.shutdown()
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alerts  # one per symbol at most (the cooldown): the messages are those
    texts = sorted(json.loads(p.body)["text"] for p in http.received("/slack"))
    assert texts == sorted(f"{a['symbol']} any_move" for a in alerts)
