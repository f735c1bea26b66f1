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

from .devices import gpu_memory_limit_mb, worker_environment
from .logger import get_logger
from .model.settings import EncoderSettings, ModelLocation
from .network import ParentWatch
from .processes import spawn
from .protocol import Done, Failure, Message, Part, Ready, Result, Stop, decode, pack_part_keys

PARENT_CHECK_MS = 1000  # an idle worker checks this often that the server still exists


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker of a server needs from the start arguments, built once."""

    model: ModelLocation
    encoder: EncoderSettings
    prefetch_size: int
    max_batch_size: int
    show_tokens_to_client: bool
    gpu_memory_fraction: float
    verbose: bool

    @classmethod
    def from_args(cls, args) -> WorkerSettings:
        return cls(
            ModelLocation.from_args(args),
            EncoderSettings.from_args(args),
            args.prefetch_size,
            args.max_batch_size,
            args.show_tokens_to_client,
            args.gpu_memory_fraction,
            args.verbose,
        )


@dataclass(frozen=True)
class WorkerPlacement:
    """Which worker this process is, and where it runs."""

    worker_id: int
    identity: bytes  # its socket identity, new for each replacement
    device_id: int  # -1 for the CPU
    num_cpu_workers: int  # CPU workers of this host, which share its cores


@dataclass(frozen=True)
class WorkerAddresses:
    ventilator: str  # ROUTER of the ventilator: parts in, READY/DONE out
    sink: str  # PULL of the sink: results out


def run_worker(
    settings: WorkerSettings,
    placement: WorkerPlacement,
    addresses: WorkerAddresses,
    current_part,
    startup,
) -> None:
    """Process entry point (spawned): load the model, report to ``startup``, serve parts."""
    os.environ.update(worker_environment(placement.device_id, settings.verbose))
    logger = get_logger(f"WORKER-{placement.worker_id}", settings.verbose)
    try:
        encoder = _load_encoder(settings, placement, logger)
    except Exception as err:  # anything that stops loading is reported, not raised into the void
        logger.error("cannot start: %s", err)
        startup.send(("error", f"worker {placement.worker_id}: {err}"))
        return
    startup.send(("ready", placement.worker_id))
    logger.info(
        "ready on %s, computing in %s",
        "CPU" if placement.device_id < 0 else f"GPU {placement.device_id}",
        encoder.compute_dtype.name,
    )
    _serve(placement.identity, encoder, settings, addresses, current_part, logger)


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


def _configure_devices(tf, placement: WorkerPlacement, gpu_memory_fraction: float) -> None:
    """Threads or GPU memory, set before TensorFlow's runtime starts (it cannot change later)."""
    if placement.device_id < 0:  # share the cores between CPU workers, do not oversubscribe
        threads = max(1, (os.cpu_count() or 1) // max(1, placement.num_cpu_workers))
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        return
    limit = gpu_memory_limit_mb(placement.device_id, gpu_memory_fraction)
    for gpu in tf.config.list_physical_devices("GPU"):
        if limit:
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)]
            )
        else:
            tf.config.experimental.set_memory_growth(gpu, True)


def _load_encoder(settings: WorkerSettings, placement: WorkerPlacement, logger):
    with _native_stderr_silenced(not settings.verbose):
        import tensorflow as tf

        _configure_devices(tf, placement, settings.gpu_memory_fraction)
        tf.constant(0)  # the notes come at the first op, too

    from .model.encoder import SentenceEncoder

    spec = settings.model.inspect()  # checked and logged once by the ventilator already
    encoder = SentenceEncoder(spec, settings.encoder, logger=logger)
    started = time.monotonic()
    shapes = encoder.warm_up()
    if settings.encoder.xla:  # say what compiling up front costs: requests never pay it
        logger.info("XLA: compiled %d shapes in %.1f s", shapes, time.monotonic() - started)
    return encoder


@dataclass
class Task:
    """A part from the ventilator, its texts parsed once, when it arrives."""

    part: Part
    texts: list

    @classmethod
    def of(cls, part: Part) -> Task:
        return cls(part, json.loads(part.payload))

    def can_join(self, other: Task) -> bool:
        """Parts share a forward pass when both are of one kind and neither is suspect."""
        return (
            not self.part.suspect
            and not other.part.suspect
            and self.part.is_tokenized == other.part.is_tokenized
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

    def put(self, part: Part) -> None:
        (self.priority if part.priority else self.normal).append(Task.of(part))

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
    identity: bytes,
    encoder,
    settings: WorkerSettings,
    addresses: WorkerAddresses,
    current_part,
    logger,
) -> None:
    """Encode parts until Stop. ``current_part`` (shared memory) names the parts being
    encoded, so that if this process dies on them, the ventilator knows which to blame."""
    context = zmq.Context()
    jobs = context.socket(zmq.DEALER)
    jobs.setsockopt(zmq.IDENTITY, identity)
    jobs.setsockopt(zmq.LINGER, 0)
    jobs.connect(addresses.ventilator)
    results = context.socket(zmq.PUSH)
    results.setsockopt(zmq.LINGER, 2000)
    results.connect(addresses.sink)
    jobs.send_multipart(Ready(settings.prefetch_size).to_frames())
    inbox = Inbox()
    merge = not encoder.output_length_varies  # else a part's shape would depend on others
    parent = ParentWatch()
    try:
        while True:
            # wait only when there is nothing to do, then take everything that arrived
            if not inbox:
                while not jobs.poll(PARENT_CHECK_MS):
                    if parent.gone():
                        logger.warning("the server process is gone, exiting")
                        return
            while True:
                try:
                    message = decode(jobs.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
                if isinstance(message, Stop):
                    logger.info("stopping")
                    return
                inbox.put(message)
            batch = inbox.take_batch(settings.max_batch_size, merge)
            current_part.value = pack_part_keys([task.part.key for task in batch])
            for answer in _encode_batch(encoder, batch, settings.show_tokens_to_client, logger):
                results.send_multipart(answer.to_frames(), copy=False)
            current_part.value = b""
            for task in batch:
                jobs.send_multipart(Done(*task.part.key).to_frames())
    finally:
        jobs.close()
        results.close()
        context.term()


def _encode_batch(encoder, batch: list[Task], with_tokens: bool, logger) -> list[Message]:
    """One forward pass for the batch; a Result (or, for a part that fails, a Failure) each."""
    texts = [text for task in batch for text in task.texts]
    try:
        encoding = encoder.encode(texts, is_tokenized=batch[0].part.is_tokenized)
    except Exception as err:  # a bad part is answered as an error, the worker goes on
        if len(batch) > 1:  # find the culprit: the other parts must not fail with it
            return [
                answer
                for task in batch
                for answer in _encode_batch(encoder, [task], with_tokens, logger)
            ]
        part = batch[0].part
        logger.exception("part %d of request %s failed", part.index, part.request_id.decode())
        return [Failure(part.job, part.client, part.request_id, f"encoding failed: {err}")]
    logger.debug("encoded %d texts of %d parts", len(texts), len(batch))
    answers, start = [], 0
    for task in batch:
        end = start + len(task.texts)
        tokens = encoding.tokens[start:end] if with_tokens else ""
        answers.append(Result.of(task.part, encoding.embeddings[start:end], tokens))
        start = end
    return answers


def start_worker(
    settings: WorkerSettings, placement: WorkerPlacement, addresses: WorkerAddresses, current_part
):
    """Spawn a worker; return (process, startup pipe)."""
    return spawn(
        run_worker,
        (settings, placement, addresses, current_part),
        f"WORKER-{placement.worker_id}",
    )
