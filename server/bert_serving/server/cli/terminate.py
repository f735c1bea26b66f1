"""``bert-serving-terminate``: ask a server to shut down and confirm that it did.

The request is fire-and-forget (the protocol has no reply), so success is judged by the
server's request port refusing connections afterwards. The ZeroMQ handshake is watched, so a
server that refuses it (CURVE settings that differ) is reported at once, naming the cause,
instead of after the timeout.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bert_serving.server.args import get_shutdown_parser
from bert_serving.server.handshake import HandshakeRefusedError
from bert_serving.server.security import curve_client_options
from bert_serving.server.termination import is_listening, send_termination, wait_until_closed


def main(argv: Sequence[str] | None = None) -> int:
    """Shut down the server at ``-ip``:``-port``; return 0 once it stopped listening."""
    args = get_shutdown_parser().parse_args(argv)
    address = f"{args.ip}:{args.port}"
    timeout_seconds = args.timeout / 1000
    if not is_listening(args.ip, args.port, timeout_seconds):
        print(f"no server listening at {address}", file=sys.stderr)
        return 1
    try:
        curve = curve_client_options(args.curve_server_key, args.curve_client_keys)
        send_termination(args.ip, args.port, args.timeout, curve)
    except (HandshakeRefusedError, OSError, ValueError) as error:  # refused, or bad key files
        print(f"cannot shut down the server at {address}: {error}", file=sys.stderr)
        return 1
    if wait_until_closed(args.ip, args.port, timeout_seconds):
        print(f"server at {address} terminated")
        return 0
    print(f"server at {address} still listens after {args.timeout} ms", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
