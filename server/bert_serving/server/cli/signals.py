"""SIGTERM as Ctrl-C: the console scripts stop the same way on both (cleanly)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class TerminatedError(Exception):
    """Raised in the main thread on SIGTERM, to shut down as on KeyboardInterrupt."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises TerminatedError; the old handler comes back after."""
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise(signum: int, _frame: object) -> None:
    raise TerminatedError(signal.Signals(signum).name)
