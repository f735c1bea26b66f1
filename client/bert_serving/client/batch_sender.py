"""The background thread behind encode_async: it sends while the caller fetches."""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable, Iterable


class BatchSender:
    """Send every batch of `batches` with `send_batch` on a daemon thread.

    Fetching uses `wait_for_work` so it neither stops early while batches are still
    coming nor spins while the sender is slower than the server.
    """

    def __init__(
        self,
        send_batch: Callable[[Any], None],
        batches: Iterable[Any],
        max_num_batch: int | None = None,
    ) -> None:
        self._send_batch = send_batch
        self._batches = itertools.islice(batches, max_num_batch)
        self._progress = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bert-client-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def done(self) -> bool:
        with self._progress:
            return self._done

    def wait_for_work(self, has_work: Callable[[], bool]) -> None:
        """Block until `has_work()` is true or the sender has finished."""
        with self._progress:
            self._progress.wait_for(lambda: self._done or has_work())

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to stop after the batch it is sending and wait for it a little."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            for batch in self._batches:
                if self._stop.is_set():
                    break
                self._send_batch(batch)
                with self._progress:
                    self._progress.notify_all()
        except BaseException as error:  # handed to the fetching thread, which re-raises it
            self.error = error
        finally:
            with self._progress:
                self._done = True
                self._progress.notify_all()
