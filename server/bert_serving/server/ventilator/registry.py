"""Who serves: the registered workers, local or remote, and whether each is still alive.

Two signs of life, as in the zguide's "Paranoid Pirate" pattern plus a progress check:

- **Heartbeats.** Every worker beats every third of ``-worker_timeout``, from a thread of
  its own, even while it computes. Silence for ``-worker_timeout`` (3 s by default) means
  lost: the host is gone, the network is cut, or the process is stopped (SIGSTOP, a
  debugger).
- **Progress.** A worker whose beats keep coming but whose parts never come back is hung
  (deadlocked, or stuck in a driver call). It is given, for the parts it holds, ten times
  what they should take at the speed it measured at warm-up, and never less than
  ``-worker_progress_timeout`` (60 s by default). A part of 256 texts of 512 tokens on a
  slow CPU is thus given ten times its own expected time, not a fixed number of seconds.

The registry only keeps the facts and answers questions about them, with a clock passed
in, so it is tested without processes or sockets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

from ..protocol import Hello

PROGRESS_MULTIPLE = 10.0  # how many times its expected time a worker gets for its parts


class WorkerState(str, Enum):
    SERVING = "serving"
    LOST = "lost"  # silent: its parts went to others
    HUNG = "hung"  # beating but not progressing: its parts went to others
    LEFT = "left"  # said goodbye (stopped cleanly): not a loss


@dataclass
class WorkerRecord:
    """One registered worker, as the front sees it."""

    identity: bytes
    hello: Hello
    joined: float
    last_heard: float
    last_progress: float
    parts_done: int = 0
    busy_since: float | None = None  # when it got parts while holding none
    state: WorkerState = WorkerState.SERVING

    def describe(self, now: float) -> dict:
        """The worker as ``server_status`` lists it."""
        return {
            "name": self.hello.name,
            "host": self.hello.host,
            "device": self.hello.device,
            "remote": self.hello.remote,
            "compute_dtype": self.hello.compute_dtype,
            "state": self.state.value,
            "parts_done": self.parts_done,
            "last_heartbeat_s": round(now - self.last_heard, 3),
            "joined_s": round(now - self.joined, 3),
        }


@dataclass
class WorkerRegistry:
    """The workers of one front; ``timeout`` is ``-worker_timeout`` in seconds."""

    timeout: float = 3.0
    progress_floor: float = 60.0
    max_tokens_per_text: int = 512
    clock: Callable[[], float] = time.monotonic
    workers: dict[bytes, WorkerRecord] = field(default_factory=dict)
    losses: int = 0
    rejoins: int = 0
    _names_seen: set[str] = field(default_factory=set)

    @property
    def heartbeat_interval(self) -> float:
        return self.timeout / 3

    def register(self, identity: bytes, hello: Hello) -> WorkerRecord:
        now = self.clock()
        if hello.name in self._names_seen:
            self.rejoins += 1
        self._names_seen.add(hello.name)
        record = WorkerRecord(identity, hello, now, now, now)
        self.workers[identity] = record
        return record

    def heard(self, identity: bytes) -> bool:
        """Any message is a sign of life; False when the sender is not registered."""
        record = self.workers.get(identity)
        if record is None:
            return False
        record.last_heard = self.clock()
        return True

    def given_parts(self, identity: bytes, held_before: int) -> None:
        """It was handed parts; if it held none, its progress clock starts now."""
        record = self.workers.get(identity)
        if record is not None and held_before == 0:
            record.busy_since = self.clock()

    def progressed(self, identity: bytes, still_held: int) -> None:
        """A part came back."""
        record = self.workers.get(identity)
        if record is None:
            return
        now = self.clock()
        record.parts_done += 1
        record.last_progress = now
        record.busy_since = now if still_held else None

    def silent(self) -> list[bytes]:
        """Workers not heard from for ``timeout``."""
        deadline = self.clock() - self.timeout
        return [identity for identity, r in self.workers.items() if r.last_heard < deadline]

    def hung(self, held_texts: Callable[[bytes], int], max_batch_size: int) -> list[bytes]:
        """Workers that hold parts and returned none for longer than their bound."""
        now = self.clock()
        return [
            identity
            for identity, record in self.workers.items()
            if record.busy_since is not None
            and now - record.busy_since
            > self.progress_bound(record, min(held_texts(identity), max_batch_size))
        ]

    def progress_bound(self, record: WorkerRecord, texts: int) -> float:
        """Seconds a worker may take for its next batch of ``texts`` texts."""
        expected = texts * self.max_tokens_per_text * record.hello.seconds_per_token
        return max(self.progress_floor, PROGRESS_MULTIPLE * expected)

    def remove(self, identity: bytes, state: WorkerState) -> WorkerRecord | None:
        """Forget a worker (lost or hung, or gone away); its late answers will be dropped."""
        record = self.workers.pop(identity, None)
        if record is not None and state in (WorkerState.LOST, WorkerState.HUNG):
            record.state = state
            self.losses += 1
        return record

    def describe(self) -> list[dict]:
        now = self.clock()
        return [record.describe(now) for record in self.workers.values()]

    def identities(self) -> Iterable[bytes]:
        return list(self.workers)
