import threading
import time

import pytest

from marketpulse.alerts import load_notifications, load_rules
from marketpulse.alerts.delivery import DeliveryError
from marketpulse.alerts.dispatch import Dispatcher
from marketpulse.alerts.messages import render
from marketpulse.exceptions import RulesError
from marketpulse.models import Alert
from marketpulse.runtime import Metrics, PipelineCollector
from marketpulse.runtime.endpoint import render as render_metrics

YAML = """\
notifiers:
  hook:
    type: webhook
    url: https://hooks.example.com/${HOOK_PATH}
    secret_env: HOOK_SECRET
    timeout: 2
  mail:
    type: email
    host: smtp.example.com
    port: ${SMTP_PORT}
    user: me@example.com
    password_env: SMTP_PASSWORD
    from: me@example.com
    to: [desk@example.com]
routes:
  critical: [hook]
rules:
  - name: news_move
    type: pct_change
    window: 10
    threshold: 0.5
    notify: [mail, hook]
  - name: rsi_high
    type: rsi
    above: 70
"""
ENV = {"HOOK_PATH": "abc", "HOOK_SECRET": "k", "SMTP_PORT": "2525", "SMTP_PASSWORD": "pw"}


def _alert(rule="news_move", severity="warning", i=0):
    return Alert(id=f"{rule}|{i}", rule=rule, symbol="SPY", timeframe="1s", bar_start=i * 10**9,
                 bar_end=(i + 1) * 10**9, severity=severity, message="moved")  # fmt: skip


def test_channels_routes_and_secrets_from_the_environment(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(YAML)
    config = load_notifications(path, ENV)
    hook, mail = config.channels["hook"], config.channels["mail"]
    assert hook.url == "https://hooks.example.com/abc" and hook.secret.reveal() == "k"
    assert hook.timeout == 2.0
    assert mail.port == 2525 and mail.password.reveal() == "pw" and mail.to == ("desk@example.com",)
    assert "pw" not in repr(mail)  # secrets never print
    assert config.targets("news_move", "warning") == ["mail", "hook"]
    assert config.targets("news_move", "critical") == ["mail", "hook"]
    assert config.targets("rsi_high", "critical") == ["hook"]
    assert config.targets("rsi_high", "info") == []
    assert [r.name for r in load_rules(path)] == ["news_move", "rsi_high"]  # notify is not a rule's


def test_toml_rules_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        '[notifiers.desk]\ntype = "slack"\nurl = "https://x"\nrate_limit = 3\n\n'
        '[routes]\nwarning = ["desk"]\n\n'
        '[[rules]]\nname = "r"\ntype = "rsi"\nabove = 70\nnotify = ["desk"]\n'
    )
    config = load_notifications(path, {})
    assert config.channels["desk"].rate_limit == 3
    assert config.targets("r", "warning") == ["desk"]
    path.write_text('[notifiers.desk]\ntype = "slack"\nurl = "https://x"\nrate_limt = 3\n'
                    '[[rules]]\nname = "r"\ntype = "rsi"\nabove = 70\n')  # fmt: skip
    with pytest.raises(RulesError, match=r"rules.toml:4: .*'rate_limt'.*did you mean 'rate_limit'"):
        load_notifications(path, {})


def test_a_file_without_notifiers_has_none(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: r, type: rsi, above: 70}\n")
    assert not load_notifications(path, {})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("notifiers:\n  x:\n    type: pager\n", r":3: notifier 'x': type must be one of"),
        ("notifiers:\n  x:\n    type: slack\n", r":2: notifier 'x': missing required field 'url'"),
        ("notifiers:\n  x:\n    type: slack\n    url: ftp://x\n", r":4: .*http:// or https://"),
        ("notifiers:\n  x:\n    type: webhook\n    url: http://x\n    secret_env: NOPE\n",
         r":5: .*environment variable NOPE is not set"),
        ("notifiers:\n  x:\n    type: webhook\n    url: http://x\n    timeout: 0\n",
         r":5: .*timeout must be > 0"),
        ("notifiers:\n  x:\n    type: email\n    host: h\n    from: a@b\n    to: [nobody]\n",
         r":6: .*e-mail addresses"),
        ("notifiers:\n  x: {type: slack, url: 'http://x', template: '{oops'}\n",
         r":2: .*template: not a valid template"),
        ("routes:\n  warning: [ghost]\n", r":2: routes.warning: unknown channel 'ghost'"),
    ],
)  # fmt: skip
def test_bad_channels_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "rules.yaml"
    path.write_text(text + "rules: []\n")
    with pytest.raises(RulesError, match=match):
        load_notifications(path, {})


def test_template_fields():
    alert = Alert(id="i", rule="r", symbol="SPY", timeframe="1m", bar_start=0, bar_end=60 * 10**9,
                  severity="info", message="m", details={"rsi_14": 71.5})  # fmt: skip
    text = render("{symbol}|{interval}|{bar_end}|{details}", alert)
    assert text == "SPY|1m|1970-01-01T00:01:00Z|rsi_14=71.5"


class _Blocking:
    """A sender that waits for a gate; it records what it sent."""

    def __init__(self, gate, timeout=10.0):
        self.gate, self.timeout, self.sent = gate, timeout, []

    def send(self, alerts, digest):
        if not self.gate.wait(self.timeout):  # as a real sender's timeout
            raise DeliveryError("timed out")
        self.sent.append((len(alerts), digest))

    def close(self):
        pass


def _notifications(tmp_path, extra=""):
    path = tmp_path / "rules.yaml"
    path.write_text(f"notifiers:\n  desk: {{type: slack, url: 'http://x', queue: 3{extra}}}\n"
                    "routes:\n  warning: [desk]\nrules: []\n")  # fmt: skip
    return load_notifications(path, {})


def test_notify_never_blocks_and_a_full_queue_is_a_dead_letter(tmp_path):
    gate, dead, metrics = threading.Event(), [], Metrics()
    sender = _Blocking(gate)
    dispatcher = Dispatcher(_notifications(tmp_path), metrics.notified, dead.extend,
                            senders=lambda channel: sender)  # fmt: skip
    started = time.monotonic()
    dispatcher.notify([_alert(i=i) for i in range(10)])  # the queue holds 3 (4 if one is taken)
    assert time.monotonic() - started < 0.5
    gate.set()
    dispatcher.close()
    assert len(sender.sent) + len(dead) == 10
    assert 3 <= len(sender.sent) <= 4 and {d.reason for d in dead} == {"notify_overflow"}
    assert dead[0].key == "SPY" and "queue full" in dead[0].error
    counts = metrics.notifications()
    assert counts[("desk", "dropped")] == len(dead) and counts[("desk", "sent")] == len(sender.sent)
    text = render_metrics([PipelineCollector(metrics)]).decode()
    assert (
        f'marketpulse_notifications_total{{channel="desk",outcome="dropped"}} {len(dead)}.0' in text
    )


def test_shutdown_drain_is_bounded(tmp_path):
    gate, dead = threading.Event(), []  # the gate never opens: the receiver hangs
    sender = _Blocking(gate, timeout=0.2)
    config = _notifications(tmp_path, ", timeout: 0.2, retries: 0")
    dispatcher = Dispatcher(config, dead=dead.extend, senders=lambda c: sender, drain_timeout=0.3)
    dispatcher.notify([_alert(i=i) for i in range(3)])
    started = time.monotonic()
    dispatcher.close()
    assert time.monotonic() - started < 3
    assert len(dead) == 3 and "notify_shutdown" in {d.reason for d in dead}  # none lost


def test_the_digest_goes_out_once_the_minute_allows(tmp_path, monkeypatch):
    from marketpulse.alerts import dispatch

    monkeypatch.setattr(dispatch, "_MINUTE", 0.5)  # a short "minute"
    gate = threading.Event()
    gate.set()
    sender = _Blocking(gate)
    config = _notifications(tmp_path, ", rate_limit: 2")
    dispatcher = Dispatcher(config, senders=lambda c: sender, drain_timeout=5)
    dispatcher.notify([_alert(i=i) for i in range(3)])  # the queue holds 3
    deadline = time.monotonic() + 5
    while len(sender.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert sender.sent == [(1, False), (1, False)]  # the third is held
    dispatcher.notify([_alert(i=3)])
    while len(sender.sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sender.sent[2] == (2, True)  # both held ones, in one digest, before the stop
    dispatcher.close()
    assert len(sender.sent) == 3
