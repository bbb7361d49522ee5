"""Notification channels of a rules file: ``notifiers:``, ``routes:`` and each rule's ``notify:``.

A rules file may name channels beside its rules::

    notifiers:
      desk:                          # a name of your choice
        type: slack                  # webhook | slack | teams | email | kafka
        url: ${SLACK_WEBHOOK_URL}    # ${NAME}: the environment variable NAME
        template: "{symbol} {rule}: {message}"
        rate_limit: 10               # messages a minute at most; then one digest
    routes:                          # severity -> channels (beside each rule's notify)
      critical: [desk]
    rules:
      - name: news_move
        ...
        notify: [desk]

Secrets (a webhook's HMAC ``secret``, an SMTP ``password``) come from the
environment: ``secret_env: NAME`` / ``password_env: NAME``, or ``${NAME}`` in
any text field. A problem raises :class:`~marketpulse.exceptions.RulesError`
with a ``<file>:<line>: <reason>`` message, as the rules' own problems do.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from marketpulse.alerts.rules import SEVERITIES
from marketpulse.alerts.templates import TEMPLATE_FIELDS, template_problem
from marketpulse.alerts.yaml_text import refuse_aliases
from marketpulse.config import Secret
from marketpulse.exceptions import RulesError

__all__ = [
    "CHANNEL_TYPES",
    "TEMPLATE_FIELDS",
    "Channel",
    "Notifications",
    "load_notifications",
]

#: Channel types, as written in rules files.
CHANNEL_TYPES = ("webhook", "slack", "teams", "email", "kafka")

DEFAULT_TEMPLATE = "[{severity}] {symbol} {timeframe} {rule}: {message}"

_COMMON = {
    "type": str,
    "template": str,
    "timeout": float,
    "retries": int,
    "backoff": float,
    "rate_limit": int,
    "queue": int,
}
_FIELDS: dict[str, dict[str, type]] = {
    "webhook": {**_COMMON, "url": str, "secret": str, "secret_env": str},
    "slack": {**_COMMON, "url": str},
    "teams": {**_COMMON, "url": str},
    "email": {
        **_COMMON,
        "host": str,
        "port": int,
        "user": str,
        "password": str,
        "password_env": str,
        "from": str,
        "to": list,
        "subject": str,
        "starttls": bool,
        "ca_file": str,
    },  # fmt: skip
    "kafka": {**_COMMON, "bootstrap": str, "topic": str},
}
_REQUIRED = {
    "webhook": ("url",),
    "slack": ("url",),
    "teams": ("url",),
    "email": ("host", "from", "to"),
    "kafka": ("bootstrap", "topic"),
}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Channel:
    """One named channel and its settings.

    Attributes:
        name: the name the rules file gives it.
        type: ``webhook``, ``slack``, ``teams``, ``email`` or ``kafka``.
        template: the message text, with alert fields in braces (:data:`TEMPLATE_FIELDS`).
        timeout: seconds one attempt may take.
        retries: attempts after the first one failed.
        backoff: seconds before the first retry; doubled before each next one.
        rate_limit: messages a minute at most (0: no limit); alerts beyond it
            are held and sent as one digest when the minute is over.
        queue: alerts waiting for the channel at most; more are dead letters.
        url: where webhook, Slack and Teams messages are posted.
        secret: the webhook's HMAC-SHA256 key (``None``: unsigned).
        host: the SMTP server.
        port: its port (587: submission with STARTTLS).
        user: SMTP user (``None``: no login).
        password: SMTP password.
        sender: the ``From`` address.
        to: the recipients.
        subject: the e-mail subject template.
        starttls: upgrade the SMTP connection with STARTTLS.
        ca_file: PEM file of the certificate authorities the SMTP server's
            certificate is checked against (``None``: the system's).
        bootstrap: the Kafka cluster (host:port[,host:port]).
        topic: the Kafka topic the alerts go to (key: the symbol).
    """

    name: str
    type: str
    template: str = DEFAULT_TEMPLATE
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5
    rate_limit: int = 0
    queue: int = 1000
    url: str = ""
    secret: Secret | None = None
    host: str = ""
    port: int = 587
    user: str | None = None
    password: Secret | None = None
    sender: str = ""
    to: tuple[str, ...] = ()
    subject: str = "MarketPulse {severity}: {symbol} {rule}"
    starttls: bool = True
    ca_file: str | None = None
    bootstrap: str = ""
    topic: str = ""


@dataclass(frozen=True)
class Notifications:
    """Where each alert goes: the channels, and the routes to them.

    Attributes:
        channels: the channels by name.
        by_rule: channel names per rule name (a rule's ``notify``).
        by_severity: channel names per severity (``routes``).
    """

    channels: dict[str, Channel] = field(default_factory=dict)
    by_rule: dict[str, tuple[str, ...]] = field(default_factory=dict)
    by_severity: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.channels)

    def targets(self, rule: str, severity: str) -> list[str]:
        """Return the names of the channels an alert of ``rule`` and ``severity`` goes to."""
        names = [*self.by_rule.get(rule, ()), *self.by_severity.get(severity, ())]
        return list(dict.fromkeys(names))


def load_notifications(path: str | Path, environ: Mapping[str, str]) -> Notifications:
    """Read the channels and routes of a rules file (none: an empty :class:`Notifications`).

    Args:
        path: the rules file (``.yaml``/``.yml`` or ``.toml``).
        environ: where ``${NAME}``, ``secret_env`` and ``password_env`` are looked up.

    Raises:
        RulesError: a channel or route is invalid; ``<file>:<line>: <reason>``.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{source}:0: cannot read rules file: {exc}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data, lines = tomllib.loads(text), _toml_lines(text)
        else:
            refuse_aliases(text, source)
            data, lines = yaml.safe_load(text), _yaml_lines(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:  # load_rules says where
        raise RulesError(f"{source}:1: invalid rules file: {exc}") from exc
    if not isinstance(data, dict):
        return Notifications()
    return _build(data, _Lines(lines, source), environ)


@dataclass
class _Lines:
    lines: dict[tuple, int]
    source: str

    def fail(self, path: tuple, reason: str) -> RulesError:
        while path and path not in self.lines:
            path = path[:-1]
        return RulesError(f"{self.source}:{self.lines.get(path, 1)}: {reason}")


def _build(data: dict, at: _Lines, environ: Mapping[str, str]) -> Notifications:
    raw = data.get("notifiers") or {}
    if not isinstance(raw, dict):
        raise at.fail(("notifiers",), "'notifiers' must be a table of named channels")
    channels = {str(n): _channel(str(n), c, at, environ) for n, c in raw.items()}

    def names(value: Any, where: tuple, what: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise at.fail(where, f"{what}: expected a list of channel names")
        for v in value:
            if v not in channels:
                hint = difflib.get_close_matches(v, list(channels), n=1)
                known = f"did you mean {hint[0]!r}?" if hint else (
                    f"known: {', '.join(channels)}" if channels else "no 'notifiers' declared"
                )  # fmt: skip
                raise at.fail(where, f"{what}: unknown channel {v!r} ({known})")
        return tuple(value)

    routes = data.get("routes") or {}
    if not isinstance(routes, dict):
        raise at.fail(("routes",), "'routes' must be a table: severity -> [channels]")
    by_severity = {}
    for severity, value in routes.items():
        if severity not in SEVERITIES:
            known = ", ".join(SEVERITIES)
            raise at.fail(("routes", severity),
                          f"routes: unknown severity {severity!r} (one of: {known})")  # fmt: skip
        by_severity[severity] = names(value, ("routes", severity), f"routes.{severity}")
    by_rule = {}
    for i, rule in enumerate(data.get("rules") or []):
        if isinstance(rule, dict) and "notify" in rule:
            label = f"rule {rule.get('name', f'#{i + 1}')!r}: notify"
            by_rule[str(rule.get("name"))] = names(rule["notify"], ("rules", i, "notify"), label)
    return Notifications(channels, by_rule, by_severity)


def _channel(name: str, entry: Any, at: _Lines, environ: Mapping[str, str]) -> Channel:
    where = ("notifiers", name)
    label = f"notifier {name!r}"
    if not isinstance(entry, dict):
        raise at.fail(where, f"{label}: must be a table of settings")
    kind = entry.get("type")
    if kind not in CHANNEL_TYPES:
        raise at.fail((*where, "type"), f"{label}: type must be one of: "
                      f"{', '.join(CHANNEL_TYPES)} (got {kind!r})")  # fmt: skip
    known = _FIELDS[kind]
    values: dict[str, Any] = {}
    for key, value in entry.items():
        spot = (*where, key)
        if key not in known:
            hint = difflib.get_close_matches(str(key), list(known), n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise at.fail(spot, f"{label}: unknown field {key!r} for a {kind} channel{maybe}")
        wanted = known[key]
        if wanted in (int, float) and isinstance(value, str) and _ENV.search(value):
            value = _number(_expand(value, environ, lambda r, s=spot: at.fail(s, f"{label}: {r}")),
                            wanted)  # a port from ${SMTP_PORT}  # fmt: skip
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise at.fail(spot, f"{label}: field {key!r}: expected {_WORDS[wanted]}, "
                          f"got {type(value).__name__}")  # fmt: skip
        if isinstance(value, str):
            value = _expand(value, environ, lambda r, s=spot: at.fail(s, f"{label}: {r}"))
        values[key] = value
    for key in _REQUIRED[kind]:
        if key not in values:
            raise at.fail(where, f"{label}: missing required field {key!r} for a {kind} channel")
    for key in ("secret", "password"):
        env = values.pop(f"{key}_env", None)
        if env is not None:
            if env not in environ:
                raise at.fail((*where, f"{key}_env"),
                              f"{label}: environment variable {env} is not set")  # fmt: skip
            values[key] = environ[env]
        if key in values:
            values[key] = Secret(values[key])
    for key, low in (("timeout", 0.0), ("backoff", 0.0)):
        if key in values and not values[key] > low:
            raise at.fail((*where, key), f"{label}: {key} must be > 0 seconds")
    for key, low in (("retries", 0), ("rate_limit", 0), ("queue", 1)):
        if key in values and values[key] < low:
            raise at.fail((*where, key), f"{label}: {key} must be >= {low}")
    if "to" in values:
        if not values["to"] or not all(isinstance(a, str) and "@" in a for a in values["to"]):
            raise at.fail((*where, "to"), f"{label}: to: expected a list of e-mail addresses")
        values["to"] = tuple(values["to"])
    if "from" in values:
        values["sender"] = values.pop("from")
    for key in ("url",):
        if key in values and not values[key].startswith(("http://", "https://")):
            raise at.fail((*where, key), f"{label}: url must start with http:// or https://")
    for key in ("template", "subject"):
        if key in values:
            problem = template_problem(values[key])
            if problem:
                raise at.fail((*where, key), f"{label}: {key}: {problem}")
    values.pop("type")
    return Channel(name=name, type=kind, **values)


_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
          list: "a list"}  # fmt: skip


def _number(text: str, wanted: type) -> object:
    try:
        return wanted(text)
    except ValueError:
        return text  # refused below as not a number


def _expand(text: str, environ: Mapping[str, str], fail: Any) -> str:
    def one(found: re.Match) -> str:
        name = found.group(1)
        if name not in environ:
            raise fail(f"environment variable {name} is not set")
        return environ[name]

    return _ENV.sub(one, text)


def _yaml_lines(text: str) -> dict[tuple, int]:
    """Line (1-based) of every key and list item, by its path from the root."""
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]*?)\s*\]\]?")
_TOML_KEY = re.compile(r"""^\s*["']?([A-Za-z0-9_-]+)["']?\s*=""")


def _toml_lines(text: str) -> dict[tuple, int]:
    """Lines of tables and keys (best effort: no inline tables or dotted keys)."""
    lines: dict[tuple, int] = {}
    table: tuple = ()
    rules = -1
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TOML_HEADER.match(line)
        if header:
            parts = tuple(p.strip().strip("\"'") for p in header.group(2).split("."))
            if header.group(1) == "[[" and parts == ("rules",):
                rules += 1
                parts = ("rules", rules)
            table = parts
            for i in range(1, len(parts) + 1):
                lines.setdefault(parts[:i], number)
            continue
        key = _TOML_KEY.match(line)
        if key is not None:
            lines.setdefault((*table, key.group(1)), number)
    return lines
