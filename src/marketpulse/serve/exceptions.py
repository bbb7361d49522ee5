"""Errors of the dashboard server.

MarketPulseError
└── ServeError               the dashboard cannot be served (address in use, no token)
"""

from __future__ import annotations

from marketpulse.exceptions import MarketPulseError

__all__ = ["ServeError"]


class ServeError(MarketPulseError):
    """The dashboard cannot be served as asked."""
