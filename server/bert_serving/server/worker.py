"""A BERT worker: one process per device, pulling parts from the ventilator.

The worker announces how many parts it may hold (``-prefetch_size``) and sends DONE after
each, so the ventilator hands work only to workers with room for it. That keeps the queue,
and with it the priority order, in the ventilator instead of in socket buffers.
"""

from __future__ import annotations

import json
import os
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
    logger.info("ready on %s", "CPU" if device_id < 0 else f"GPU {device_id}")
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
    encoder.warm_up()
    return encoder


class Inbox:
    """Parts a worker holds (up to -prefetch_size), priority parts first.

    The ventilator may have handed this worker several parts before a small request came
    in; taking priority parts first here keeps the queue-jumping promise within one batch.
    """

    def __init__(self) -> None:
        self.priority: deque[list[bytes]] = deque()
        self.normal: deque[list[bytes]] = deque()

    def put(self, frames: list[bytes]) -> None:
        (self.priority if b"p" in frames[4] else self.normal).append(frames)

    def __len__(self) -> int:
        return len(self.priority) + len(self.normal)

    def take(self) -> list[bytes]:
        return (self.priority or self.normal).popleft()


def _serve(
    identity: bytes, encoder, args, addresses: WorkerAddresses, current_part, logger
) -> None:
    """Encode parts until STOP. ``current_part`` (shared memory) names the part being encoded,
    so that if this process dies on it, the ventilator knows which part to blame."""
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
            part = inbox.take()
            current_part.value = part_slot_value(part[0], part[3])
            results.send_multipart(
                _encode_part(encoder, part, args.show_tokens_to_client, logger), copy=False
            )
            current_part.value = b""
            jobs.send_multipart([protocol.DONE, part[0], part[3]])
    finally:
        jobs.close()
        results.close()
        context.term()


def _encode_part(encoder, frames: list[bytes], with_tokens: bool, logger) -> list[bytes]:
    job, client, request_id, part, flags, payload = frames
    texts = json.loads(payload)
    try:
        encoding = encoder.encode(texts, is_tokenized=b"t" in flags)
    except Exception as err:  # a bad part is answered as an error, the worker goes on
        logger.exception("part %s of request %s failed", part.decode(), request_id.decode())
        return [protocol.ERROR, job, client, request_id, f"encoding failed: {err}".encode()]
    logger.debug("encoded %d texts of request %s", len(texts), request_id.decode())
    tokens = encoding.tokens if with_tokens else ""
    return [
        protocol.RESULT,
        job,
        client,
        request_id,
        part,
        *protocol.pack_array(encoding.embeddings, tokens),
    ]


def part_slot_value(job: bytes, part: bytes) -> bytes:
    """What the shared slot holds while a part is encoded: its job and index, in ASCII."""
    return job + b" " + part


def part_from_slot(value: bytes) -> tuple[bytes, bytes] | None:
    """The (job, index) key of the part a worker was encoding, or None if it was idle."""
    if not value:
        return None
    job, part = value.split(b" ")
    return job, part


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
