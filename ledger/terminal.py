"""A progress bar on standard error, shown only when it is a terminal; Ctrl-C left to the parent."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

__all__ = ["clear_line", "ignore_interrupts", "progress"]


def progress(total: int) -> Callable[[int], None] | None:
    """A callback drawing ``done``/``total`` events checked; None when not on a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int) -> None:
        filled = done * 40 // max(total, done, 1)
        counted = f"{done}/{total}" if total else str(done)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (40 - filled)}] {counted} events checked")
        sys.stderr.flush()

    return show


def clear_line() -> None:
    """Wipe the progress bar before a verdict is printed."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def ignore_interrupts() -> None:
    """For a worker process: Ctrl-C reaches every process of the terminal's group, and the
    parent, which stops the work, is the one to answer it (workers would each print a traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
