"""Request statistics for SHOW_STATUS (the ``statistic`` object of 1.10, plus queue depth)."""

from __future__ import annotations

import time
from collections import Counter


class ServerStatistics:
    """Counts requests per client and request sizes, as the ventilator sees them."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests_per_client: Counter[bytes] = Counter()
        self.num_data_request = 0
        self.num_sys_request = 0
        self.num_total_seq = 0
        self.num_error_request = 0
        self.sizes: list[int] = []

    def record_texts(self, client: bytes, num_texts: int) -> None:
        self.requests_per_client[client] += 1
        self.num_data_request += 1
        self.num_total_seq += num_texts
        self.sizes.append(num_texts)
        del self.sizes[:-10000]  # a window, so a long-running server does not grow

    def record_command(self, client: bytes) -> None:
        self.requests_per_client[client] += 1
        self.num_sys_request += 1

    def record_error(self) -> None:
        self.num_error_request += 1

    def snapshot(self, queued_parts: int, in_flight_parts: int) -> dict:
        per_client = list(self.requests_per_client.values()) or [0]
        sizes = self.sizes or [0]
        uptime = max(time.monotonic() - self.started, 1e-9)
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
        }
