"""AsyncBertClient: ``await client.encode(texts)`` for asyncio services (FastAPI, aiohttp).

One client serves any number of concurrent awaits. A single receiver task reads every
answer published to the client's identity and resolves the future waiting for that request
id, so answers may arrive in any order and each await gets its own. The frames, checks
and chunking are those of ``BertClient``; only the waiting is asyncio's (pyzmq's asyncio
sockets), so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Awaitable, TypeVar

import numpy as np
import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from . import __version__
from .checks import check_server_version, check_texts, server_sends_tokens, warn_if_too_long
from .chunks import chunk_spans, join_rows, join_tokens
from .client import (
    CHUNKS_IN_FLIGHT,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_COMMAND_TIMEOUT_MS,
    FIRST_RESEND_AFTER_S,
    MAX_RESEND_INTERVAL_S,
    OUTPUT_FORMATS,
    _as_identity,
    client_status,
)
from .errors import BertClientTimeoutError
from .handshake import HandshakeError, HandshakeWatch
from .protocol import (
    SHOW_CONFIG,
    SHOW_STATUS,
    Reply,
    decode_encoding,
    parse_reply,
    request_frames,
    texts_payload,
)
from .security import KeySource, curve_client_options

T = TypeVar("T")


class AsyncBertClientTimeoutError(BertClientTimeoutError, asyncio.TimeoutError):
    """No answer in time: both the client's own timeout error and asyncio's, so that
    ``except asyncio.TimeoutError`` (as around ``asyncio.wait_for``) catches it too."""


class AsyncBertClient:
    """A connection to one bert-as-service server for asyncio code.

    The arguments are those of ``BertClient`` (``timeout`` in milliseconds, <= 0 waiting
    without a limit for encodings; config and status requests give up after 30 s at most).
    The version check of the config handshake runs on entering ``async with``, or before
    the first request. Use it from one event loop; ``close()`` it (or leave the ``async
    with`` block) to release the sockets.
    """

    # the same arguments as BertClient's, on purpose: code moves between the two unchanged
    def __init__(
        self,
        ip: str = "localhost",
        port: int = 5555,
        port_out: int = 5556,
        output_fmt: str = "ndarray",
        identity: str | bytes | None = None,
        check_version: bool = True,
        check_length: bool = True,
        check_token_info: bool = True,
        ignore_all_checks: bool = False,
        timeout: int = -1,
        curve_server_key: KeySource | None = None,
        curve_client_keys: KeySource | tuple[bytes, bytes] | None = None,
        normalize: bool = False,
    ) -> None:
        if output_fmt not in OUTPUT_FORMATS:
            raise ValueError(f"output_fmt must be one of {OUTPUT_FORMATS}, got {output_fmt!r}")
        self.ip = ip
        self.port = port
        self.port_out = port_out
        self.output_fmt = output_fmt
        self.timeout = timeout
        self.normalize = normalize
        self.identity = _as_identity(identity)
        self._check_version = check_version and not ignore_all_checks
        self._check_length = check_length and not ignore_all_checks
        self._check_token_info = check_token_info and not ignore_all_checks
        self._needs_handshake = not ignore_all_checks
        self._config: dict | None = None
        self._num_request = 0
        self._waiting: dict[int, asyncio.Future[Reply]] = {}  # request id -> its answer
        self._receiver: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None  # reads the handshake events
        self._handshake_lock: asyncio.Lock | None = None  # made in the loop (Python 3.8/3.9)
        self._closed = False
        curve = curve_client_options(curve_server_key, curve_client_keys)
        self._context = zmq.asyncio.Context()
        self._sender = self._context.socket(zmq.PUSH)
        self._subscriber = self._context.socket(zmq.SUB)
        # a refused handshake (CURVE settings that differ) fails the waiting requests at once
        self._handshakes = HandshakeWatch(uses_curve=bool(curve))
        self._refusal: HandshakeError | None = None
        for socket in (self._sender, self._subscriber):
            for option, value in curve.items():
                socket.setsockopt(option, value)
            socket.setsockopt(zmq.LINGER, 0)
            self._handshakes.watch(socket)  # before connecting: no event is missed
        self._subscriber.setsockopt(zmq.SUBSCRIBE, self.identity)
        self._sender.connect(f"tcp://{ip}:{port}")
        self._subscriber.connect(f"tcp://{ip}:{port_out}")

    # ---- server facts -----------------------------------------------------------------

    async def server_config(self) -> dict:
        """The server's arguments and runtime facts (a fresh SHOW_CONFIG request)."""
        return await self._ask(SHOW_CONFIG)

    async def server_status(self) -> dict:
        """The server's statistics (a fresh SHOW_STATUS request)."""
        return await self._ask(SHOW_STATUS)

    @property
    def status(self) -> dict:
        """This client's own state, as JSON-friendly values."""
        return client_status(self, self._num_request, sorted(self._waiting))

    # ---- encoding ---------------------------------------------------------------------

    async def encode(
        self,
        texts: list,
        is_tokenized: bool = False,
        show_tokens: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Any:
        """The embedding of a list of str (or of token lists with is_tokenized=True), or
        `(embedding, tokens)` with show_tokens when the server sends tokens.

        Checked as by ``BertClient.encode``. A list longer than `chunk_size` goes as several
        requests, a few in flight at a time, joined in order. Raises
        AsyncBertClientTimeoutError after `timeout` ms without an answer (per request) and
        BertServerError when the server refuses the texts.
        """
        self._ensure_open()
        check_texts(texts, is_tokenized)
        await self._handshake()
        if self._check_length and self._config is not None:
            warn_if_too_long(texts, is_tokenized, self._config.get("max_seq_len"), stacklevel=2)
        with_tokens = show_tokens and server_sends_tokens(
            self._config, self._check_token_info, stacklevel=2
        )
        embedding, tokens = await self._encode_in_chunks(texts, chunk_size)
        if self.output_fmt == "list":
            embedding = embedding.tolist()
        return (embedding, tokens) if with_tokens else embedding

    # ---- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the sockets at once; pending encodes raise RuntimeError. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in (self._receiver, self._watcher):
            if task is not None:
                task.cancel()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(RuntimeError("the AsyncBertClient was closed"))
        self._waiting.clear()
        self._context.destroy(linger=0)

    async def __aenter__(self) -> AsyncBertClient:
        try:
            await self._handshake()
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        for task in (self._receiver, self._watcher):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # ---- internals --------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("this AsyncBertClient is closed")

    async def _handshake(self) -> None:
        """SHOW_CONFIG once, which also makes sure the server publishes to us already."""
        if not self._needs_handshake:
            return
        if self._handshake_lock is None:
            self._handshake_lock = asyncio.Lock()
        async with self._handshake_lock:
            if not self._needs_handshake:  # another task did it while this one waited
                return
            config = await self._ask(SHOW_CONFIG)
            if self._check_version:
                check_server_version(__version__, config.get("server_version"))
            self._config = config
            self._needs_handshake = False

    async def _encode_in_chunks(self, texts: list, chunk_size: int) -> tuple[np.ndarray, Any]:
        """Send the chunks, CHUNKS_IN_FLIGHT at a time, and join their answers in order."""
        limit = (self._config or {}).get("max_request_bytes")
        spans = chunk_spans(
            len(texts), chunk_size, lambda span: texts_payload(texts[span[0] : span[1]]), limit
        )
        slots = asyncio.Semaphore(CHUNKS_IN_FLIGHT)

        async def chunk(payload: bytes, num_texts: int) -> tuple[np.ndarray, Any]:
            try:
                return decode_encoding(await self._request(payload, num_texts), self.normalize)
            finally:
                slots.release()

        tasks: list[asyncio.Task] = []
        try:
            for (start, end), payload in spans:
                await slots.acquire()
                tasks.append(asyncio.ensure_future(chunk(payload, end - start)))
            answers = await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # after an error: the other chunks are not awaited any more
                task.cancel()
        tasks.clear()  # done tasks hold their results: join_rows frees each chunk once copied
        arrays, tokens = [array for array, _ in answers], [part for _, part in answers]
        del answers
        return join_rows(arrays), join_tokens(tokens)

    async def _request(self, payload: bytes, num_texts: int) -> Reply:
        """Send one encoding request and await its answer (within the timeout)."""
        request_id, answer = self._expect_answer()
        frames = request_frames(self.identity, payload, request_id, num_texts)
        try:
            return await self._within_timeout(
                self._send_then(frames, answer), f"no result for request {request_id}"
            )
        finally:
            self._waiting.pop(request_id, None)  # a late answer is then dropped

    async def _send_then(self, frames: list[bytes], answer: Awaitable[T]) -> T:
        await self._sender.send_multipart(frames)
        return await answer

    async def _ask(self, command: bytes) -> dict:
        """A config/status command, resent with back-off until one of the copies is
        answered (the first may be lost while the subscription is still on its way)."""
        self._ensure_open()
        answer: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        asked: list[int] = []

        async def ask_until_answered() -> dict:
            interval = FIRST_RESEND_AFTER_S
            while True:
                request_id, _ = self._expect_answer(answer)
                asked.append(request_id)
                await self._sender.send_multipart(
                    request_frames(self.identity, command, request_id, 0)
                )
                done, _ = await asyncio.wait({answer}, timeout=interval)
                if done:
                    return answer.result().header
                interval = min(2 * interval, MAX_RESEND_INTERVAL_S)

        limit_ms = self.timeout if self.timeout > 0 else DEFAULT_COMMAND_TIMEOUT_MS
        try:
            return await self._within_timeout(
                ask_until_answered(), f"no answer to {command.decode()}", limit_ms
            )
        finally:
            for request_id in asked:
                self._waiting.pop(request_id, None)

    def _expect_answer(
        self, answer: asyncio.Future[Reply] | None = None
    ) -> tuple[int, asyncio.Future[Reply]]:
        """A new request id whose answer will resolve ``answer`` (a new future by default);
        registered before the request is sent, so that no answer can come first."""
        self._ensure_open()  # closed while an encode was between its chunks
        self._ensure_receiving()
        if self._refusal is not None:  # until a later handshake succeeds
            raise self._refusal
        if answer is None:
            answer = asyncio.get_running_loop().create_future()
        self._num_request += 1
        self._waiting[self._num_request] = answer
        return self._num_request, answer

    async def _within_timeout(
        self, work: Awaitable[T], what: str, limit_ms: int | None = None
    ) -> T:
        limit_ms = self.timeout if limit_ms is None else limit_ms
        if limit_ms <= 0:
            return await work
        try:
            return await asyncio.wait_for(work, limit_ms / 1000)
        except asyncio.TimeoutError:
            raise AsyncBertClientTimeoutError(
                f"{what} within {limit_ms} ms from the bert-as-service server at {self.ip} "
                f"(port={self.port}, port_out={self.port_out}): is it running, busy, or on "
                "other ports?"
            ) from None

    def _ensure_receiving(self) -> None:
        if self._receiver is None:
            self._receiver = asyncio.ensure_future(self._receive_forever())
            self._receiver.add_done_callback(self._fail_waiting)
            self._watcher = asyncio.ensure_future(self._watch_handshakes())

    async def _watch_handshakes(self) -> None:
        """Read the sockets' handshake events; on a refusal, fail every waiting request
        with the HandshakeError that names the cause (the server never answers them)."""
        poller = zmq.asyncio.Poller()
        for monitor in self._handshakes.monitor_sockets:
            poller.register(monitor, zmq.POLLIN)
        while True:
            for monitor, _ in await poller.poll():
                event = parse_monitor_message(await monitor.recv_multipart())
                self._refusal = self._handshakes.record(monitor, event)
                if self._refusal is None:
                    continue
                for answer in self._waiting.values():
                    if not answer.done():
                        answer.set_exception(self._refusal)

    async def _receive_forever(self) -> None:
        """Hand every answer published to this identity to the future awaiting it."""
        while True:
            frames = await self._subscriber.recv_multipart()
            # a subscription matches by prefix: skip identities that merely start with ours
            if frames[0] != self.identity:
                continue
            try:
                reply = parse_reply(frames)
            except ValueError:  # not an answer of this protocol: nobody waits for it
                continue
            answer = self._waiting.pop(reply.request_id, None)
            if answer is not None and not answer.done():
                answer.set_result(reply)

    def _fail_waiting(self, receiver: asyncio.Task) -> None:
        """If receiving stops (closed sockets), nobody may wait for an answer forever."""
        error = None if receiver.cancelled() else receiver.exception()
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(
                    RuntimeError(f"the AsyncBertClient stopped receiving: {error}")
                )
