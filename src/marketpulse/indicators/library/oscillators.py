"""Indicator kinds (filled in by the kinds' authors)."""

from __future__ import annotations

from marketpulse.indicators.kind import Kind

__all__ = ["KINDS"]

KINDS: tuple[Kind, ...] = ()
