"""Turn the 1.10 `timeout` (milliseconds, <= 0 meaning "no limit") into deadlines."""

from __future__ import annotations

import time


def deadline_after(timeout_ms: float | None) -> float | None:
    """The monotonic time `timeout_ms` from now, or None (wait forever) when it is <= 0."""
    if timeout_ms is None or timeout_ms <= 0:
        return None
    return time.monotonic() + timeout_ms / 1000.0


def earliest(first: float | None, second: float | None) -> float | None:
    """The sooner of two deadlines, None standing for "never"."""
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def ms_left(deadline: float | None) -> int | None:
    """Milliseconds until `deadline` (never negative), None when there is no deadline."""
    if deadline is None:
        return None
    return max(0, int((deadline - time.monotonic()) * 1000))


def has_passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline
