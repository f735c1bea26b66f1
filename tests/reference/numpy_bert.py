"""A plain numpy BERT forward pass and pooling, used as the test oracle.

Everything here is computed in float64 straight from docs/design/contracts.md, with no
TensorFlow involved, so that the TensorFlow model can be checked against an independent,
slow but transparent implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

DEFAULT_LAYER_NORM_EPS = 1e-12
ATTENTION_MASK_PENALTY = -10000.0
MAX_POOL_PENALTY = 1e30
MEAN_POOL_EPS = 1e-10

# np.frompyfunc keeps math.erf's double precision (numpy has no erf of its own).
_erf_objects = np.frompyfunc(math.erf, 1, 1)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.asarray(_erf_objects(x), dtype=np.float64)


def _gelu_exact(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gelu": _gelu_exact,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "relu": _relu,
    "silu": _silu,
    "swish": _silu,
}


def activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The float64 activation called `name` in a bert_config.json `hidden_act`."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown hidden_act {name!r}; known: {sorted(_ACTIVATIONS)}") from None


@dataclass(frozen=True)
class ReferenceFeatures:
    """The four arrays of contracts.md's InputFeatures, without a tokenizer behind them."""

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    lengths: np.ndarray


def _pad_rows(rows: Sequence[Sequence[int]], width: int) -> np.ndarray:
    padded = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    return padded


def make_features(
    id_rows: Sequence[Sequence[int]],
    segment_rows: Sequence[Sequence[int]] | None = None,
    mask_rows: Sequence[Sequence[int]] | None = None,
) -> ReferenceFeatures:
    """Zero-padded int32 features from hand-written id rows, for tests that skip tokenizing.

    Segments default to 0 and the mask to 1 on every given token; `lengths` are the row lengths.
    """
    lengths = [len(row) for row in id_rows]
    for name, rows in (("segment_rows", segment_rows), ("mask_rows", mask_rows)):
        if rows is not None and [len(row) for row in rows] != lengths:
            raise ValueError(f"{name} must have the same row lengths as id_rows")
    if segment_rows is None:
        segment_rows = [[0] * n for n in lengths]
    if mask_rows is None:
        mask_rows = [[1] * n for n in lengths]
    width = max(lengths, default=0)
    return ReferenceFeatures(
        input_ids=_pad_rows(id_rows, width),
        input_mask=_pad_rows(mask_rows, width),
        segment_ids=_pad_rows(segment_rows, width),
        lengths=np.asarray(lengths, dtype=np.int32),
    )


def _param(weights: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name not in weights:
        raise KeyError(f"weight {name!r} is missing")
    return np.asarray(weights[name], dtype=np.float64)


def _dense(x: np.ndarray, weights: Mapping[str, np.ndarray], scope: str) -> np.ndarray:
    return x @ _param(weights, f"{scope}/kernel") + _param(weights, f"{scope}/bias")


def _layer_norm(
    x: np.ndarray, weights: Mapping[str, np.ndarray], scope: str, eps: float
) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    normalized = (x - mean) / np.sqrt(variance + eps)
    return normalized * _param(weights, f"{scope}/gamma") + _param(weights, f"{scope}/beta")


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _embed(
    weights: Mapping[str, np.ndarray],
    input_ids: np.ndarray,
    segment_ids: np.ndarray,
    no_position_embeddings: bool,
    eps: float,
) -> np.ndarray:
    x = _param(weights, "bert/embeddings/word_embeddings")[input_ids]
    x = x + _param(weights, "bert/embeddings/token_type_embeddings")[segment_ids]
    if not no_position_embeddings:
        seq_len = input_ids.shape[1]
        x = x + _param(weights, "bert/embeddings/position_embeddings")[:seq_len][None]
    return _layer_norm(x, weights, "bert/embeddings/LayerNorm", eps)


def _self_attention(
    x: np.ndarray,
    mask: np.ndarray,
    weights: Mapping[str, np.ndarray],
    scope: str,
    num_heads: int,
) -> np.ndarray:
    batch, seq_len, hidden = x.shape
    head_dim = hidden // num_heads

    def split_heads(name: str) -> np.ndarray:
        projected = _dense(x, weights, f"{scope}/self/{name}")
        return projected.reshape(batch, seq_len, num_heads, head_dim).transpose(0, 2, 1, 3)

    query, key, value = split_heads("query"), split_heads("key"), split_heads("value")
    scores = query @ key.transpose(0, 1, 3, 2) / math.sqrt(head_dim)
    # The mask is per key position: a padded token is attended to by nobody.
    scores = scores + (1.0 - mask[:, None, None, :]) * ATTENTION_MASK_PENALTY
    context = _softmax(scores) @ value
    return context.transpose(0, 2, 1, 3).reshape(batch, seq_len, hidden)


def _encoder_layer(
    x: np.ndarray,
    mask: np.ndarray,
    weights: Mapping[str, np.ndarray],
    scope: str,
    config: Mapping[str, object],
    eps: float,
) -> np.ndarray:
    num_heads = config["num_attention_heads"]
    attended = _self_attention(x, mask, weights, f"{scope}/attention", num_heads)
    attended = _dense(attended, weights, f"{scope}/attention/output/dense")
    x = _layer_norm(attended + x, weights, f"{scope}/attention/output/LayerNorm", eps)
    act = activation(config.get("hidden_act", "gelu"))
    inner = act(_dense(x, weights, f"{scope}/intermediate/dense"))
    out = _dense(inner, weights, f"{scope}/output/dense")
    return _layer_norm(out + x, weights, f"{scope}/output/LayerNorm", eps)


def forward_all_layers(
    weights: Mapping[str, np.ndarray],
    config: Mapping[str, object],
    input_ids: np.ndarray,
    input_mask: np.ndarray,
    segment_ids: np.ndarray,
    no_position_embeddings: bool = False,
) -> list[np.ndarray]:
    """The float64 `[B, T, H]` output of every encoder layer (embedding output excluded)."""
    input_ids = np.asarray(input_ids)
    segment_ids = np.asarray(segment_ids)
    mask = np.asarray(input_mask, dtype=np.float64)
    if input_ids.ndim != 2 or input_ids.shape != mask.shape or input_ids.shape != segment_ids.shape:
        raise ValueError("input_ids, input_mask and segment_ids must share one [B, T] shape")
    if input_ids.shape[1] > config["max_position_embeddings"]:
        raise ValueError("sequence longer than max_position_embeddings")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise ValueError("hidden_size must be a multiple of num_attention_heads")
    eps = float(config.get("layer_norm_eps", DEFAULT_LAYER_NORM_EPS))

    x = _embed(weights, input_ids, segment_ids, no_position_embeddings, eps)
    layers = []
    for index in range(config["num_hidden_layers"]):
        x = _encoder_layer(x, mask, weights, f"bert/encoder/layer_{index}", config, eps)
        layers.append(x)
    return layers


def _pooled_cls(layers: Sequence[np.ndarray], weights: Mapping[str, np.ndarray] | None):
    if weights is None:
        raise ValueError("CLS_POOLED needs the weights (for the pooler)")
    first_token = layers[-1][:, 0]
    return np.tanh(_dense(first_token, weights, "bert/pooler/dense"))


def pool(
    layers: Sequence[np.ndarray],
    pooling_strategy: str,
    pooling_layer: Sequence[int],
    input_mask: np.ndarray,
    lengths: np.ndarray,
    weights: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Apply one pooling strategy of contracts.md's table to the encoder layer outputs.

    `pooling_strategy` may be the name or anything with a `.name` (an Enum member).
    """
    strategy = getattr(pooling_strategy, "name", pooling_strategy)
    if strategy == "CLS_POOLED":
        return _pooled_cls(layers, weights)
    if not pooling_layer:
        raise ValueError("pooling_layer must name at least one layer")

    x = np.concatenate([np.asarray(layers[i], dtype=np.float64) for i in pooling_layer], axis=-1)
    m = np.asarray(input_mask, dtype=np.float64)[..., None]
    if strategy == "NONE":
        return x * m
    if strategy == "REDUCE_MEAN":
        return (x * m).sum(axis=1) / (m.sum(axis=1) + MEAN_POOL_EPS)
    if strategy == "REDUCE_MAX":
        return (x - (1.0 - m) * MAX_POOL_PENALTY).max(axis=1)
    if strategy == "REDUCE_MEAN_MAX":
        mean = pool(layers, "REDUCE_MEAN", pooling_layer, input_mask, lengths)
        maximum = pool(layers, "REDUCE_MAX", pooling_layer, input_mask, lengths)
        return np.concatenate([mean, maximum], axis=-1)
    if strategy in ("CLS_TOKEN", "FIRST_TOKEN"):
        return x[:, 0]
    if strategy in ("SEP_TOKEN", "LAST_TOKEN"):
        last = np.asarray(lengths, dtype=np.int64) - 1
        return x[np.arange(x.shape[0]), last]
    raise ValueError(f"unknown pooling strategy {strategy!r}")


def reference_encode(
    weights: Mapping[str, np.ndarray],
    config: Mapping[str, object],
    features_like: object,
    pooling_strategy: str,
    pooling_layer: Sequence[int],
    no_position_embeddings: bool = False,
) -> np.ndarray:
    """Forward plus pooling for anything shaped like InputFeatures (duck-typed)."""
    layers = forward_all_layers(
        weights,
        config,
        features_like.input_ids,
        features_like.input_mask,
        features_like.segment_ids,
        no_position_embeddings=no_position_embeddings,
    )
    return pool(
        layers,
        pooling_strategy,
        pooling_layer,
        features_like.input_mask,
        features_like.lengths,
        weights=weights,
    )
