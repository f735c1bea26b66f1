"""The proxy's way to the server: one ``ServerLink`` for every request thread.

Encodings wait up to a minute (then the HTTP request answers 504 instead of hanging);
health checks and metric scrapes ask with a short timeout, so a stopped server is noticed
in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..network import LOOPBACK, local_address
from ..protocol import SHOW_CONFIG, SHOW_STATUS
from ..security import CurveKeys
from .link import ServerLink

ENCODE_TIMEOUT_MS = 60_000  # past this an HTTP request answers 504 instead of hanging
STATUS_TIMEOUT_MS = 10_000
PROBE_TIMEOUT_MS = 2_000
COMMANDS = {"server_config": SHOW_CONFIG, "server_status": SHOW_STATUS}


@dataclass(frozen=True)
class ServerAddress:
    port: int
    port_out: int
    ip: str = LOOPBACK
    curve: dict = field(default_factory=dict)  # socket options, when the server uses CURVE

    @classmethod
    def from_args(cls, args) -> ServerAddress:
        """The server this proxy belongs to, reached on the interface it listens on, with
        the server's own key pair (always allowed) when it uses CURVE."""
        keys = CurveKeys.from_args(args)
        curve = keys.own_socket_options() if keys else {}
        return cls(args.port, args.port_out, local_address(args.bind_ip), curve)


class ServerConnection:
    """Thread-safe access to one server for the proxy's request threads."""

    def __init__(
        self, address: ServerAddress, max_concurrency: int, timeout_ms: int = ENCODE_TIMEOUT_MS
    ) -> None:
        self.max_concurrency = max_concurrency  # waitress's request threads
        self.timeout_ms = timeout_ms
        self.link = ServerLink(address.ip, address.port, address.port_out, address.curve)

    def encode(self, texts: list, is_tokenized: bool = False) -> np.ndarray:
        return self.link.encode(texts, is_tokenized, self.timeout_ms)

    def server_status(self) -> dict:
        return self.link.command(SHOW_STATUS, STATUS_TIMEOUT_MS)

    def probe(self, command: str) -> dict:
        """``server_config`` or ``server_status``; LinkTimeoutError after a short wait."""
        return self.link.command(COMMANDS[command], PROBE_TIMEOUT_MS)

    def client_status(self) -> dict:
        return {"max_concurrency": self.max_concurrency, "clients": [self.link.status]}

    def close(self) -> None:
        """Close the link (idempotent); later calls raise RuntimeError."""
        self.link.close()
