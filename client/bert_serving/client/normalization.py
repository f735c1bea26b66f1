"""Unit-length vectors on the client side, for ``BertClient(normalize=True)``.

A 1.10 server (or this one without ``-normalize``) sends raw vectors; cosine similarity
then needs a division per pair, and vector stores that rank by dot product need unit
vectors. The server package has the same function for ``-normalize``; the client cannot
import the server, so it keeps its own.
"""

from __future__ import annotations

import numpy as np


def unit_length(vectors: np.ndarray) -> np.ndarray:
    """A new array: every vector (last axis) divided by its L2 norm; zero vectors stay zero.

    The norm is computed in float32 at least, so that float16 answers cannot overflow.
    """
    wide = np.asarray(vectors, dtype=np.promote_types(vectors.dtype, np.float32))
    norms = np.sqrt(np.einsum("...i,...i->...", wide, wide))[..., None]
    return (wide / np.where(norms > 0, norms, 1)).astype(vectors.dtype)
