"""The cut of a sorted batch into forward calls (model/chunking.py), without TensorFlow."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_serving.server.model.chunking import plan_chunks

HIDDEN = 384


def estimated_time(lengths: np.ndarray, cuts: list[slice], call_cost: float) -> float:
    """The model plan_chunks minimises, written out independently."""
    total = 0.0
    for cut in cuts:
        longest = float(lengths[cut].max())
        rows = cut.stop - cut.start
        total += call_cost + rows * longest * (1 + longest / (6 * HIDDEN))
    return total


def fixed_cuts(count: int, rows: int) -> list[slice]:
    return [slice(start, min(start + rows, count)) for start in range(0, count, rows)]


def test_two_groups_of_lengths_are_run_apart():
    lengths = np.array([8] * 32 + [48] * 32)
    assert plan_chunks(lengths, 64, 96.0, HIDDEN) == [slice(0, 32), slice(32, 64)]


def test_equal_lengths_make_the_fewest_calls():
    cuts = plan_chunks(np.full(150, 20), 64, 96.0, HIDDEN)
    assert len(cuts) == 3  # any three calls of at most 64 rows cost the same


def test_an_expensive_call_keeps_one_call_per_max_rows():
    lengths = np.sort(np.random.default_rng(0).integers(9, 49, size=64))
    assert plan_chunks(lengths, 64, 1e9, HIDDEN) == [slice(0, 64)]


def test_free_calls_pad_nothing():
    lengths = np.array([5, 5, 9, 9, 9, 30])
    cuts = plan_chunks(lengths, 64, 0.0, HIDDEN)
    assert all(len(set(lengths[cut].tolist())) == 1 for cut in cuts)


def test_nothing_to_cut():
    assert plan_chunks(np.array([], dtype=np.int64), 64, 96.0, HIDDEN) == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 512), min_size=1, max_size=200),
    st.integers(1, 64),
    st.floats(0, 5000),
)
def test_the_plan_covers_every_row_and_beats_fixed_chunks(raw, max_rows, call_cost):
    lengths = np.sort(np.array(raw))
    cuts = plan_chunks(lengths, max_rows, call_cost, HIDDEN)
    assert cuts[0].start == 0 and cuts[-1].stop == len(lengths)
    assert all(a.stop == b.start for a, b in zip(cuts, cuts[1:]))
    assert all(0 < cut.stop - cut.start <= max_rows for cut in cuts)
    planned = estimated_time(lengths, cuts, call_cost)
    assert planned <= estimated_time(lengths, fixed_cuts(len(lengths), max_rows), call_cost) + 1e-6
    one_by_one = [slice(i, i + 1) for i in range(len(lengths))]
    assert planned <= estimated_time(lengths, one_by_one, call_cost) + 1e-6
