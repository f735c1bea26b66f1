"""A worker process: load the encoder on its device, then serve fronts until told to stop.

The same code runs a server's local workers (children, over ipc) and the workers of
``bert-serving-worker`` on other hosts (over TCP): each registers with its front, which
checks that it computes the same vectors, announces how many parts it may hold
(``-prefetch_size``) and returns a credit with each answer, so the queue, and with it the
priority order, stays in the front instead of in socket buffers.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import socket
import time
from contextlib import contextmanager

import zmq

from ..devices import gpu_memory_limit_mb, worker_environment
from ..logger import get_logger
from ..network import ParentWatch
from ..processes import spawn
from ..protocol import Hello
from .compute import ANSWERS_ENDPOINT, ComputeThread
from .inbox import SharedInbox
from .session import Backoff, Membership, Outcome, Session, session_identity
from .settings import FrontAddress, WorkerPlacement, WorkerSettings

EXIT_REFUSED = 3  # the exit code of a worker the front refused (its vectors would differ)


def run_worker(
    settings: WorkerSettings,
    placement: WorkerPlacement,
    front: FrontAddress,
    timeout: float,
    current_part,
    startup,
) -> None:
    """Process entry point (spawned): load the model, report to ``startup``, serve fronts.

    ``timeout`` is ``-worker_timeout``: a remote worker registers again after that long
    without a word from its front. ``current_part`` (shared memory, local workers) names
    the parts being encoded, so that if this process dies on them the front knows which
    to blame.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    signal.signal(signal.SIGTERM, _exit_on_signal)
    os.environ.update(worker_environment(placement.device_id, settings.verbose))
    logger = get_logger(f"WORKER-{placement.worker_id}", settings.verbose)
    try:
        encoder = _load_encoder(settings, placement, logger)
        seconds_per_token = _measure_speed(encoder)
    except Exception as err:  # anything that stops loading is reported, not raised into the void
        logger.error("cannot start: %s", err)
        startup.send(("error", f"worker {placement.worker_id}: {err}"))
        return
    startup.send(("ready", placement.worker_id))
    device = "CPU" if placement.device_id < 0 else f"GPU {placement.device_id}"
    logger.info("ready on %s, computing in %s", device, encoder.execution)
    host = socket.gethostname()
    hello = Hello(
        name=f"{host}:{os.getpid()}/{placement.worker_id}",
        host=host,
        device=device,
        remote=front.remote,
        fingerprint=settings.fingerprint,
        compute_dtype=encoder.precision,  # int8 included: its vectors differ from float32
        seconds_per_token=seconds_per_token,
    )
    membership = Membership(front, hello, settings.prefetch_size, timeout)
    compute = ComputeThread(encoder, settings.max_batch_size, current_part, logger)
    outcome = _serve_fronts(compute, membership, placement.identity, logger)
    if outcome is Outcome.REFUSED:
        os._exit(EXIT_REFUSED)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _serve_fronts(
    compute: ComputeThread, membership: Membership, local_identity: bytes, logger
) -> Outcome:
    """Sessions with the front until one ends in Stop or a refusal (a local worker has one
    session, under the identity the supervisor knows it by)."""
    context = zmq.Context()
    inbox = SharedInbox()
    compute.attach(inbox, context)
    answers = context.socket(zmq.PAIR)
    answers.connect(ANSWERS_ENDPOINT)
    compute.start()
    remote = membership.front.remote
    parent = None if remote else ParentWatch()
    backoff = Backoff()
    try:
        for number in itertools.count(1):
            identity = session_identity(membership.hello.name, number) if remote else local_identity
            session = Session(context, membership, identity, compute, answers, inbox, logger)
            outcome = session.run(parent)
            if outcome is not Outcome.AGAIN or not remote:
                return outcome
            if session.welcomed:
                backoff.reset()
            delay = backoff.next()
            logger.info("registering again in %.1f s", delay)
            time.sleep(delay)
    finally:
        inbox.close()
        answers.close()
        compute.answers.close()
        context.term()


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
        tf.config.threading.set_intra_op_parallelism_threads(_cpu_threads(placement))
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


def _cpu_threads(placement: WorkerPlacement) -> int:
    """This worker's share of the host's cores (each CPU worker gets as many)."""
    return max(1, (os.cpu_count() or 1) // max(1, placement.num_cpu_workers))


def _load_encoder(settings: WorkerSettings, placement: WorkerPlacement, logger):
    """The encoder, with TensorFlow imported (quietly, and configured for this worker's
    device) only if it needs it: an OpenVINO worker whose model an earlier start converted
    reads it from the cache (model/forward_cache.py) and never does."""

    @functools.cache
    def load_tensorflow():
        with _native_stderr_silenced(not settings.verbose):
            import tensorflow as tf

            _configure_devices(tf, placement, settings.gpu_memory_fraction)
            tf.constant(0)  # the notes come at the first op, too
        return tf

    from ..model.encoder import SentenceEncoder
    from ..model.forward_cache import ForwardCache

    spec = settings.model.inspect()  # checked and logged once by the ventilator already
    encoder = SentenceEncoder(
        spec,
        settings.encoder,
        logger=logger,
        threads=_cpu_threads(placement) if placement.device_id < 0 else None,
        forward_cache=ForwardCache(settings.fingerprint),
        load_tensorflow=load_tensorflow,
    )
    started = time.monotonic()
    shapes = encoder.warm_up()
    if settings.encoder.xla:  # say what compiling up front costs: requests never pay it
        logger.info("XLA: compiled %d shapes in %.1f s", shapes, time.monotonic() - started)
    return encoder


def _measure_speed(encoder) -> float:
    """Seconds per token of one text as long as the encoder takes (after warm-up): the
    front gives this worker ten times what its parts should take at this speed before it
    calls it hung. One text is the slowest case per token, so the bound errs long."""
    text = " ".join(["token"] * encoder.max_len)
    started = time.perf_counter()
    encoder.encode([text])
    return (time.perf_counter() - started) / encoder.max_len


def start_worker(
    settings: WorkerSettings,
    placement: WorkerPlacement,
    front: FrontAddress,
    timeout: float,
    current_part=None,
):
    """Spawn a worker; return (process, startup pipe)."""
    return spawn(
        run_worker,
        (settings, placement, front, timeout, current_part),
        f"WORKER-{placement.worker_id}",
    )
