"""The ``marketpulse`` command."""

from __future__ import annotations

from typing import Any

from marketpulse.cli.app import app, main

__all__ = ["app", "click_command", "main"]


def __getattr__(name: str) -> Any:
    # ``click_command``: the click object behind the typer app, which the docs
    # site's CLI reference (mkdocs-click) reads; built on use, not at start-up.
    if name == "click_command":
        import typer.main

        return typer.main.get_command(app)
    raise AttributeError(f"module 'marketpulse.cli' has no attribute {name!r}")
