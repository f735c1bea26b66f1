"""The ventilator's scheduling: split requests into parts, queue them, hand them to workers.

Small requests (at most ``-priority_batch_size`` texts) go to a priority queue that is always
served first, so a one-sentence query is not stuck behind a client's 100 000-sentence job.
Workers are given parts only while they have credit (READY/DONE), so the queue stays here.

A request larger than one part is cut in order of text length: each part then holds texts
of similar length, so a worker pads little. The part carries the rows it took, and the sink
puts the vectors back in the client's order.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from . import protocol


@dataclass(frozen=True)
class Part:
    """One slice of a request, at most ``-max_batch_size`` texts.

    ``job`` is the server's own number for the request: clients choose their request ids
    (and a restarted client with a fixed identity counts from 1 again), so the pipeline
    keys everything on ``job`` and keeps the client's id only to address the answer.
    """

    job: bytes
    client: bytes
    request_id: bytes
    index: int
    is_tokenized: bool
    payload: bytes
    priority: bool = False
    rows: bytes = b""  # int32 positions of its texts in the request; empty: all, in order

    @property
    def key(self) -> tuple[bytes, bytes]:
        return self.job, str(self.index).encode()

    def frames(self, suspect: bool = False) -> list[bytes]:
        """The part as a worker receives it. A ``suspect`` part (it was being encoded when a
        worker died) is encoded alone, so that only the guilty request is blamed next time."""
        flags = (
            (b"t" if self.is_tokenized else b"")
            + (b"p" if self.priority else b"")
            + (b"s" if suspect else b"")
        )
        return [
            self.job,
            self.client,
            self.request_id,
            str(self.index).encode(),
            flags,
            self.rows,
            self.payload,
        ]


def split_request(
    request: protocol.Request, job: bytes, max_batch_size: int, priority: bool, payload: bytes
) -> list[Part]:
    """Parts of at most ``max_batch_size`` texts; one part reuses the client's ``payload``."""
    request_id = str(request.request_id).encode()
    texts = request.texts
    if len(texts) <= max_batch_size:
        return [Part(job, request.client, request_id, 0, request.is_tokenized, payload, priority)]
    order = np.argsort([len(text) for text in texts], kind="stable").astype(np.int32)
    parts = []
    for index, start in enumerate(range(0, len(texts), max_batch_size)):
        rows = order[start : start + max_batch_size]
        chunk = json.dumps([texts[row] for row in rows], ensure_ascii=False).encode("utf-8")
        parts.append(
            Part(
                job,
                request.client,
                request_id,
                index,
                request.is_tokenized,
                chunk,
                priority,
                rows.tobytes(),
            )
        )
    return parts


class Scheduler:
    """The queues, the workers' credit and in-flight parts, and every request's parts until
    the sink confirms that its answer went out.

    Keeping the parts until then is what makes crashes survivable: the parts of a worker that
    dies are queued again, and so are those of every unanswered request when the sink dies.
    """

    def __init__(self, max_batch_size: int, priority_batch_size: int, max_crashes: int = 2):
        self.max_batch_size = max_batch_size
        self.priority_batch_size = priority_batch_size
        self.max_crashes = max_crashes
        self.priority: deque[Part] = deque()
        self.normal: deque[Part] = deque()
        self.credit: dict[bytes, int] = {}
        self.in_flight: dict[bytes, dict[tuple, Part]] = {}
        self.requests: dict[bytes, list[Part]] = {}  # by job
        self.crashes: Counter[tuple] = Counter()
        self.jobs = 0

    def submit(self, request: protocol.Request, payload: bytes) -> tuple[bytes, int]:
        """Queue a request's parts (``payload``: its texts as the client sent them); return
        its job and how many parts it has."""
        self.jobs += 1
        job = str(self.jobs).encode()
        priority = len(request.texts) <= self.priority_batch_size
        parts = split_request(request, job, self.max_batch_size, priority, payload)
        (self.priority if priority else self.normal).extend(parts)
        self.requests[job] = parts
        return job, len(parts)

    def worker_ready(self, worker: bytes, credit: int) -> None:
        self.credit[worker] = credit
        self.in_flight.setdefault(worker, {})

    def worker_done(self, worker: bytes, key: tuple) -> None:
        if self.in_flight.get(worker, {}).pop(key, None) is not None:
            self.credit[worker] += 1

    def worker_lost(self, worker: bytes, suspects: list[tuple]) -> list[tuple[Part, int]]:
        """Queue a dead worker's parts again, first in line. The parts it was encoding
        (``suspects``) are blamed; a request whose part crashed ``max_crashes`` workers is
        dropped and returned (its first part, with the count) so that its client gets an
        error instead of endless retries."""
        parts = self.in_flight.pop(worker, {})
        self.credit.pop(worker, None)
        poisoned = []
        for suspect in suspects:
            self.crashes[suspect] += 1
            job = suspect[0]
            if self.crashes[suspect] >= self.max_crashes and job in self.requests:
                poisoned.append((self.requests[job][0], self.crashes[suspect]))
                self.forget(job)
        self._requeue_first([p for p in parts.values() if p.job in self.requests])
        return poisoned

    def published(self, job: bytes) -> None:
        """The sink sent the answer: the parts are no longer needed."""
        self.forget(job)

    def forget(self, job: bytes) -> None:
        parts = self.requests.pop(job, [])
        for part in parts:
            self.crashes.pop(part.key, None)
        if parts:
            self.priority = deque(p for p in self.priority if p.job != job)
            self.normal = deque(p for p in self.normal if p.job != job)

    def requeue_unanswered(self) -> list[list[Part]]:
        """After the sink died: queue again every part of every unanswered request that is
        not waiting in the queue already (its result may have died with the sink); return
        those requests' parts, to announce them to the new sink."""
        queued = {part.key for part in self.priority} | {part.key for part in self.normal}
        self._requeue_first(
            [part for parts in self.requests.values() for part in parts if part.key not in queued]
        )
        return list(self.requests.values())

    def is_suspect(self, part: Part) -> bool:
        """Whether the part was being encoded when a worker died."""
        return self.crashes[part.key] > 0

    def _requeue_first(self, parts: list[Part]) -> None:
        for part in reversed(parts):
            (self.priority if part.priority else self.normal).appendleft(part)

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
