"""The encoder's forward ``tf.function`` converted to OpenVINO and compiled for this CPU.

Conversion reads the traced graph and copies its weights (a few seconds for MiniLM, after
TensorFlow's import and the graph's construction); a worker then saves the converted model
(forward_cache.py) and the next one reads it instead. Compiling takes under a second, and
every compiled model is checked against TensorFlow's vectors for a probe batch before it
serves. The settings that matter, each for a reason:

- ``INFERENCE_PRECISION_HINT``: always stated. On CPUs with bfloat16 instructions OpenVINO
  computes in bfloat16 by default, which would give silently different vectors under
  float32; under ``-precision bfloat16`` it is asked for, and read back from the compiled
  model, since a CPU without those instructions would quietly compute float32 instead;
- one stream and a thread per core share of this worker (``threads``), as TensorFlow gets;
- ``CPU_DENORMALS_OPTIMIZATION`` off: on, the plugin sets flush-to-zero on the calling
  thread and leaves it set, which changes that thread's float arithmetic for everything
  after it (seen: it broke hypothesis's float generation later in the same process);
  TensorFlow flushes denormals only inside its own kernels;
- ``CPU_RUNTIME_CACHE_CAPACITY``: the plugin keeps the kernels it prepared for each input
  shape it met. Without a bound, a server that sees every (rows, length) pair grows by
  hundreds of MB; with it, the least recently used shapes are dropped (measured: about
  +280 MB over 200 random shapes, flat after the first 100).

Every compilation goes through one ``ov.Core`` kept for the life of the process
(``process_core``), so that the CPU plugin is created once and never destroyed while the
process runs. The plugin sets an alternate signal stack on the thread that creates it and
unmaps it when it is destroyed, restoring the old one only if that happens on the same
thread. An encoder freed on another thread (the garbage collector runs on any thread) left
the creating thread's alternate stack unmapped, and the next signal with a Python handler
there (CPython installs its handlers with SA_ONSTACK) killed the process with SIGSEGV:
seen as ``bert-serving-start``'s SIGTERM handling crashing in the test suite.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import ModelError
from .quantize import INT8_RUNTIME_CONFIG, int8_weights

SHAPE_CACHE_CAPACITY = 64
PROBE_SHAPE = (64, 16)  # rows x tokens of the start-up check: a full chunk, a short length
PROBE_VOCAB = 1000  # token ids of the check: the first ones of the vocabulary
FLOAT32_TOLERANCE = 1e-4  # the check catches breakage; tests hold parity to 1e-5
# lowest cosine to float32 in the check, which catches breakage, not lost accuracy: a
# larger model than MiniLM rounds more, and it must not be refused for it (measured on
# MiniLM: bfloat16 0.99996, int8 0.9989; tests hold those above 0.999 and 0.99)
MIN_COSINE = {"bfloat16": 0.99, "int8": 0.99}
PRECISION_HINTS = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}


@dataclass(frozen=True)
class Probe:
    """A batch and the vectors TensorFlow's definition gives for it: what a compiled model
    must reproduce before it serves. Kept with a saved model (forward_cache.py), so that a
    model read from disk is checked without TensorFlow."""

    inputs: tuple[np.ndarray, ...]  # input_ids, input_mask, segment_ids [B, T]; lengths [B]
    expected: np.ndarray  # [B, D], or [B, T, D] under NONE


def make_probe(forward: Callable[..., np.ndarray], limits: tuple[int, int]) -> Probe:
    """The probe batch (random ids of the vocabulary's first ``PROBE_VOCAB``, a full chunk
    of short rows) and ``forward``'s vectors for it. ``limits`` (vocabulary size, longest
    input) bound the batch."""
    rng = np.random.default_rng(0)
    vocab_size, longest = limits
    shape = (PROBE_SHAPE[0], min(PROBE_SHAPE[1], longest))
    ids = rng.integers(0, min(PROBE_VOCAB, vocab_size), size=shape).astype(np.int32)
    inputs = (ids, np.ones_like(ids), np.zeros_like(ids), np.full(len(ids), ids.shape[1], np.int32))
    return Probe(inputs, forward(*inputs))


def compile_checked(model, probe: Probe, threads: int, precision: str) -> Callable[..., np.ndarray]:
    """An OpenVINO function with the encoder forward's arguments (numpy arrays in, a numpy
    array out) compiled from ``model`` (``convert_forward``'s) to compute in ``precision``
    on ``threads`` threads; ModelError unless it reproduces ``probe``."""
    config = {
        "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "CPU_DENORMALS_OPTIMIZATION": False,
        "CPU_RUNTIME_CACHE_CAPACITY": str(SHAPE_CACHE_CAPACITY),
    }
    if precision == "int8":
        config.update(INT8_RUNTIME_CONFIG)
    compiled = process_core().compile_model(model, "CPU", config)
    computes_in = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    if precision == "bfloat16" and computes_in != "bf16":
        raise ModelError(
            f"OpenVINO computes {computes_in} on this CPU where bfloat16 was asked for; "
            "start with -runtime tensorflow"
        )
    request = compiled.create_infer_request()
    # one request runs one inference at a time ("Infer Request is busy", or another call's
    # output): encoders shared by threads, as TensorFlow's are, take turns on it
    turn = threading.Lock()

    def run(*inputs: np.ndarray) -> np.ndarray:
        with turn:  # a copy: the request reuses its output buffer on the next call
            vectors = np.array(request.infer(list(inputs))[0], copy=True)
        if vectors.shape[:1] != inputs[0].shape[:1]:
            raise ModelError(
                f"OpenVINO returned vectors of shape {vectors.shape} for {len(inputs[0])} "
                "texts; start with -runtime tensorflow"
            )
        return vectors

    check_against(probe, run, precision)
    return run


def convert_forward(forward, precision: str = "float32"):
    """``forward`` (a float32 ``tf.function`` with an input signature) as an OpenVINO model
    with one output, its result; under int8 with its weights quantized (quantize.py)."""
    import openvino as ov

    # share_weights=False: by default the model would point into TensorFlow's temporary
    # copies of the variables, memory that is freed and reused later (seen here: vectors
    # of garbage, or NaN, depending on what was allocated between conversion and use)
    converted = ov.convert_model(forward, share_weights=False)
    # the converter also exposes dangling tensors of the trace (outputs of layers pooling
    # does not read): keep only the function's own result, found by its graph name
    result = forward.get_concrete_function().outputs[0].name
    (vectors,) = [output for output in converted.outputs if result in output.get_names()]
    model = ov.Model([vectors], converted.get_parameters(), "bert_forward")
    return int8_weights(model) if precision == "int8" else model


_cores: list = []  # the process's one OpenVINO core, once made
_making_the_core = threading.Lock()


def process_core():
    """The process's one OpenVINO core (see the module's docstring for why one); made under
    a lock, since functools.cache may run a first call twice in two threads."""
    import openvino as ov

    with _making_the_core:
        if not _cores:
            _cores.append(ov.Core())
        return _cores[0]


def check_against(probe: Probe, run: Callable[..., np.ndarray], precision: str) -> None:
    """Compare the probe batch with TensorFlow's vectors before serving: a runtime that
    computes something else on this CPU (seen: int8 with its ISA capped to AVX2 returned
    empty arrays) must fail at start-up, never answer with different vectors."""
    want = probe.expected.astype(np.float64)
    # under -fp16 the vectors are rounded to float16: a last-bit flip there is no error
    tolerance = max(FLOAT32_TOLERANCE, 2 * np.finfo(probe.expected.dtype).eps * np.abs(want).max())
    try:
        got = run(*probe.inputs).astype(np.float64)
    except (ModelError, RuntimeError) as error:
        raise ModelError(
            f"the OpenVINO runtime failed its start-up check ({error}); "
            "start with -runtime tensorflow (or, for int8, -precision float32)"
        ) from None
    if got.shape != want.shape:
        raise ModelError(f"OpenVINO gave shape {got.shape} where TensorFlow gives {want.shape}")
    if precision in MIN_COSINE:
        flat_want, flat_got = want.reshape(len(want), -1), got.reshape(len(got), -1)
        cosine = (flat_want * flat_got).sum(1) / (
            np.linalg.norm(flat_want, axis=1) * np.linalg.norm(flat_got, axis=1) + 1e-12
        )
        too_low = cosine.min() < MIN_COSINE[precision]
        problem = f"lowest cosine {cosine.min():.4f} in {precision}" if too_low else ""
    else:
        difference = float(np.abs(got - want).max())
        problem = f"largest difference {difference:.1e}" if difference > tolerance else ""
    if problem:
        raise ModelError(
            f"the OpenVINO runtime disagrees with TensorFlow on this CPU ({problem}); "
            "start with -runtime tensorflow"
        )
