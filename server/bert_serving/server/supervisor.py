"""The server's child processes: starting them, noticing when one dies, stopping them.

The ventilator asks ``check()`` a few times a second. A child that is still loading reports
on its startup pipe; one that fails to load stops the server (the model or a port is wrong,
and retrying would fail the same way). A child that dies after it was ready is returned to
the ventilator, which re-queues its work and asks for a replacement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .processes import shared_slot
from .sink import SinkAddresses, SinkSettings, start_sink
from .worker import FrontAddress, WorkerPlacement, WorkerSettings, start_worker

STARTUP_TIMEOUT = 600.0  # seconds for a child to load (a large model on a slow disk)
SINK_STARTUP_TIMEOUT = 60.0
EXIT_TIMEOUT = 10.0
SLOT_BYTES_PER_PART = 48  # a job number and part index in ASCII, with separators


class ServerStartError(RuntimeError):
    """A child process could not start (a port in use, a model a worker cannot load)."""


@dataclass
class Child:
    role: str  # "worker", "sink" or "proxy"
    process: object
    pipe: object
    index: int = 0  # the worker's number
    identity: bytes = b""  # the worker's socket identity, new for each replacement
    current_part: object = None  # the worker's shared slot naming the part it encodes
    deadline: float | None = field(default=None)  # set while it is loading
    killed_as_lost: bool = False  # the front gave up on it (silent or hung) and killed it

    @property
    def name(self) -> str:
        return self.process.name


class Supervisor:
    """Owns every child process of one server."""

    def __init__(self, args, fingerprint: str, devices: list[int], ipc_dir: Path, logger):
        self.args = args  # for the HTTP proxy's settings, built when it (re)starts
        self.worker_settings = WorkerSettings.from_args(args, fingerprint)
        self.worker_timeout = args.worker_timeout
        self.sink_settings = SinkSettings.from_args(args)
        self.devices = devices
        self.logger = logger
        self.sink_addresses = SinkAddresses(f"ipc://{ipc_dir}/sink", f"ipc://{ipc_dir}/ventilator")
        self.front = FrontAddress(f"ipc://{ipc_dir}/workers")
        self.children: list[Child] = []
        self.generations = 0
        self.restarts = 0

    @property
    def loading(self) -> bool:
        return any(child.deadline is not None for child in self.children)

    @property
    def workers(self) -> list[Child]:
        return [child for child in self.children if child.role == "worker"]

    def start_sink(self) -> None:
        """Start the sink and wait until it has bound -port_out (a second or two)."""
        process, pipe = start_sink(self.sink_settings, self.sink_addresses)
        child = Child("sink", process, pipe)
        self.children.append(child)
        if not pipe.poll(SINK_STARTUP_TIMEOUT):
            raise ServerStartError(f"the sink did not start within {SINK_STARTUP_TIMEOUT:.0f} s")
        self._read_report(child)

    def start_worker(self, index: int) -> Child:
        self.generations += 1
        identity = f"worker-{index}.{self.generations}".encode()
        num_cpu = sum(1 for device in self.devices if device < 0)
        placement = WorkerPlacement(index, identity, self.devices[index], num_cpu)
        slot = shared_slot(SLOT_BYTES_PER_PART * max(self.worker_settings.prefetch_size, 32))
        process, pipe = start_worker(
            self.worker_settings, placement, self.front, self.worker_timeout, slot
        )
        return self._loading(Child("worker", process, pipe, index, identity, slot))

    def start_proxy(self) -> Child:
        from .http.proxy import start_proxy
        from .http.settings import ProxySettings

        return self._loading(Child("proxy", *start_proxy(ProxySettings.from_args(self.args))))

    def _loading(self, child: Child) -> Child:
        child.deadline = time.monotonic() + STARTUP_TIMEOUT
        self.children.append(child)
        return child

    def check(self) -> list[Child]:
        """Collect startup reports; return the children that died after being ready (they
        are forgotten here: the caller decides what replaces them)."""
        lost = []
        for child in list(self.children):
            if child.deadline is not None:
                if child.pipe.poll():
                    self._read_report(child)
                    child.deadline = None
                elif not child.process.is_alive():
                    raise ServerStartError(
                        f"{child.name} exited while starting (exit code {child.process.exitcode})"
                    )
                elif time.monotonic() > child.deadline:
                    raise ServerStartError(
                        f"{child.name} did not start within {STARTUP_TIMEOUT:.0f} s"
                    )
            elif not child.process.is_alive():
                self.children.remove(child)
                self.restarts += 1
                lost.append(child)
        return lost

    def kill_lost_worker(self, identity: bytes) -> Child | None:
        """Kill the local worker the front gave up on (stopped, hung): ``check`` then sees it
        dead and the ventilator replaces it, without blaming the parts it held."""
        for child in self.workers:
            if child.identity == identity and child.process.is_alive():
                child.killed_as_lost = True
                child.process.kill()
                return child
        return None

    @staticmethod
    def _read_report(child: Child) -> None:
        status, detail = child.pipe.recv()
        if status != "ready":
            raise ServerStartError(detail)

    def stop(self) -> None:
        """Wait for the children to exit (the caller has sent STOP); force the stragglers."""
        for child in self.children:
            if child.role == "proxy":  # the HTTP proxy stops on SIGTERM
                child.process.terminate()
        deadline = time.monotonic() + EXIT_TIMEOUT
        for child in self.children:
            process = child.process
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                self.logger.warning("%s did not stop in time, terminating it", child.name)
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
