"""Free TCP ports, for servers started by programs rather than by people (benchmarks, tests)."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """``count`` different ports nothing listens on now, picked by the OS (all are held at
    once while picking, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
