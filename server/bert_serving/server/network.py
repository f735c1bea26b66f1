"""Addresses, ports and the parent process: the network facts every role needs, in one place.

``-bind_ip`` is what a user types (``*``, ``localhost``, an address); ZeroMQ, waitress and
the clients that run beside the server each want it in their own form. Programs that start
servers themselves (benchmarks, examples, tests) take free ports from here too.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Callable

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = ("*", "0.0.0.0")


class PortInUseError(OSError):
    """A port the server must bind is taken; the message names the option and the port."""


def bind_address(bind_ip: str) -> str:
    """``-bind_ip`` as ZeroMQ binds it: ``*`` for all interfaces ("localhost" is no
    interface, so it becomes the loopback address)."""
    return LOOPBACK if bind_ip == "localhost" else bind_ip


def http_host(bind_ip: str) -> str:
    """``-bind_ip`` as a socket server (waitress) binds it: ``0.0.0.0`` for all interfaces."""
    return "0.0.0.0" if bind_ip == "*" else bind_address(bind_ip)


def local_address(bind_ip: str) -> str:
    """Where a client on this machine reaches a server bound to ``bind_ip``."""
    address = bind_address(bind_ip)
    return LOOPBACK if address in ALL_INTERFACES else address


def check_port_free(bind_ip: str, option: str, port: int) -> None:
    """Raise PortInUseError now, rather than fail later in a child process."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("" if bind_address(bind_ip) in ALL_INTERFACES else bind_ip, port))
        except OSError as err:
            raise PortInUseError(
                f"cannot bind -{option} {port}: {err.strerror} (is another server running?)"
            ) from None


def free_ports(count: int) -> list[int]:
    """``count`` different ports nothing listens on now, picked by the OS (all are held at
    once while picking, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class ParentWatch:
    """Tells a child process that the server that started it is gone (killed with SIGKILL,
    say), so that no worker, sink or proxy lives on as an orphan holding a port or a GPU."""

    def __init__(self) -> None:
        self.parent = os.getppid()

    def gone(self) -> bool:
        return os.getppid() != self.parent

    def call_when_gone(self, callback: Callable[[], None], interval: float = 1.0) -> None:
        """Run ``callback`` from a background thread once the parent is gone, for processes
        whose main thread blocks in someone else's loop (the proxy's waitress)."""

        def watch() -> None:
            while not self.gone():
                time.sleep(interval)
            callback()

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
