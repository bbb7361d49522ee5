"""What a replay could not read of a damaged file."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Damage"]


@dataclass(frozen=True, slots=True)
class Damage:
    """Damage found in a file during a replay: where it is and what was lost.

    Attributes:
        file: the file, as named to the replay.
        message: one line for a person, naming the file, the byte offset or
            rows, and what was kept.
        offset: byte offset in the file where the damage was found, if known.
        line: for CSV, the last line read whole before the damage; for
            Parquet, the first row (1-based) lost.
        lost: rows known to be lost (Parquet), ``None`` when unknown.
    """

    file: str
    message: str
    offset: int | None = None
    line: int | None = None
    lost: int | None = None

    def __str__(self) -> str:
        return self.message
