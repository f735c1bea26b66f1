"""The worker's compute thread: batches from the inbox in, answers out to the socket thread.

Encoding runs in its own thread so that the socket thread keeps beating while a batch
takes seconds: a worker that computes is never mistaken for a lost one, and one that
stops beating is really gone (stopped, cut off, or dead).
"""

from __future__ import annotations

import logging
import threading

import zmq

from ..protocol import Failure, Message, Result, pack_part_keys
from .inbox import SharedInbox, Task

ANSWERS_ENDPOINT = "inproc://worker-answers"


class ComputeThread(threading.Thread):
    """Encodes what the inbox holds; sends ``[session, *answer frames]`` to the socket
    thread over an inproc PAIR (the socket thread owns the socket to the front)."""

    def __init__(self, encoder, max_batch_size: int, current_part, logger: logging.Logger):
        super().__init__(name="worker-compute", daemon=True)
        self.encoder = encoder
        self.max_batch_size = max_batch_size
        self.current_part = current_part  # shared memory (local workers) or None
        self.logger = logger
        self.show_tokens = False  # set by the front's Welcome
        self.inbox: SharedInbox | None = None
        self.answers: zmq.Socket | None = None

    def attach(self, inbox: SharedInbox, context: zmq.Context) -> None:
        """Take parts from ``inbox``; bind the answers socket (before the reader connects)."""
        self.inbox = inbox
        self.answers = context.socket(zmq.PAIR)
        self.answers.bind(ANSWERS_ENDPOINT)

    def run(self) -> None:
        merge = not self.encoder.output_length_varies  # else a part's shape depends on others
        while True:
            taken = self.inbox.take_batch(self.max_batch_size, merge)
            if taken is None:
                return
            session, batch = taken
            if self.current_part is not None:
                self.current_part.value = pack_part_keys([task.part.key for task in batch])
            answers = encode_batch(self.encoder, batch, self.show_tokens, self.logger)
            if self.current_part is not None:
                self.current_part.value = b""
            for answer in answers:
                self.answers.send_multipart(
                    [str(session).encode(), *answer.to_frames()], copy=False
                )


def encode_batch(encoder, batch: list[Task], with_tokens: bool, logger) -> list[Message]:
    """One forward pass for the batch; a Result (or, for a part that fails, a Failure) each."""
    texts = [text for task in batch for text in task.texts]
    try:
        encoding = encoder.encode(texts, is_tokenized=batch[0].part.is_tokenized)
    except Exception as err:  # a bad part is answered as an error, the worker goes on
        if len(batch) > 1:  # find the culprit: the other parts must not fail with it
            return [
                answer
                for task in batch
                for answer in encode_batch(encoder, [task], with_tokens, logger)
            ]
        part = batch[0].part
        logger.exception("part %d of request %s failed", part.index, part.request_id.decode())
        message = f"encoding failed: {err}"
        return [Failure(part.job, part.client, part.request_id, message, part.index)]
    logger.debug("encoded %d texts of %d parts", len(texts), len(batch))
    answers, start = [], 0
    for task in batch:
        end = start + len(task.texts)
        tokens = encoding.tokens[start:end] if with_tokens else ""
        answers.append(Result.of(task.part, encoding.embeddings[start:end], tokens))
        start = end
    return answers
