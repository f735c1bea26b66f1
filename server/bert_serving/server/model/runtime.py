"""Which engine executes the forward pass: TensorFlow itself, or OpenVINO on the same graph.

TensorFlow stays the definition of the model: the OpenVINO runtime is converted from the
encoder's own forward ``tf.function`` (``openvino.convert_model``), so both compute the same
arithmetic and give the same float32 vectors (within 1e-6 here; tests hold it to 1e-5).
What differs is the kernels and the per-call cost: OpenVINO fuses attention and layer norm
into a few generated kernels and answers one sentence in about half TensorFlow's time.

Which is faster depends on the CPU, so ``auto`` decides by its instructions (see
docs/encoder.md for the measurements behind the rule):

- a GPU, or bfloat16 (AMX CPUs under ``-precision auto``): TensorFlow, the path measured
  at 2x sentence-transformers there;
- a CPU whose widest float32 instructions are AVX2: OpenVINO, 1.25-1.45x TensorFlow's
  throughput in the first probe (TensorFlow's oneDNN kernels lose most there);
- AVX-512 CPUs without AMX, float32: TensorFlow, whose oneDNN matmuls run near the FMA peak
  (OpenVINO measured 0.85-0.95x single-threaded on an AMD EPYC with AVX-512);
- int8 exists only in OpenVINO.
"""

from __future__ import annotations

RUNTIMES = ("auto", "tensorflow", "openvino")
AVX512_FLAG = "avx512f"


def openvino_installed() -> bool:
    """Whether the ``openvino`` package can be imported (it is in the ``cpu`` extra)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def choose_runtime(
    runtime: str,
    dtype: str,
    on_gpu: bool,
    flags: frozenset[str],
    have_openvino: bool,
    xla: bool = False,
) -> str:
    """The engine for ``-runtime`` given the compute dtype, the device, the CPU flags and
    ``-xla`` (an option of TensorFlow's compiler, so auto keeps TensorFlow under it)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"-runtime {runtime!r}: valid values are {', '.join(RUNTIMES)}")
    openvino_can_run = not on_gpu and dtype in ("float32", "int8")
    if runtime == "tensorflow" and dtype == "int8":
        raise ValueError("-precision int8 runs on OpenVINO only: use -runtime auto or openvino")
    if runtime == "openvino" or dtype == "int8":
        if not openvino_can_run:
            raise ValueError(
                f"-runtime openvino runs float32 and int8 on the CPU, not {dtype}"
                + (" on a GPU" if on_gpu else "")
            )
        if not have_openvino:
            raise ValueError(
                "the OpenVINO runtime needs the openvino package: pip install openvino"
            )
        return "openvino"
    if runtime == "tensorflow" or xla:
        return "tensorflow"
    if openvino_can_run and have_openvino and AVX512_FLAG not in flags:
        return "openvino"
    return "tensorflow"
