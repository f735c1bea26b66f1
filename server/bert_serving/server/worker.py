"""A BERT worker: one process per device, pulling parts from the ventilator.

The worker announces how many parts it may hold (``-prefetch_size``) and sends DONE after
each, so the ventilator hands work only to workers with room for it. That keeps the queue,
and with it the priority order, in the ventilator instead of in socket buffers.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass

import zmq

from . import protocol
from .devices import gpu_memory_limit_mb, worker_environment
from .logger import get_logger
from .processes import spawn

PARENT_CHECK_MS = 1000  # an idle worker checks this often that the server still exists


@dataclass(frozen=True)
class WorkerAddresses:
    ventilator: str  # ROUTER of the ventilator: parts in, READY/DONE out
    sink: str  # PULL of the sink: results out


def run_worker(
    worker_id: int,
    identity: bytes,
    device_id: int,
    args,
    addresses: WorkerAddresses,
    num_cpu_workers: int,
    current_part,
    startup,
) -> None:
    """Process entry point (spawned): load the model, report to ``startup``, serve parts."""
    os.environ.update(worker_environment(device_id, args.verbose))
    logger = get_logger(f"WORKER-{worker_id}", args.verbose)
    try:
        encoder = _load_encoder(args, device_id, num_cpu_workers, logger)
    except Exception as err:  # anything that stops loading is reported, not raised into the void
        logger.error("cannot start: %s", err)
        startup.send(("error", f"worker {worker_id}: {err}"))
        return
    startup.send(("ready", worker_id))
    logger.info(
        "ready on %s, computing in %s",
        "CPU" if device_id < 0 else f"GPU {device_id}",
        encoder.execution,
    )
    _serve(identity, encoder, args, addresses, current_part, logger)


@contextmanager
def _native_stderr_silenced(silence: bool):
    """TensorFlow's C++ start-up notes bypass TF_CPP_MIN_LOG_LEVEL; hide them unless -verbose."""
    if not silence:
        yield
        return
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _configure_devices(tf, args, device_id: int, num_cpu_workers: int) -> None:
    """Threads or GPU memory, set before TensorFlow's runtime starts (it cannot change later)."""
    if device_id < 0:  # share the cores between the CPU workers instead of oversubscribing them
        threads = max(1, (os.cpu_count() or 1) // max(1, num_cpu_workers))
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        return
    limit = gpu_memory_limit_mb(device_id, args.gpu_memory_fraction)
    for gpu in tf.config.list_physical_devices("GPU"):
        if limit:
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)]
            )
        else:
            tf.config.experimental.set_memory_growth(gpu, True)


def _load_encoder(args, device_id: int, num_cpu_workers: int, logger):
    with _native_stderr_silenced(not args.verbose):
        import tensorflow as tf

        _configure_devices(tf, args, device_id, num_cpu_workers)
        tf.constant(0)  # the notes come at the first op, too

    from .model.checkpoint import inspect_model
    from .model.encoder import EncoderSettings, SentenceEncoder

    # checked and logged once by the ventilator already
    spec = inspect_model(args.model_dir, args.tuned_model_dir, args.ckpt_name, args.config_name)
    encoder = SentenceEncoder(spec, EncoderSettings.from_args(args), logger=logger)
    started = time.monotonic()
    shapes = encoder.warm_up()
    if args.xla:  # say what compiling up front costs: requests never pay it
        logger.info("XLA: compiled %d shapes in %.1f s", shapes, time.monotonic() - started)
    return encoder


@dataclass
class Task:
    """A part from the ventilator, its texts parsed once, when it arrives."""

    frames: list[bytes]  # job, client, request id, part index, flags, rows, payload
    texts: list

    @classmethod
    def from_frames(cls, frames: list[bytes]) -> Task:
        return cls(frames, json.loads(frames[6]))

    @property
    def key(self) -> tuple[bytes, bytes]:
        return self.frames[0], self.frames[3]

    @property
    def flags(self) -> bytes:
        return self.frames[4]

    def can_join(self, other: Task) -> bool:
        """Parts share a forward pass when both are of one kind and neither is suspect."""
        return b"s" not in self.flags + other.flags and (b"t" in self.flags) == (
            b"t" in other.flags
        )


class Inbox:
    """Parts a worker holds (up to -prefetch_size), priority parts first.

    The ventilator may have handed this worker several parts before a small request came
    in; taking priority parts first here keeps the queue-jumping promise within one batch.
    Parts waiting together are encoded together (up to -max_batch_size texts): one forward
    pass over many clients' texts, sorted by length, pads less than one per part.
    """

    def __init__(self) -> None:
        self.priority: deque[Task] = deque()
        self.normal: deque[Task] = deque()

    def put(self, frames: list[bytes]) -> None:
        task = Task.from_frames(frames)
        (self.priority if b"p" in task.flags else self.normal).append(task)

    def __len__(self) -> int:
        return len(self.priority) + len(self.normal)

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


def _serve(
    identity: bytes, encoder, args, addresses: WorkerAddresses, current_part, logger
) -> None:
    """Encode parts until STOP. ``current_part`` (shared memory) names the parts being
    encoded, so that if this process dies on them, the ventilator knows which to blame."""
    context = zmq.Context()
    jobs = context.socket(zmq.DEALER)
    jobs.setsockopt(zmq.IDENTITY, identity)
    jobs.setsockopt(zmq.LINGER, 0)
    jobs.connect(addresses.ventilator)
    results = context.socket(zmq.PUSH)
    results.setsockopt(zmq.LINGER, 2000)
    results.connect(addresses.sink)
    jobs.send_multipart([protocol.READY, str(args.prefetch_size).encode()])
    inbox = Inbox()
    merge = not encoder.output_length_varies  # else a part's shape would depend on others
    parent = os.getppid()
    try:
        while True:
            # wait only when there is nothing to do, then take everything that arrived
            if not inbox:
                while not jobs.poll(PARENT_CHECK_MS):
                    if os.getppid() != parent:
                        logger.warning("the server process is gone, exiting")
                        return
            flags = zmq.NOBLOCK
            while True:
                try:
                    frames = jobs.recv_multipart(flags)
                except zmq.Again:
                    break
                if frames[0] == protocol.STOP:
                    logger.info("stopping")
                    return
                inbox.put(frames)
            batch = inbox.take_batch(args.max_batch_size, merge)
            current_part.value = parts_slot_value([task.key for task in batch])
            for answer in _encode_batch(encoder, batch, args.show_tokens_to_client, logger):
                results.send_multipart(answer, copy=False)
            current_part.value = b""
            for task in batch:
                jobs.send_multipart([protocol.DONE, *task.key])
    finally:
        jobs.close()
        results.close()
        context.term()


def _encode_batch(encoder, batch: list[Task], with_tokens: bool, logger) -> list[list[bytes]]:
    """One forward pass for the batch; a RESULT (or, for a part that fails, an ERROR) each."""
    texts = [text for task in batch for text in task.texts]
    try:
        encoding = encoder.encode(texts, is_tokenized=b"t" in batch[0].flags)
    except Exception as err:  # a bad part is answered as an error, the worker goes on
        if len(batch) > 1:  # find the culprit: the other parts must not fail with it
            return [
                answer
                for task in batch
                for answer in _encode_batch(encoder, [task], with_tokens, logger)
            ]
        job, client, request_id, part = batch[0].frames[:4]
        logger.exception("part %s of request %s failed", part.decode(), request_id.decode())
        return [[protocol.ERROR, job, client, request_id, f"encoding failed: {err}".encode()]]
    logger.debug("encoded %d texts of %d parts", len(texts), len(batch))
    answers, start = [], 0
    for task in batch:
        end = start + len(task.texts)
        tokens = encoding.tokens[start:end] if with_tokens else ""
        job, client, request_id, part, _, rows = task.frames[:6]
        answers.append(
            [
                protocol.RESULT,
                job,
                client,
                request_id,
                part,
                rows,
                *protocol.pack_array(encoding.embeddings[start:end], tokens),
            ]
        )
        start = end
    return answers


def parts_slot_value(keys: list[tuple[bytes, bytes]]) -> bytes:
    """What the shared slot holds while parts are encoded: their jobs and indices, in ASCII."""
    return b";".join(job + b" " + part for job, part in keys)


def parts_from_slot(value: bytes) -> list[tuple[bytes, bytes]]:
    """The (job, index) keys of the parts a worker was encoding; empty if it was idle."""
    return [tuple(key.split(b" ")) for key in value.split(b";") if key]


def start_worker(
    worker_id: int,
    identity: bytes,
    device_id: int,
    args,
    addresses: WorkerAddresses,
    num_cpu_workers: int,
    current_part,
):
    """Spawn a worker; return (process, startup pipe)."""
    return spawn(
        run_worker,
        (worker_id, identity, device_id, args, addresses, num_cpu_workers, current_part),
        f"WORKER-{worker_id}",
    )
