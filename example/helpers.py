"""What every tutorial script shares: server options, free ports, and a server to talk to.

Each example either starts its own `BertServer` (the default: free ports, the embedded
model, the settings that tutorial needs) or, given `--port`, talks to a server that is
already running. The test suite uses the second way to share one server between examples.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from bert_serving.client import BertClient
from bert_serving.server.network import free_ports

READY_TIMEOUT_S = 180


@dataclass
class Endpoint:
    """Where a server listens: enough to build a BertClient or an HTTP address."""

    ip: str
    port: int
    port_out: int
    http_port: int | None = None
    started_here: bool = False

    def client(self, **kwargs: object) -> BertClient:
        """A BertClient on this server; one per thread, as ZeroMQ sockets require."""
        kwargs.setdefault("timeout", 60_000)
        return BertClient(ip=self.ip, port=self.port, port_out=self.port_out, **kwargs)

    @property
    def http_url(self) -> str:
        if self.http_port is None:
            raise RuntimeError("this server has no HTTP port (start it with -http_port)")
        return f"http://{self.ip}:{self.http_port}"


def example_parser(description: str | None) -> argparse.ArgumentParser:
    """The options every example takes, so it can run alone or against a running server."""
    parser = argparse.ArgumentParser(description=description)
    group = parser.add_argument_group("server")
    group.add_argument("--ip", default="localhost", help="host of a running server")
    group.add_argument(
        "--port",
        type=int,
        default=None,
        help="request port of a running server; without it the example starts its own",
    )
    group.add_argument("--port_out", type=int, default=None, help="its result port")
    group.add_argument("--http_port", type=int, default=None, help="its HTTP port, if any")
    group.add_argument(
        "--model_dir",
        default=None,
        help="model of the server this example starts (default: the embedded MiniLM)",
    )
    return parser


@contextmanager
def start_server(
    model_dir: str | None, *server_args: str, http: bool = False
) -> Iterator[Endpoint]:
    """Start a BertServer in this process on free ports; stop it (and its children) after."""
    from bert_serving.server import BertServer
    from bert_serving.server.helper import get_args_parser

    port, port_out, http_port = free_ports(3)
    argv = ["-port", str(port), "-port_out", str(port_out), "-cpu", *server_args]
    if http:
        argv += ["-http_port", str(http_port)]
    if model_dir is not None:
        argv += ["-model_dir", model_dir]
    started = time.monotonic()
    server = BertServer(get_args_parser().parse_args(argv))
    server.start()
    try:
        server.wait_until_ready(READY_TIMEOUT_S)
        print(
            f"[server ready on ports {port}/{port_out} after "
            f"{time.monotonic() - started:.1f} s: {' '.join(server_args) or 'defaults'}]"
        )
        yield Endpoint("localhost", port, port_out, http_port if http else None, True)
    finally:
        server.close()


@contextmanager
def server_for(
    options: argparse.Namespace, *server_args: str, http: bool = False
) -> Iterator[Endpoint]:
    """The server named by --port/--port_out, or a new one started with `server_args`."""
    if options.port is None:
        with start_server(options.model_dir, *server_args, http=http) as endpoint:
            yield endpoint
        return
    if options.port_out is None:
        raise SystemExit("--port needs --port_out too")
    if http and options.http_port is None:
        raise SystemExit("this example needs the HTTP proxy: give --http_port as well")
    yield Endpoint(options.ip, options.port, options.port_out, options.http_port)


def require_config(bc: BertClient, **expected: object) -> None:
    """Stop with a clear message when a running server lacks a setting this example needs."""
    config = bc.server_config
    wrong = {
        name: config.get(name)
        for name, value in expected.items()
        if str(config.get(name)) != str(value)
    }
    if wrong:
        wanted = ", ".join(f"-{name} {value}" for name, value in expected.items())
        found = ", ".join(f"{name}={value}" for name, value in wrong.items())
        raise SystemExit(f"this example needs a server started with {wanted}; it has {found}")
