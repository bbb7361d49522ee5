"""Every indicator kind MarketPulse knows, by name."""

from __future__ import annotations

from types import MappingProxyType

from marketpulse.indicators.kind import Kind
from marketpulse.indicators.library import (
    channels,
    classic,
    moving_averages,
    oscillators,
    trend,
    volume_flow,
)

__all__ = ["KINDS"]


def _collect() -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for module in (classic, moving_averages, oscillators, trend, volume_flow, channels):
        for kind in module.KINDS:
            if kind.name in kinds:
                raise RuntimeError(f"indicator kind {kind.name!r} is defined twice")
            kinds[kind.name] = kind
    return kinds


#: Kinds by name, in catalogue order.
KINDS = MappingProxyType(_collect())
