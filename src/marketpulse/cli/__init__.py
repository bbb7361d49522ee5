"""The ``marketpulse`` command."""

from marketpulse.cli.app import app, main

__all__ = ["app", "main"]
