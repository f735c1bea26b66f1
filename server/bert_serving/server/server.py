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
from .args import check_args_against_model, validate_args
from .default_model import default_model_dir
from .devices import assign_devices
from .logger import get_logger
from .model.checkpoint import inspect_model
from .sink import start_sink
from .statistics import ServerStatistics
from .ventilator import Scheduler
from .worker import WorkerAddresses, start_worker

BIND_HOST = "*"
STARTUP_TIMEOUT = 600.0  # seconds for a worker to load its model
CHILD_EXIT_TIMEOUT = 10.0


class ServerStartError(RuntimeError):
    """A child process could not start (a port in use, a model a worker cannot load)."""


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
        self._start_time = datetime.now()
        self._children: list = []
        self._signalled_children: list = []
        self._starting: dict = {}
        for port in (args.port_out, args.http_port):
            if port is not None:
                _check_port_free(port)
        self._context = zmq.Context()
        self.frontend = self._bind_frontend()

    def _bind_frontend(self) -> zmq.Socket:
        frontend = self._context.socket(zmq.PULL)
        frontend.setsockopt(zmq.LINGER, 0)
        try:
            frontend.bind(f"tcp://{BIND_HOST}:{self.args.port}")
        except zmq.ZMQError as err:
            frontend.close()
            self._context.term()
            raise ServerStartError(
                f"cannot bind -port {self.args.port}: {err} (is another server running?)"
            ) from None
        return frontend

    # -- life cycle ---------------------------------------------------------------------

    def run(self) -> None:
        self._ipc_dir = Path(tempfile.mkdtemp(prefix="bert-serving-"))
        try:
            self._start_children()
            self._serve()
        except Exception as err:
            self.error = err
            self.logger.error("%s", err)
        finally:
            self.frontend.close()  # first, so the port is refused while the children stop
            self._stop_children()
            self._context.destroy(linger=0)
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self.logger.info("terminated")

    def close(self, timeout: float = 30.0) -> None:
        """Stop serving, stop every child process and free the ports."""
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout)

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

    def _start_children(self) -> None:
        inbox = f"ipc://{self._ipc_dir}/sink"
        sink_process, sink_pipe = start_sink(
            self.args.port_out, BIND_HOST, inbox, self.args.verbose
        )
        self._children.append(sink_process)
        self._expect_startup(sink_process, sink_pipe, 60.0)
        self.sink = self._context.socket(zmq.PUSH)
        self.sink.setsockopt(zmq.LINGER, 1000)
        self.sink.connect(inbox)
        self.workers = self._context.socket(zmq.ROUTER)
        self.workers.setsockopt(zmq.LINGER, 0)
        self.workers.bind(f"ipc://{self._ipc_dir}/workers")
        addresses = WorkerAddresses(f"ipc://{self._ipc_dir}/workers", inbox)
        num_cpu = sum(1 for device in self.devices if device < 0)
        for worker_id, device in enumerate(self.devices):
            self._expect(*start_worker(worker_id, device, self.args, addresses, num_cpu))
        if self.args.http_port is not None:  # its clients' handshakes need the loop running
            from .http.proxy import start_proxy

            process, pipe = start_proxy(self.args)
            self._signalled_children.append(process)
            self._expect(process, pipe)

    def _expect(self, process, pipe) -> None:
        """Track a child that reports on its startup pipe while the loop already serves."""
        self._children.append(process)
        self._starting[process.name] = (process, pipe, time.monotonic() + STARTUP_TIMEOUT)

    def _expect_startup(self, process, pipe, timeout: float) -> None:
        if not pipe.poll(timeout):
            raise ServerStartError(f"{process.name} did not start within {timeout:.0f} s")
        status, detail = pipe.recv()
        if status != "ready":
            raise ServerStartError(detail)

    def _check_startup(self) -> None:
        """Collect the READY/error reports of loading children without blocking the loop."""
        for name, (process, pipe, deadline) in list(self._starting.items()):
            if pipe.poll():
                status, detail = pipe.recv()
                if status != "ready":
                    raise ServerStartError(detail)
                del self._starting[name]
            elif not process.is_alive():
                raise ServerStartError(
                    f"{name} exited while starting (exit code {process.exitcode})"
                )
            elif time.monotonic() > deadline:
                raise ServerStartError(f"{name} did not start within {STARTUP_TIMEOUT:.0f} s")
        if not self._starting and not self.is_ready.is_set():
            self.is_ready.set()
            self.logger.info(
                "all %d workers ready, serving on ports %d (in) and %d (out)",
                len(self.devices),
                self.args.port,
                self.args.port_out,
            )

    def _stop_children(self) -> None:
        for process in self._signalled_children:  # the HTTP proxy stops on SIGTERM
            process.terminate()
        for name in ("workers", "sink"):
            sock = getattr(self, name, None)
            if sock is None:
                continue
            if name == "workers":
                for worker in self.scheduler.credit:
                    sock.send_multipart([worker, protocol.STOP])
            else:
                sock.send_multipart([protocol.STOP])
        deadline = time.monotonic() + CHILD_EXIT_TIMEOUT
        for process in self._children:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                self.logger.warning("%s did not stop in time, terminating it", process.name)
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)

    # -- the loop -----------------------------------------------------------------------

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.frontend, zmq.POLLIN)
        poller.register(self.workers, zmq.POLLIN)
        while not self._stop_requested.is_set():
            if self._starting:
                self._check_startup()
            events = dict(poller.poll(100))
            if self.workers in events:
                self._on_worker(self.workers.recv_multipart())
            if self.frontend in events and self._on_client(self.frontend.recv_multipart()):
                return
            for worker, part in self.scheduler.next_assignments():
                self.workers.send_multipart([worker, *part.frames()])

    def _on_worker(self, frames: list[bytes]) -> None:
        worker, kind = frames[0], frames[1]
        if kind == protocol.READY:
            self.scheduler.worker_ready(worker, int(frames[2]))
        elif kind == protocol.DONE:
            finished = self.scheduler.worker_done(worker, tuple(frames[2:5]))
            if finished is not None:
                self.statistics.record_finished(finished[0], int(finished[1]))

    def _on_client(self, frames: list[bytes]) -> bool:
        """Handle one client message; True when it asked the server to terminate."""
        try:
            request = protocol.parse_request(frames)
        except protocol.BadRequestError as err:
            self.statistics.record_error()
            self._send_error(frames[0], frames[2], str(err))
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
        self.statistics.record_texts(request.client, request.request_id, len(request.texts))
        num_parts = self.scheduler.submit(request)
        self.sink.send_multipart(
            [
                protocol.JOB,
                request.client,
                str(request.request_id).encode(),
                str(num_parts).encode(),
            ]
        )
        self.logger.debug(
            "request %d of %r: %d texts in %d parts",
            request.request_id,
            request.client[:40],
            len(request.texts),
            num_parts,
        )
        return False

    def _send_error(self, client: bytes, request_id: bytes, message: str) -> None:
        self.logger.warning("refused request %r of %r: %s", request_id[:20], client[:40], message)
        self.sink.send_multipart([protocol.ERROR, client, request_id, message.encode()])

    # -- config and status --------------------------------------------------------------

    def _config(self, request: protocol.Request) -> dict:
        body = {name: _jsonable(value) for name, value in vars(self.args).items()}
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
                "num_process": len(self._children) + 1,
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


def _check_port_free(port: int) -> None:
    """Fail now, not in a child process, when -port_out or -http_port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as err:
            raise ServerStartError(
                f"cannot bind port {port}: {err.strerror} (is another server running?)"
            ) from None
