"""BERT's forward pass in TensorFlow 2, with the numerics of Google's original model.

The weights are held as TF variables built from a dict of canonical names (see weights.py);
there is no training code and no dropout. The query, key and value kernels of each layer are
fused into one matmul, which is the same arithmetic done in one pass instead of three.

Shapes in comments: B texts in the batch, T tokens per text, H hidden size, N attention
heads, S = H / N the size of one head.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .config import BertConfig
from .weights import POOLER_BIAS, POOLER_KERNEL, layer_prefix


def _gelu_exact(x: tf.Tensor) -> tf.Tensor:
    # The erf formula, not tf.nn.gelu (which writes it with erfc): OpenVINO recognises this
    # form as one Gelu and fuses it into the preceding matmul; TensorFlow runs both alike
    return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))


def _gelu_tanh(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=True)


ACTIVATIONS = {
    "gelu": _gelu_exact,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
}


class Dense(tf.Module):
    def __init__(self, kernel: np.ndarray, bias: np.ndarray, dtype: tf.DType, name: str):
        super().__init__(name=name)
        self.kernel = tf.Variable(kernel, dtype=dtype, trainable=False, name="kernel")
        self.bias = tf.Variable(bias, dtype=dtype, trainable=False, name="bias")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.bias_add(tf.matmul(x, self.kernel), self.bias)  # one fused kernel


class LayerNorm(tf.Module):
    def __init__(
        self, gamma: np.ndarray, beta: np.ndarray, epsilon: float, dtype: tf.DType, name: str
    ):
        super().__init__(name=name)
        self.gamma = tf.Variable(gamma, dtype=dtype, trainable=False, name="gamma")
        self.beta = tf.Variable(beta, dtype=dtype, trainable=False, name="beta")
        self.epsilon = epsilon

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # in float32 even under float16, where the variance would lose precision
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
        # gamma folded into the scale, as tf.nn.batch_normalization does: OpenVINO runs this
        # form as one normalisation kernel instead of two reductions and their arithmetic
        scale = tf.math.rsqrt(variance + self.epsilon) * tf.cast(self.gamma, tf.float32)
        return tf.cast(x32 * scale + (tf.cast(self.beta, tf.float32) - mean * scale), x.dtype)


class EncoderLayer(tf.Module):
    """Self-attention then feed-forward, each followed by residual + LayerNorm."""

    def __init__(
        self, weights: dict[str, np.ndarray], index: int, config: BertConfig, dtype: tf.DType
    ):
        super().__init__(name=f"layer_{index}")
        p = layer_prefix(index)
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.qkv = Dense(
            np.concatenate(
                [weights[f"{p}attention/self/{n}/kernel"] for n in ("query", "key", "value")], 1
            ),
            np.concatenate(
                [weights[f"{p}attention/self/{n}/bias"] for n in ("query", "key", "value")]
            ),
            dtype,
            "qkv",
        )
        # one sublayer per checkpoint block, named as in Google's checkpoint: alike on purpose
        self.attention_output = Dense(
            weights[f"{p}attention/output/dense/kernel"],
            weights[f"{p}attention/output/dense/bias"],
            dtype,
            "attn_out",
        )
        self.attention_norm = LayerNorm(
            weights[f"{p}attention/output/LayerNorm/gamma"],
            weights[f"{p}attention/output/LayerNorm/beta"],
            config.layer_norm_eps,
            dtype,
            "attn_norm",
        )
        self.intermediate = Dense(
            weights[f"{p}intermediate/dense/kernel"],
            weights[f"{p}intermediate/dense/bias"],
            dtype,
            "intermediate",
        )
        self.output = Dense(
            weights[f"{p}output/dense/kernel"], weights[f"{p}output/dense/bias"], dtype, "output"
        )
        self.output_norm = LayerNorm(
            weights[f"{p}output/LayerNorm/gamma"],
            weights[f"{p}output/LayerNorm/beta"],
            config.layer_norm_eps,
            dtype,
            "output_norm",
        )
        self.activation = ACTIVATIONS[config.hidden_act]

    def __call__(
        self, x: tf.Tensor, attention_bias: tf.Tensor, batch: tf.Tensor, length: tf.Tensor
    ) -> tf.Tensor:
        """``x`` is ``[B * T, H]``: dense layers run as plain 2-D matmuls, the fastest form."""
        qkv = tf.reshape(self.qkv(x), [batch, length, 3, self.num_heads, self.head_size])
        query, key, value = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))  # each [B, N, T, S]
        scores = tf.matmul(query, key, transpose_b=True)
        scores = scores * tf.cast(1.0 / math.sqrt(self.head_size), scores.dtype) + attention_bias
        probs = tf.nn.softmax(scores, axis=-1)
        context = tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3])
        context = tf.reshape(context, [-1, self.num_heads * self.head_size])
        x = self.attention_norm(x + self.attention_output(context))
        return self.output_norm(x + self.output(self.activation(self.intermediate(x))))


class BertModel(tf.Module):
    """Embeddings, ``num_layers`` encoder layers (only as many as pooling needs) and the pooler."""

    def __init__(
        self,
        config: BertConfig,
        weights: dict[str, np.ndarray],
        num_layers: int,
        use_position_embeddings: bool = True,
        dtype: tf.DType = tf.float32,
    ):
        super().__init__(name="bert")
        self.dtype = dtype
        self.use_position_embeddings = use_position_embeddings
        self.word_embeddings = tf.Variable(
            weights["bert/embeddings/word_embeddings"],
            dtype=dtype,
            trainable=False,
            name="word_embeddings",
        )
        self.token_type_embeddings = tf.Variable(
            weights["bert/embeddings/token_type_embeddings"],
            dtype=dtype,
            trainable=False,
            name="token_type",
        )
        self.position_embeddings = tf.Variable(
            weights["bert/embeddings/position_embeddings"],
            dtype=dtype,
            trainable=False,
            name="position",
        )
        self.embedding_norm = LayerNorm(
            weights["bert/embeddings/LayerNorm/gamma"],
            weights["bert/embeddings/LayerNorm/beta"],
            config.layer_norm_eps,
            dtype,
            "embedding_norm",
        )
        self.layers = [EncoderLayer(weights, i, config, dtype) for i in range(num_layers)]
        self.pooler = None
        if POOLER_KERNEL in weights:
            self.pooler = Dense(weights[POOLER_KERNEL], weights[POOLER_BIAS], dtype, "pooler")

    def __call__(
        self, input_ids: tf.Tensor, input_mask: tf.Tensor, segment_ids: tf.Tensor
    ) -> list[tf.Tensor]:
        """The output of every built encoder layer, each ``[B, T, H]``."""
        batch, length = tf.shape(input_ids)[0], tf.shape(input_ids)[1]
        x = tf.gather(self.word_embeddings, input_ids)
        x += tf.gather(self.token_type_embeddings, segment_ids)
        if self.use_position_embeddings:
            x += self.position_embeddings[:length]
        x = self.embedding_norm(tf.reshape(x, [-1, x.shape[-1]]))
        # additive mask: 0 where attended, -10000 elsewhere, broadcast over heads and queries
        bias = (1.0 - tf.cast(input_mask[:, tf.newaxis, tf.newaxis, :], self.dtype)) * -10000.0
        outputs = []
        for layer in self.layers:
            x = layer(x, bias, batch, length)
            outputs.append(tf.reshape(x, [batch, length, -1]))
        return outputs

    def pool_first_token(self, last_layer: tf.Tensor) -> tf.Tensor:
        """The pooler: tanh(dense) of the first token of the last layer, as pre-training used it."""
        return tf.tanh(self.pooler(last_layer[:, 0]))
