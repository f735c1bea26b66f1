"""The ventilator's event loop: client requests in, parts out to workers, answers via the sink.

It owns the sockets between the roles and reacts to three inputs: a client message on
``-port``, a worker's Ready/Done, and the sink's Published confirmation. Between events it
asks the supervisor whether a child died, and re-queues what the child held. Deciding what
goes where is the ``Scheduler``'s job; answering SHOW_CONFIG/SHOW_STATUS is ``status``'s.
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
from ..protocol import Done, Failure, JobAnnounced, Part, Published, Ready, Reply, Stop
from ..statistics import ServerStatistics
from ..status import ServerFacts, config_answer, status_answer
from ..supervisor import Child, Supervisor
from .scheduler import Scheduler

SUPERVISE_INTERVAL = 0.25  # seconds between checks that every child is alive
DRAIN_SECONDS = 10.0  # at shutdown, how long accepted requests may take to finish
POLL_MS = 100


class Ventilator:
    """Runs the front's loop until TERMINATION or ``stop_requested``; then drains."""

    def __init__(
        self,
        args: argparse.Namespace,
        spec: ModelSpec,
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
        self.ready = ready  # set once every worker serves
        self.start_time = datetime.now()
        context = frontend.context
        self.workers = _socket(context, zmq.ROUTER, linger=0)
        self.workers.bind(supervisor.worker_addresses.ventilator)
        self.confirmations = _socket(context, zmq.PULL, linger=0)
        self.confirmations.bind(supervisor.sink_addresses.ventilator)
        self.sink = _socket(context, zmq.PUSH, linger=1000)
        self.sink.connect(supervisor.sink_addresses.inbox)

    # -- the loop -----------------------------------------------------------------------

    def serve(self, stop_requested: threading.Event) -> None:
        """Serve until TERMINATION or ``stop_requested``; then answer what was accepted."""
        poller = zmq.Poller()
        for sock in (self.frontend, self.workers, self.confirmations):
            poller.register(sock, zmq.POLLIN)
        next_check = 0.0
        while not stop_requested.is_set():
            if time.monotonic() >= next_check:
                self._supervise()
                next_check = time.monotonic() + SUPERVISE_INTERVAL
            events = dict(poller.poll(POLL_MS))
            self._on_internal(events)
            if self.frontend in events and self._on_client_safely(self.frontend.recv_multipart()):
                break
            self._dispatch()
        poller.unregister(self.frontend)
        self.frontend.close()  # refuse new requests (and free the port) while draining
        self._drain(poller)

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
        """Tell every child to stop, then wait for them (the supervisor forces stragglers)."""
        for child in self.supervisor.workers:
            self.workers.send_multipart([child.identity, *Stop().to_frames()])
        self.sink.send_multipart(Stop().to_frames())
        self.supervisor.stop()

    def close(self) -> None:
        for sock in (self.workers, self.confirmations, self.sink):
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
        parts = len(self.scheduler.in_flight.get(child.identity, {}))
        suspects = protocol.unpack_part_keys(child.current_part.value)
        poisoned = self.scheduler.worker_lost(child.identity, suspects)
        self.logger.error(
            "%s died (exit code %s): %d parts queued again, starting a replacement",
            child.name,
            child.process.exitcode,
            parts,
        )
        for part, crashes in poisoned:
            message = (
                f"request {part.request_id.decode()} was refused: encoding it crashed a "
                f"worker {crashes} times"
            )
            self._send_error(part.client, part.request_id, message, part.job)
        self.supervisor.start_worker(child.index)

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
        if self.workers in events:
            worker, *frames = self.workers.recv_multipart()
            try:
                message = protocol.decode(frames)
            except protocol.MessageError as err:
                self.logger.error("dropped a malformed message of %r: %s", worker[:40], err)
                return
            if isinstance(message, Ready):
                self.scheduler.worker_ready(worker, message.credit)
            elif isinstance(message, Done):
                self.scheduler.worker_done(worker, message.key)

    def _dispatch(self) -> None:
        for worker, part in self.scheduler.next_assignments():
            self.workers.send_multipart([worker, *part.to_frames()])

    def _announce(self, part: Part, num_parts: int) -> None:
        """Tell the sink how many parts the job of ``part`` has."""
        message = JobAnnounced(part.job, part.client, part.request_id, num_parts)
        self.sink.send_multipart(message.to_frames())

    def _send_error(self, client: bytes, request_id: bytes, message: str, job: bytes = b"") -> None:
        """Answer with an error (``job`` when the request was already accepted)."""
        self.logger.warning("refused request %r of %r: %s", request_id[:20], client[:40], message)
        self.sink.send_multipart(Failure(job, client, request_id, message).to_frames())

    # -- client messages ----------------------------------------------------------------

    def _on_client_safely(self, frames: list[bytes]) -> bool:
        """No message may stop the ventilator: a failure here is a bug, logged and answered."""
        try:
            return self._on_client(frames)
        except Exception:
            self.logger.exception("internal error on a client message")
            address = protocol.reply_address(frames)
            if address is not None:
                self._send_error(*address, "internal server error (logged on the server)")
            return False

    def _on_client(self, frames: list[bytes]) -> bool:
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
        )
        body = config_answer(self.args, self.spec, request.client, facts)
        if request.command == protocol.SHOW_STATUS:
            statistic = self.statistics.snapshot(self.scheduler.queued, self.scheduler.running)
            body = status_answer(body, statistic)
        reply = Reply(request.client, str(request.request_id).encode(), protocol.dumps(body))
        self.sink.send_multipart(reply.to_frames())


def _socket(context: zmq.Context, kind: int, linger: int) -> zmq.Socket:
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, linger)
    return sock
