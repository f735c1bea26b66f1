"""Texts as their UTF-8 bytes and the ``(start, end)`` offsets of each: how the ventilator
hands raw texts to a worker.

JSON would make the worker parse every byte again (half a second per 100 MB); with offsets
it only decodes each text, and a request read without json.loads (``plain_json``) goes on
as the very bytes the client sent, offsets pointing between its quotes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SPAN_DTYPE = np.dtype("<i8")  # little-endian on the wire: remote workers may differ


def pack_texts(texts: list[str]) -> tuple[bytes, np.ndarray]:
    """The texts' UTF-8 bytes one after another, and where each lies."""
    encoded = [text.encode("utf-8") for text in texts]
    ends = np.cumsum([len(chunk) for chunk in encoded], dtype=SPAN_DTYPE)
    starts = np.concatenate([np.zeros(1, SPAN_DTYPE), ends[:-1]])
    return b"".join(encoded), np.stack([starts, ends], axis=1)


def spans_to_bytes(spans: np.ndarray) -> bytes:
    return np.ascontiguousarray(spans, SPAN_DTYPE).tobytes()


def spans_from_bytes(frame: Any) -> np.ndarray:
    """Offsets sent by ``spans_to_bytes`` (``decode_spans`` checks that they fit)."""
    return np.frombuffer(frame, SPAN_DTYPE).reshape(-1, 2)  # ValueError for a ragged frame


def decode_spans(payload: Any, spans: np.ndarray) -> list[str]:
    """The strings at ``spans`` of ``payload`` (bytes or any buffer); ValueError for a span
    outside it, UnicodeDecodeError for bytes that are not UTF-8, encoded surrogates
    included. The spans are checked as they are cut, in Python: numpy's checks cost more
    than the cutting for the usual few texts."""
    view = memoryview(payload)
    size = len(view)
    texts = []
    for start, end in spans.tolist():
        if not 0 <= start <= end <= size:
            raise ValueError(f"text offsets outside the {size} bytes of the texts")
        texts.append(str(view[start:end], "utf-8"))
    return texts
