"""The worker's socket thread: register with a front, take parts, return answers, beat.

One ``Session`` is one registration with one front. It ends when the front says Stop (a
local worker's server stops), says Goodbye (it closes, or lost track of this worker), or
goes silent for ``timeout``; a remote worker then registers again, with backoff, with
whatever front answers at that address: a restarted front gets its workers back without
anyone restarting them. Every session has a fresh identity, so the front can tell a
worker's late answers from an earlier session (it drops them) from its current ones.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from enum import Enum

import zmq

from ..handshake import HandshakeWatch, KeyOptions
from ..network import ParentWatch
from ..protocol import (
    Failure,
    Goodbye,
    Heartbeat,
    Hello,
    MessageError,
    Part,
    Ready,
    Refused,
    Stop,
    Welcome,
    decode,
    receive,
)
from .compute import ComputeThread
from .inbox import SharedInbox
from .settings import FrontAddress

KEY_OPTIONS = KeyOptions("-curve_server_key", "-curve_secret_key")
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0


class Outcome(Enum):
    STOP = "stop"  # told to stop, or the parent server is gone: exit
    REFUSED = "refused"  # this worker's vectors would differ: exit with an error
    AGAIN = "again"  # the front went away or forgot us: register again


@dataclass
class Backoff:
    """Waits between registrations: doubling from BACKOFF_FIRST to BACKOFF_MAX, with jitter
    so that many workers of a restarted front do not all knock at the same instant."""

    first: float = BACKOFF_FIRST
    longest: float = BACKOFF_MAX
    current: float = 0.0

    def next(self) -> float:
        self.current = min(self.longest, self.current * 2 if self.current else self.first)
        return self.current * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.current = 0.0


@dataclass(frozen=True)
class Membership:
    """What a worker tells its front, and on what terms it stays."""

    front: FrontAddress
    hello: Hello
    prefetch_size: int
    timeout: float  # -worker_timeout: silence from a remote front this long ends a session


class Session:
    """One registration with one front."""

    def __init__(
        self,
        context: zmq.Context,
        membership: Membership,
        identity: bytes,
        compute: ComputeThread,
        answers: zmq.Socket,
        inbox: SharedInbox,
        logger: logging.Logger,
    ):
        front, timeout = membership.front, membership.timeout
        self.front = front
        self.hello = membership.hello
        self.prefetch_size = membership.prefetch_size
        self.timeout = timeout
        self.compute = compute
        self.inbox = inbox
        self.logger = logger
        self.welcomed = False
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.IDENTITY, identity)
        self.socket.setsockopt(zmq.LINGER, 0)
        # ZeroMQ's own heartbeats drop a dead TCP connection, so nothing piles up for it
        self.socket.setsockopt(zmq.HEARTBEAT_IVL, int(timeout * 1000 / 3))
        self.socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(timeout * 1000))
        for option, value in front.curve.items():
            setattr(self.socket, option, value)
        self.answers = answers  # the compute thread's answers, for the whole process

    def run(self, parent: ParentWatch | None) -> Outcome:
        watch = HandshakeWatch(self.socket, bool(self.front.curve), KEY_OPTIONS)
        try:
            self.socket.connect(self.front.endpoint)
            welcome = self._register(watch)
            if not isinstance(welcome, Welcome):
                return welcome
            self.welcomed = True
            return self._serve(welcome, parent)
        except SystemExit:  # SIGTERM: leave cleanly, so the front re-queues our parts at once
            if self.welcomed:
                self.socket.send_multipart(Goodbye("the worker is stopping").to_frames())
                self.socket.setsockopt(zmq.LINGER, 1000)
            raise
        finally:
            watch.close()
            self.socket.close()

    def _register(self, watch: HandshakeWatch) -> Welcome | Outcome:
        self.socket.send_multipart(self.hello.to_frames())
        failure = self._wait_for_answer(watch)
        if failure is not None:
            self.logger.error(
                "the front at %s refused the connection: %s", self.front.endpoint, failure
            )
            return Outcome.REFUSED
        if not self.socket.poll(0):
            self.logger.warning("no answer from the front at %s", self.front.endpoint)
            return Outcome.AGAIN
        try:
            answer = decode(self.socket.recv_multipart())
        except MessageError as err:
            self.logger.error("the front at %s answered nonsense: %s", self.front.endpoint, err)
            return Outcome.AGAIN
        if isinstance(answer, Refused):
            self.logger.error("the front refused this worker: %s", answer.reason)
            return Outcome.REFUSED
        if isinstance(answer, Welcome):
            return answer
        self.logger.warning("the front answered %s to a Hello", type(answer).__name__)
        return Outcome.AGAIN

    def _wait_for_answer(self, watch: HandshakeWatch) -> str | None:
        """Wait up to the timeout for the front's answer, watching the handshake: a CURVE
        handshake the front rejects is a refusal, said at once, not a silent front."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.socket.poll(100):
                return None
            refusal = watch.refusal()
            if refusal is not None:
                return refusal
        return None

    def _serve(self, welcome: Welcome, parent: ParentWatch | None) -> Outcome:
        session = self.inbox.new_session()
        self.compute.show_tokens = welcome.show_tokens
        interval = welcome.heartbeat_ms / 1000
        self.logger.info("serving the front at %s", self.front.endpoint)
        self.socket.send_multipart(Ready(self.prefetch_size).to_frames())
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.answers, zmq.POLLIN)
        heard = last_beat = time.monotonic()
        while True:
            events = dict(poller.poll(int(interval * 1000)))
            now = time.monotonic()
            if self.socket in events:
                heard = now
                outcome = self._on_front()
                if outcome is not None:
                    return outcome
            if self.answers in events:
                self._forward_answer(session)
            if now - last_beat >= interval:
                self.socket.send_multipart(Heartbeat().to_frames())
                last_beat = now
            # a local worker's front is its parent, watched below; silence from it means a
            # busy loop, not a lost front, so only a remote worker registers again
            if self.front.remote and now - heard > self.timeout:
                self.logger.warning(
                    "the front at %s is silent for %.1f s: registering again",
                    self.front.endpoint,
                    now - heard,
                )
                return Outcome.AGAIN
            if parent is not None and parent.gone():
                self.logger.warning("the server process is gone, exiting")
                return Outcome.STOP

    def _on_front(self) -> Outcome | None:
        while True:
            try:  # a part's texts stay in ZeroMQ's buffer until they are decoded
                frames = receive(self.socket, zmq.NOBLOCK)
            except zmq.Again:
                return None
            try:
                message = decode(frames)
            except MessageError as err:
                self.logger.error("dropped a malformed message from the front: %s", err)
                continue
            if isinstance(message, Part):
                self._take(message)
            elif isinstance(message, Stop):
                self.logger.info("stopping")
                return Outcome.STOP
            elif isinstance(message, Goodbye):
                self.logger.info("the front said goodbye (%s)", message.reason)
                return Outcome.AGAIN

    def _take(self, part: Part) -> None:
        """Queue the part; one whose texts do not decode is answered with a Failure (which
        returns its credit) rather than held until the front thinks this worker hung."""
        try:
            self.inbox.put(part)
        except MessageError as err:
            self.logger.error("part %d of request %r: %s", part.index, part.request_id, err)
            failure = Failure(part.job, part.client, part.request_id, str(err), part.index)
            self.socket.send_multipart(failure.to_frames())

    def _forward_answer(self, session: int) -> None:
        """Send the compute thread's answers of this session; drop a previous session's."""
        while True:
            try:
                frames = self.answers.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if int(frames[0].bytes) == session:
                self.socket.send_multipart(frames[1:], copy=False)


def session_identity(name: str, session: int) -> bytes:
    """A fresh socket identity per registration (the front keys its records on it)."""
    return f"{name}#{session}.{os.urandom(3).hex()}".encode()
