"""Which number format the forward pass computes in.

CPUs with AMX tiles multiply bfloat16 matrices several times faster than float32 (measured
here: about 5x for BERT-sized matmuls, 1.6x for the whole forward pass). The vectors then
differ from float32 by about 1e-4 in cosine, so ``auto`` uses bfloat16 only where that speed
exists, and ``-precision float32`` gives the exact vectors anywhere.

``int8`` is opt-in only: the TensorFlow graph stays float32 (it is the definition that the
OpenVINO runtime converts), and OpenVINO runs it with int8 weights and activations
(quantize.py). It pays on CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX).
"""

from __future__ import annotations

from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16", "int8")
BF16_MATMUL_FLAG = "amx_bf16"  # the CPU feature that makes bfloat16 pay (Sapphire Rapids on)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not exist."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def compute_dtype(
    precision: str, fp16: bool, on_gpu: bool, flags: frozenset[str] | None = None
) -> str:
    """The dtype the forward pass computes in: float16 under ``-fp16`` on a GPU (as in 1.10);
    bfloat16 when asked for, or under ``auto`` on a CPU with AMX; float32 otherwise (int8
    included: quantizing is the OpenVINO runtime's part). TensorFlow builds its graph in
    this dtype; OpenVINO converts the float32 graph and is told to compute in bfloat16."""
    if precision not in PRECISIONS:
        raise ValueError(f"-precision {precision!r}: valid values are {', '.join(PRECISIONS)}")
    if on_gpu and fp16:
        return "float16"
    if precision == "bfloat16":
        return "bfloat16"
    if precision == "auto" and not on_gpu:
        has_amx = BF16_MATMUL_FLAG in (cpu_flags() if flags is None else flags)
        return "bfloat16" if has_amx else "float32"
    return "float32"
