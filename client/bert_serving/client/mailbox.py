"""Receive what the server publishes to one identity and hand each answer to its waiter.

Answers of one client may arrive in any order, and clones sharing the identity receive
answers to each other's requests, so every wait filters by request id and by layout
(3 frames for config/status, 4 for encodings) and keeps early encodings for later.
"""

from __future__ import annotations

import threading
from typing import Callable, Collection

import zmq

from .deadlines import ms_left
from .protocol import Reply, parse_reply


class Mailbox:
    """The SUB side of one client: pending request ids plus answers that came early.

    `expect`/`forget` may be called from another thread (the encode_async sender);
    the waiting methods must be called from one thread at a time.
    """

    def __init__(self, socket: zmq.Socket, identity: bytes) -> None:
        self._socket = socket
        self._identity = identity
        self._pending: set[int] = set()
        self._early: dict[int, Reply] = {}  # insertion order = arrival order
        self._lock = threading.Lock()

    def expect(self, request_id: int) -> None:
        """Register an encoding request before it is sent, so its answer is never dropped."""
        with self._lock:
            self._pending.add(request_id)

    def forget(self, request_id: int) -> None:
        """Stop waiting for a request; its answer will be discarded if it still comes."""
        with self._lock:
            self._pending.discard(request_id)
            self._early.pop(request_id, None)

    def forget_all(self) -> None:
        with self._lock:
            self._pending.clear()
            self._early.clear()

    def pending_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._pending)

    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def wait_for_encoding(self, request_id: int, deadline: float | None) -> Reply | None:
        return self.wait_for_encodings((request_id,), deadline)

    def wait_for_encodings(
        self, request_ids: Collection[int], deadline: float | None
    ) -> Reply | None:
        """The first answer to any of ``request_ids``, whichever comes first."""
        return self._wait(lambda r: r.is_encoding and r.request_id in request_ids, deadline)

    def wait_for_command(
        self, request_ids: Collection[int], deadline: float | None
    ) -> Reply | None:
        return self._wait(lambda r: not r.is_encoding and r.request_id in request_ids, deadline)

    def next_pending(self, deadline: float | None) -> Reply | None:
        """The next answer to any pending encoding request, in arrival order."""
        return self._wait(lambda r: r.is_encoding and r.request_id in self._pending, deadline)

    def next_published(self, deadline: float | None) -> Reply | None:
        """The next encoding published to this identity, whoever asked for it."""
        return self._wait(lambda r: r.is_encoding, deadline)

    def _wait(self, wanted: Callable[[Reply], bool], deadline: float | None) -> Reply | None:
        """The first answer `wanted` accepts, or None once `deadline` has passed."""
        with self._lock:
            for request_id, reply in self._early.items():
                if wanted(reply):
                    del self._early[request_id]
                    self._pending.discard(request_id)
                    return reply
        while True:
            reply = self._receive(deadline)
            if reply is None:
                return None
            with self._lock:
                if wanted(reply):
                    if reply.is_encoding:
                        self._pending.discard(reply.request_id)
                    return reply
                if reply.is_encoding and reply.request_id in self._pending:
                    self._early[reply.request_id] = reply

    def _receive(self, deadline: float | None) -> Reply | None:
        while self._socket.poll(ms_left(deadline)):
            frames = self._socket.recv_multipart()
            # a subscription matches by prefix: skip identities that merely start with ours
            if frames[0] == self._identity:
                return parse_reply(frames)
        return None
