"""The ventilator's scheduling: split requests into parts, queue them, hand them to workers.

Small requests (at most ``-priority_batch_size`` texts) go to a priority queue that is always
served first, so a one-sentence query is not stuck behind a client's 100 000-sentence job.
Workers are given parts only while they have credit (Ready, then one per answer), so the
queue stays here.

A request larger than one part is cut in order of text length: each part then holds texts
of similar length, so a worker pads little. The part carries the rows it took, and the sink
puts the vectors back in the client's order.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import replace
from typing import Any

import numpy as np

from ..protocol import Part, Request
from ..protocol.messages import PartKey
from ..protocol.utf8_texts import pack_texts, spans_to_bytes


def split_request(
    request: Request, job: bytes, max_batch_size: int, priority: bool, payload: Any
) -> list[Part]:
    """Parts of at most ``max_batch_size`` texts; one part reuses the client's ``payload``
    when it can (token lists as JSON; raw texts read without json.loads, at their spans)."""

    def part(index: int, rows: bytes, packed: tuple[Any, bytes], num_texts: int) -> Part:
        return Part(
            job=job,
            client=request.client,
            request_id=str(request.request_id).encode(),
            index=index,
            is_tokenized=request.is_tokenized,
            priority=priority,
            suspect=False,
            rows=rows,
            payload=packed[0],
            spans=packed[1],
            num_texts=num_texts,
        )

    texts = request.texts
    if len(texts) <= max_batch_size:
        if request.is_tokenized:
            whole = (payload, b"")
        elif request.spans is not None:
            whole = (payload, spans_to_bytes(request.spans))
        else:
            whole = _packed(texts, is_tokenized=False)
        return [part(0, b"", whole, len(texts))]
    order = np.argsort([len(text) for text in texts], kind="stable").astype(np.int32)
    parts = []
    for index, start in enumerate(range(0, len(texts), max_batch_size)):
        rows = order[start : start + max_batch_size]
        packed = _packed([texts[row] for row in rows], request.is_tokenized)
        parts.append(part(index, rows.tobytes(), packed, len(rows)))
    return parts


def _packed(texts: list, is_tokenized: bool) -> tuple[bytes, bytes]:
    """A part's payload and spans: token lists as JSON, raw texts as UTF-8 and offsets."""
    if is_tokenized:
        return json.dumps(texts, ensure_ascii=False).encode("utf-8"), b""
    data, spans = pack_texts(texts)
    return data, spans_to_bytes(spans)


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
        self.in_flight: dict[bytes, dict[PartKey, Part]] = {}
        self.requests: dict[bytes, list[Part]] = {}  # by job
        self.crashes: Counter[PartKey] = Counter()
        self.jobs = 0

    def submit(self, request: Request, payload: Any) -> tuple[bytes, int]:
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

    def worker_done(self, worker: bytes, key: PartKey) -> bool:
        """A part came back: one more credit. False when the worker did not hold it (a late
        answer from a worker given up on, or a repeat): its answer must be dropped."""
        if self.in_flight.get(worker, {}).pop(key, None) is None:
            return False
        self.credit[worker] += 1
        return True

    def held_texts(self, worker: bytes) -> int:
        """How many texts the worker's parts hold (what it should be computing now)."""
        return sum(part.num_texts for part in self.in_flight.get(worker, {}).values())

    def worker_lost(self, worker: bytes, suspects: list[PartKey]) -> list[tuple[Part, int]]:
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
            if self.crashes[part.key] > 0:  # it was being encoded when a worker died
                part = replace(part, suspect=True)
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
