"""The forecasting errors.

MarketPulseError
└── ForecastError: a forecast cannot be made or evaluated as asked
"""

from __future__ import annotations

from marketpulse.exceptions import MarketPulseError

__all__ = ["ForecastError"]


class ForecastError(MarketPulseError):
    """A forecast cannot be made or evaluated as asked (the message says why)."""
