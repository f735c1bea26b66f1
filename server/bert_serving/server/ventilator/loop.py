"""The ventilator's event loop: client requests in, parts out to workers, answers to the sink.

It owns the sockets between the roles and reacts to three inputs: a client message on
``-port``; a worker's message (Hello, Ready, and Result or Failure, which return a credit
and go on to the sink); and the sink's Published confirmation. Between events it beats to
its workers, gives up on the silent and the hung (their parts run elsewhere, and a local
one is killed and replaced), and asks the supervisor whether a child died. Deciding what
goes where is the ``Scheduler``'s job, who serves the ``WorkerRegistry``'s, answering
SHOW_CONFIG/SHOW_STATUS is ``status``'s.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from datetime import datetime

import zmq

from .. import protocol
from ..model.checkpoint import ModelSpec
from ..network import LOOPBACK, bind_address, local_address
from ..protocol import (
    Failure,
    Goodbye,
    Hello,
    JobAnnounced,
    Part,
    Published,
    Ready,
    Reply,
    Result,
    Stop,
)
from ..security import CurveKeys
from ..statistics import ServerStatistics
from ..status import ServerFacts, WorkerFacts, config_answer, status_answer
from ..supervisor import Child, Supervisor
from .links import WorkerLinks
from .registry import WorkerRegistry, WorkerState
from .scheduler import Scheduler

SUPERVISE_INTERVAL = 0.25  # seconds between checks that every child is alive
DRAIN_SECONDS = 10.0  # at shutdown, how long accepted requests may take to finish
# at shutdown, how long the front goes on reading requests that reached it before the stop
ACCEPT_ARRIVED_SECONDS = 1.0
POLL_MS = 100
GIVE_UP_REASONS = {
    WorkerState.LOST: "is silent",
    WorkerState.HUNG: "is hung (no progress)",
    WorkerState.LEFT: "left",
}


class Ventilator:
    """Runs the front's loop until TERMINATION or ``stop_requested``; then drains."""

    def __init__(
        self,
        args: argparse.Namespace,
        spec: ModelSpec,
        fingerprint: dict,
        frontend: zmq.Socket,
        supervisor: Supervisor,
        ready: threading.Event,
        logger: logging.Logger,
    ):
        self.args = args
        self.spec = spec
        self.frontend = frontend
        self.supervisor = supervisor
        self.logger = logger
        self.scheduler = Scheduler(args.max_batch_size, args.priority_batch_size)
        self.statistics = ServerStatistics()
        self.ready = ready  # set once every local worker has loaded
        self.start_time = datetime.now()
        context = frontend.context
        self.registry = WorkerRegistry(
            args.worker_timeout,
            args.worker_progress_timeout,
            args.max_seq_len or spec.config.max_position_embeddings,
        )
        self.links = WorkerLinks(
            context, self.registry, fingerprint, args.show_tokens_to_client, logger
        )
        self.links.bind(supervisor.front.endpoint)
        if args.port_worker is not None:
            curve = CurveKeys.from_args(args)
            if curve is None and local_address(args.bind_ip) != LOOPBACK:
                logger.warning(
                    "workers register on port %d without CURVE: anyone who reaches it can "
                    "serve this front's clients (give -curve_secret_key, or -bind_ip 127.0.0.1)",
                    args.port_worker,
                )
            address = f"tcp://{bind_address(args.bind_ip)}:{args.port_worker}"
            self.links.bind(address, curve)
        self.confirmations = _socket(context, zmq.PULL, linger=0)
        self.confirmations.bind(supervisor.sink_addresses.ventilator)
        self.sink = _socket(context, zmq.PUSH, linger=1000)
        self.sink.connect(supervisor.sink_addresses.inbox)

    # -- the loop -----------------------------------------------------------------------

    def serve(self, stop_requested: threading.Event) -> None:
        """Serve until TERMINATION or ``stop_requested``; then answer what was accepted."""
        poller = zmq.Poller()
        for sock in (self.frontend, self.confirmations, *self.links.sockets):
            poller.register(sock, zmq.POLLIN)
        next_check = next_beat = 0.0
        while not stop_requested.is_set():
            now = time.monotonic()
            if now >= next_check:
                self._supervise()
                next_check = now + SUPERVISE_INTERVAL
            if now >= next_beat:
                self._check_liveness()
                next_beat = now + self.registry.heartbeat_interval
            events = dict(poller.poll(POLL_MS))
            self._on_internal(events)
            if self.frontend in events and self._on_client_safely(
                protocol.receive_request(self.frontend)
            ):
                break
            self._dispatch()
        poller.unregister(self.frontend)
        self._accept_arrived()
        self.frontend.close()  # refuse new requests (and free the port) while draining
        self._drain(poller)

    def _accept_arrived(self) -> None:
        """Requests that reached the front before the stop are in flight for their clients,
        but closing the port drops whatever the loop has not read yet (it reads one message
        a turn): read and accept them first. Bounded, so that a flood cannot keep it open."""
        deadline = time.monotonic() + ACCEPT_ARRIVED_SECONDS
        while time.monotonic() < deadline and self.frontend.poll(0):
            self._on_client_safely(protocol.receive_request(self.frontend))

    def _drain(self, poller: zmq.Poller) -> None:
        """Finish the requests already accepted, for at most DRAIN_SECONDS."""
        deadline = time.monotonic() + DRAIN_SECONDS
        if self.scheduler.requests:
            self.logger.info(
                "finishing %d accepted requests before stopping", len(self.scheduler.requests)
            )
        while self.scheduler.requests and time.monotonic() < deadline:
            self._on_internal(dict(poller.poll(POLL_MS)))
            self._dispatch()
        if self.scheduler.requests:
            self.logger.warning(
                "stopping with %d requests unanswered after %.0f s",
                len(self.scheduler.requests),
                DRAIN_SECONDS,
            )

    def stop_children(self) -> None:
        """Tell local workers and the sink to stop, then wait for them (the supervisor forces
        stragglers). Remote workers are told goodbye: they wait for the next front at the
        same address, so that a restarted front has its workers back at once."""
        local = {child.identity for child in self.supervisor.workers}
        for identity in self.registry.identities():
            if identity not in local:
                self.links.send(identity, Goodbye("the front is shutting down"))
        for identity in local:
            self.links.send(identity, Stop())
        self.sink.send_multipart(Stop().to_frames())
        self.supervisor.stop()

    def close(self) -> None:
        self.links.close()
        for sock in (self.confirmations, self.sink):
            sock.close()

    # -- children -----------------------------------------------------------------------

    def _supervise(self) -> None:
        """Replace children that died; their work is queued again, nothing is lost."""
        for child in self.supervisor.check():
            if child.role == "worker":
                self._replace_worker(child)
            elif child.role == "sink":
                self._replace_sink(child)
            else:
                self.logger.error(
                    "the HTTP proxy died (exit code %s), starting a new one", child.process.exitcode
                )
                self.supervisor.start_proxy()
        if not self.supervisor.loading and not self.ready.is_set():
            self.ready.set()
            self.logger.info(
                "all %d workers ready, serving on ports %d (in) and %d (out)",
                len(self.supervisor.devices),
                self.args.port,
                self.args.port_out,
            )

    def _replace_worker(self, child: Child) -> None:
        """A local worker died: re-queue its parts, blame the ones it was encoding (unless
        the front killed it for silence or a hang, which it already handled), replace it."""
        if not child.killed_as_lost:
            parts = len(self.scheduler.in_flight.get(child.identity, {}))
            suspects = protocol.unpack_part_keys(child.current_part.value)
            self.registry.remove(child.identity, WorkerState.LOST)
            self.links.forget(child.identity)
            self._refuse_poisoned(self.scheduler.worker_lost(child.identity, suspects))
            self.logger.error(
                "%s died (exit code %s): %d parts queued again, starting a replacement",
                child.name,
                child.process.exitcode,
                parts,
            )
        self.supervisor.start_worker(child.index)

    def _refuse_poisoned(self, poisoned: list[tuple[Part, int]]) -> None:
        for part, crashes in poisoned:
            message = (
                f"request {part.request_id.decode()} was refused: encoding it crashed or hung "
                f"a worker {crashes} times"
            )
            self._send_error(part.client, part.request_id, message, part.job)

    # -- liveness -----------------------------------------------------------------------

    def _check_liveness(self) -> None:
        """Beat to every worker; give up on the silent and the hung. What the workers sent
        is read first: when this loop was held up (a busy host process holding the GIL, a
        paused machine), their beats wait unread in the sockets, and a worker must not be
        judged by how late its front got round to reading."""
        self.links.beat()
        self._read_workers()
        for identity in self.registry.silent():
            self._give_up(identity, WorkerState.LOST)
        held = self.scheduler.held_texts
        for identity in self.registry.hung(held, self.args.max_batch_size):
            self._give_up(identity, WorkerState.HUNG)

    def _give_up(self, identity: bytes, state: WorkerState) -> None:
        """Its parts run elsewhere now; its late answers will be dropped; a local one is
        killed (and then replaced). A hung worker's parts are blamed and run alone next time:
        a part that hangs two workers is refused; silence blames nobody."""
        record = self.registry.remove(identity, state)
        self.links.forget(identity)
        in_flight = list(self.scheduler.in_flight.get(identity, {}))
        suspects = in_flight if state is WorkerState.HUNG else []
        self._refuse_poisoned(self.scheduler.worker_lost(identity, suspects))
        killed = self.supervisor.kill_lost_worker(identity)
        log = self.logger.info if state is WorkerState.LEFT else self.logger.error
        log(
            "worker %s %s: %d parts queued again%s",
            record.hello.name if record else identity[:40],
            GIVE_UP_REASONS[state],
            len(in_flight),
            ", killing and replacing it" if killed else "",
        )

    def _replace_sink(self, child: Child) -> None:
        self.logger.error(
            "the sink died (exit code %s), starting a new one", child.process.exitcode
        )
        self.supervisor.start_sink()
        unanswered = self.scheduler.requeue_unanswered()
        for parts in unanswered:
            self._announce(parts[0], len(parts))
        self.logger.info("the new sink serves; %d unanswered requests run again", len(unanswered))

    # -- internal messages --------------------------------------------------------------

    def _on_internal(self, events: dict) -> None:
        if self.confirmations in events:
            job = Published.from_frames(self.confirmations.recv_multipart()).job
            self.scheduler.published(job)
            self.statistics.record_finished(job)
        if any(sock in events for sock in self.links.sockets):
            self._read_workers()

    def _read_workers(self) -> None:
        """Everything waiting from the workers, on every worker socket."""
        for sock in self.links.sockets:
            for identity, message in self.links.receive(sock):
                self._on_worker(sock, identity, message)

    def _on_worker(self, sock: zmq.Socket, identity: bytes, message) -> None:
        if isinstance(message, Hello):
            if identity in self.registry.workers:  # registering again: its last session ended
                self._give_up(identity, WorkerState.LOST)
            self.links.register(sock, identity, message)
            if not message.remote:  # its start-up report is waiting: say "ready" now
                self._supervise()
        elif isinstance(message, Ready):
            self.scheduler.worker_ready(identity, message.credit)
        elif isinstance(message, Goodbye):
            self._give_up(identity, WorkerState.LEFT)
        elif isinstance(message, (Result, Failure)) and self.scheduler.worker_done(
            identity, message.key
        ):  # else a late answer for a part already re-queued: dropped, never sent twice
            self.registry.progressed(identity, len(self.scheduler.in_flight[identity]))
            self.sink.send_multipart(message.to_frames(), copy=False)

    def _dispatch(self) -> None:
        for worker, part in self.scheduler.next_assignments():
            self.registry.given_parts(worker, len(self.scheduler.in_flight[worker]) - 1)
            self.links.send(worker, part)

    def _announce(self, part: Part, num_parts: int) -> None:
        """Tell the sink how many parts the job of ``part`` has."""
        message = JobAnnounced(part.job, part.client, part.request_id, num_parts)
        self.sink.send_multipart(message.to_frames())

    def _send_error(self, client: bytes, request_id: bytes, message: str, job: bytes = b"") -> None:
        """Answer with an error (``job`` when the request was already accepted)."""
        self.logger.warning("refused request %r of %r: %s", request_id[:20], client[:40], message)
        self.sink.send_multipart(Failure(job, client, request_id, message).to_frames())

    # -- client messages ----------------------------------------------------------------

    def _on_client_safely(self, frames: list) -> bool:
        """No message may stop the ventilator: a failure here is a bug, logged and answered."""
        try:
            return self._on_client(frames)
        except Exception:
            self.logger.exception("internal error on a client message")
            address = protocol.reply_address(frames)
            if address is not None:
                self._send_error(*address, "internal server error (logged on the server)")
            return False

    def _on_client(self, frames: list) -> bool:
        """Handle one client message; True when it asked the server to terminate."""
        address = protocol.reply_address(frames)
        try:
            size = sum(len(frame) for frame in frames)
            if size > self.args.max_request_bytes and address is not None:
                raise protocol.BadRequestError(
                    f"the request has {size} bytes, more than -max_request_bytes "
                    f"{self.args.max_request_bytes}: split it into several requests"
                )
            request = protocol.parse_request(frames)
        except protocol.BadRequestError as err:
            self.statistics.record_error()
            self._send_error(*address, str(err))
            return False
        except ValueError as err:
            self.statistics.record_error()
            self.logger.warning("dropped a request nobody can be answered for: %s", err)
            return False
        if request.command == protocol.TERMINATION:
            self.logger.info("received TERMINATION, shutting down")
            return True
        if request.command is not None:
            self.statistics.record_command(request.client)
            self._answer_command(request)
            return False
        job, num_parts = self.scheduler.submit(request, frames[1])
        self.statistics.record_texts(request.client, job, len(request.texts))
        self._announce(self.scheduler.requests[job][0], num_parts)
        self.logger.debug(
            "request %d of %r: %d texts in %d parts",
            request.request_id,
            request.client[:40],
            len(request.texts),
            num_parts,
        )
        return False

    def _answer_command(self, request: protocol.Request) -> None:
        facts = ServerFacts(
            start_time=self.start_time,
            num_process=len(self.supervisor.children) + 1,
            num_restarts=self.supervisor.restarts,
            device_map=self.supervisor.devices,
            ready=self.ready.is_set(),
            num_workers_serving=len(self.registry.workers),
        )
        body = config_answer(self.args, self.spec, request.client, facts)
        if request.command == protocol.SHOW_STATUS:
            statistic = self.statistics.snapshot(self.scheduler.queued, self.scheduler.running)
            workers = WorkerFacts(
                self.registry.describe(),
                self.registry.losses,
                self.registry.rejoins,
                self.links.refusals,
            )
            body = status_answer(body, statistic, workers)
        reply = Reply(request.client, str(request.request_id).encode(), protocol.dumps(body))
        self.sink.send_multipart(reply.to_frames())


def _socket(context: zmq.Context, kind: int, linger: int) -> zmq.Socket:
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, linger)
    return sock
