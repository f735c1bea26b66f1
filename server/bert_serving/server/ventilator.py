"""The ventilator's scheduling: split requests into parts, queue them, hand them to workers.

Small requests (at most ``-priority_batch_size`` texts) go to a priority queue that is always
served first, so a one-sentence query is not stuck behind a client's 100 000-sentence job.
Workers are given parts only while they have credit (READY/DONE), so the queue stays here.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass

from . import protocol


@dataclass(frozen=True)
class Part:
    """One slice of a request, at most ``-max_batch_size`` texts."""

    client: bytes
    request_id: bytes
    index: int
    is_tokenized: bool
    payload: bytes
    priority: bool = False

    @property
    def key(self) -> tuple[bytes, bytes, bytes]:
        return self.client, self.request_id, str(self.index).encode()

    def frames(self) -> list[bytes]:
        flags = (b"t" if self.is_tokenized else b"") + (b"p" if self.priority else b"")
        return [*self.key, flags, self.payload]


def split_request(request: protocol.Request, max_batch_size: int, priority: bool) -> list[Part]:
    texts = request.texts
    request_id = str(request.request_id).encode()
    return [
        Part(
            request.client,
            request_id,
            index,
            request.is_tokenized,
            json.dumps(texts[start : start + max_batch_size], ensure_ascii=False).encode("utf-8"),
            priority,
        )
        for index, start in enumerate(range(0, len(texts), max_batch_size))
    ]


class Scheduler:
    """Queues of parts and the credit and in-flight parts of each worker."""

    def __init__(self, max_batch_size: int, priority_batch_size: int):
        self.max_batch_size = max_batch_size
        self.priority_batch_size = priority_batch_size
        self.priority: deque[Part] = deque()
        self.normal: deque[Part] = deque()
        self.credit: dict[bytes, int] = {}
        self.in_flight: dict[bytes, dict[tuple, Part]] = {}
        self.remaining: dict[tuple[bytes, bytes], int] = {}  # parts not yet done, per request

    def submit(self, request: protocol.Request) -> int:
        """Queue a request's parts; return how many there are."""
        priority = len(request.texts) <= self.priority_batch_size
        parts = split_request(request, self.max_batch_size, priority)
        (self.priority if priority else self.normal).extend(parts)
        self.remaining[(request.client, str(request.request_id).encode())] = len(parts)
        return len(parts)

    def worker_ready(self, worker: bytes, credit: int) -> None:
        self.credit[worker] = credit
        self.in_flight.setdefault(worker, {})

    def worker_done(self, worker: bytes, key: tuple) -> tuple[bytes, bytes] | None:
        """Return credit to the worker; return (client, request id) when that was the
        request's last part."""
        if self.in_flight.get(worker, {}).pop(key, None) is None:
            return None
        self.credit[worker] += 1
        request = key[:2]
        self.remaining[request] -= 1
        if self.remaining[request] > 0:
            return None
        del self.remaining[request]
        return request

    def next_assignments(self) -> list[tuple[bytes, Part]]:
        """Pop queued parts for workers with credit, most credit first (spreads the load)."""
        assignments = []
        while self.priority or self.normal:
            worker = max(self.credit, key=self.credit.get, default=None)
            if worker is None or self.credit[worker] <= 0:
                break
            part = (self.priority or self.normal).popleft()
            self.credit[worker] -= 1
            self.in_flight[worker][part.key] = part
            assignments.append((worker, part))
        return assignments

    @property
    def queued(self) -> int:
        return len(self.priority) + len(self.normal)

    @property
    def running(self) -> int:
        return sum(len(parts) for parts in self.in_flight.values())
