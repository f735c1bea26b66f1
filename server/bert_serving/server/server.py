"""BertServer: the ventilator thread that owns the client-facing socket and the children.

Start-up order: everything that can be checked is checked in ``__init__`` (arguments, the
model's files and shapes, the ports), so mistakes surface before any process starts. ``run``
then spawns the sink and the workers and serves at once: config and status are answered
while the workers still load, and texts wait in the queue until a worker is ready.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import socket
import tempfile
import threading
import time
from datetime import datetime
from enum import Enum
from importlib import metadata
from pathlib import Path

import zmq

from . import __version__, protocol
from .args import SECRET_ARGUMENTS, bind_address, check_args_against_model, validate_args
from .default_model import default_model_dir
from .devices import assign_devices
from .logger import get_logger
from .model.checkpoint import inspect_model
from .security import CurveKeys
from .statistics import ServerStatistics
from .supervisor import ServerStartError, Supervisor
from .ventilator import Scheduler
from .worker import parts_from_slot

SUPERVISE_INTERVAL = 0.25  # seconds between checks that every child is alive
DRAIN_SECONDS = 10.0  # at shutdown, how long accepted requests may take to finish

__all__ = ["BertServer", "ServerStartError"]


class BertServer(threading.Thread):
    """``BertServer(args).start()`` serves until TERMINATION, ``close()`` or ``shutdown``."""

    def __init__(self, args: argparse.Namespace):
        super().__init__(name="bert-ventilator", daemon=True)
        self.logger = get_logger("VENTILATOR", args.verbose)
        for warning in validate_args(args):
            self.logger.warning(warning)
        if args.model_dir is None:
            args.model_dir = str(default_model_dir())
            self.logger.info(
                "no -model_dir: serving the embedded all-MiniLM-L6-v2 at %s", args.model_dir
            )
        self.spec = inspect_model(
            args.model_dir, args.tuned_model_dir, args.ckpt_name, args.config_name, self.logger
        )
        config = self.spec.config
        check_args_against_model(
            args, config.num_hidden_layers, config.max_position_embeddings, self.spec.has_pooler
        )
        if (
            self.spec.do_lower_case is not None
            and self.spec.do_lower_case == args.cased_tokenization
        ):
            self.logger.warning(
                "the model's tokenizer_config.json says do_lower_case=%s, but the "
                "server runs with%s -cased_tokenization",
                self.spec.do_lower_case,
                "" if args.cased_tokenization else "out",
            )
        self.args = args
        self.devices = assign_devices(args.num_worker, args.device_map, args.cpu, self.logger)
        self.statistics = ServerStatistics()
        self.scheduler = Scheduler(args.max_batch_size, args.priority_batch_size)
        self.is_ready = threading.Event()
        self.error: Exception | None = None
        self._stop_requested = threading.Event()
        self._finished = threading.Event()
        self._start_time = datetime.now()
        for option in ("port_out", "http_port"):
            if getattr(args, option) is not None:
                _check_port_free(bind_address(args.bind_ip), option, getattr(args, option))
        self.curve = CurveKeys.from_args(args)
        self._context = zmq.Context()
        self._authenticator = self.curve.start_authenticator(self._context) if self.curve else None
        self.frontend = self._bind_frontend()

    def _bind_frontend(self) -> zmq.Socket:
        frontend = self._context.socket(zmq.PULL)
        frontend.setsockopt(zmq.LINGER, 0)
        # a hard stop far above the limit, so that no peer can make us buffer gigabytes;
        # requests between the two get a clear error answer
        frontend.setsockopt(zmq.MAXMSGSIZE, 4 * self.args.max_request_bytes)
        if self.curve is not None:
            self.curve.secure(frontend)
        try:
            frontend.bind(f"tcp://{bind_address(self.args.bind_ip)}:{self.args.port}")
        except zmq.ZMQError as err:
            frontend.close()
            self._close_context()
            raise ServerStartError(
                f"cannot bind -port {self.args.port}: {err} (is another server running?)"
            ) from None
        return frontend

    # -- life cycle ---------------------------------------------------------------------

    def run(self) -> None:
        self._ipc_dir = Path(tempfile.mkdtemp(prefix="bert-serving-"))
        self.supervisor = Supervisor(self.args, self.devices, self._ipc_dir, self.logger)
        try:
            self._open_internal_sockets()
            self.supervisor.start_sink()
            for index in range(len(self.devices)):
                self.supervisor.start_worker(index)
            if self.args.http_port is not None:
                self.supervisor.start_proxy()
            self._serve()
        except Exception as err:
            self.error = err
            self.logger.error("%s", err)
        finally:
            self.frontend.close()  # first, so the port is refused while the children stop
            self._stop_children()
            self._close_context()
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self.logger.info("terminated")
            self._finished.set()

    def _close_context(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
        self._context.destroy(linger=0)

    def close(self, timeout: float = 30.0) -> None:
        """Stop serving (finishing accepted requests), stop every child, free the ports."""
        self._stop_requested.set()
        if self.ident is not None:  # started; an Event, not join(), which a signal can break
            self._finished.wait(timeout)

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Block until every worker serves; raise if the server failed to start."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_ready.wait(0.1):
            if self.error or not self.is_alive():
                raise ServerStartError(str(self.error or "the server stopped while starting"))
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the server was not ready within {timeout} s")

    def __enter__(self) -> BertServer:
        self.start()
        self.wait_until_ready()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def shutdown(args: argparse.Namespace) -> bool:
        """Ask the server at ``args.ip``:``args.port`` to terminate (``get_shutdown_parser``)."""
        from .cli.terminate import send_termination, wait_until_closed

        send_termination(args.ip, args.port, args.timeout)
        return wait_until_closed(args.ip, args.port, args.timeout / 1000)

    # -- children -----------------------------------------------------------------------

    def _open_internal_sockets(self) -> None:
        self.workers = self._context.socket(zmq.ROUTER)
        self.workers.setsockopt(zmq.LINGER, 0)
        self.workers.bind(self.supervisor.worker_addresses.ventilator)
        self.confirmations = self._context.socket(zmq.PULL)
        self.confirmations.setsockopt(zmq.LINGER, 0)
        self.confirmations.bind(self.supervisor.ventilator_inbox)
        self.sink = self._context.socket(zmq.PUSH)
        self.sink.setsockopt(zmq.LINGER, 1000)
        self.sink.connect(self.supervisor.sink_inbox)

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
        if not self.supervisor.loading and not self.is_ready.is_set():
            self.is_ready.set()
            self.logger.info(
                "all %d workers ready, serving on ports %d (in) and %d (out)",
                len(self.devices),
                self.args.port,
                self.args.port_out,
            )

    def _replace_worker(self, child) -> None:
        parts = len(self.scheduler.in_flight.get(child.identity, {}))
        suspects = parts_from_slot(child.current_part.value)
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

    def _replace_sink(self, child) -> None:
        self.logger.error(
            "the sink died (exit code %s), starting a new one", child.process.exitcode
        )
        self.supervisor.start_sink()
        unanswered = self.scheduler.requeue_unanswered()
        for parts in unanswered:
            self._announce(parts[0], len(parts))
        self.logger.info("the new sink serves; %d unanswered requests run again", len(unanswered))

    def _stop_children(self) -> None:
        if getattr(self, "supervisor", None) is None:
            return
        if getattr(self, "workers", None) is not None:
            for child in self.supervisor.workers:
                self.workers.send_multipart([child.identity, protocol.STOP])
            self.sink.send_multipart([protocol.STOP])
        self.supervisor.stop()

    # -- the loop -----------------------------------------------------------------------

    def _serve(self) -> None:
        """Serve until TERMINATION or close(); then drain: answer what was accepted."""
        poller = zmq.Poller()
        for sock in (self.frontend, self.workers, self.confirmations):
            poller.register(sock, zmq.POLLIN)
        next_check = 0.0
        while not self._stop_requested.is_set():
            if time.monotonic() >= next_check:
                self._supervise()
                next_check = time.monotonic() + SUPERVISE_INTERVAL
            events = dict(poller.poll(100))
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
            self._on_internal(dict(poller.poll(100)))
            self._dispatch()
        if self.scheduler.requests:
            self.logger.warning(
                "stopping with %d requests unanswered after %.0f s",
                len(self.scheduler.requests),
                DRAIN_SECONDS,
            )

    def _on_internal(self, events: dict) -> None:
        if self.confirmations in events:
            _, job = self.confirmations.recv_multipart()
            self.scheduler.published(job)
            self.statistics.record_finished(job)
        if self.workers in events:
            self._on_worker(self.workers.recv_multipart())

    def _dispatch(self) -> None:
        for worker, part in self.scheduler.next_assignments():
            self.workers.send_multipart([worker, *part.frames(self.scheduler.is_suspect(part))])

    def _on_worker(self, frames: list[bytes]) -> None:
        worker, kind = frames[0], frames[1]
        if kind == protocol.READY:
            self.scheduler.worker_ready(worker, int(frames[2]))
        elif kind == protocol.DONE:
            self.scheduler.worker_done(worker, (frames[2], frames[3]))

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
            body = (
                self._config(request)
                if request.command == protocol.SHOW_CONFIG
                else self._status(request)
            )
            self.sink.send_multipart(
                [
                    protocol.REPLY,
                    request.client,
                    str(request.request_id).encode(),
                    protocol.dumps(body),
                ]
            )
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

    def _announce(self, part, num_parts: int) -> None:
        """Tell the sink how many parts the job of ``part`` has."""
        self.sink.send_multipart(
            [protocol.JOB, part.job, part.client, part.request_id, str(num_parts).encode()]
        )

    def _send_error(self, client: bytes, request_id: bytes, message: str, job: bytes = b"") -> None:
        """Answer with an error (``job`` when the request was already accepted)."""
        self.logger.warning("refused request %r of %r: %s", request_id[:20], client[:40], message)
        self.sink.send_multipart([protocol.ERROR, job, client, request_id, message.encode()])

    # -- config and status --------------------------------------------------------------

    def _config(self, request: protocol.Request) -> dict:
        body = {
            name: "***" if value is not None and name in SECRET_ARGUMENTS else _jsonable(value)
            for name, value in vars(self.args).items()
        }
        config = self.spec.config
        body.update(
            {
                "client": request.client.decode("utf-8", "replace"),
                "server_version": __version__,
                "python_version": platform.python_version(),
                "tensorflow_version": _installed_version("tensorflow", "tensorflow-cpu"),
                "pyzmq_version": zmq.pyzmq_version(),
                "zmq_version": zmq.zmq_version(),
                "server_start_time": str(self._start_time),
                "server_current_time": str(datetime.now()),
                "num_process": len(self.supervisor.children) + 1,
                "num_restarts": self.supervisor.restarts,
                "device_map": self.devices,
                "ready": self.is_ready.is_set(),
                "model": {
                    "hidden_size": config.hidden_size,
                    "num_hidden_layers": config.num_hidden_layers,
                    "max_position_embeddings": config.max_position_embeddings,
                    "vocab_size": config.vocab_size,
                    "has_pooler": self.spec.has_pooler,
                },
            }
        )
        return body

    def _status(self, request: protocol.Request) -> dict:
        body = self._config(request)
        body["statistic"] = self.statistics.snapshot(self.scheduler.queued, self.scheduler.running)
        return body


def _jsonable(value):
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _installed_version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _check_port_free(host: str, option: str, port: int) -> None:
    """Fail now, not in a child process, when -port_out or -http_port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("" if host == "*" else host, port))
        except OSError as err:
            raise ServerStartError(
                f"cannot bind -{option} {port}: {err.strerror} (is another server running?)"
            ) from None
