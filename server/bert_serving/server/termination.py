"""Shutting a server down from outside: the 1.10 TERMINATION request, and the port check
that says it worked (the protocol has no reply). Used by ``bert-serving-terminate`` and
``BertServer.shutdown``.
"""

from __future__ import annotations

import socket
import time

import zmq

from .handshake import HandshakeWatch, KeyOptions
from .protocol import TERMINATION, command_frames

PROBE_INTERVAL_SECONDS = 0.1
KEY_OPTIONS = KeyOptions("-curve_server_key", "-curve_client_keys")


def send_termination(ip: str, port: int, timeout_ms: int, curve: dict | None = None) -> None:
    """Push the shutdown request, waiting at most ``timeout_ms`` to deliver it;
    HandshakeRefusedError as soon as the server refuses the connection's handshake.
    ``curve``: socket options from ``security.curve_client_options``."""
    context = zmq.Context()
    try:
        sender = context.socket(zmq.PUSH)
        for option, value in (curve or {}).items():
            setattr(sender, option, value)
        sender.setsockopt(zmq.SNDTIMEO, timeout_ms)
        watch = HandshakeWatch(sender, bool(curve), KEY_OPTIONS)
        sender.connect(f"tcp://{ip}:{port}")
        connected = False
        try:
            sender.send_multipart(command_frames(TERMINATION))
            connected = watch.wait_until_connected(timeout_ms / 1000)
        finally:
            # refused, or no handshake within the timeout: nothing can be delivered
            watch.close()
            sender.close(linger=timeout_ms if connected else 0)
    finally:
        context.term()


def is_listening(ip: str, port: int, timeout_seconds: float) -> bool:
    """True when a TCP connection to ``ip:port`` is accepted within the timeout."""
    try:
        with socket.create_connection((ip, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def wait_until_closed(ip: str, port: int, timeout_seconds: float) -> bool:
    """Probe every 100 ms until the port refuses connections; False if it never does."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        remaining = deadline - time.monotonic()
        if not is_listening(ip, port, max(remaining, PROBE_INTERVAL_SECONDS)):
            return True
        if remaining <= 0:
            return False
        time.sleep(min(PROBE_INTERVAL_SECONDS, remaining))
