"""The encoder's forward ``tf.function`` converted to OpenVINO and compiled for this CPU.

Conversion reads the traced graph and copies its weights (a few seconds for MiniLM);
compiling takes under a second. The settings that matter, each for a reason:

- ``INFERENCE_PRECISION_HINT f32``: on CPUs with bfloat16 instructions OpenVINO would
  otherwise compute in bfloat16 by default, which would give silently different vectors;
- one stream and a thread per core share of this worker (``threads``), as TensorFlow gets;
- ``CPU_DENORMALS_OPTIMIZATION``: flush denormals to zero, as TensorFlow does on x86;
- ``CPU_RUNTIME_CACHE_CAPACITY``: the plugin keeps the kernels it prepared for each input
  shape it met. Without a bound, a server that sees every (rows, length) pair grows by
  hundreds of MB; with it, the least recently used shapes are dropped (measured: about
  +280 MB over 200 random shapes, flat after the first 100).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .quantize import INT8_RUNTIME_CONFIG, int8_weights

SHAPE_CACHE_CAPACITY = 64


def compile_forward(forward, threads: int, int8: bool = False) -> Callable[..., np.ndarray]:
    """An OpenVINO function with the arguments of ``forward`` (a ``tf.function`` with an
    input signature) that returns its result as a numpy array; with ``int8``, its weights
    and activations quantized (quantize.py)."""
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
    config = {
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "CPU_DENORMALS_OPTIMIZATION": True,
        "CPU_RUNTIME_CACHE_CAPACITY": str(SHAPE_CACHE_CAPACITY),
    }
    if int8:
        model = int8_weights(model)
        config.update(INT8_RUNTIME_CONFIG)
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()

    def run(*inputs: np.ndarray) -> np.ndarray:
        # a copy: the request reuses its output buffer on the next call
        return np.array(request.infer(list(inputs))[0], copy=True)

    return run
