"""A small bert-as-service 1.10-style server for client tests: real ZeroMQ, fake vectors.

It runs on a thread with a PULL socket for requests and a PUB socket for answers (plain
PUB, so the slow joiner is real), and can misbehave on demand: drop answers, answer out
of order, answer late, answer with errors, or never answer encodings.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from typing import Any

import numpy as np
import zmq

COMMANDS = (b"SHOW_CONFIG", b"SHOW_STATUS")
EMBEDDING_WIDTH = 4


def fake_embedding(texts: list, dtype: str = "float32") -> np.ndarray:
    """Row i = [characters of text i, two numbers from its CRC-32, i]: easy to check."""
    rows = []
    for index, text in enumerate(texts):
        joined = " ".join(text) if isinstance(text, list) else text
        digest = zlib.crc32(joined.encode("utf-8"))
        rows.append([len(joined), digest % 1000, (digest >> 10) % 1000, index])
    return np.asarray(rows, dtype=dtype)


def fake_tokens(texts: list) -> list[list[str]]:
    """What a server with -show_tokens_to_client would send: whitespace tokens + specials."""
    split = [text if isinstance(text, list) else text.split() for text in texts]
    return [["[CLS]", *tokens, "[SEP]"] for tokens in split]


# a stand-in speaking the 1.10 protocol: its config fields mirror the real answer's on purpose
class FakeServer:
    """Use as `with FakeServer(...) as server:`; connect a client to server.port/port_out.

    drop_first: publish nothing for the first N answers of any kind (slow joiner).
    reorder: hold encoding answers until N are held, then publish them in reverse order.
    delay: seconds to sleep before answering each encoding request.
    answer_encodings: False to never answer text requests (config/status still answered).
    error_word: texts containing it get the error answer {"error": ..., "status": 400}.
    """

    def __init__(
        self,
        server_version: str = "2.0.0",
        max_seq_len: int | None = 25,
        show_tokens_to_client: bool = False,
        dtype: str = "float32",
        drop_first: int = 0,
        reorder: int = 1,
        delay: float = 0.0,
        answer_encodings: bool = True,
        error_word: str = "BOOM",
    ) -> None:
        self.config = {
            "server_version": server_version,
            "max_seq_len": max_seq_len,
            "show_tokens_to_client": show_tokens_to_client,
            "pooling_strategy": "REDUCE_MEAN",
            "num_worker": 1,
        }
        self.dtype = dtype
        self.drop_first = drop_first
        self.reorder = reorder
        self.delay = delay
        self.answer_encodings = answer_encodings
        self.error_word = error_word
        self.requests: list[list[bytes]] = []
        self._held: list[list[bytes]] = []
        self._context = zmq.Context()
        self._pull = self._context.socket(zmq.PULL)
        self._pub = self._context.socket(zmq.PUB)
        for socket in (self._pull, self._pub):
            socket.setsockopt(zmq.LINGER, 0)
        self.port = self._pull.bind_to_random_port("tcp://127.0.0.1")
        self.port_out = self._pub.bind_to_random_port("tcp://127.0.0.1")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-bert-server", daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._context.destroy(linger=0)

    def encoding_requests(self) -> list[list[bytes]]:
        """The text requests received so far (commands left out)."""
        return [frames for frames in self.requests if frames[1] not in COMMANDS]

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self._pull.poll(20):
                frames = self._pull.recv_multipart()
                self.requests.append(frames)
                self._answer(frames)

    def _answer(self, frames: list[bytes]) -> None:
        identity, payload, request_id = frames[0], frames[1], frames[2]
        if payload in COMMANDS:
            content = dict(self.config)
            if payload == b"SHOW_STATUS":
                content["statistic"] = {"num_total_request": len(self.requests)}
            self._publish([identity, json.dumps(content).encode(), request_id])
            return
        if not self.answer_encodings:
            return
        time.sleep(self.delay)
        self._held.append(self._encoding_answer(identity, json.loads(payload), request_id))
        if len(self._held) >= self.reorder:
            for answer in reversed(self._held):
                self._publish(answer)
            self._held.clear()

    def _encoding_answer(self, identity: bytes, texts: list, request_id: bytes) -> list[bytes]:
        for index, text in enumerate(texts):
            if self.error_word in (" ".join(text) if isinstance(text, list) else text):
                header = {"error": f"texts[{index}] is not welcome here", "status": 400}
                return [identity, json.dumps(header).encode(), b"", request_id]
        array = fake_embedding(texts, self.dtype)
        tokens: Any = fake_tokens(texts) if self.config["show_tokens_to_client"] else ""
        header = {"dtype": str(array.dtype), "shape": list(array.shape), "tokens": tokens}
        return [identity, json.dumps(header).encode(), array.tobytes(), request_id]

    def _publish(self, frames: list[bytes]) -> None:
        if self.drop_first > 0:
            self.drop_first -= 1
            return
        self._pub.send_multipart(frames)
