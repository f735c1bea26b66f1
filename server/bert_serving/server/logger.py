"""One prefixed, colored logger per server role, so interleaved process output stays readable.

A line looks like ``I:VENTILATOR:[ventilator.py:123] message``: level initial, role,
and the source line that logged it.
"""

from __future__ import annotations

import logging
import os
import sys

from termcolor import colored

LOGGER_NAMESPACE = "bert_serving.server"
ROLE_COLORS = {
    "VENTILATOR": "magenta",
    "SINK": "green",
    "PROXY": "blue",
}
# Each worker gets its own color, so their lines can be told apart; none of these is
# used by another role.
WORKER_COLORS = ("yellow", "cyan", "light_yellow", "light_cyan", "light_blue", "light_red")
WORKER_PREFIX = "WORKER-"


def get_logger(role: str, verbose: bool = False, color: str | None = None) -> logging.Logger:
    """Return the logger of ``role``, configured once; later calls only update its level."""
    logger = logging.getLogger(f"{LOGGER_NAMESPACE}.{role}")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_RoleFormatter(role, color or role_color(role)))
        logger.addHandler(handler)
    return logger


def role_color(role: str) -> str | None:
    """The termcolor name of a role, or None for a role without one."""
    if role in ROLE_COLORS:
        return ROLE_COLORS[role]
    worker_index = role[len(WORKER_PREFIX) :]
    if role.startswith(WORKER_PREFIX) and worker_index.isdigit():
        return WORKER_COLORS[int(worker_index) % len(WORKER_COLORS)]
    return None


def colors_enabled() -> bool:
    """Color only a terminal, and never when the user set NO_COLOR (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


class _StderrHandler(logging.StreamHandler):
    """Write to whatever ``sys.stderr`` is at emit time, so redirection and capture work."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        """Ignore the stream StreamHandler stores: sys.stderr is read at each emit."""


class _RoleFormatter(logging.Formatter):
    """Format records with the role in front, colored only when stderr can show it."""

    def __init__(self, role: str, color: str | None) -> None:
        super().__init__()
        self._plain = self._formatter_for(role)
        # termcolor would judge stdout; whether to color is decided per record, by stderr.
        role_text = colored(role, color, force_color=True) if color else role
        self._colored = self._formatter_for(role_text)

    @staticmethod
    def _formatter_for(role_text: str) -> logging.Formatter:
        escaped = role_text.replace("%", "%%")
        return logging.Formatter(f"%(levelname).1s:{escaped}:[%(filename)s:%(lineno)d] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        formatter = self._colored if colors_enabled() else self._plain
        return formatter.format(record)
