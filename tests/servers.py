"""Start real servers (real processes, real sockets) on free ports for the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from bert_serving.server import BertServer
from bert_serving.server.helper import get_args_parser
from bert_serving.server.network import free_ports


def exact(extra: tuple[str, ...]) -> list[str]:
    """``extra`` with ``-precision float32`` unless it names a precision: answers are then
    comparable with an in-process float32 encoder (bfloat16 would differ by about 1e-2)."""
    return [*extra] if "-precision" in extra else [*extra, "-precision", "float32"]


def server_args(model_dir: Path | None, *extra: str):
    """Parsed arguments on free ports, on the CPU, in float32 unless ``extra`` says otherwise."""
    port, port_out = free_ports(2)
    argv = ["-port", str(port), "-port_out", str(port_out), "-cpu", *exact(extra)]
    if model_dir is not None:
        argv += ["-model_dir", str(model_dir)]
    return get_args_parser().parse_args(argv)


@contextmanager
def running_server(model_dir: Path | None, *extra: str):
    """A started, ready server; closed (children stopped, ports freed) afterwards."""
    server = BertServer(server_args(model_dir, *extra))
    server.start()
    try:
        server.wait_until_ready(180)
        yield server
    finally:
        server.close()


def ports_are_free(*ports: int) -> bool:
    """Whether a new server could bind the ports (with SO_REUSEADDR, as ZeroMQ does)."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def start_command(model_dir: Path, port: int, port_out: int, *extra: str) -> list[str]:
    """``bert-serving-start`` as a user types it, on the CPU and the given ports, in float32
    unless ``extra`` says otherwise."""
    return [
        sys.executable,
        "-m",
        "bert_serving.server.cli.start",
        "-model_dir",
        str(model_dir),
        "-port",
        str(port),
        "-port_out",
        str(port_out),
        "-cpu",
        *exact(extra),
    ]


def run_terminate(port: int, timeout_ms: int = 20000) -> subprocess.CompletedProcess:
    """``bert-serving-terminate -port PORT`` as a user runs it."""
    command = [
        sys.executable,
        "-m",
        "bert_serving.server.cli.terminate",
        "-port",
        str(port),
        "-timeout",
        str(timeout_ms),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def wait_until_read(clients) -> None:
    """Return once the server has read every request these clients sent: a status request
    on the same socket is answered only after the requests before it were read."""
    for client in clients:
        client.server_status  # noqa: B018 (the property asks the server)
