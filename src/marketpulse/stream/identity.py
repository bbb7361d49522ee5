"""The identity of a processor's rows: its input and every setting that shapes them.

Two runs of the processor over inputs of one identity, with settings and rules
of one identity, yield the same rows: those of the same dataset (the
settings carry it), from the same content. The lake names a replay's files
after it (:mod:`marketpulse.sinks.lake_segments`), and ``backfill --file``
names its files alike, so that whichever command ran last over an input
replaces what the others stored of it.
"""

from __future__ import annotations

import hashlib

import msgspec

from marketpulse.alerts import Rule
from marketpulse.indicators import DEFAULT
from marketpulse.stream.processor import ProcessorSettings

__all__ = ["output_origin"]

#: Rule fields added later, with the default that leaves a rule as it was: a rule
#: with that value is encoded without the field, so its identity stays what it was.
_LATER_RULE_FIELDS = {"column": ("rsi_14", "macd"), "bands": ("bb",), "average": ("volume_sma_20",)}


def output_origin(identity: str, processor: ProcessorSettings, rules: list[Rule]) -> str:
    """The identity (16 hex digits) of the rows the processor makes of an input.

    Args:
        identity: the input's (a file replay's content digest and the options
            that shape its rows: :meth:`~marketpulse.feeds.replay.FileReplay.identity`).
        processor: the processor's settings, the dataset included.
        rules: the alert rules.
    """
    digest = hashlib.blake2b(digest_size=8)
    digest.update(identity.encode())
    digest.update(repr(processor).encode())
    # options added later change the identity only when used: lakes written before keep theirs
    if processor.indicators != DEFAULT:
        digest.update(processor.indicators.text.encode())
    if processor.fill_gaps:
        digest.update(b"fill_gaps")
    if processor.conditions != "none":
        digest.update(f"conditions={processor.conditions}".encode())
    digest.update(msgspec.json.encode([_as_before(rule) for rule in rules]))
    digest.update(b"trades")  # trades were optional once: lakes written then keep their origin
    return digest.hexdigest()


def _as_before(rule: Rule) -> dict:
    fields = msgspec.to_builtins(rule)
    for name, defaults in _LATER_RULE_FIELDS.items():
        if fields.get(name) in defaults and fields.get("type") != "cross":
            del fields[name]
    return fields
