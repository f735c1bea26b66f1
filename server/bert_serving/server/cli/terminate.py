"""``bert-serving-terminate``: ask a server to shut down and confirm that it did.

The request is fire-and-forget (the protocol has no reply), so success is judged by
the server's request port refusing connections afterwards.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Sequence

import zmq

from bert_serving.server.args import get_shutdown_parser

TERMINATION_REQUEST = [b"0", b"TERMINATION", b"0", b"0"]
PROBE_INTERVAL_SECONDS = 0.1


def main(argv: Sequence[str] | None = None) -> int:
    """Shut down the server at ``-ip``:``-port``; return 0 once it stopped listening."""
    args = get_shutdown_parser().parse_args(argv)
    address = f"{args.ip}:{args.port}"
    timeout_seconds = args.timeout / 1000
    if not is_listening(args.ip, args.port, timeout_seconds):
        print(f"no server listening at {address}", file=sys.stderr)
        return 1
    send_termination(args.ip, args.port, args.timeout)
    if wait_until_closed(args.ip, args.port, timeout_seconds):
        print(f"server at {address} terminated")
        return 0
    print(f"server at {address} still listens after {args.timeout} ms", file=sys.stderr)
    return 1


def send_termination(ip: str, port: int, timeout_ms: int) -> None:
    """Push the 1.10 shutdown request, waiting at most ``timeout_ms`` to deliver it."""
    context = zmq.Context()
    try:
        sender = context.socket(zmq.PUSH)
        sender.setsockopt(zmq.LINGER, timeout_ms)
        sender.setsockopt(zmq.SNDTIMEO, timeout_ms)
        sender.connect(f"tcp://{ip}:{port}")
        try:
            sender.send_multipart(TERMINATION_REQUEST)
        finally:
            sender.close()
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
