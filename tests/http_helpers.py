"""Helpers for the HTTP proxy tests: a proxy process to watch, a port to occupy."""

from __future__ import annotations

import multiprocessing
import socket
from contextlib import contextmanager

PROXY_PROCESS_NAME = "bert-http-proxy"


def proxy_processes() -> set[multiprocessing.Process]:
    """The running proxy children of this test process."""
    return {p for p in multiprocessing.active_children() if p.name == PROXY_PROCESS_NAME}


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


@contextmanager
def occupied_port(port: int):
    """Listen on ``port`` (all interfaces) for the duration of the block."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen()
        yield port
