"""``ServerLink``: the proxy's one connection to its server, shared by every request thread.

The proxy speaks the 1.10 client protocol to the server, but it ships with the server: it
must not need the client package (``pip install bert-serving-server[http]`` must give a
proxy that starts). One PUSH and one SUB socket serve every HTTP request thread: a thread
pushes its request (under a lock) and waits on its own event; a receiver thread reads the
subscription and wakes the thread whose request id came back. No request ever waits for a
free client, and the server counts the proxy as one client.

The server holds an answer until the link's subscription reaches it (its XPUB sees the
subscription), so nothing here waits for a handshake: the proxy can report ready before
the server's loop runs, and even the first request is answered.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field

import numpy as np
import zmq

from ..protocol import dumps

RECEIVE_POLL_MS = 100


class LinkTimeoutError(TimeoutError):
    """The server did not answer in time (HTTP 504)."""


class ServerRefusedError(RuntimeError):
    """The server answered with an error: the request itself was refused."""


@dataclass
class _Waiting:
    done: threading.Event = field(default_factory=threading.Event)
    frames: list[bytes] | None = None


class ServerLink:
    """Requests to one server from many threads; ``curve``: socket options by attribute
    name (``curve_serverkey``, ``curve_publickey``, ``curve_secretkey``) or empty."""

    def __init__(self, ip: str, port: int, port_out: int, curve: dict | None = None):
        self.identity = f"http-proxy-{uuid.uuid4()}".encode()
        self.endpoint = f"{ip} (port={port}, port_out={port_out})"
        self._context = zmq.Context()
        self._sender = self._socket(zmq.PUSH, curve)
        self._sender.connect(f"tcp://{ip}:{port}")
        self._receiver = self._socket(zmq.SUB, curve)
        self._receiver.setsockopt(zmq.SUBSCRIBE, self.identity)
        self._receiver.connect(f"tcp://{ip}:{port_out}")
        self._send_lock = threading.Lock()
        self._waiting: dict[bytes, _Waiting] = {}
        self._ids = itertools.count(1)
        self._closed = threading.Event()
        self.sent = self.answered = self.timed_out = 0
        self._thread = threading.Thread(target=self._receive, name="link-receiver", daemon=True)
        self._thread.start()

    def encode(self, texts: list, is_tokenized: bool, timeout_ms: int) -> np.ndarray:
        """The server's vectors for ``texts``; ServerRefusedError, LinkTimeoutError."""
        payload = dumps(texts)
        header, data = self._request(payload, len(texts), timeout_ms)
        info = json.loads(header)
        return np.frombuffer(data, dtype=info["dtype"]).reshape(info["shape"])

    def command(self, name: bytes, timeout_ms: int) -> dict:
        """The answer to SHOW_CONFIG or SHOW_STATUS."""
        (body,) = self._request(name, 0, timeout_ms)
        return json.loads(body)

    @property
    def status(self) -> dict:
        return {
            "identity": self.identity.decode(),
            "server": self.endpoint,
            "pending_requests": len(self._waiting),
            "requests_sent": self.sent,
            "answers_received": self.answered,
            "timed_out": self.timed_out,
        }

    def close(self) -> None:
        """Stop the receiver, close the sockets (idempotent); later requests raise."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._thread.join(5)
        with self._send_lock:
            self._sender.close(linger=0)
        self._context.destroy(linger=0)

    def _request(self, payload: bytes, count: int, timeout_ms: int) -> list[bytes]:
        """Send one request, wait for its answer; the frames between identity and id."""
        if self._closed.is_set():
            raise RuntimeError("the link to the server is closed")
        request_id = str(next(self._ids)).encode()
        waiting = self._waiting[request_id] = _Waiting()
        try:
            with self._send_lock:
                self._sender.setsockopt(zmq.SNDTIMEO, timeout_ms)
                try:
                    self._sender.send_multipart(
                        [self.identity, payload, request_id, str(count).encode()]
                    )
                except zmq.Again:
                    raise self._timeout(timeout_ms, "could not send the request") from None
                self.sent += 1
            if not waiting.done.wait(timeout_ms / 1000):
                raise self._timeout(timeout_ms, "no answer")
        finally:
            self._waiting.pop(request_id, None)
        return self._checked(waiting.frames)

    def _timeout(self, timeout_ms: int, what: str) -> LinkTimeoutError:
        self.timed_out += 1
        return LinkTimeoutError(
            f"{what} from the bert-as-service server at {self.endpoint} within {timeout_ms} ms"
        )

    @staticmethod
    def _checked(frames: list[bytes]) -> list[bytes]:
        """The answer's frames; an error answer (JSON with "error") raises."""
        if len(frames) == 2 and not frames[1]:  # [header, empty array]: maybe an error
            info = json.loads(frames[0])
            if "error" in info:
                raise ServerRefusedError(info["error"])
        return frames

    def _receive(self) -> None:
        """Hand each answer to the thread waiting for its request id (late ones are
        dropped: their thread gave up)."""
        while not self._closed.is_set():
            if not self._receiver.poll(RECEIVE_POLL_MS):
                continue
            frames = self._receiver.recv_multipart()
            waiting = self._waiting.get(frames[-1])
            if waiting is not None:
                waiting.frames = frames[1:-1]
                self.answered += 1
                waiting.done.set()
        self._receiver.close(linger=0)

    def _socket(self, kind: int, curve: dict | None) -> zmq.Socket:
        sock = self._context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        for option, value in (curve or {}).items():
            setattr(sock, option, value)
        return sock
