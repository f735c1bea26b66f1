"""Pooling strategies: how token states become one fixed-length vector per text.

Every strategy is masked with ``input_mask`` (padding, and [CLS]/[SEP] under -mask_cls_sep,
never count) and uses ``lengths`` (real tokens, specials included) to find the last token.
"""

from __future__ import annotations

import tensorflow as tf

from .strategy import PoolingStrategy


def _masked_mean(x: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(x * mask[..., tf.newaxis], axis=1) / (
        tf.reduce_sum(mask, axis=1, keepdims=True) + 1e-10
    )


def _masked_max(x: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    return tf.reduce_max(x - (1.0 - mask[..., tf.newaxis]) * 1e30, axis=1)


def pool(
    strategy: PoolingStrategy | str, x: tf.Tensor, input_mask: tf.Tensor, lengths: tf.Tensor
) -> tf.Tensor:
    """Pool ``x`` ``[B, T, D]`` (float32); CLS_POOLED is done by the model's pooler."""
    strategy = PoolingStrategy.parse(strategy)
    mask = tf.cast(input_mask, x.dtype)
    if strategy.keeps_tokens:
        return x * mask[..., tf.newaxis]
    if strategy is PoolingStrategy.REDUCE_MEAN:
        return _masked_mean(x, mask)
    if strategy is PoolingStrategy.REDUCE_MAX:
        return _masked_max(x, mask)
    if strategy is PoolingStrategy.REDUCE_MEAN_MAX:
        return tf.concat([_masked_mean(x, mask), _masked_max(x, mask)], axis=-1)
    if strategy.takes_first_token:
        return x[:, 0]
    if strategy.takes_last_token:
        return tf.gather(x, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
    raise ValueError(f"{strategy} is computed by the model's pooler, not by pool()")
