"""Typed settings of the dashboard server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marketpulse.config import SESSION_TZ, Secret
from marketpulse.serve.exceptions import ServeError
from marketpulse.serve.heavy import HeavyLimits

if TYPE_CHECKING:
    from marketpulse.alerts import Rule
    from marketpulse.indicators.declare import DeclaredSet

__all__ = ["LOOPBACK_HOSTS", "ServeSettings"]

#: Addresses only this machine can reach: serving there needs no token.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """Where and how the dashboard is served.

    Attributes:
        host: address to bind; anything but a loopback address requires ``token``.
        port: TCP port; 0 picks a free one.
        token: shared secret every HTTP request and WebSocket must carry.
        updates_per_s: most WebSocket updates a client receives per second.
        send_timeout_s: a client that takes longer to accept one update is dropped.
        rules: the alert rules the alerts page's track record backtests (default:
            the built-in rules).
        indicators: the declared indicators those rules read (default: the default set).
        heavy: how many history requests (bars, indicators, alerts) are read and sent at
            once, and how many more may wait; others are answered 503 with Retry-After.
        time_zone: the exchange's time zone (the sessions' ``session_tz``), in which the
            symbol page shows times by default (UTC is a click away).

    Raises:
        ServeError: a non-loopback host without a token, or a bad number.
    """

    host: str = "127.0.0.1"
    port: int = 8050
    token: Secret | None = None
    updates_per_s: float = 4.0
    send_timeout_s: float = 10.0
    rules: tuple[Rule, ...] | None = None
    indicators: DeclaredSet | None = None
    heavy: HeavyLimits = HeavyLimits()
    time_zone: str = SESSION_TZ

    def __post_init__(self) -> None:
        if self.host not in LOOPBACK_HOSTS and not self.token:
            raise ServeError(
                f"--host {self.host}: serving beyond this machine requires a token "
                "(--token or MARKETPULSE_DASHBOARD_TOKEN)"
            )
        if not 0 <= self.port <= 65535:
            raise ServeError(f"--port: expected 0..65535, got {self.port}")
        if not self.updates_per_s > 0:
            raise ServeError(
                f"--updates-per-s: expected a positive number, got {self.updates_per_s}"
            )
        try:
            ZoneInfo(self.time_zone)
        except (ValueError, ZoneInfoNotFoundError):
            raise ServeError(f"not a time zone: {self.time_zone!r}") from None
        if not self.send_timeout_s > 0:
            raise ServeError(f"send timeout must be positive, got {self.send_timeout_s}")
