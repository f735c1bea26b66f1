"""BertServer: the façade of one server, checks first, then the ventilator in a thread.

Start-up order: everything that can be checked is checked in ``__init__`` (arguments, the
model's files and shapes, the ports), so mistakes surface before any process starts. ``run``
then spawns the sink and the workers and serves at once: config and status are answered
while the workers still load, and texts wait in the queue until a worker is ready. The loop
itself is the ``Ventilator``'s; this class only starts, stops and reports on it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import zmq

from .args import check_args_against_model, validate_args
from .default_model import default_model_dir
from .devices import assign_devices
from .logger import get_logger
from .model.checkpoint import inspect_model
from .model.fingerprint import dumps as fingerprint_json
from .model.fingerprint import encoding_fingerprint
from .model.settings import EncoderSettings
from .network import PortInUseError, bind_address, check_port_free
from .security import CurveKeys, curve_client_options
from .supervisor import ServerStartError, Supervisor
from .termination import send_termination, wait_until_closed
from .ventilator import Ventilator

__all__ = ["BertServer", "ServerStartError"]


class BertServer(threading.Thread):
    """``BertServer(args).start()`` serves until TERMINATION, ``close()`` or ``shutdown``."""

    def __init__(self, args: argparse.Namespace):
        super().__init__(name="bert-ventilator", daemon=True)
        self.logger = get_logger("VENTILATOR", args.verbose)
        self.warnings = validate_args(args)
        for warning in self.warnings:
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
        # what every worker, local or remote, must match: hashed once, here
        self.fingerprint = encoding_fingerprint(self.spec, EncoderSettings.from_args(args))
        self.devices = assign_devices(args.num_worker, args.device_map, args.cpu, self.logger)
        self.supervisor: Supervisor | None = None  # from run() on
        self.ventilator: Ventilator | None = None
        self.is_ready = threading.Event()
        self.error: Exception | None = None
        self._stop_requested = threading.Event()
        self._finished = threading.Event()
        for option in ("port_out", "http_port", "port_worker"):
            if getattr(args, option) is not None:
                try:
                    check_port_free(args.bind_ip, option, getattr(args, option))
                except PortInUseError as err:
                    raise ServerStartError(str(err)) from None
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
        ipc_dir = Path(tempfile.mkdtemp(prefix="bert-serving-"))
        fingerprint = fingerprint_json(self.fingerprint)
        self.supervisor = supervisor = Supervisor(
            self.args, fingerprint, self.devices, ipc_dir, self.logger
        )
        try:
            self.ventilator = Ventilator(
                self.args,
                self.spec,
                self.fingerprint,
                self.frontend,
                supervisor,
                self.is_ready,
                self.logger,
            )
            supervisor.start_sink()
            for index in range(len(self.devices)):
                supervisor.start_worker(index)
            if self.args.http_port is not None:
                supervisor.start_proxy()
            self.ventilator.serve(self._stop_requested)
        except Exception as err:
            self.error = err
            self.logger.error("%s", err)
        finally:
            self.frontend.close()  # first, so the port is refused while the children stop
            if self.ventilator is not None:
                self.ventilator.stop_children()
                self.ventilator.close()
            else:
                supervisor.stop()
            self._close_context()
            shutil.rmtree(ipc_dir, ignore_errors=True)
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
        """Ask the server at ``args.ip``:``args.port`` to terminate (``get_shutdown_parser``);
        True once its port closed. HandshakeRefusedError when its CURVE settings differ."""
        # 1.10's callers pass any object with ip, port and timeout: the keys are optional
        curve = curve_client_options(
            getattr(args, "curve_server_key", None), getattr(args, "curve_client_keys", None)
        )
        send_termination(args.ip, args.port, args.timeout, curve)
        return wait_until_closed(args.ip, args.port, args.timeout / 1000)
