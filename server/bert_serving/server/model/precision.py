"""Which number format the forward pass computes in.

CPUs with bfloat16 instructions compute the forward pass much faster in bfloat16 than in
float32: AMX tiles (Xeon from Sapphire Rapids on; 2.7x the float32 forward pass on
OpenVINO, measured here) and AVX512_BF16's dot products (AMD EPYC Zen 4 and 5; 1.7x to 1.8x
on OpenVINO and about 1.6x on TensorFlow, measured on a Zen 4). The lowest cosine of a vector to its
float32 twin is then 0.9998 to 0.99997 (TensorFlow's rounding, OpenVINO's), so ``auto``
uses bfloat16 exactly where that speed exists, and ``-precision float32`` gives the exact
vectors anywhere. A CPU without those instructions can only emulate bfloat16.

``int8`` is opt-in only: the TensorFlow graph stays float32 (it is the definition that the
OpenVINO runtime converts), and OpenVINO runs it with int8 weights and activations
(quantize.py). It pays on CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX).
"""

from __future__ import annotations

import os

from ..cpuinfo import CPUINFO, first_processor

PRECISIONS = ("auto", "float32", "bfloat16", "int8")
BF16_INSTRUCTIONS = frozenset({"avx512_bf16", "amx_bf16"})  # native bfloat16 arithmetic


def cpu_flags(cpuinfo: str | os.PathLike = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not exist."""
    return frozenset(first_processor(cpuinfo).get("flags", "").split())


def has_bf16_instructions(flags: frozenset[str]) -> bool:
    """Whether a CPU with these flags computes bfloat16 natively: what makes bfloat16 pay
    (``auto`` picks it) and what OpenVINO needs to compute it at all."""
    return bool(BF16_INSTRUCTIONS & flags)


def compute_dtype(
    precision: str, fp16: bool, on_gpu: bool, flags: frozenset[str] | None = None
) -> str:
    """The dtype the forward pass computes in: float16 under ``-fp16`` on a GPU (as in 1.10);
    bfloat16 when asked for, or under ``auto`` on a CPU with bfloat16 instructions (AMX or
    AVX512_BF16); float32 otherwise (int8 included: quantizing is the OpenVINO runtime's
    part). TensorFlow builds its graph in this dtype; OpenVINO converts the float32 graph
    and is told to compute in bfloat16."""
    if precision not in PRECISIONS:
        raise ValueError(f"-precision {precision!r}: valid values are {', '.join(PRECISIONS)}")
    if on_gpu and fp16:
        return "float16"
    if precision == "bfloat16":
        return "bfloat16"
    if precision == "auto" and not on_gpu:
        native = has_bf16_instructions(cpu_flags() if flags is None else flags)
        return "bfloat16" if native else "float32"
    return "float32"
