"""Name the cause when a server refuses the ZeroMQ handshake, instead of timing out.

A client whose security settings differ from the server's (no CURVE keys for a server
that requires CURVE, a wrong server key, a client key the server does not list) never
gets an answer, and a plain timeout blames a busy or missing server. ZeroMQ reports the
refusal on a socket monitor within milliseconds: `HandshakeWatch` reads those events and
raises `HandshakeError`, with a message naming the options that fix it, from every
wait of the client (`WatchedSocket`) and from `bert-serving-terminate`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import zmq
from zmq.utils.monitor import recv_monitor_message

# libzmq's values (zmq.h of 4.3), spelled out because the client supports pyzmq releases
# older than these names; a libzmq before 4.3 never reports them, and then a mismatch
# ends in the timeout as before
EVENT_HANDSHAKE_FAILED_NO_DETAIL = 0x0800
EVENT_HANDSHAKE_SUCCEEDED = 0x1000
EVENT_HANDSHAKE_FAILED_PROTOCOL = 0x2000
EVENT_HANDSHAKE_FAILED_AUTH = 0x4000
PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH = 0x11000002
WATCHED_EVENTS = (
    EVENT_HANDSHAKE_SUCCEEDED
    | EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | EVENT_HANDSHAKE_FAILED_PROTOCOL
    | EVENT_HANDSHAKE_FAILED_AUTH
)
# A connection lost during any handshake (a server stopping, say) is also reported as
# "no detail"; a server that cannot decrypt a CURVE hello (a wrong server key) closes the
# connection on every attempt. So only repeated ones, with CURVE on, raise: ZeroMQ retries
# every 100 ms, which makes this about a quarter of a second.
NO_DETAIL_FAILURES_TO_RAISE = 3


class HandshakeError(ConnectionError):
    """The server refused the ZeroMQ handshake: the security settings do not match."""


@dataclass(frozen=True)
class KeyOptions:
    """How the caller spells its two CURVE options, for the messages."""

    server_key: str = "curve_server_key"
    client_keys: str = "curve_client_keys"


def failure_message(
    event: int, value: int, endpoint: str, uses_curve: bool, options: KeyOptions
) -> str | None:
    """What a handshake-failure event means and how to fix it; None when one such event
    does not prove a mismatch (a connection lost during the handshake)."""
    server_key, client_keys = options.server_key, options.client_keys
    if event == EVENT_HANDSHAKE_FAILED_AUTH:
        return (
            f"the server at {endpoint} refused this client's CURVE key (ZAP status {value}): "
            f"pass {client_keys} with a key pair whose public key is in the server's "
            "-curve_client_keys folder"
        )
    if event == EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if value != PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return (
                f"the peer at {endpoint} broke the ZeroMQ handshake (protocol error "
                f"{value:#x}): is it a bert-as-service server, and are the ip and ports right?"
            )
        if uses_curve:
            return (
                f"the server at {endpoint} does not use CURVE encryption but this client "
                f"does: leave out {server_key} and {client_keys}"
            )
        return (
            f"the server at {endpoint} requires CURVE encryption: pass {server_key} (the "
            f"server's public key) and, if the server only accepts listed clients, "
            f"{client_keys} (this client's .key_secret file)"
        )
    if event == EVENT_HANDSHAKE_FAILED_NO_DETAIL and uses_curve:
        return (
            f"the server at {endpoint} drops this client's CURVE handshake: {server_key} is "
            "most likely not the public key of this server's -curve_secret_key"
        )
    return None


@dataclass
class _Monitor:
    socket: zmq.Socket  # the monitor's PAIR socket
    succeeded: bool = False
    failures_without_detail: int = 0
    error: HandshakeError | None = field(default=None)


class HandshakeWatch:
    """The handshake events of some sockets; `check` raises while one of them is refused.

    Watch a socket before it connects, so that no event is missed. Not thread-safe: check
    from one thread at a time (the client waits from one thread at a time).
    """

    def __init__(self, uses_curve: bool, options: KeyOptions | None = None) -> None:
        self._uses_curve = uses_curve
        self._options = options or KeyOptions()
        self._monitors: list[_Monitor] = []

    def watch(self, socket: zmq.Socket) -> None:
        self._monitors.append(_Monitor(socket.get_monitor_socket(WATCHED_EVENTS)))

    @property
    def monitor_sockets(self) -> list[zmq.Socket]:
        return [monitor.socket for monitor in self._monitors]

    @property
    def all_succeeded(self) -> bool:
        return all(monitor.succeeded for monitor in self._monitors)

    def check(self, events_waiting: bool = True) -> None:
        """Read the events that arrived; raise HandshakeError if a socket is refused (again
        on every check, until a later handshake of that socket succeeds). A caller whose
        poll just said no monitor has events passes ``events_waiting=False``: looking costs
        a poll per monitor, on every answer."""
        for monitor in self._monitors:
            while events_waiting and monitor.socket.poll(0):
                self._record(monitor, recv_monitor_message(monitor.socket))
            if monitor.error is not None:
                raise monitor.error

    def record(self, monitor_socket: zmq.Socket, message: dict) -> HandshakeError | None:
        """Take one event that the caller read from ``monitor_socket`` (one of
        ``monitor_sockets``; an asyncio client reads them itself) and return the refusal the
        watched socket is under now, if any."""
        monitor = next(m for m in self._monitors if m.socket is monitor_socket)
        self._record(monitor, message)
        return monitor.error

    def wait_until_connected(self, timeout_ms: int) -> bool:
        """Wait for every watched socket's handshake: True once all succeeded, False at the
        timeout, HandshakeError as soon as one is refused."""
        poller = zmq.Poller()
        for socket in self.monitor_sockets:
            poller.register(socket, zmq.POLLIN)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self.check()
            if self.all_succeeded:
                return True
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                return False
            poller.poll(left_ms)

    def close(self) -> None:
        """Close the monitor sockets (before terminating their context)."""
        for monitor in self._monitors:
            monitor.socket.close(linger=0)

    def _record(self, monitor: _Monitor, message: dict) -> None:
        event, value = int(message["event"]), int(message["value"])
        if event == EVENT_HANDSHAKE_SUCCEEDED:
            monitor.succeeded, monitor.failures_without_detail, monitor.error = True, 0, None
            return
        monitor.succeeded = False
        if event == EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            monitor.failures_without_detail += 1
            if monitor.failures_without_detail < NO_DETAIL_FAILURES_TO_RAISE:
                return
        endpoint = message["endpoint"].decode("utf-8", errors="replace")
        text = failure_message(event, value, endpoint, self._uses_curve, self._options)
        if text is not None:
            monitor.error = HandshakeError(text)


class WatchedSocket:
    """A receiving socket whose `poll` also wakes up for handshake events and raises
    HandshakeError on a refusal; what the client's Mailbox waits on."""

    def __init__(self, socket: zmq.Socket, watch: HandshakeWatch) -> None:
        self._socket = socket
        self._watch = watch
        self._poller = zmq.Poller()
        self._poller.register(socket, zmq.POLLIN)
        for monitor in watch.monitor_sockets:
            self._poller.register(monitor, zmq.POLLIN)

    def poll(self, timeout: int | None = None) -> int:
        """zmq.POLLIN once a message is ready, 0 after `timeout` ms (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout / 1000
        while True:
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            ready = dict(self._poller.poll(left))
            monitors_ready = any(monitor in ready for monitor in self._watch.monitor_sockets)
            self._watch.check(events_waiting=monitors_ready)
            if self._socket in ready:
                return zmq.POLLIN
            if left == 0:
                return 0

    def recv_multipart(self, *args, **kwargs) -> list:
        return self._socket.recv_multipart(*args, **kwargs)
