"""One attempt at delivering a message to a channel: HTTP posts, SMTP, a Kafka topic.

Each sender's :meth:`send` makes one attempt and raises :class:`DeliveryError`
when it fails; retries, backoff and dead letters are the dispatcher's
(:mod:`marketpulse.alerts.dispatch`).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from typing import Protocol

import httpx
import msgspec

from marketpulse.alerts.channels import Channel
from marketpulse.alerts.messages import (
    SIGNATURE_HEADER,
    email_message,
    sign,
    slack_body,
    teams_body,
    webhook_body,
)
from marketpulse.exceptions import MarketPulseError
from marketpulse.models import Alert

__all__ = ["DeliveryError", "Sender", "sender_for"]


class DeliveryError(MarketPulseError):
    """A message was not delivered.

    Attributes:
        permanent: retrying cannot help (the receiver refused the message as such).
    """

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    """Delivers messages to one channel, one attempt per call."""

    def send(self, alerts: Sequence[Alert], digest: bool) -> None:
        """Send one alert (``digest``: a digest of ``alerts``).

        Raises:
            DeliveryError: the attempt failed.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class HttpSender:
    """Posts JSON to a webhook: the alert (signed), or a Slack or Teams message."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._client = httpx.Client(timeout=channel.timeout, follow_redirects=False)

    def send(self, alerts: Sequence[Alert], digest: bool) -> None:
        """Post one message; a reply other than 2xx is a failure."""
        ch = self.channel
        headers = {"Content-Type": "application/json", "User-Agent": "marketpulse"}
        if ch.type == "slack":
            body = slack_body(ch.template, alerts, digest)
        elif ch.type == "teams":
            body = teams_body(ch.template, alerts, digest)
        else:
            body = webhook_body(alerts, digest)
            if ch.secret is not None:
                headers[SIGNATURE_HEADER] = sign(ch.secret.reveal().encode(), body)
        try:
            reply = self._client.post(ch.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timed out after {ch.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= reply.status_code < 300:
            permanent = 400 <= reply.status_code < 500 and reply.status_code not in (408, 429)
            raise DeliveryError(f"HTTP {reply.status_code} from the receiver", permanent)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class EmailSender:
    """Sends e-mail over SMTP: STARTTLS, then a login when the channel has a user."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def send(self, alerts: Sequence[Alert], digest: bool) -> None:
        """Send one e-mail through a new SMTP connection."""
        ch = self.channel
        message = email_message(ch.sender, ch.to, ch.subject, ch.template, alerts, digest)
        try:
            with smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout) as smtp:
                if ch.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=ch.ca_file))
                if ch.user:
                    password = ch.password.reveal() if ch.password is not None else ""
                    smtp.login(ch.user, password)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login refused: {exc.smtp_code}", permanent=True) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP recipients refused: {', '.join(exc.recipients)}",
                                permanent=True) from exc  # fmt: skip
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"SMTP {ch.host}:{ch.port}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Nothing held between messages."""


class KafkaSender:
    """Produces each alert to a Kafka topic (key: the symbol; value: the alert as JSON)."""

    def __init__(self, channel: Channel) -> None:
        from confluent_kafka import Producer

        self.channel = channel
        self._producer = Producer({
            "bootstrap.servers": channel.bootstrap, "enable.idempotence": True, "acks": "all",
            "message.timeout.ms": int(channel.timeout * 1000),
        })  # fmt: skip

    def send(self, alerts: Sequence[Alert], digest: bool) -> None:
        """Produce every alert (a digest too: a topic has no rate limit to save)."""
        errors: list[str] = []

        def report(err: object, _msg: object) -> None:
            if err is not None:
                errors.append(str(err))

        topic = self.channel.topic
        for alert in alerts:
            value = msgspec.json.encode(alert)
            self._producer.produce(topic, key=alert.symbol.encode(), value=value,
                                   on_delivery=report)  # fmt: skip
        left = self._producer.flush(self.channel.timeout)
        if errors or left:
            reason = errors[0] if errors else f"{left} records unacknowledged"
            raise DeliveryError(f"Kafka topic {self.channel.topic}: {reason}")

    def close(self) -> None:
        """Flush what is left."""
        self._producer.flush(self.channel.timeout)


def sender_for(channel: Channel) -> Sender:
    """Return the sender of a channel's type."""
    if channel.type == "email":
        return EmailSender(channel)
    if channel.type == "kafka":
        return KafkaSender(channel)
    return HttpSender(channel)
