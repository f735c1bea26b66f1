"""How a batch is cut into forward calls: fewer padded tokens against fewer calls.

Every text of a call is padded to the call's longest, so a client's batch of 64 sentences of
9 to 48 tokens computes about 1.7 times the tokens it holds when run as one call. Cutting it,
in order of length, into several calls pads less but pays the fixed cost of each call (op
dispatch, thread wake-up: several milliseconds on a CPU). ``plan_chunks`` finds the cut with
the lowest estimated time by dynamic programming over the sorted lengths:

    time(call) = call_cost + rows * length * (1 + length / (6 * hidden))

in units of one token through the dense layers. A layer's dense matmuls cost 12 H^2
multiply-adds per token and its attention 2 T H more, hence the second term, which matters
only for long sequences. ``call_cost`` is the fixed cost of a call in the same units; the
encoder measures it at start-up (it differs between CPUs and runtimes by several times).

The cut never changes a vector beyond float rounding: padding is masked out of attention,
so a text's vector does not depend on which other texts share its call.
"""

from __future__ import annotations

import numpy as np

# until warm_up measures it: about 6 ms of fixed cost per call against 65 us per token, as
# TensorFlow measured on a 2-core AMD EPYC (AVX-512); OpenVINO's calls cost less (13 tokens)
DEFAULT_CALL_COST = 96.0


def plan_chunks(
    lengths: np.ndarray, max_rows: int, call_cost: float, hidden_size: int
) -> list[slice]:
    """Slices of ``lengths`` (sorted ascending) that make the cheapest sequence of calls of
    at most ``max_rows`` rows each."""
    count = len(lengths)
    if count == 0:
        return []
    per_token = 1.0 + lengths.astype(np.float64) / (6.0 * hidden_size)
    best = np.zeros(count + 1)  # best[j]: cheapest way to run the first j texts
    start_of_last = np.zeros(count + 1, dtype=np.int64)
    for end in range(1, count + 1):
        starts = np.arange(max(0, end - max_rows), end)
        padded = (end - starts) * lengths[end - 1] * per_token[end - 1]
        totals = best[starts] + call_cost + padded
        choice = int(np.argmin(totals))
        best[end] = totals[choice]
        start_of_last[end] = starts[choice]
    cuts = []
    end = count
    while end > 0:
        cuts.append(slice(int(start_of_last[end]), end))
        end = int(start_of_last[end])
    return cuts[::-1]
