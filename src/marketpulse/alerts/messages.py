"""The messages a channel sends: template text, webhook, Slack, Teams and e-mail bodies.

A webhook's body is the alert as JSON (a digest: ``{"digest": true, "count":
N, "alerts": [...]}``), signed with HMAC-SHA256 over the exact body bytes
when the channel has a ``secret``: the header ``X-MarketPulse-Signature:
sha256=<hex digest>``, which a receiver checks with
``hmac.compare_digest(header, "sha256=" + hmac.new(secret, body, sha256).hexdigest())``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from email.message import EmailMessage

import msgspec
import numpy as np

from marketpulse.alerts.templates import fill
from marketpulse.models import Alert

__all__ = [
    "SIGNATURE_HEADER",
    "email_message",
    "iso_time",
    "render",
    "sign",
    "slack_body",
    "teams_body",
    "webhook_body",
]

#: The header carrying a webhook body's signature: ``sha256=<hex HMAC-SHA256 of the body>``.
SIGNATURE_HEADER = "X-MarketPulse-Signature"

_COLORS = {"info": "2EB67D", "warning": "ECB22E", "critical": "E01E5A"}


def iso_time(ns: int) -> str:
    """A time in ns as ISO 8601 UTC, to the precision it has."""
    unit = "s" if ns % 10**9 == 0 else "auto"
    return f"{np.datetime_as_string(np.datetime64(int(ns), 'ns'), unit=unit)}Z"


def render(template: str, alert: Alert) -> str:
    """Fill ``template`` with the fields of ``alert`` (times as ISO 8601 UTC).

    Only the alert fields a template may name are reachable
    (:mod:`~marketpulse.alerts.templates`), each as text.
    """
    fields = msgspec.structs.asdict(alert)
    fields["interval"] = alert.timeframe
    fields["bar_start"] = iso_time(alert.bar_start)
    fields["bar_end"] = iso_time(alert.bar_end)
    fields["details"] = ", ".join(f"{k}={v:g}" if v is not None else f"{k}=null"
                                  for k, v in alert.details.items())  # fmt: skip
    return fill(template, fields)


def _digest_line(alerts: Sequence[Alert]) -> str:
    symbols = sorted({a.symbol for a in alerts})
    shown = ", ".join(symbols[:10]) + (", ..." if len(symbols) > 10 else "")
    return f"{len(alerts)} alerts held back by the rate limit ({shown})"


def _lines(template: str, alerts: Sequence[Alert], digest: bool) -> list[str]:
    texts = [render(template, a) for a in alerts]
    return [_digest_line(alerts), *texts] if digest else texts


def webhook_body(alerts: Sequence[Alert], digest: bool) -> bytes:
    """The JSON body of a webhook post: the alert, or a digest of several."""
    if not digest:
        return msgspec.json.encode(alerts[0])
    return msgspec.json.encode({"digest": True, "count": len(alerts), "alerts": list(alerts)})


def sign(secret: bytes, body: bytes) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def slack_body(template: str, alerts: Sequence[Alert], digest: bool) -> bytes:
    """A Slack incoming-webhook message: ``text`` (notifications) and ``blocks``."""
    lines = _lines(template, alerts, digest)
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": line}}
                          for line in lines[:49]]  # fmt: skip
    first = alerts[0]
    blocks.append({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"{first.severity} · {first.timeframe} · "
                      f"{iso_time(first.bar_end)} · MarketPulse"}],
    })  # fmt: skip
    return msgspec.json.encode({"text": "\n".join(lines), "blocks": blocks})


def teams_body(template: str, alerts: Sequence[Alert], digest: bool) -> bytes:
    """A Microsoft Teams incoming-webhook message (an Office 365 connector MessageCard)."""
    lines = _lines(template, alerts, digest)
    first = alerts[0]
    facts = [{"name": "symbol", "value": first.symbol}, {"name": "rule", "value": first.rule},
             {"name": "interval", "value": first.timeframe},
             {"name": "bar end", "value": iso_time(first.bar_end)}]  # fmt: skip
    card = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": _COLORS.get(first.severity, "808080"),
        "summary": lines[0],
        "title": lines[0],
        "sections": [
            {
                "text": "\n\n".join(lines[1:]) if digest else lines[0],
                "facts": [] if digest else facts,
            }
        ],  # fmt: skip
    }
    return msgspec.json.encode(card)


def email_message(
    sender: str, to: Sequence[str], subject: str, template: str, alerts: Sequence[Alert],
    digest: bool,
) -> EmailMessage:  # fmt: skip
    """An e-mail of the alert (or digest): the template's text, the alert as JSON attached."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = _digest_line(alerts) if digest else render(subject, alerts[0])
    message.set_content("\n".join(_lines(template, alerts, digest)) + "\n")
    message.add_attachment(webhook_body(alerts, digest), maintype="application",
                           subtype="json", filename="alerts.json")  # fmt: skip
    return message
