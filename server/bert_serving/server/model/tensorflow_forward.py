"""The definition of the vectors: BERT and its pooling as one TensorFlow function.

Token ids ``[B, T]`` in, one vector per text ``[B, D]`` out (``[B, T, D]`` under NONE).
Only the layers that pooling reads are built. TensorFlow runs this function itself, or
OpenVINO converts it (openvino_forward.py): either way it is what the vectors mean, and
the start-up check of any other runtime compares against it.

Importing this module imports TensorFlow (about 6 s of CPU); the encoder imports it only
when it builds the graph, so that a worker whose OpenVINO model is already converted
(forward_cache.py) never loads TensorFlow at all.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .bert import BertModel
from .checkpoint import ModelSpec
from .pooling import pool
from .settings import EncoderSettings
from .strategy import PoolingStrategy

INPUT_SIGNATURE = [tf.TensorSpec([None, None], tf.int32)] * 3 + [tf.TensorSpec([None], tf.int32)]


class TensorFlowForward:
    """``(input_ids, input_mask, segment_ids, lengths) -> vectors`` on numpy arrays, computed
    in ``dtype`` by one ``tf.function`` (``function``, for converters and compilers)."""

    def __init__(
        self,
        spec: ModelSpec,
        settings: EncoderSettings,
        layers: list[int],
        weights: dict[str, np.ndarray],
        dtype: str,
    ):
        config = spec.config
        self.settings = settings
        self.layers = layers
        self.compute_dtype = tf.as_dtype(dtype)
        pooled = settings.pooling_strategy == PoolingStrategy.CLS_POOLED
        self.model = BertModel(
            config,
            weights,
            config.num_hidden_layers if pooled else max(layers) + 1,
            not settings.no_position_embeddings,
            self.compute_dtype,
        )
        # autograph=False: the forward has no control flow on tensors (its branches are on
        # settings), and autograph's rewriting of every method it calls cost each worker
        # about 1.2 s of its start-up
        self.function = tf.function(
            self._pooled,
            input_signature=INPUT_SIGNATURE,
            jit_compile=settings.xla or None,
            autograph=False,
        )

    def __call__(
        self,
        input_ids: np.ndarray,
        input_mask: np.ndarray,
        segment_ids: np.ndarray,
        lengths: np.ndarray,
    ) -> np.ndarray:
        return self.function(input_ids, input_mask, segment_ids, lengths).numpy()

    def _pooled(self, input_ids, input_mask, segment_ids, lengths) -> tf.Tensor:
        outputs = self.model(input_ids, input_mask, segment_ids)
        if self.settings.pooling_strategy == PoolingStrategy.CLS_POOLED:
            pooled = self.model.pool_first_token(outputs[-1])
        else:
            x = (
                tf.concat([outputs[i] for i in self.layers], -1)
                if len(self.layers) > 1
                else outputs[self.layers[0]]
            )
            pooled = pool(
                self.settings.pooling_strategy, tf.cast(x, tf.float32), input_mask, lengths
            )
        return tf.cast(pooled, tf.float16 if self.settings.fp16 else tf.float32)
