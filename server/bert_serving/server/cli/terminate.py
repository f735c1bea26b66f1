"""``bert-serving-terminate``: ask a server to shut down and confirm that it did.

The request is fire-and-forget (the protocol has no reply), so success is judged by
the server's request port refusing connections afterwards. The ZeroMQ handshake is
watched, so a server that refuses it (CURVE settings that differ) is reported at once,
naming the cause, instead of after the timeout.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Sequence

import zmq

from bert_serving.client.handshake import HandshakeError, HandshakeWatch, KeyOptions
from bert_serving.client.security import curve_client_options
from bert_serving.server.args import get_shutdown_parser

TERMINATION_REQUEST = [b"0", b"TERMINATION", b"0", b"0"]
PROBE_INTERVAL_SECONDS = 0.1


CURVE_OPTIONS = KeyOptions("-curve_server_key", "-curve_client_keys")


def parser() -> argparse.ArgumentParser:
    """The shutdown options, plus the CURVE keys a server started with -curve_secret_key needs."""
    shutdown = get_shutdown_parser()
    shutdown.add_argument(
        CURVE_OPTIONS.server_key,
        default=None,
        help="the server's public key (its .key file): for a server with -curve_secret_key",
    )
    shutdown.add_argument(
        CURVE_OPTIONS.client_keys,
        default=None,
        help="this client's .key_secret file: for a server with -curve_client_keys",
    )
    return shutdown


def main(argv: Sequence[str] | None = None) -> int:
    """Shut down the server at ``-ip``:``-port``; return 0 once it stopped listening."""
    args = parser().parse_args(argv)
    address = f"{args.ip}:{args.port}"
    timeout_seconds = args.timeout / 1000
    if not is_listening(args.ip, args.port, timeout_seconds):
        print(f"no server listening at {address}", file=sys.stderr)
        return 1
    try:
        curve = curve_client_options(args.curve_server_key, args.curve_client_keys)
        send_termination(args.ip, args.port, args.timeout, curve)
    except (HandshakeError, OSError, ValueError) as error:  # refused, or unusable key files
        print(f"cannot shut down the server at {address}: {error}", file=sys.stderr)
        return 1
    if wait_until_closed(args.ip, args.port, timeout_seconds):
        print(f"server at {address} terminated")
        return 0
    print(f"server at {address} still listens after {args.timeout} ms", file=sys.stderr)
    return 1


def send_termination(
    ip: str, port: int, timeout_ms: int, curve: dict[int, bytes] | None = None
) -> None:
    """Push the 1.10 shutdown request, waiting at most ``timeout_ms`` to deliver it;
    HandshakeError as soon as the server refuses the connection's handshake."""
    context = zmq.Context()
    try:
        sender = context.socket(zmq.PUSH)
        for option, value in (curve or {}).items():
            sender.setsockopt(option, value)
        sender.setsockopt(zmq.LINGER, timeout_ms)
        sender.setsockopt(zmq.SNDTIMEO, timeout_ms)
        handshake = HandshakeWatch(uses_curve=bool(curve), options=CURVE_OPTIONS)
        handshake.watch(sender)
        sender.connect(f"tcp://{ip}:{port}")
        connected = False
        try:
            sender.send_multipart(TERMINATION_REQUEST)
            connected = handshake.wait_until_connected(timeout_ms)
        finally:
            # refused or no handshake within the timeout: the request cannot be delivered
            sender.close(linger=None if connected else 0)
            handshake.close()
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


if __name__ == "__main__":
    sys.exit(main())
