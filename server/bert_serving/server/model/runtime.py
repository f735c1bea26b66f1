"""Which engine executes the forward pass: TensorFlow itself, or OpenVINO on the same graph.

TensorFlow stays the definition of the model: the OpenVINO runtime is converted from the
encoder's own float32 forward ``tf.function`` (``openvino.convert_model``), so both compute
the same arithmetic and give the same float32 vectors (within 1e-6 here; tests hold it to
1e-5). What differs is the kernels and the per-call cost: OpenVINO fuses attention and
layer norm into a few generated kernels and answers one sentence in about half
TensorFlow's time. In bfloat16 and int8, OpenVINO is told the precision to compute in
(its inference precision hint, or int8 weights) and converts the float32 graph all the same.

What ``auto`` picks (see docs/benchmark.md for the measurements behind the rule):

- any CPU, float32: OpenVINO. On AVX2-only CPUs it ran 1.13x-1.47x TensorFlow's
  throughput and answered one sentence in 0.54x-0.71x the time (an AMD EPYC Zen 3; the
  issue's first probe had 1.25x-1.45x). On an AVX-512 AMD EPYC, both at their best (two
  threads, quiet machine), it matched TensorFlow on large sorted batches (0.99x-1.06x:
  both run the matmuls near the FMA peak), ran batches of 8 1.14x faster and answered
  one sentence in 0.6x the time;
- bfloat16 (``-precision auto`` on a CPU with bfloat16 instructions, AMX or AVX512_BF16):
  OpenVINO. On a Xeon with AMX it ran 1.6x TensorFlow's bfloat16 throughput, answered one
  sentence in a third of the time, and stayed closer to the float32 vectors; on an AMD
  EPYC Zen 4 (AVX512_BF16) it ran 1.0x to 1.1x TensorFlow's bfloat16 throughput (1.7x to
  1.8x its own float32) and answered one text in 0.6x to 0.7x the time;
- bfloat16 on a CPU without them (``-precision bfloat16`` forced on an AVX2 CPU):
  TensorFlow, which emulates it; OpenVINO would compute float32 instead;
- a GPU: TensorFlow; ``-xla`` is an option of TensorFlow's compiler, so auto keeps
  TensorFlow under it too;
- int8 exists only in OpenVINO.
"""

from __future__ import annotations

from .precision import has_bf16_instructions

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
    cpu_flags: frozenset[str] = frozenset(),
) -> str:
    """The engine for ``-runtime`` given the compute dtype (which already reflects the CPU:
    bfloat16 under auto only with bfloat16 instructions), the device, whether OpenVINO is
    installed, ``-xla`` and the CPU's flags (whether it has bfloat16 instructions)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"-runtime {runtime!r}: valid values are {', '.join(RUNTIMES)}")
    if runtime == "tensorflow" and dtype == "int8":
        raise ValueError("-precision int8 runs on OpenVINO only: use -runtime auto or openvino")
    openvino_problem = _why_openvino_cannot_run(dtype, on_gpu, cpu_flags)
    if runtime == "openvino" or dtype == "int8":
        if openvino_problem:
            raise ValueError(openvino_problem)
        if not have_openvino:
            raise ValueError(
                "the OpenVINO runtime needs the openvino package: pip install openvino"
            )
        return "openvino"
    if runtime == "tensorflow" or xla:
        return "tensorflow"
    if not openvino_problem and have_openvino:
        return "openvino"
    return "tensorflow"


def _why_openvino_cannot_run(dtype: str, on_gpu: bool, cpu_flags: frozenset[str]) -> str:
    """Why OpenVINO cannot compute ``dtype`` here, or "" when it can."""
    if on_gpu:
        return f"-runtime openvino runs on the CPU, not {dtype} on a GPU"
    if dtype == "bfloat16" and not has_bf16_instructions(cpu_flags):
        return (
            "-runtime openvino computes bfloat16 only on CPUs with bfloat16 instructions "
            "(AVX512_BF16 or AMX), which this one lacks: use -runtime tensorflow"
        )
    if dtype not in ("float32", "bfloat16", "int8"):
        return f"-runtime openvino computes float32, bfloat16 and int8, not {dtype}"
    return ""
