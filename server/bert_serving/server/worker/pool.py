"""``WorkerPool``: the workers of one host serving a front on another (``bert-serving-worker``).

It checks everything first (arguments, the model's files against the arguments, the CURVE
keys), hashes the model once for every worker (the front compares that fingerprint with
its own), starts one process per device and keeps them running: a worker that crashes is
started again, one the front refused stops the pool, since every later try would be refused
too. The workers themselves reconnect, with backoff, whenever the front goes away.
"""

from __future__ import annotations

import argparse
import time

from ..args import ArgumentError, check_args_against_model, validate_worker_args
from ..default_model import default_model_dir
from ..devices import assign_devices
from ..logger import get_logger
from ..model.fingerprint import dumps, encoding_fingerprint
from ..model.settings import EncoderSettings, ModelLocation
from ..security import curve_client_options
from .process import EXIT_REFUSED, start_worker
from .settings import FrontAddress, WorkerPlacement, WorkerSettings

STARTUP_TIMEOUT = 600.0
CHECK_INTERVAL = 0.5
STOP_TIMEOUT = 10.0


class WorkerRefusedError(RuntimeError):
    """The front refused this host's workers: their vectors would differ from its own."""


class WorkerPool:
    """``WorkerPool(args)`` with arguments from ``get_worker_parser()``; ``start()``, then
    ``wait()`` until ``close()`` (or a refusal); also a context manager."""

    def __init__(self, args: argparse.Namespace):
        self.logger = get_logger("WORKERS", args.verbose)
        for warning in validate_worker_args(args):
            self.logger.warning(warning)
        if args.model_dir is None:
            args.model_dir = str(default_model_dir())
        settings = EncoderSettings.from_args(args)
        spec = ModelLocation.from_args(args).inspect(self.logger)
        config = spec.config
        check_args_against_model(
            args, config.num_hidden_layers, config.max_position_embeddings, spec.has_pooler
        )
        try:
            curve = curve_client_options(args.curve_server_key, args.curve_secret_key)
        except (OSError, ValueError) as err:
            raise ArgumentError(f"CURVE keys: {err}") from None
        self.args = args
        self.settings = WorkerSettings.from_args(args, dumps(encoding_fingerprint(spec, settings)))
        self.front = FrontAddress(f"tcp://{args.ip}:{args.port_worker}", remote=True, curve=curve)
        self.devices = assign_devices(args.num_worker, args.device_map, args.cpu, self.logger)
        self.processes: list = []
        self.refused = False
        self._closing = False

    def start(self) -> None:
        """Start every worker and wait until each has loaded the model."""
        for index in range(len(self.devices)):
            self._start(index)
        self.logger.info("%d workers serve the front at %s", len(self.devices), self.front.endpoint)

    def _start(self, index: int) -> None:
        num_cpu = sum(1 for device in self.devices if device < 0)
        placement = WorkerPlacement(index, f"worker-{index}".encode(), self.devices[index], num_cpu)
        process, pipe = start_worker(self.settings, placement, self.front, self.args.worker_timeout)
        if not pipe.poll(STARTUP_TIMEOUT):
            process.kill()
            raise RuntimeError(f"worker {index} did not load within {STARTUP_TIMEOUT:.0f} s")
        status, detail = pipe.recv()
        if status != "ready":
            process.join(5)
            raise RuntimeError(detail)
        if index < len(self.processes):
            self.processes[index] = process
        else:
            self.processes.append(process)

    def wait(self) -> None:
        """Keep the workers running until ``close()``; raise WorkerRefusedError when the
        front refused them."""
        while not self._closing:
            for index, process in enumerate(self.processes):
                if process.is_alive() or self._closing:
                    continue
                if process.exitcode == EXIT_REFUSED:
                    self.refused = True
                    self.close()
                    raise WorkerRefusedError(
                        "the front refused this worker (why: see the log above)"
                    )
                self.logger.error(
                    "worker %d exited (code %s), starting it again", index, process.exitcode
                )
                self._start(index)
            time.sleep(CHECK_INTERVAL)

    def close(self) -> None:
        """Stop every worker: each says goodbye to the front, which re-queues its parts."""
        self._closing = True
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(5)

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
