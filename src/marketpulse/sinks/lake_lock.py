"""Who writes one dataset of a lake: commands that replace its rows take turns.

A replay of a file replaces the rows an earlier replay of the same input
stored, and a backfill replaces all of a dataset's bars, indicators and
alerts. Each decides what to replace from a listing of the lake; a second
command writing the same dataset meanwhile would list too early, and both
copies would stay (or neither). So a command that replaces takes the
dataset's lock alone (exclusive), and one that only adds (``run`` of a
simulated or live market) shares it with others that add: a replacing
command waits for the others to end, and they for it, whatever the order.

The lock is an advisory ``flock`` on ``<root>/.locks/<dataset>.lock``, which
the kernel releases when its process ends, killed or not; a hidden directory
no reader lists. An S3 lake has no such thing: its locks are files in the
machine's temporary directory, named after the lake, so commands on one
machine take turns (commands on several machines writing one S3 dataset
are not coordinated).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from marketpulse.sinks.exceptions import SinkError
from marketpulse.sinks.lake_location import LakeLocation

__all__ = ["DatasetLock"]

logger = logging.getLogger(__name__)

#: Seconds between two attempts to take a lock held by another command.
_RETRY_S = 0.1


class DatasetLock:
    """The lock of one dataset of a lake: held alone by a command that replaces rows.

    Args:
        lake: the lake.
        dataset: the dataset written.
        exclusive: the command replaces rows (held alone), else it only adds
            rows (shared with other commands that add).
        holder: what holds it, for the message of a command that waits
            (``replay trades.csv.gz``).
    """

    def __init__(self, lake: LakeLocation, dataset: str, *, exclusive: bool, holder: str) -> None:
        self.lake = lake
        self.dataset = dataset
        self.exclusive = exclusive
        self.holder = holder
        self.path = _lock_path(lake, dataset)
        self._fd: int | None = None
        #: Whether :meth:`acquire` waited for another command.
        self.waited = False

    def acquire(self, stopped: Callable[[], bool] = lambda: False) -> bool:
        """Take the lock, waiting while another command holds it.

        Args:
            stopped: polled while waiting; when it returns true, stop waiting.

        Returns:
            whether the lock is held (``False``: stopped while waiting).

        Raises:
            SinkError: the lock file cannot be created or opened.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SinkError(f"lake {self.lake}: cannot open the lock {self.path}: "
                            f"{exc.strerror or exc}") from None  # fmt: skip
        mode = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
        waited = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    logger.warning("lake %s: dataset %s is being written by another command "
                                   "(%s); waiting for it to end", self.lake, self.dataset,
                                   _holders(fd))  # fmt: skip
                    waited = True
                if stopped():
                    os.close(fd)
                    return False
                time.sleep(_RETRY_S)  # polled, not blocking: Ctrl-C must stop the wait
        self._fd, self.waited = fd, waited
        if waited:
            logger.warning("lake %s: dataset %s is free; going on", self.lake, self.dataset)
        _note_holder(fd, f"pid {os.getpid()}: {self.holder}")
        return True

    def release(self) -> None:
        """Let the other commands write the dataset (the file stays: removing it would race)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def __enter__(self) -> DatasetLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _lock_path(lake: LakeLocation, dataset: str) -> Path:
    if not lake.is_s3:
        return lake.local_path / ".locks" / f"{dataset}.lock"
    name = hashlib.blake2b(lake.root.encode(), digest_size=8).hexdigest()
    return Path(tempfile.gettempdir()) / "marketpulse-locks" / name / f"{dataset}.lock"


def _note_holder(fd: int, text: str) -> None:
    """Write who holds the lock into its file, for a waiting command's message only."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError:
        pass  # a courtesy: the lock itself is the flock


def _holders(fd: int) -> str:
    try:
        text = os.pread(fd, 512, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "unknown"
