"""The parts a worker holds (up to -prefetch_size), and how it picks its next batch."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from ..protocol import Part


@dataclass
class Task:
    """A part from the ventilator, its texts parsed once, when it arrives."""

    part: Part
    texts: list

    @classmethod
    def of(cls, part: Part) -> Task:
        return cls(part, part.texts())

    def can_join(self, other: Task) -> bool:
        """Parts share a forward pass when both are of one kind and neither is suspect."""
        return (
            not self.part.suspect
            and not other.part.suspect
            and self.part.is_tokenized == other.part.is_tokenized
        )


class Inbox:
    """Parts a worker holds, priority parts first.

    The ventilator may have handed this worker several parts before a small request came
    in; taking priority parts first here keeps the queue-jumping promise within one batch.
    Parts waiting together are encoded together (up to -max_batch_size texts): one forward
    pass over many clients' texts, sorted by length, pads less than one per part.
    """

    def __init__(self) -> None:
        self.priority: deque[Task] = deque()
        self.normal: deque[Task] = deque()

    def put(self, part: Part) -> None:
        (self.priority if part.priority else self.normal).append(Task.of(part))

    def __len__(self) -> int:
        return len(self.priority) + len(self.normal)

    def clear(self) -> None:
        self.priority.clear()
        self.normal.clear()

    def take_batch(self, max_texts: int, merge: bool = True) -> list[Task]:
        """The next part, joined by the parts behind it that fit in ``max_texts``."""
        queue = self.priority or self.normal
        batch = [queue.popleft()]
        size = len(batch[0].texts)
        while (
            merge
            and queue
            and batch[0].can_join(queue[0])
            and size + len(queue[0].texts) <= max_texts
        ):
            size += len(queue[0].texts)
            batch.append(queue.popleft())
        return batch


class SharedInbox:
    """The inbox between the worker's socket thread (puts) and its compute thread (takes).

    Each session with a front has a number; clearing the inbox for a new session makes the
    compute thread's answers for the old one recognisable as stale.
    """

    def __init__(self) -> None:
        self._inbox = Inbox()
        self._ready = threading.Condition()
        self.session = 0
        self._closed = False

    def put(self, part: Part) -> None:
        with self._ready:
            self._inbox.put(part)
            self._ready.notify()

    def new_session(self) -> int:
        """Drop what the last session left (the front re-runs it elsewhere)."""
        with self._ready:
            self._inbox.clear()
            self.session += 1
            return self.session

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def take_batch(self, max_texts: int, merge: bool) -> tuple[int, list[Task]] | None:
        """Block until parts wait; return (session, batch), or None once closed."""
        with self._ready:
            while not self._inbox and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            return self.session, self._inbox.take_batch(max_texts, merge)
