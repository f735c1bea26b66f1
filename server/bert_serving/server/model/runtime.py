"""Which engine executes the forward pass: TensorFlow itself, or OpenVINO on the same graph.

TensorFlow stays the definition of the model: the OpenVINO runtime is converted from the
encoder's own forward ``tf.function`` (``openvino.convert_model``), so both compute the same
arithmetic and give the same float32 vectors (within 1e-6 here; tests hold it to 1e-5).
What differs is the kernels and the per-call cost: OpenVINO fuses attention and layer norm
into a few generated kernels and answers one sentence in about half TensorFlow's time.

What ``auto`` picks (see docs/benchmark.md for the measurements behind the rule):

- a GPU, or bfloat16 (AMX CPUs under ``-precision auto``): TensorFlow, the path measured
  at 2x sentence-transformers there (OpenVINO computes float32 and int8 only);
- float32 on any other CPU: OpenVINO. On AVX2-only CPUs it ran 1.25-1.45x TensorFlow's
  throughput. On an AVX-512 AMD EPYC, both at their best (two threads, quiet machine),
  it matched TensorFlow on large sorted batches (0.99x-1.06x: both run the matmuls near
  the FMA peak), ran batches of 8 1.14x faster and answered one sentence in 0.6x the time;
- ``-xla`` is an option of TensorFlow's compiler, so auto keeps TensorFlow under it;
- int8 exists only in OpenVINO.
"""

from __future__ import annotations

RUNTIMES = ("auto", "tensorflow", "openvino")


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
    have_openvino: bool,
    xla: bool = False,
) -> str:
    """The engine for ``-runtime`` given the compute dtype (which already reflects the CPU:
    bfloat16 only with AMX), the device, whether OpenVINO is installed, and ``-xla``."""
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
    if openvino_can_run and have_openvino:
        return "openvino"
    return "tensorflow"
