"""Texts in, vectors out: tokenizer, BERT and pooling behind one ``encode`` call.

Speed on CPU comes from three things done here: rows are sorted by length and run in chunks
so that little padding is computed; only the layers that pooling reads are built; and the
forward pass is one ``tf.function`` (optionally XLA-compiled), whose input shapes are rounded
up to a few buckets so that a long-running server compiles a bounded set of shapes.
"""

from __future__ import annotations

import bisect
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import tensorflow as tf

from ..tokenization import BertTokenizer, InputFeatures, build_features
from .bert import BertModel
from .checkpoint import (
    DEFAULT_CKPT_NAME,
    DEFAULT_CONFIG_NAME,
    ModelSpec,
    inspect_model,
    load_weights,
)
from .chunking import DEFAULT_CALL_COST, plan_chunks
from .errors import ModelError
from .fit import settings_problems
from .normalization import l2_normalized
from .pooling import NO_POOLING, POOLED, pool
from .precision import compute_dtype, cpu_flags
from .runtime import choose_runtime, openvino_installed
from .settings import EncoderSettings

DEFAULT_SETTINGS = EncoderSettings()

Texts = Union[Sequence[str], Sequence[Sequence[str]]]

# under -xla, sequence lengths are padded up to one of these, batch sizes to a power of two
LENGTH_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
CHUNK_ROWS = 64


@dataclass
class Encoding:
    """Vectors ``[B, D]`` (or ``[B, T, D]`` for NONE) and the tokens each row was fed."""

    embeddings: np.ndarray
    tokens: list[list[str]] = field(repr=False)


class SentenceEncoder:
    """A loaded BERT that maps a batch of texts to vectors, in one process."""

    def __init__(
        self,
        spec: ModelSpec,
        settings: EncoderSettings = DEFAULT_SETTINGS,
        weights: dict[str, np.ndarray] | None = None,
        dtype: tf.DType | None = None,
        logger: logging.Logger | None = None,
    ):
        self.spec = spec
        self.settings = settings
        self.logger = logger or logging.getLogger(__name__)
        self.layers = _resolve_layers(settings, spec)
        on_gpu = bool(tf.config.list_physical_devices("GPU"))
        flags = cpu_flags()
        precision = (
            dtype.name if dtype else compute_dtype(settings.precision, settings.fp16, on_gpu, flags)
        )
        # what the vectors are computed in: the forward's dtype, or int8 by the runtime
        self.precision = "int8" if settings.precision == "int8" else precision
        try:
            self.runtime = choose_runtime(
                settings.runtime,
                self.precision,
                on_gpu,
                openvino_installed(),
                settings.xla,
                flags,
            )
        except ValueError as error:
            raise ModelError(str(error)) from None
        weights = weights if weights is not None else load_weights(spec)
        # OpenVINO converts the float32 graph and computes in the precision it is told
        self._build_graph(
            weights, tf.float32 if self.runtime == "openvino" else tf.as_dtype(precision)
        )
        self.tokenizer = BertTokenizer.from_file(
            spec.vocab_path, lowercase=not settings.cased_tokenization
        )
        self._execute = self._run_tensorflow
        # the fixed cost of one forward call in tokens; warm_up measures it on this machine
        self.call_cost = DEFAULT_CALL_COST
        if self.runtime == "openvino":
            from .openvino_forward import compile_forward

            self._use_openvino(compile_forward, weights, tf.as_dtype(precision))

    def _build_graph(self, weights: dict[str, np.ndarray], dtype: tf.DType) -> None:
        """The TensorFlow model in ``dtype`` (only the layers pooling reads) and its forward
        ``tf.function``."""
        config = self.spec.config
        pooled = self.settings.pooling_strategy == POOLED
        self.compute_dtype = dtype
        self.model = BertModel(
            config,
            weights,
            config.num_hidden_layers if pooled else max(self.layers) + 1,
            not self.settings.no_position_embeddings,
            dtype,
        )
        signature = [tf.TensorSpec([None, None], tf.int32)] * 3 + [tf.TensorSpec([None], tf.int32)]
        # autograph=False: the forward has no control flow on tensors (its branches are on
        # settings), and autograph's rewriting of every method it calls cost each worker
        # about 1.2 s of its start-up
        self._forward = tf.function(
            self._pooled,
            input_signature=signature,
            jit_compile=self.settings.xla or None,
            autograph=False,
        )

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        tuned_model_dir: str | Path | None = None,
        ckpt_name: str = DEFAULT_CKPT_NAME,
        config_name: str = DEFAULT_CONFIG_NAME,
        **settings,
    ) -> SentenceEncoder:
        """Load a Google or Hugging Face BERT folder: ``SentenceEncoder.from_pretrained(path)``."""
        spec = inspect_model(model_dir, tuned_model_dir, ckpt_name, config_name)
        return cls(spec, EncoderSettings(**settings))

    @property
    def execution(self) -> str:
        """What computes the vectors, for the logs: ``float32 on openvino``."""
        return f"{self.precision} on {self.runtime}"

    @property
    def max_len(self) -> int:
        """The truncation limit: -max_seq_len, or the model's positions under NONE."""
        return self.settings.max_seq_len or self.spec.config.max_position_embeddings

    @property
    def output_length_varies(self) -> bool:
        """Whether token embeddings (NONE pooling) are as long as each batch's longest text."""
        return (
            self.settings.pooling_strategy == NO_POOLING
            and self.settings.max_seq_len is None
            and not self.settings.fixed_embed_length
        )

    def featurize(self, texts: Texts, is_tokenized: bool = False) -> InputFeatures:
        return build_features(
            list(texts),
            self.tokenizer,
            max_len=self.max_len,
            is_tokenized=is_tokenized,
            add_special_tokens=not self.settings.no_special_token,
            mask_cls_sep=self.settings.mask_cls_sep,
        )

    def encode(self, texts: Texts, is_tokenized: bool = False) -> Encoding:
        """Encode a batch of strings (or of token lists, with ``is_tokenized``)."""
        features = self.featurize(texts, is_tokenized)
        embeddings = self.encode_features(features)
        if self.settings.normalize:  # -normalize: unit-length vectors (every token's, for NONE)
            embeddings = l2_normalized(embeddings)
        return Encoding(embeddings, features.tokens)

    def encode_features(self, features: InputFeatures) -> np.ndarray:
        order = np.argsort(features.lengths, kind="stable")
        chunks = self._chunks(order, features.lengths[order])
        outputs = [self._run_chunk(features, rows) for rows in chunks]
        out_dtype = np.float16 if self.settings.fp16 else np.float32
        if self.settings.pooling_strategy == NO_POOLING:
            result = np.zeros(
                (len(order), self._output_length(features), outputs[0].shape[-1]), out_dtype
            )
            for rows, chunk in zip(chunks, outputs):
                width = min(chunk.shape[1], result.shape[1])
                result[rows, :width] = chunk[:, :width]
            return result
        result = np.empty((len(order), outputs[0].shape[-1]), out_dtype)
        result[order] = np.concatenate(outputs)
        return result

    def _output_length(self, features: InputFeatures) -> int:
        """T of NONE pooling: -max_seq_len, or under NONE the batch's longest row (or the
        model's positions with -fixed_embed_length, so that every call has the same shape)."""
        if self.output_length_varies:
            return features.input_ids.shape[1]
        return self.settings.max_seq_len or self.spec.config.max_position_embeddings

    def _chunks(self, order: np.ndarray, sorted_lengths: np.ndarray) -> list[np.ndarray]:
        """Rows of each forward call: cut to pad least for the cost of a call (chunking.py);
        under -xla in fixed chunks, whose shapes warm_up compiled."""
        if self.settings.xla:
            return [order[start : start + CHUNK_ROWS] for start in range(0, len(order), CHUNK_ROWS)]
        cuts = plan_chunks(sorted_lengths, CHUNK_ROWS, self.call_cost, self.spec.config.hidden_size)
        return [order[cut] for cut in cuts]

    def _run_chunk(self, features: InputFeatures, rows: np.ndarray) -> np.ndarray:
        length = int(features.lengths[rows].max())
        if self.settings.xla:  # XLA compiles per shape: round shapes up to a few buckets
            padded_length = _bucket_length(length, self.spec.config.max_position_embeddings)
            padded_rows = _bucket_rows(len(rows))
        else:  # a graph with dynamic shapes runs any shape: pad nothing
            padded_length, padded_rows = length, len(rows)
        arrays = [np.zeros((padded_rows, padded_length), np.int32) for _ in range(3)]
        width = min(padded_length, features.input_ids.shape[1])
        for target, source in zip(
            arrays, (features.input_ids, features.input_mask, features.segment_ids)
        ):
            target[: len(rows), :width] = source[rows, :width]
        lengths = np.ones(padded_rows, np.int32)
        lengths[: len(rows)] = features.lengths[rows]
        pooled = self._execute(*arrays, lengths)
        return pooled[: len(rows)]

    def _use_openvino(self, compile_forward, weights: dict, tensorflow_dtype: tf.DType) -> None:
        """Run on OpenVINO; if it fails its start-up check and was only auto's choice, stay on
        TensorFlow (with a warning) rather than refuse to start, rebuilding the graph in
        ``tensorflow_dtype`` when that is not the float32 OpenVINO converted (bfloat16). int8
        exists only on OpenVINO: it refuses."""
        try:
            limits = (self.spec.config.vocab_size, self.max_len)
            self._execute = compile_forward(
                self._forward, _intra_op_threads(), limits, self.precision
            )
        except ModelError as error:
            if self.settings.runtime != "auto" or self.precision == "int8":
                raise
            self.logger.warning("%s; running on TensorFlow instead", error)
            self.runtime = "tensorflow"
            if tensorflow_dtype != self.compute_dtype:
                self._build_graph(weights, tensorflow_dtype)

    def _run_tensorflow(self, *inputs: np.ndarray) -> np.ndarray:
        return self._forward(*inputs).numpy()

    def _pooled(self, input_ids, input_mask, segment_ids, lengths) -> tf.Tensor:
        outputs = self.model(input_ids, input_mask, segment_ids)
        if self.settings.pooling_strategy == POOLED:
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

    def warm_up(self) -> int:
        """Trace (and under ``-xla`` compile every bucketed shape) now, so that no request
        pays for it later; return how many shapes were prepared."""
        self.encode(["warm up"])
        if not self.settings.xla:
            self.call_cost = self._measure_call_cost()
            return 1
        longest = _bucket_length(self.max_len, self.spec.config.max_position_embeddings)
        lengths = [length for length in LENGTH_BUCKETS if length < longest] + [longest]
        rows = [_bucket_rows(count) for count in range(1, CHUNK_ROWS + 1)]
        shapes = sorted({(count, length) for count in rows for length in lengths})
        for count, length in shapes:
            ids = np.zeros((count, length), np.int32)
            self._forward(ids, np.ones_like(ids), ids, np.full(count, length, np.int32))
        return len(shapes)

    def _measure_call_cost(self) -> float:
        """The fixed cost of a forward call in tokens: the time of a one-row call of 8 tokens
        against that of a 64 x 32 call (the fastest of three each, the least disturbed),
        kept within [8, 2048] so that one unlucky measurement cannot make the cut absurd."""

        def fastest(rows: int, length: int) -> float:
            ids = np.full((rows, length), 1, np.int32)
            arrays = (ids, np.ones_like(ids), np.zeros_like(ids), np.full(rows, length, np.int32))
            times = []
            for _ in range(3):
                started = time.perf_counter()
                self._execute(*arrays)
                times.append(time.perf_counter() - started)
            return min(times)

        small, large = fastest(1, 8), fastest(CHUNK_ROWS, 32)
        per_token = max(large - small, 1e-9) / (CHUNK_ROWS * 32 - 8)
        cost = float(np.clip(small / per_token - 8, 8, 2048))
        self.logger.debug("a forward call costs as much as %.0f tokens", cost)
        return cost


def _resolve_layers(settings: EncoderSettings, spec: ModelSpec) -> list[int]:
    """The layers pooling reads, as indices from 0; ModelError when the settings do not fit."""
    config = spec.config
    problems = settings_problems(
        settings.pooling_strategy,
        settings.pooling_layer,
        settings.max_seq_len,
        config.num_hidden_layers,
        config.max_position_embeddings,
        spec.has_pooler,
    )
    if problems:
        raise ModelError("\n".join(problems))
    return [layer % config.num_hidden_layers for layer in settings.pooling_layer]


def _intra_op_threads() -> int:
    """The threads TensorFlow was given (the worker shares the cores between CPU workers),
    so that another runtime uses the same share."""
    return tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))


def _bucket_length(length: int, limit: int) -> int:
    index = bisect.bisect_left(LENGTH_BUCKETS, length)
    bucket = LENGTH_BUCKETS[index] if index < len(LENGTH_BUCKETS) else length
    return min(bucket, max(limit, length))


def _bucket_rows(rows: int) -> int:
    return 1 << (rows - 1).bit_length()
