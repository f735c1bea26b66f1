"""The proxy's way to the server: one pool of ZeroMQ clients, plus a probe for health checks.

The proxy reports ready before the server's loop runs, so nothing here waits for a ZeroMQ
handshake: the clients skip it (``ignore_all_checks``), their sockets connect in the
background, and the server holds an answer until the client's subscription arrives, so
even the first request gets its answer. Health checks and metric scrapes go through one
more client with a short timeout: a stopped server is noticed in seconds, and every probe
counts as the same client in the server's statistics.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bert_serving.client import BertClient, ConcurrentBertClient

from ..network import LOOPBACK, local_address
from ..security import CurveKeys

ENCODE_TIMEOUT_MS = 60_000  # past this an HTTP request answers 504 instead of hanging
PROBE_TIMEOUT_MS = 2_000


@dataclass(frozen=True)
class ServerAddress:
    port: int
    port_out: int
    ip: str = LOOPBACK
    client_options: dict = field(default_factory=dict)  # CURVE keys when the server uses them

    @classmethod
    def from_args(cls, args) -> ServerAddress:
        """The server this proxy belongs to, reached on the interface it listens on."""
        curve = CurveKeys.from_args(args)
        options = curve.client_options() if curve else {}
        return cls(args.port, args.port_out, local_address(args.bind_ip), options)


class ServerConnection:
    """Thread-safe access to one server for the proxy's request threads."""

    def __init__(
        self, address: ServerAddress, max_concurrency: int, timeout_ms: int = ENCODE_TIMEOUT_MS
    ) -> None:
        self.max_concurrency = max_concurrency
        self.pool = ConcurrentBertClient(
            max_concurrency=max_concurrency,
            ip=address.ip,
            port=address.port,
            port_out=address.port_out,
            timeout=timeout_ms,
            ignore_all_checks=True,
            **address.client_options,
        )
        self._probe = BertClient(
            ip=address.ip,
            port=address.port,
            port_out=address.port_out,
            timeout=PROBE_TIMEOUT_MS,
            ignore_all_checks=True,
            **address.client_options,
        )
        self._probe_lock = threading.Lock()

    def probe(self, command: str) -> dict:
        """``server_config`` or ``server_status``; BertClientTimeoutError after a short wait."""
        with self._probe_lock:
            return getattr(self._probe, command)

    def client_status(self) -> dict:
        return {"max_concurrency": self.max_concurrency, "clients": self.pool.status}

    def close(self) -> None:
        """Close every client (idempotent); later calls raise RuntimeError."""
        self.pool.close()
        with self._probe_lock:
            self._probe.close()
