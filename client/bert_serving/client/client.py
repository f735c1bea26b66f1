"""BertClient: send texts to a bert-as-service server and receive their embeddings."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Iterable, Iterator, List, NamedTuple, Union

import numpy as np
import zmq

from . import __version__
from .batch_sender import BatchSender
from .checks import check_server_version, check_texts, server_sends_tokens, warn_if_too_long
from .chunks import chunk_spans, join_rows, join_tokens
from .deadlines import deadline_after, earliest, has_passed
from .errors import BertClientTimeoutError
from .handshake import HandshakeWatch, WatchedSocket
from .mailbox import Mailbox
from .progress import progress_bar
from .protocol import (
    SHOW_CONFIG,
    SHOW_STATUS,
    Reply,
    decode_encoding,
    request_frames,
    texts_payload,
)
from .security import KeySource, curve_client_options

OUTPUT_FORMATS = ("ndarray", "list")
# config/status requests are bounded even with timeout=-1: a missing server must not hang us
DEFAULT_COMMAND_TIMEOUT_MS = 30_000
# resend a config/status request whose answer may be lost (the slow joiner): soon at
# first, then backing off to once a second
FIRST_RESEND_AFTER_S = 0.1
MAX_RESEND_INTERVAL_S = 1.0
# a blocking encode of more texts than this is sent as several requests
DEFAULT_CHUNK_SIZE = 4096
# chunks sent ahead of the answers: the server always has the next one queued
CHUNKS_IN_FLIGHT = 3

Embedding = Union[np.ndarray, List[Any]]


class Response(NamedTuple):
    """One fetched result: the request id, its embedding and the server's tokens (or "")."""

    id: int
    embedding: Embedding
    tokens: Any


class BertClient:
    """A connection to one bert-as-service server (1.10 protocol).

    Not thread-safe: use one BertClient per thread, or a ConcurrentBertClient.
    `timeout` is in milliseconds; <= 0 waits forever for encodings, while config and
    status requests always give up after DEFAULT_COMMAND_TIMEOUT_MS at most.
    `ignore_all_checks` skips the config handshake, which is also what makes sure the
    server already publishes to us: an immediate first request may then lose its answer.
    `curve_server_key` (the server's public key: Z85 text or a zmq.auth key file) turns on
    CURVE encryption; `curve_client_keys` (this client's .key_secret file or a
    (public, secret) pair) is needed when the server only accepts listed client keys.
    `normalize` divides every vector by its length on arrival (unit-length vectors, as a
    server started with -normalize sends them).
    """

    def __init__(
        self,
        ip: str = "localhost",
        port: int = 5555,
        port_out: int = 5556,
        output_fmt: str = "ndarray",
        show_server_config: bool = False,
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
        self._check_length = check_length and not ignore_all_checks
        self._check_token_info = check_token_info and not ignore_all_checks
        self._num_request = 0
        self._send_lock = threading.Lock()
        self._batch_sender: BatchSender | None = None
        self._closed = False
        curve = curve_client_options(curve_server_key, curve_client_keys)
        self._context = zmq.Context()
        # a refused handshake (CURVE settings that differ) raises HandshakeError from waits
        handshakes = HandshakeWatch(uses_curve=bool(curve))
        self._sender = self._context.socket(zmq.PUSH)
        for option, value in curve.items():
            self._sender.setsockopt(option, value)
        self._sender.setsockopt(zmq.LINGER, 0)
        if timeout > 0:
            self._sender.setsockopt(zmq.SNDTIMEO, timeout)
        handshakes.watch(self._sender)
        self._sender.connect(f"tcp://{ip}:{port}")
        receiver = self._context.socket(zmq.SUB)
        for option, value in curve.items():
            receiver.setsockopt(option, value)
        receiver.setsockopt(zmq.LINGER, 0)
        receiver.setsockopt(zmq.SUBSCRIBE, self.identity)
        handshakes.watch(receiver)
        receiver.connect(f"tcp://{ip}:{port_out}")
        self._mailbox = Mailbox(WatchedSocket(receiver, handshakes), self.identity)
        self._config: dict | None = None
        if not ignore_all_checks:
            try:
                self._config = self.server_config
                if check_version:
                    check_server_version(__version__, self._config.get("server_version"))
            except BaseException:
                self.close()
                raise
            if show_server_config:
                _print_config(self._config)

    # ---- properties -------------------------------------------------------------------

    @property
    def server_config(self) -> dict:
        """The server's arguments and runtime facts (a fresh SHOW_CONFIG request)."""
        return self._ask(SHOW_CONFIG)

    @property
    def server_status(self) -> dict:
        """The server's statistics (a fresh SHOW_STATUS request)."""
        return self._ask(SHOW_STATUS)

    @property
    def status(self) -> dict:
        """This client's own state, as JSON-friendly values."""
        return client_status(self, self._num_request, self._mailbox.pending_ids())

    # ---- encoding ---------------------------------------------------------------------

    def encode(
        self,
        texts: list,
        blocking: bool = True,
        is_tokenized: bool = False,
        show_tokens: bool = False,
        show_progress: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Any:
        """Encode a list of str (or of token lists with is_tokenized=True).

        Blocking: returns the embedding, or `(embedding, tokens)` with show_tokens when the
        server sends tokens. A list longer than `chunk_size` is sent as several requests, a
        few at a time, and joined in order; `show_progress` draws a progress bar (tqdm's if
        installed). Non-blocking: sends one request and returns None; take the result with
        fetch/fetch_all.
        """
        self._ensure_open()
        check_texts(texts, is_tokenized)
        if self._check_length and self._config is not None:
            warn_if_too_long(texts, is_tokenized, self._config.get("max_seq_len"), stacklevel=2)
        with_tokens = show_tokens and self._server_sends_tokens()
        if blocking and (len(texts) > chunk_size or show_progress):
            embedding, tokens = self._encode_in_chunks(texts, chunk_size, show_progress)
            return (embedding, tokens) if with_tokens else embedding
        request_id = self._send(texts_payload(texts), len(texts), expect_encoding=True)
        if not blocking:
            return None
        reply = self._mailbox.wait_for_encoding(request_id, deadline_after(self.timeout))
        if reply is None:
            self._mailbox.forget(request_id)  # a late answer must not be mistaken for another
            raise self._timeout_error(f"no result for request {request_id}", self.timeout)
        response = self._to_response(reply)
        return (response.embedding, response.tokens) if with_tokens else response.embedding

    def encode_async(
        self,
        batch_generator: Iterable[list],
        max_num_batch: int | None = None,
        delay: float = 0.1,
        **kwargs: Any,
    ) -> Iterator[Response]:
        """Send batches from a background thread and return the fetch(delay) generator.

        `kwargs` go to encode (is_tokenized, show_tokens). If the sender fails (e.g. a bad
        batch), fetching yields what was sent and then raises that error.
        """
        self._ensure_open()
        if self._batch_sender is not None and not self._batch_sender.done:
            raise RuntimeError("the previous encode_async of this client is still sending")
        self._batch_sender = BatchSender(
            lambda batch: self.encode(batch, blocking=False, **kwargs),
            batch_generator,
            max_num_batch,
        )
        self._batch_sender.start()
        return self.fetch(delay)

    def fetch(self, delay: float = 0.0) -> Iterator[Response]:
        """Yield a Response for every pending request, in arrival order.

        `delay` (seconds) pauses before each receive, as in 1.10. Keeps going while an
        encode_async sender is still sending. Raises BertServerError for a failed request.
        """
        for reply in self._pending_replies(delay):
            yield self._to_response(reply)

    def fetch_all(self, sort: bool = True, concat: bool = False) -> list | Embedding | None:
        """Wait for all pending requests; their embeddings (by request id when `sort`).

        `concat` joins them along axis 0. None when nothing is pending. If some request
        failed, everything is still received first, then the first BertServerError raised.
        """
        replies = list(self._pending_replies(delay=0.0))
        if not replies:
            return None
        if sort:
            replies.sort(key=lambda reply: reply.request_id)
        embeddings = [self._to_response(reply).embedding for reply in replies]
        if not concat:
            return embeddings
        if self.output_fmt == "ndarray":
            return np.concatenate(embeddings, axis=0)
        return [row for embedding in embeddings for row in embedding]

    def listen(self) -> Iterator[Embedding]:
        """Yield the embedding of every result published to this identity, forever.

        Meant for clones created with `identity=` of another client ("multicast").
        """
        self._ensure_open()
        while True:
            reply = self._mailbox.next_published(deadline_after(self.timeout))
            if reply is None:
                raise self._timeout_error("nothing published to this identity", self.timeout)
            yield self._to_response(reply).embedding

    def abandon_pending(self) -> None:
        """Stop an encode_async sender and forget pending requests (late results are dropped)."""
        if self._batch_sender is not None:
            self._batch_sender.stop()
        self._mailbox.forget_all()

    # ---- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the sockets at once (unsent requests are dropped). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._batch_sender is not None:
            self._batch_sender.stop()
        self._context.destroy(linger=0)

    def __enter__(self) -> BertClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- internals --------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("this BertClient is closed")

    def _send(self, payload: bytes, num_texts: int, expect_encoding: bool) -> int:
        """Send one request and return its id (ids count 1, 2, 3, ... per client)."""
        with self._send_lock:
            self._num_request += 1
            request_id = self._num_request
            if expect_encoding:
                self._mailbox.expect(request_id)
            frames = request_frames(self.identity, payload, request_id, num_texts)
            try:
                self._sender.send_multipart(frames)
            except zmq.Again:
                self._mailbox.forget(request_id)
                error = self._timeout_error(f"could not send request {request_id}", self.timeout)
                raise error from None
            return request_id

    def _encode_in_chunks(
        self, texts: list, chunk_size: int, show_progress: bool
    ) -> tuple[Embedding, Any]:
        """Send chunks CHUNKS_IN_FLIGHT at a time; join their answers in order."""
        limit = (self._config or {}).get("max_request_bytes")
        spans = chunk_spans(
            len(texts), chunk_size, lambda span: texts_payload(texts[span[0] : span[1]]), limit
        )
        in_flight: dict[int, int] = {}  # request id -> chunk number
        arrays: list[np.ndarray] = []
        tokens: list[Any] = []
        bar = progress_bar(len(texts), show_progress)
        try:
            for (start, end), payload in spans:
                in_flight[self._send(payload, end - start, expect_encoding=True)] = len(arrays)
                arrays.append(np.empty(0))
                tokens.append("")
                while len(in_flight) >= CHUNKS_IN_FLIGHT:
                    self._receive_chunk(in_flight, arrays, tokens, bar)
            while in_flight:
                self._receive_chunk(in_flight, arrays, tokens, bar)
        finally:
            bar.close()
            for request_id in in_flight:  # after an error: drop the other chunks' answers
                self._mailbox.forget(request_id)
        embedding = join_rows(arrays)
        return (embedding.tolist() if self.output_fmt == "list" else embedding), join_tokens(tokens)

    def _receive_chunk(
        self, in_flight: dict[int, int], arrays: list, tokens: list, bar: Any
    ) -> None:
        reply = self._mailbox.wait_for_encodings(in_flight, deadline_after(self.timeout))
        if reply is None:
            raise self._timeout_error("no result for a chunk of a large encode", self.timeout)
        chunk = in_flight.pop(reply.request_id)
        arrays[chunk], tokens[chunk] = decode_encoding(reply, self.normalize)
        bar.update(len(arrays[chunk]))

    def _ask(self, command: bytes) -> dict:
        """Send a config/status command, resending until an answer to any of them arrives."""
        self._ensure_open()
        limit_ms = self.timeout if self.timeout > 0 else DEFAULT_COMMAND_TIMEOUT_MS
        deadline = deadline_after(limit_ms)
        asked: set[int] = set()
        interval = FIRST_RESEND_AFTER_S
        while True:
            asked.add(self._send(command, 0, expect_encoding=False))
            resend_at = time.monotonic() + interval
            interval = min(2 * interval, MAX_RESEND_INTERVAL_S)
            reply = self._mailbox.wait_for_command(asked, earliest(deadline, resend_at))
            if reply is not None:
                return reply.header
            if has_passed(deadline):
                raise self._timeout_error(f"no answer to {command.decode()}", limit_ms)

    def _pending_replies(self, delay: float) -> Iterator[Reply]:
        """Raw answers to every pending request, including those an async sender adds."""
        self._ensure_open()
        sender = self._batch_sender
        while True:
            if sender is not None:
                sender.wait_for_work(self._mailbox.has_pending)
            if not self._mailbox.has_pending():
                break
            if delay > 0:
                time.sleep(delay)
            reply = self._mailbox.next_pending(deadline_after(self.timeout))
            if reply is None:
                raise self._timeout_error("no result for the pending requests", self.timeout)
            yield reply
        if sender is not None and sender.error is not None:
            error, sender.error = sender.error, None
            raise error

    def _server_sends_tokens(self) -> bool:
        return server_sends_tokens(self._config, self._check_token_info, stacklevel=3)

    def _to_response(self, reply: Reply) -> Response:
        embedding, tokens = decode_encoding(reply, self.normalize)
        if self.output_fmt == "list":
            return Response(reply.request_id, embedding.tolist(), tokens)
        return Response(reply.request_id, embedding, tokens)

    def _timeout_error(self, what: str, waited_ms: int) -> BertClientTimeoutError:
        return BertClientTimeoutError(
            f"{what} from the bert-as-service server at {self.ip} (port={self.port}, "
            f"port_out={self.port_out}) within {waited_ms} ms: the server may not be running "
            "or may be busy, or the ports may be wrong"
        )


def client_status(client: Any, num_request: int, pending: list[int]) -> dict:
    """The ``status`` of a BertClient or an AsyncBertClient."""
    return {
        "identity": client.identity.decode("utf-8", errors="replace"),
        "num_request": num_request,
        "num_pending_request": len(pending),
        "pending_request": pending,
        "output_fmt": client.output_fmt,
        "port": client.port,
        "port_out": client.port_out,
        "server_ip": client.ip,
        "client_version": __version__,
        "timeout": client.timeout,
    }


def _as_identity(identity: str | bytes | None) -> bytes:
    """bytes for the SUB subscription; a random UUID4 (its ASCII text) by default."""
    if identity is None:
        return str(uuid.uuid4()).encode("ascii")
    if isinstance(identity, str):
        return identity.encode("utf-8")
    return bytes(identity)


def _print_config(config: dict) -> None:
    print("server config:")
    for key in sorted(config):
        print(f"{key:>30} = {config[key]}")
