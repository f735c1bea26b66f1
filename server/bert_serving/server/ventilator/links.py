"""The front's side of its workers: the sockets they register on, and who may register.

Local workers (the server's children) register over an ipc socket in the server's private
folder; workers on other hosts (``bert-serving-worker``) over TCP on ``-port_worker``,
encrypted with CURVE when the server has a key pair, and limited to the keys in
``-curve_worker_keys`` when it is given. Both kinds then speak the same messages and are
judged by the same rules (``WorkerRegistry``).

A worker is welcomed only if it computes the vectors the front promises: same model files,
same vector settings (``model.fingerprint``), and the same number format as the workers
before it. Anything from a worker that is not registered (one given up on, or one from
before a restart) is answered with Goodbye, which makes it register again.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import zmq

from ..model.fingerprint import fingerprint_differences
from ..protocol import (
    Goodbye,
    Heartbeat,
    Hello,
    Message,
    MessageError,
    Refused,
    Welcome,
    decode,
    receive,
)
from ..security import WORKER_DOMAIN, CurveKeys
from .registry import WorkerRegistry


# (its constructor's assignments resemble the Ventilator's in shape only)
class WorkerLinks:
    def __init__(
        self,
        context: zmq.Context,
        registry: WorkerRegistry,
        fingerprint: dict,
        show_tokens: bool,
        logger: logging.Logger,
    ):
        self.context = context
        self.registry = registry
        self.fingerprint = fingerprint
        self.show_tokens = show_tokens
        self.logger = logger
        self.compute_dtype: str | None = None  # fixed by the first worker welcomed
        self.sockets: list[zmq.Socket] = []
        self.socket_of: dict[bytes, zmq.Socket] = {}
        self.refusals = 0

    def bind(self, endpoint: str, curve: CurveKeys | None = None) -> zmq.Socket:
        """Accept workers at ``endpoint``; a TCP endpoint may be CURVE-encrypted."""
        sock = self.context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        # ZeroMQ's own heartbeats close a dead TCP connection, so nothing piles up for it
        interval_ms = int(self.registry.heartbeat_interval * 1000)
        sock.setsockopt(zmq.HEARTBEAT_IVL, interval_ms)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.registry.timeout * 1000))
        if curve is not None:
            curve.secure(sock)
            sock.zap_domain = WORKER_DOMAIN.encode()
        sock.bind(endpoint)
        self.sockets.append(sock)
        return sock

    def receive(self, sock: zmq.Socket) -> Iterator[tuple[bytes, Message]]:
        """Every message waiting on ``sock``: Hellos, and what registered workers send
        (heartbeats are only counted; strangers get Goodbye). Big frames stay zero-copy."""
        while True:
            try:
                identity, *frames = receive(sock, zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = decode(frames)
            except MessageError as err:
                self.logger.error("dropped a malformed message of %r: %s", identity[:40], err)
                continue
            if isinstance(message, Hello):
                yield identity, message  # the loop settles an earlier session, then registers
            elif not self.registry.heard(identity):
                self._send(sock, identity, Goodbye("this front does not know you: register"))
            elif not isinstance(message, Heartbeat):
                yield identity, message

    def send(self, identity: bytes, message: Message) -> None:
        sock = self.socket_of.get(identity)
        if sock is not None:
            self._send(sock, identity, message)

    def beat(self) -> None:
        for identity in self.registry.identities():
            self.send(identity, Heartbeat())

    def forget(self, identity: bytes) -> None:
        self.socket_of.pop(identity, None)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    def register(self, sock: zmq.Socket, identity: bytes, hello: Hello) -> bool:
        """Welcome the worker, or refuse it (logged on both sides) when its vectors would
        differ from this front's; True when welcomed."""
        try:
            theirs = json.loads(hello.fingerprint)
        except ValueError:
            theirs = {}
        differences = fingerprint_differences(self.fingerprint, theirs)
        if self.compute_dtype not in (None, hello.compute_dtype):
            differences.append(
                f"it computes in {hello.compute_dtype}, this front's workers in "
                f"{self.compute_dtype} (start every worker with the same explicit -precision)"
            )
        if differences:
            reason = "its vectors would differ from this front's: " + "; ".join(differences)
            self.refusals += 1
            self.logger.warning("refused worker %s from %s: %s", hello.name, hello.host, reason)
            self._send(sock, identity, Refused(reason))
            return False
        self.compute_dtype = self.compute_dtype or hello.compute_dtype
        self.registry.register(identity, hello)
        self.socket_of[identity] = sock
        heartbeat_ms = int(self.registry.heartbeat_interval * 1000)
        self._send(sock, identity, Welcome(heartbeat_ms, self.show_tokens))
        self.logger.info(
            "%s worker %s joined (%s, %s)",
            "remote" if hello.remote else "local",
            hello.name,
            hello.device,
            hello.compute_dtype,
        )
        return True

    @staticmethod
    def _send(sock: zmq.Socket, identity: bytes, message: Message) -> None:
        with contextlib.suppress(zmq.Again):  # a peer that does not read: drop, never block
            sock.send_multipart([identity, *message.to_frames()], zmq.NOBLOCK, copy=False)
