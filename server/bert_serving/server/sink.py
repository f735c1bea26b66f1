"""The sink: reassembles the parts of each request and publishes answers to clients.

It binds the only socket clients subscribe to (``-port_out``). That socket is an XPUB, which
sees every subscription, so an answer for a client whose subscription has not arrived yet
(the "slow joiner" of docs/design/protocol.md) is held back for a while instead of being lost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import zmq

from .logger import get_logger
from .network import ParentWatch, bind_address
from .processes import spawn
from .protocol import (
    Failure,
    JobAnnounced,
    MessageError,
    Published,
    Reply,
    Result,
    Stop,
    decode,
    encoding_frames,
    error_frames,
    receive,
)
from .security import CurveKeys

HOLD_SECONDS = 10.0  # how long an answer waits for its client's subscription
FINISHED_MEMORY = 10000  # recently finished requests, to drop late duplicates of their parts
ORPHAN_SECONDS = 60.0  # parts of a request never announced (re-runs after a restart) expire
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


@dataclass
class PendingRequest:
    """The parts received so far for one job (one client request)."""

    client: bytes
    request_id: bytes
    num_parts: int | None = None
    parts: dict[int, tuple[bytes, np.ndarray, object]] = field(default_factory=dict)
    created: float = field(default_factory=time.monotonic)

    @property
    def complete(self) -> bool:
        return self.num_parts is not None and len(self.parts) == self.num_parts

    @property
    def answer_bytes(self) -> int:
        """The size of the assembled answer (parts padded to the longest, under NONE)."""
        arrays = [array for _, array, _ in self.parts.values()]
        rows = sum(len(array) for array in arrays)
        width = max(array.shape[1] for array in arrays) if arrays[0].ndim == 3 else 1
        return rows * width * arrays[0].shape[-1] * arrays[0].itemsize

    def assemble(self) -> tuple[np.ndarray, object]:
        """The parts' vectors (and tokens) in the client's order. Each part is copied once
        into the answer and then let go (its buffer is ZeroMQ's, freed with it), so the
        sink holds about one answer, not parts plus concatenation plus reordering: token
        embeddings are large. A request of one part in order (most are) is its part's
        vectors as they arrived, not copied at all."""
        if self.num_parts == 1 and not self.parts[0][0]:
            _, array, tokens = self.parts.pop(0)
            return array, tokens
        arrays = [self.parts[index][1] for index in range(self.num_parts)]
        rows = sum(len(array) for array in arrays)
        shape: tuple[int, ...] = (rows, *arrays[0].shape[1:])
        if arrays[0].ndim == 3:  # NONE pooling with dynamic length: parts may differ in T
            shape = (rows, max(array.shape[1] for array in arrays), arrays[0].shape[2])
        answer = np.zeros(shape, arrays[0].dtype)
        del arrays
        start, all_rows, tokens = 0, [], []
        for index in range(self.num_parts):
            part_rows, array, part_tokens = self.parts.pop(index)
            # the rows this part holds: its positions in the request, or the next slice
            end = start + len(array)
            target = np.frombuffer(part_rows, np.int32) if part_rows else slice(start, end)
            answer[target, : array.shape[1]] = array
            all_rows.append(part_rows)
            tokens.append(part_tokens)
            start = end
        if tokens[0] == "":
            return answer, ""
        flat_tokens = [row for part in tokens for row in part]
        if not all_rows[0]:  # the parts are consecutive slices
            return answer, flat_tokens
        ordered_tokens = [None] * rows
        positions = np.frombuffer(b"".join(all_rows), np.int32)
        for position, row in zip(positions.tolist(), flat_tokens):
            ordered_tokens[position] = row
        return answer, ordered_tokens


class Publisher:
    """An XPUB socket that knows who listens and holds answers for clients not yet there."""

    def __init__(self, socket: zmq.Socket, logger, on_gone=None):
        self.socket = socket
        self.logger = logger
        self.on_gone = on_gone or (lambda job, frames: None)  # an answer left or expired
        self.listeners: dict[bytes, int] = {}
        self.held: list[tuple[float, bytes | None, list[bytes]]] = []

    def on_subscription(self, event: bytes) -> None:
        topic, change = event[1:], 1 if event[:1] == b"\x01" else -1
        count = self.listeners.get(topic, 0) + change
        if count > 0:
            self.listeners[topic] = count
        else:
            self.listeners.pop(topic, None)  # clients come and go: keep only live topics
        if change > 0:
            self.flush()

    def is_listened(self, identity: bytes) -> bool:
        """Whether a subscriber would get it: ZeroMQ matches subscriptions by prefix (a
        client's own identity, looked up first, is the usual match)."""
        return identity in self.listeners or any(
            identity.startswith(topic) for topic in self.listeners
        )

    def publish(self, frames: list[bytes], job: bytes | None = None) -> None:
        """Send now if the client listens, else hold; ``job`` is reported to ``on_gone``."""
        if self.is_listened(frames[0]):
            self._send(job, frames)
        else:
            self.held.append((time.monotonic() + HOLD_SECONDS, job, frames))

    def flush(self) -> None:
        """Send held answers whose client now listens; drop those that waited too long."""
        now, still_held = time.monotonic(), []
        for deadline, job, frames in self.held:
            if self.is_listened(frames[0]):
                self._send(job, frames)
            elif deadline < now:
                self.logger.warning("dropped an answer for %r: it never subscribed", frames[0][:40])
                self.on_gone(job, frames)
            else:
                still_held.append((deadline, job, frames))
        self.held = still_held

    def _send(self, job: bytes | None, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames, copy=False)
        self.on_gone(job, frames)


class Sink:
    """Collects the parts of each job and publishes the assembled answer once; an answer
    larger than ``max_response_bytes`` is an error that says how to split the request."""

    def __init__(self, publisher: Publisher, logger, max_response_bytes: int | None = None):
        self.publisher = publisher
        self.logger = logger
        self.max_response_bytes = max_response_bytes
        self.pending: dict[bytes, PendingRequest] = {}
        self.finished: OrderedDict[bytes, None] = OrderedDict()

    def handle(self, message: Result | JobAnnounced | Reply | Failure) -> None:
        if isinstance(message, Result):
            array, tokens = message.array()
            self._on_part(message, (message.rows, array, tokens))
        elif isinstance(message, JobAnnounced):
            if message.job not in self.finished:
                request = self._request(message.job, message.client, message.request_id)
                request.num_parts = message.num_parts
                self._maybe_finish(message.job)
        elif isinstance(message, Reply):
            self.publisher.publish([message.client, message.body, message.request_id])
        elif isinstance(message, Failure):
            job = message.job
            if job and job in self.finished:
                return
            if job:
                self._finish(job)
            frames = error_frames(message.client, int(message.request_id), message.message)
            self.publisher.publish(frames, job or None)
        else:
            self.logger.error("the sink does not take %s messages", type(message).__name__)

    def sweep_orphans(self) -> None:
        """Drop parts whose job was never announced: results of jobs that an earlier sink
        answered, re-sent to this one after a restart."""
        expired = time.monotonic() - ORPHAN_SECONDS
        for job, request in list(self.pending.items()):
            if request.num_parts is None and request.created < expired:
                del self.pending[job]

    def _request(self, job: bytes, client: bytes, request_id: bytes) -> PendingRequest:
        if job not in self.pending:
            self.pending[job] = PendingRequest(client, request_id)
        return self.pending[job]

    def _on_part(self, result: Result, value) -> None:
        job = result.job
        if job in self.finished:
            return  # a late duplicate, e.g. re-run after a worker restart
        self._request(job, result.client, result.request_id).parts.setdefault(result.index, value)
        self._maybe_finish(job)

    def _maybe_finish(self, job: bytes) -> None:
        request = self.pending.get(job)
        if request is None or not request.complete:
            return
        size = request.answer_bytes
        if self.max_response_bytes is not None and size > self.max_response_bytes:
            self._finish(job)
            message = (
                f"the answer would take {size / 1e6:.0f} MB, more than -max_response_bytes "
                f"{self.max_response_bytes / 1e6:.0f} MB: split the request into fewer texts "
                "(token embeddings take texts x tokens x width x 4 bytes)"
            )
            frames = error_frames(request.client, int(request.request_id), message, 413)
            self.publisher.publish(frames, job)
            return
        array, tokens = request.assemble()
        self._finish(job)
        frames = encoding_frames(request.client, int(request.request_id), array, tokens)
        self.publisher.publish(frames, job)
        self.logger.debug(
            "sent %s rows to %r request %s",
            array.shape[0],
            request.client[:40],
            request.request_id.decode(),
        )

    def _finish(self, job: bytes) -> None:
        self.pending.pop(job, None)
        self.finished[job] = None
        if len(self.finished) > FINISHED_MEMORY:
            self.finished.popitem(last=False)


@dataclass(frozen=True)
class SinkSettings:
    """What the sink needs from the start arguments, built once."""

    port_out: int
    bind_ip: str
    curve: CurveKeys | None
    max_response_bytes: int
    verbose: bool

    @classmethod
    def from_args(cls, args) -> SinkSettings:
        curve = CurveKeys.from_args(args)
        return cls(args.port_out, args.bind_ip, curve, args.max_response_bytes, args.verbose)


@dataclass(frozen=True)
class SinkAddresses:
    inbox: str  # the sink's PULL: results, announcements and errors in
    ventilator: str  # the ventilator's PULL: Published confirmations out


def run_sink(settings: SinkSettings, addresses: SinkAddresses, startup) -> None:
    """Process entry point (spawned): bind, report to ``startup``, serve until Stop.

    Every answer sent (or given up on) is confirmed to the ventilator, which keeps a
    request's parts until then, to re-run them if this process dies.
    """
    logger = get_logger("SINK", settings.verbose)
    release_large_buffers_at_once()
    port_out = settings.port_out
    context = zmq.Context()
    publisher_socket = context.socket(zmq.XPUB)
    publisher_socket.setsockopt(zmq.XPUB_VERBOSER, 1)  # every (un)subscription, clones too
    publisher_socket.setsockopt(zmq.LINGER, 1000)
    receiver = context.socket(zmq.PULL)
    receiver.setsockopt(zmq.LINGER, 0)
    confirmations = context.socket(zmq.PUSH)
    confirmations.setsockopt(zmq.LINGER, 1000)
    confirmations.connect(addresses.ventilator)
    authenticator = None
    if settings.curve is not None:
        settings.curve.secure(publisher_socket)
        authenticator = settings.curve.start_authenticator(context)
    try:
        publisher_socket.bind(f"tcp://{bind_address(settings.bind_ip)}:{port_out}")
        receiver.bind(addresses.inbox)
    except zmq.ZMQError as err:
        startup.send(("error", f"cannot bind -port_out {port_out}: {err}"))
        _close(context, authenticator, linger=0)
        return
    startup.send(("ready", "sink"))
    logger.info("publishing results on port %d", port_out)

    def confirm(job: bytes | None, frames: list[bytes]) -> None:
        if job is not None:  # an encoding or an error of a job; config and status need no re-run
            confirmations.send_multipart(Published(job).to_frames())

    publisher = Publisher(publisher_socket, logger, confirm)
    sink = Sink(publisher, logger, settings.max_response_bytes)
    poller = zmq.Poller()
    poller.register(publisher_socket, zmq.POLLIN)
    poller.register(receiver, zmq.POLLIN)
    next_sweep = time.monotonic() + ORPHAN_SECONDS
    parent = ParentWatch()
    while not parent.gone():  # no orphan: exit when the server process is gone
        events = dict(poller.poll(200))
        if publisher_socket in events:
            publisher.on_subscription(publisher_socket.recv())
        if receiver in events:
            try:
                message = decode(receive(receiver))  # vectors stay in ZeroMQ's buffers
            except MessageError as err:
                logger.error("dropped a malformed internal message: %s", err)
                continue
            if isinstance(message, Stop):
                break
            sink.handle(message)
        if publisher.held:
            publisher.flush()
        if time.monotonic() > next_sweep:
            sink.sweep_orphans()
            next_sweep = time.monotonic() + ORPHAN_SECONDS / 4
    publisher.flush()
    logger.info("stopped")
    _close(context, authenticator, linger=1000)


def release_large_buffers_at_once() -> None:
    """Give big freed buffers (parts, answers) back to the system when they are freed.

    glibc raises its mmap threshold to the size of any mmapped block that is freed (up to
    32 MB), so after the first large answer the parts of the next one land on the heap,
    whose freed memory stays resident: the sink would hold every part and the whole answer
    at once. A fixed threshold of 1 MB keeps large blocks mmapped. Elsewhere (no glibc)
    this does nothing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass


def _close(context: zmq.Context, authenticator, linger: int) -> None:
    if authenticator is not None:
        authenticator.stop()
    context.destroy(linger=linger)


def start_sink(settings: SinkSettings, addresses: SinkAddresses):
    """Spawn the sink; return (process, startup pipe)."""
    return spawn(run_sink, (settings, addresses), "SINK")
