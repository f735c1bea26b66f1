"""Whether encoding settings fit a model: one set of checks with one wording.

The server runs them on the start arguments before any process starts (an ArgumentError
for the user), the encoder on its settings when it is built from Python (a ModelError):
both read the same sentences from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .strategy import PoolingStrategy


def settings_problems(
    pooling_strategy: PoolingStrategy | str,
    pooling_layer: Sequence[int],
    max_seq_len: int | None,
    num_hidden_layers: int,
    max_position_embeddings: int,
    has_pooler: bool,
) -> list[str]:
    """What the settings ask for that the model does not have; empty when they fit."""
    problems = []
    bad_layers = [
        layer for layer in pooling_layer if not -num_hidden_layers <= layer < num_hidden_layers
    ]
    if bad_layers or not pooling_layer:
        shown = " ".join(map(str, bad_layers)) or "(none)"
        problems.append(
            f"-pooling_layer {shown}: the model has {num_hidden_layers} layers, valid values "
            f"are {-num_hidden_layers}..{num_hidden_layers - 1}"
        )
    if max_seq_len is not None and max_seq_len > max_position_embeddings:
        problems.append(
            f"-max_seq_len {max_seq_len}: the model accepts at most "
            f"{max_position_embeddings} tokens"
        )
    if PoolingStrategy.parse(pooling_strategy).needs_pooler and not has_pooler:
        problems.append(
            "-pooling_strategy CLS_POOLED: the model has no pooler layer; use "
            "CLS_TOKEN for the raw [CLS] vector"
        )
    return problems
