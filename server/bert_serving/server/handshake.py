"""A refused ZeroMQ handshake, said at once and by cause, for the server's own outgoing
sockets: a remote worker registering with its front, and ``bert-serving-terminate``.

Without this, CURVE settings that differ look like a peer that is down: nothing arrives, and
the caller waits for a timeout that blames the wrong thing. ZeroMQ's socket monitor reports
the refusal within milliseconds. The client package watches its own sockets the same way
(``bert_serving.client.handshake``); the two packages share no code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import zmq
from zmq.utils.monitor import recv_monitor_message

EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
MECHANISM_MISMATCH = zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
# a peer that cannot decrypt our CURVE hello (a wrong server key) drops every attempt; one
# drop may also be a peer that is stopping, so only repeated ones count (ZeroMQ retries
# every 100 ms: about a quarter of a second)
DROPS_TO_REFUSE = 3


class HandshakeRefusedError(ConnectionError):
    """The peer refused the ZeroMQ handshake: the CURVE settings do not match."""


@dataclass(frozen=True)
class KeyOptions:
    """How the caller's two CURVE options are spelled, for the messages."""

    server_key: str
    own_keys: str


class HandshakeWatch:
    """The handshake events of one socket (watch it before it connects)."""

    def __init__(self, socket: zmq.Socket, uses_curve: bool, options: KeyOptions):
        self.socket = socket
        self.uses_curve = uses_curve
        self.options = options
        self.monitor = socket.get_monitor_socket(EVENTS)
        self.succeeded = False
        self.drops = 0

    def refusal(self) -> str | None:
        """What the peer turned down and how to fix it, once it did; else None."""
        while self.monitor.poll(0):
            message = recv_monitor_message(self.monitor)
            event, value = int(message["event"]), int(message["value"])
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.succeeded, self.drops = True, 0
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                return (
                    f"the peer refused this side's CURVE key: pass {self.options.own_keys} "
                    "with a key pair whose public key the peer lists"
                )
            elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == MECHANISM_MISMATCH:
                if self.uses_curve:
                    return (
                        "the peer does not use CURVE but this side does: leave out "
                        f"{self.options.server_key} and {self.options.own_keys}"
                    )
                return f"the peer requires CURVE: pass {self.options.server_key}"
            elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                return f"the peer broke the ZeroMQ handshake (protocol error {value:#x})"
            elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and self.uses_curve:
                self.drops += 1
                if self.drops >= DROPS_TO_REFUSE:
                    return (
                        f"the CURVE handshake failed: {self.options.server_key} is not the "
                        "peer's public key"
                    )
        return None

    def wait_until_connected(self, timeout: float) -> bool:
        """True once the handshake succeeded, False at the timeout; HandshakeRefusedError as
        soon as the peer turns it down."""
        deadline = time.monotonic() + timeout
        while True:
            refusal = self.refusal()
            if refusal is not None:
                raise HandshakeRefusedError(refusal)
            if self.succeeded:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.monitor.poll(int(min(left, 0.1) * 1000))

    def close(self) -> None:
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
