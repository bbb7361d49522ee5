"""The root of MarketPulse's exceptions.

    MarketPulseError
    ├── ConfigError          bad settings, bad config file
    ├── InputError           a file that cannot be read (missing, unknown format, unmapped column)
    ├── RulesError           a bad alert rules file (names the line)
    ├── BusError             transport failures (Kafka, embedded)
    └── RunFailure           a running command could not finish (disk full, storage lost)

Subpackages may subclass these; the CLI prints any ``MarketPulseError`` as one
clear line and exits non-zero, without a traceback: 1 for a ``RunFailure``
(after the command's summary), 2 for the others.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "ConfigError",
    "InputError",
    "MarketPulseError",
    "RulesError",
    "RunFailure",
]


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


class RunFailure(MarketPulseError):
    """A command that was running could not finish its work (runtime failure, exit code 1).

    Unlike the other errors (bad settings or input: the command could not
    start, exit code 2), the command ran: it reports what it did (its summary)
    and what it could not do. Examples: the lake's disk filled up, a database
    stayed unreachable past its retry window.
    """
