"""Notifiers against real receivers: HTTP webhooks (HMAC, retries, timeout), SMTP, Kafka."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import msgspec
import pytest

from marketpulse.alerts import load_notifications
from marketpulse.alerts.dispatch import Dispatcher
from marketpulse.alerts.messages import SIGNATURE_HEADER
from marketpulse.models import Alert

from .conftest import _load_beside

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

servers = _load_beside("notify_servers")

BAR = 1_381_152_600 * 10**9  # 2013-10-07T13:30:00Z


def _alert(i: int = 0, severity: str = "warning", rule: str = "news_move") -> Alert:
    return Alert(
        id=f"{rule}|SPY|1s|{BAR + i * 10**9}", rule=rule, symbol="SPY", timeframe="1s",
        bar_start=BAR + i * 10**9, bar_end=BAR + (i + 1) * 10**9, severity=severity,
        message=f"SPY moved 0.{i + 5} % in 10 s", details={"close": 168.5 + i}, dataset="lean",
    )  # fmt: skip


@pytest.fixture
def http():
    receiver = servers.HttpReceiver()
    server = servers.start_http(receiver)
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp(tmp_path):
    controller, receiver = servers.start_smtp(tmp_path)
    yield receiver
    controller.stop()


class _Counts:
    def __init__(self):
        self.counts = {}
        self.dead = []

    def count(self, channel, outcome, n):
        self.counts[(channel, outcome)] = self.counts.get((channel, outcome), 0) + n

    def bury(self, letters):
        self.dead.extend(letters)


def _dispatcher(tmp_path, text, env=None, drain=15.0):
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    counts = _Counts()
    config = load_notifications(rules, env or {})
    return Dispatcher(config, counts.count, counts.bury, drain_timeout=drain), counts


RULE = """
rules:
  - name: news_move
    type: pct_change
    window: 10
    threshold: 0.5
    notify: [{channels}]
"""


def test_webhook_is_signed_and_retried_after_a_500(http, tmp_path):
    http.statuses["/hook"] = [500, 500]
    dispatcher, counts = _dispatcher(
        tmp_path,
        f"""
notifiers:
  hook:
    type: webhook
    url: {http.url}/hook
    secret_env: HOOK_SECRET
    retries: 3
    backoff: 0.05
"""
        + RULE.format(channels="hook"),
        {"HOOK_SECRET": "k3y"},
    )
    dispatcher.notify([_alert()])
    posts = http.wait_for("/hook", 3)
    dispatcher.close()
    assert len(posts) == 3  # two 500s, then delivered: no fourth post
    body = posts[-1].body
    assert msgspec.json.decode(body, type=Alert) == _alert()
    expected = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(posts[-1].headers[SIGNATURE_HEADER], expected)
    assert counts.counts == {("hook", "retried"): 2, ("hook", "sent"): 1}
    assert counts.dead == []


def test_webhook_that_keeps_failing_goes_to_the_dead_letters(http, tmp_path):
    http.statuses["/down"] = [503] * 10
    dispatcher, counts = _dispatcher(
        tmp_path,
        f"""
notifiers:
  hook: {{type: webhook, url: "{http.url}/down", retries: 2, backoff: 0.05}}
"""
        + RULE.format(channels="hook"),
    )
    dispatcher.notify([_alert()])
    dispatcher.close()
    assert len(http.received("/down")) == 3
    assert counts.counts[("hook", "failed")] == 1
    (letter,) = counts.dead
    assert letter.reason == "notify_failed"
    assert "HTTP 503" in letter.error and "after 3 attempts" in letter.error
    assert json.loads(letter.value)["id"] == _alert().id


def test_webhook_timeout_is_a_failed_attempt(http, tmp_path):
    http.delay["/slow"] = 2.0
    dispatcher, counts = _dispatcher(
        tmp_path,
        f"""
notifiers:
  hook: {{type: webhook, url: "{http.url}/slow", timeout: 0.3, retries: 1, backoff: 0.05}}
"""
        + RULE.format(channels="hook"),
    )
    started = time.monotonic()
    dispatcher.notify([_alert()])
    assert time.monotonic() - started < 0.2  # notify only queues
    dispatcher.close()
    assert len(http.received("/slow")) == 2
    (letter,) = counts.dead
    assert "timed out after 0.3 s" in letter.error


def test_slack_and_teams_messages(http, tmp_path):
    dispatcher, _ = _dispatcher(
        tmp_path,
        f"""
notifiers:
  desk: {{type: slack, url: "{http.url}/slack", template: "{{symbol}} {{rule}}: {{message}}"}}
  team: {{type: teams, url: "{http.url}/teams"}}
"""
        + RULE.format(channels="desk, team"),
    )
    dispatcher.notify([_alert()])
    slack = http.wait_for("/slack", 1)[0]
    teams = http.wait_for("/teams", 1)[0]
    dispatcher.close()
    message = json.loads(slack.body)
    assert message["text"] == "SPY news_move: SPY moved 0.5 % in 10 s"
    assert message["blocks"][0] == {
        "type": "section", "text": {"type": "mrkdwn", "text": message["text"]},
    }  # fmt: skip
    card = json.loads(teams.body)
    assert card["@type"] == "MessageCard"
    assert card["title"] == "[warning] SPY 1s news_move: SPY moved 0.5 % in 10 s"
    assert {"name": "symbol", "value": "SPY"} in card["sections"][0]["facts"]


def test_rate_limit_sends_a_digest_of_the_held_alerts(http, tmp_path):
    dispatcher, counts = _dispatcher(
        tmp_path,
        f"""
notifiers:
  desk: {{type: slack, url: "{http.url}/slack", rate_limit: 2}}
"""
        + RULE.format(channels="desk"),
    )
    dispatcher.notify([_alert(i) for i in range(6)])
    http.wait_for("/slack", 2)
    time.sleep(0.3)
    assert len(http.received("/slack")) == 2  # the minute's two; the rest are held
    dispatcher.close()  # shutdown sends what is held as one digest
    posts = http.received("/slack")
    assert len(posts) == 3
    digest = json.loads(posts[2].body)["text"]
    assert digest.startswith("4 alerts held back by the rate limit (SPY)")
    assert counts.counts == {("desk", "sent"): 2, ("desk", "digested"): 4}


def test_email_over_starttls_with_login(smtp, tmp_path):
    dispatcher, counts = _dispatcher(
        tmp_path,
        f"""
notifiers:
  mail:
    type: email
    host: 127.0.0.1
    port: {smtp.port}
    user: {servers.SMTP_USER}
    password_env: SMTP_PASSWORD
    from: {servers.SMTP_USER}
    to: [desk@example.test, risk@example.test]
    ca_file: {smtp.cafile}
"""
        + RULE.format(channels="mail"),
        {"SMTP_PASSWORD": servers.SMTP_PASSWORD},
    )
    dispatcher.notify([_alert()])
    (mail,) = smtp.wait_for(1)
    dispatcher.close()
    assert smtp.logins == [servers.SMTP_USER]
    assert mail["Subject"] == "MarketPulse warning: SPY news_move"
    assert mail["To"] == "desk@example.test, risk@example.test"
    text = mail.get_body(("plain",)).get_content()
    assert "[warning] SPY 1s news_move: SPY moved 0.5 % in 10 s" in text
    assert counts.counts == {("mail", "sent"): 1}


def test_email_with_a_wrong_password_is_a_dead_letter(smtp, tmp_path):
    dispatcher, counts = _dispatcher(
        tmp_path,
        f"""
notifiers:
  mail: {{type: email, host: 127.0.0.1, port: {smtp.port}, user: {servers.SMTP_USER},
          password_env: SMTP_PASSWORD, from: a@example.test, to: [b@example.test],
          ca_file: "{smtp.cafile}", backoff: 0.05}}
"""
        + RULE.format(channels="mail"),
        {"SMTP_PASSWORD": "wrong"},
    )
    dispatcher.notify([_alert()])
    dispatcher.close()
    assert smtp.messages == []
    (letter,) = counts.dead
    assert "SMTP login refused" in letter.error  # permanent: not retried
    assert ("mail", "retried") not in counts.counts


def test_kafka_topic_of_the_users_choice(kafka_bootstrap, tmp_path):
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"notify-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    dispatcher, counts = _dispatcher(
        tmp_path,
        f"""
notifiers:
  tape: {{type: kafka, bootstrap: "${{BOOTSTRAP}}", topic: {topic}}}
"""
        + RULE.format(channels="tape"),
        {"BOOTSTRAP": kafka_bootstrap},
    )
    dispatcher.notify([_alert(0), _alert(1)])
    dispatcher.close()
    assert counts.counts == {("tape", "sent"): 2}
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest"})  # fmt: skip
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 2 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append((msg.key(), msgspec.json.decode(msg.value(), type=Alert)))
    consumer.close()
    assert got == [(b"SPY", _alert(0)), (b"SPY", _alert(1))]
