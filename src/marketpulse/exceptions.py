"""The root of MarketPulse's exceptions.

    MarketPulseError
    ├── ConfigError          bad settings, bad config file
    ├── InputError           a file that cannot be read (missing, unknown format, unmapped column)
    ├── RulesError           a bad alert rules file (names the line)
    └── BusError             transport failures (Kafka, embedded)

Subpackages may subclass these; the CLI prints any ``MarketPulseError`` as one
clear line and exits non-zero, without a traceback.
"""

from __future__ import annotations

__all__ = ["BusError", "ConfigError", "InputError", "MarketPulseError", "RulesError"]


class MarketPulseError(Exception):
    """Base of every error MarketPulse raises on purpose."""


class ConfigError(MarketPulseError):
    """The settings are invalid."""


class InputError(MarketPulseError):
    """An input file cannot be read as asked."""


class RulesError(MarketPulseError):
    """An alert rules file is invalid."""


class BusError(MarketPulseError):
    """The message bus failed."""
