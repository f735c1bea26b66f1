"""ConcurrentBertClient: a pool of BertClients that many threads may share."""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from .client import BertClient, Embedding, Response
from .errors import BertClientTimeoutError


class ConcurrentBertClient:
    """Lend one of `max_concurrency` BertClients to each call, so threads never share one.

    `kwargs` go to every BertClient (each keeps its own random identity). A call waits
    for a free client, at most `timeout` ms when timeout > 0. A thread's non-blocking
    encodes all go to one client that stays with that thread until fetch/fetch_all has
    received everything.
    """

    def __init__(self, max_concurrency: int = 10, **kwargs: Any) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if kwargs.get("identity") is not None:
            raise ValueError(
                "ConcurrentBertClient cannot share one identity among its clients: their "
                "request ids would collide; leave identity unset"
            )
        self.timeout = kwargs.get("timeout", -1)
        self._clients: list[BertClient] = []
        self._free: queue.Queue[BertClient | None] = queue.Queue()
        self._kept_by_thread = threading.local()
        self._closed = False
        try:
            for _ in range(max_concurrency):
                client = BertClient(**kwargs)
                self._clients.append(client)
                self._free.put(client)
        except BaseException:
            self.close()
            raise

    @property
    def server_config(self) -> dict:
        with self._borrowed() as client:
            return client.server_config

    @property
    def server_status(self) -> dict:
        with self._borrowed() as client:
            return client.server_status

    @property
    def status(self) -> list[dict]:
        """The status of every client in the pool."""
        return [client.status for client in self._clients]

    def encode(
        self,
        texts: list,
        blocking: bool = True,
        is_tokenized: bool = False,
        show_tokens: bool = False,
        **chunking: Any,
    ) -> Any:
        """BertClient.encode on a free client (see the class docstring for blocking=False);
        ``chunking``: show_progress and chunk_size of BertClient.encode."""
        if not blocking:
            return self._kept_client().encode(texts, False, is_tokenized, show_tokens)
        with self._borrowed() as client:
            return client.encode(texts, True, is_tokenized, show_tokens, **chunking)

    def fetch(self, delay: float = 0.0) -> Iterator[Response]:
        """Results of this thread's non-blocking encodes, in arrival order."""
        client = getattr(self._kept_by_thread, "client", None)
        if client is None:
            return
        try:
            yield from client.fetch(delay)
        finally:
            self._release_kept_if_idle()

    def fetch_all(self, sort: bool = True, concat: bool = False) -> list | Embedding | None:
        """BertClient.fetch_all for this thread's non-blocking encodes (None if none)."""
        client = getattr(self._kept_by_thread, "client", None)
        if client is None:
            return None
        try:
            return client.fetch_all(sort, concat)
        finally:
            self._release_kept_if_idle()

    # BertClient's signature, on purpose: ConcurrentBertClient is a drop-in for it
    def encode_async(
        self,
        batch_generator: Iterable[list],
        max_num_batch: int | None = None,
        delay: float = 0.1,
        **kwargs: Any,
    ) -> Iterator[Response]:
        """BertClient.encode_async on a client kept until the results are consumed."""
        client = self._take()
        try:
            yield from client.encode_async(batch_generator, max_num_batch, delay, **kwargs)
        finally:
            client.abandon_pending()  # if abandoned early, late results must not leak
            self._give_back(client)

    def close(self) -> None:
        """Close every client; threads waiting for one get a RuntimeError. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for client in self._clients:
            client.close()
        self._free.put(None)  # wakes a waiter, which passes it on to the next

    def __enter__(self) -> ConcurrentBertClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _borrowed(self) -> Iterator[BertClient]:
        kept = getattr(self._kept_by_thread, "client", None)
        if kept is not None:
            yield kept
            return
        client = self._take()
        try:
            yield client
        finally:
            self._give_back(client)

    def _take(self) -> BertClient:
        if self._closed:
            raise RuntimeError("this ConcurrentBertClient is closed")
        wait_s = self.timeout / 1000.0 if self.timeout > 0 else None
        try:
            client = self._free.get(timeout=wait_s)
        except queue.Empty:
            raise BertClientTimeoutError(
                f"no free client among the {len(self._clients)} of this ConcurrentBertClient "
                f"within {self.timeout} ms: raise max_concurrency or the timeout"
            ) from None
        if client is None:
            self._free.put(None)
            raise RuntimeError("this ConcurrentBertClient is closed")
        return client

    def _give_back(self, client: BertClient) -> None:
        if not self._closed:
            self._free.put(client)

    def _kept_client(self) -> BertClient:
        client = getattr(self._kept_by_thread, "client", None)
        if client is None:
            client = self._take()
            self._kept_by_thread.client = client
        return client

    def _release_kept_if_idle(self) -> None:
        client = self._kept_by_thread.client
        if not client.status["pending_request"]:
            self._kept_by_thread.client = None
            self._give_back(client)
