"""Run a command in a pseudo-terminal of a fixed size; read back what a user would see.

:func:`in_terminal` gives the command a terminal (standard input, output and
error) of ``columns`` x ``rows``, set with ``TIOCSWINSZ`` as a terminal window
sets it, and returns every byte written to it. :func:`screen` replays them
through a VT100 emulator (pyte) to the lines left on the screen and in its
scrollback; :func:`written_lines` and :func:`live_heights` read the raw bytes
for what an emulator hides: lines longer than the terminal (it wraps them) and
the height of each frame of rich's live display (it erases them).
"""

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pyte

_CSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# rich's live display erases its last frame from the bottom up before it draws the next
_ERASE_FRAME = re.compile(rb"(?:\x1b\[2K\x1b\[1A)+\x1b\[2K")


def in_terminal(*args, columns, rows, cwd, timeout=180):
    """Run ``marketpulse ARGS`` in a terminal of ``columns`` x ``rows``; return (code, bytes)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MARKETPULSE_") and k not in ("COLUMNS", "LINES", "NO_COLOR")
    }
    env["TERM"] = "xterm-256color"
    command = [sys.executable, "-m", "marketpulse", *map(str, args)]
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal: it has exited
                    break
                if not data:
                    break
                out += data
            elif process.poll() is not None:
                break
        else:
            raise AssertionError(f"still running after {timeout} s: {bytes(out[-2000:])!r}")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)
    return process.returncode, bytes(out)


def written_lines(raw):
    """Each run of text the program wrote between two line starts, control codes left out."""
    text = _CSI.sub(b"", raw).decode(errors="replace")
    return [part for line in text.split("\n") for part in line.split("\r")]


def live_heights(raw):
    """The height of each frame of the live display, as it erased them."""
    return [run.count(b"\x1b[1A") + 1 for run in _ERASE_FRAME.findall(raw)]


def screen(raw, columns, rows):
    """The lines on the screen at the end, the scrollback above them first."""
    emulator = pyte.HistoryScreen(columns, rows, history=10_000)
    pyte.ByteStream(emulator).feed(raw)
    above = ["".join(line[x].data for x in range(columns)) for line in emulator.history.top]
    return [line.rstrip() for line in (*above, *emulator.display)]
