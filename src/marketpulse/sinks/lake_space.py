"""A full disk under the lake, reported as such: where, how much room, what to do.

A write that finds no space left (``ENOSPC``, or ``EDQUOT`` past a quota) is
not a bug of the sink: the rows not yet stored stay buffered and the files
already published stay whole, so the lake is consistent and a rerun stores
the rest. The error says which filesystem filled, how much is free there,
and how much room the rows waiting to be stored need: their size in memory
times the ratio of file to memory of the rows stored so far (before any,
their size in memory: an upper bound, Parquet files being compressed).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from marketpulse.human import human_bytes
from marketpulse.sinks.exceptions import StorageFullError

__all__ = ["FULL_ERRNOS", "full_disk_error"]

#: The errors of a filesystem (or a quota) that has no room left.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def full_disk_error(
    exc: BaseException, root: Path | str, waiting_bytes: int, ratio: float | None
) -> StorageFullError | None:
    """Return the error to raise for ``exc`` if it says the disk is full, else ``None``.

    Args:
        exc: what a write raised (pyarrow's and the OS's errors are ``OSError``).
        root: the lake's directory.
        waiting_bytes: the size in memory of the rows not stored yet.
        ratio: bytes of file per byte in memory of what the sink stored so far
            (``None``: nothing yet; the size in memory is then the bound given).
    """
    if isinstance(exc, StorageFullError):  # said already
        return None
    if not isinstance(exc, OSError) or exc.errno not in FULL_ERRNOS:
        return None
    try:
        free = f"{human_bytes(shutil.disk_usage(root).free)} free"
    except OSError:
        free = "free space unknown"
    need = (
        f"about {human_bytes(round(waiting_bytes * ratio))}"
        if ratio
        else f"up to {human_bytes(waiting_bytes)}"
    )
    return StorageFullError(
        f"no space left on the lake's disk at {root} ({free}): the rows not stored yet need "
        f"{need} there; free that much and run the command again"
    )
