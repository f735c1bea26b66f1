"""A progress bar for long encodes: tqdm when it is installed, else a plain one on stderr.

The client depends on numpy and pyzmq only, so tqdm is used if present, never required.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

REDRAW_INTERVAL_S = 0.1
BAR_WIDTH = 30


class ProgressBar(Protocol):
    def update(self, count: int) -> None: ...

    def close(self) -> None: ...


class TextProgressBar:
    """``encoding  42% |############        | 4200/10000 texts, 512 texts/s``, redrawn in place."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._draw()

    def update(self, count: int) -> None:
        self.done += count
        if time.monotonic() - self._drawn_at >= REDRAW_INTERVAL_S or self.done >= self.total:
            self._draw()

    def close(self) -> None:
        self._draw()
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        fraction = self.done / self.total if self.total else 1.0
        filled = int(BAR_WIDTH * fraction)
        rate = self.done / max(self._drawn_at - self._started, 1e-9)
        self.stream.write(
            f"\rencoding {fraction:4.0%} |{'#' * filled}{' ' * (BAR_WIDTH - filled)}| "
            f"{self.done}/{self.total} texts, {rate:.0f} texts/s"
        )
        self.stream.flush()


class NoProgressBar:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, enabled: bool) -> ProgressBar:
    """A bar counting ``total`` texts (tqdm's if installed), or one that draws nothing."""
    if not enabled:
        return NoProgressBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return TextProgressBar(total)
    return tqdm(total=total, unit="text", desc="encoding")
