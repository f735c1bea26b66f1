"""Request statistics for SHOW_STATUS: the ``statistic`` object of 1.10, plus what a live
dashboard needs (recent rates, recently active clients, latency, queue depth)."""

from __future__ import annotations

import time
from collections import Counter, deque

RECENT_SECONDS = 10.0  # window of the "recent" rates
RECENT_CLIENT_SECONDS = 60.0  # a client that sent something this recently is recent
LATENCY_WINDOW = 1000  # latencies of the last requests
SIZE_WINDOW = 10000  # sizes of the last requests
CLIENT_MEMORY_SECONDS = 3600.0  # a client silent this long is forgotten, so memory stays flat


class ServerStatistics:
    """Counts requests per client and request sizes, as the ventilator sees them.

    Everything is bounded: windows of recent requests, and clients are forgotten after an
    hour of silence (a program that makes a new BertClient per request would otherwise
    grow these tables forever), so ``num_active_client`` counts the last hour's clients.
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests_per_client: Counter[bytes] = Counter()
        self.num_data_request = 0
        self.num_sys_request = 0
        self.num_total_seq = 0
        self.num_error_request = 0
        self.sizes: deque[int] = deque(maxlen=SIZE_WINDOW)
        self.open_requests: dict[bytes, float] = {}  # by job
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.recent: deque[tuple[float, int]] = deque()
        self.last_seen: dict[bytes, float] = {}
        self._last_sweep = self.started

    def record_texts(self, client: bytes, job: bytes, num_texts: int) -> None:
        now = self._seen(client)
        self.num_data_request += 1
        self.num_total_seq += num_texts
        self.sizes.append(num_texts)
        self.open_requests[job] = now
        self.recent.append((now, num_texts))
        self._forget_old(now)

    def record_finished(self, job: bytes) -> None:
        started = self.open_requests.pop(job, None)
        if started is not None:
            self.latencies.append(time.monotonic() - started)

    def record_command(self, client: bytes) -> None:
        self._seen(client)
        self.num_sys_request += 1

    def _seen(self, client: bytes) -> float:
        now = time.monotonic()
        self.requests_per_client[client] += 1
        self.last_seen[client] = now
        return now

    def _forget_old(self, now: float) -> None:
        while self.recent and self.recent[0][0] < now - RECENT_SECONDS:
            self.recent.popleft()
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for client, seen in list(self.last_seen.items()):
            if seen < now - CLIENT_MEMORY_SECONDS:
                del self.last_seen[client], self.requests_per_client[client]

    def record_error(self) -> None:
        self.num_error_request += 1

    def snapshot(self, queued_parts: int, in_flight_parts: int) -> dict:
        per_client = list(self.requests_per_client.values()) or [0]
        sizes = self.sizes or [0]
        now = time.monotonic()
        uptime = max(now - self.started, 1e-9)
        self._forget_old(now)
        window = min(RECENT_SECONDS, uptime)
        return {
            "num_data_request": self.num_data_request,
            "num_total_seq": self.num_total_seq,
            "num_sys_request": self.num_sys_request,
            "num_error_request": self.num_error_request,
            "num_active_client": len(self.requests_per_client),
            "num_max_request_per_client": max(per_client),
            "num_min_request_per_client": min(per_client),
            "avg_request_per_client": sum(per_client) / len(per_client),
            "max_size_per_request": max(sizes),
            "min_size_per_request": min(sizes),
            "avg_size_per_request": sum(sizes) / len(sizes),
            "avg_request_per_second": (self.num_data_request + self.num_sys_request) / uptime,
            "avg_seq_per_second": self.num_total_seq / uptime,
            "num_queued_parts": queued_parts,
            "num_in_flight_parts": in_flight_parts,
            "uptime_seconds": uptime,
            "recent_request_per_second": len(self.recent) / window,
            "recent_seq_per_second": sum(n for _, n in self.recent) / window,
            "num_recent_client": sum(
                1 for seen in self.last_seen.values() if seen > now - RECENT_CLIENT_SECONDS
            ),
            "latency_ms": _latency_summary(self.latencies),
        }


def _latency_summary(latencies: deque[float]) -> dict[str, float]:
    """Average and percentiles, in milliseconds, of the last requests' time inside the
    server (received to its answer published by the sink)."""
    ordered = sorted(latencies)
    if not ordered:
        return {"avg": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0, "count": 0}

    def percentile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "avg": sum(ordered) / len(ordered) * 1000,
        "p50": percentile(0.5),
        "p95": percentile(0.95),
        "max": ordered[-1] * 1000,
        "count": len(ordered),
    }
