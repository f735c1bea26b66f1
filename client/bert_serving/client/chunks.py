"""Cutting a very large encode into requests and joining their answers.

One request of 100 000 texts would hold the whole payload (and the server's copy of it) in
memory at once and give no progress; a few chunks in flight keep memory bounded and the
server busy, since the next chunk is queued before the current one is finished.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence, Tuple

import numpy as np

Span = Tuple[int, int]


def chunk_spans(
    num_texts: int,
    chunk_size: int,
    payload_of: Callable[[Span], bytes],
    max_payload_bytes: int | None,
) -> Iterator[tuple[Span, bytes]]:
    """``(start, end)`` spans of at most ``chunk_size`` texts, each with its payload; a span
    whose payload exceeds ``max_payload_bytes`` is halved until it fits (or is one text)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    todo: list[Span] = [
        (start, min(start + chunk_size, num_texts)) for start in range(0, num_texts, chunk_size)
    ]
    todo.reverse()
    while todo:
        start, end = todo.pop()
        payload = payload_of((start, end))
        if max_payload_bytes is not None and len(payload) > max_payload_bytes and end - start > 1:
            middle = (start + end) // 2
            todo += [(middle, end), (start, middle)]
            continue
        yield (start, end), payload


def join_rows(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate chunk results; token embeddings of different lengths are zero-padded."""
    if arrays[0].ndim == 3:
        width = max(array.shape[1] for array in arrays)
        arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0))) for a in arrays]
    return np.concatenate(arrays)


def join_tokens(tokens: Sequence[Any]) -> Any:
    """The chunks' token lists as one, or "" when the server sent none."""
    if any(part == "" for part in tokens):
        return ""
    return [row for part in tokens for row in part]
