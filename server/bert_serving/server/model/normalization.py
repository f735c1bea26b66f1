"""Unit-length vectors, as OpenAI's and TEI's users expect them (``-normalize``, ``/embed``).

One pure function for the workers and the HTTP proxy alike. The client package has its own
copy (``bert_serving.client.normalization``) because it must not import the server.
"""

from __future__ import annotations

import numpy as np


def l2_normalized(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` divided by their L2 norm along the last axis, in their own dtype.

    The norm is taken in float32 at least (float16 squares overflow past ~256); an all-zero
    vector (a padding position under ``-pooling_strategy NONE``) stays zero.
    """
    wide = vectors.astype(np.promote_types(vectors.dtype, np.float32), copy=False)
    norms = np.linalg.norm(wide, axis=-1, keepdims=True)
    return (wide / np.where(norms > 0, norms, 1)).astype(vectors.dtype, copy=False)
