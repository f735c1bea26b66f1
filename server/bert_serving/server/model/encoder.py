"""Texts in, vectors out: tokenizer, BERT and pooling behind one ``encode`` call.

Speed on CPU comes from what is done here: rows are sorted by length and run in chunks so
that little padding is computed; the forward pass (tensorflow_forward.py: only the layers
pooling reads, one ``tf.function``) runs on the fastest runtime for the CPU (runtime.py),
under ``-xla`` with input shapes rounded up to a few buckets so that a long-running server
compiles a bounded set of shapes; and an OpenVINO model converted once is read by every
later start (forward_cache.py), which then needs no TensorFlow.

This module imports no TensorFlow itself: the encoder loads it only to build the graph.
"""

from __future__ import annotations

import bisect
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence, Union

import numpy as np

from ..tokenization import BertTokenizer, InputFeatures, build_features
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
from .forward_cache import ForwardCache
from .normalization import l2_normalized
from .precision import compute_dtype, cpu_flags
from .runtime import choose_runtime, openvino_installed
from .settings import EncoderSettings
from .strategy import PoolingStrategy

DEFAULT_SETTINGS = EncoderSettings()

Texts = Union[Sequence[str], Sequence[Sequence[str]]]

# under -xla, sequence lengths are padded up to one of these, batch sizes to a power of two
LENGTH_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
CHUNK_ROWS = 64
CALL_COST_ROWS = 16  # rows of the large call that warm_up times


@dataclass
class Encoding:
    """Vectors ``[B, D]`` (or ``[B, T, D]`` for NONE) and the tokens each row was fed."""

    embeddings: np.ndarray
    tokens: list[list[str]] = field(repr=False)


class SentenceEncoder:
    """A loaded BERT that maps a batch of texts to vectors, in one process.

    The forward pass (``_execute``: numpy ids in, vectors out) is TensorFlow's function
    (tensorflow_forward.py) or OpenVINO's conversion of it. Given a ``forward_cache`` (a
    worker passes one), an OpenVINO encoder reads the model converted by an earlier start
    and imports neither TensorFlow nor the checkpoint. ``threads``: the cores this encoder
    may use (a worker's share); ``load_tensorflow`` imports TensorFlow when it is needed,
    so that a worker can configure it before its runtime starts.
    """

    def __init__(
        self,
        spec: ModelSpec,
        settings: EncoderSettings = DEFAULT_SETTINGS,
        weights: dict[str, np.ndarray] | None = None,
        dtype: str | None = None,
        logger: logging.Logger | None = None,
        *,
        threads: int | None = None,
        forward_cache: ForwardCache | None = None,
        load_tensorflow: Callable[[], ModuleType] | None = None,
    ):
        self.spec = spec
        self.settings = settings
        self.logger = logger or logging.getLogger(__name__)
        self.layers = _resolve_layers(settings, spec)
        self.threads = threads
        self._load_tensorflow = load_tensorflow or _import_tensorflow
        on_gpu = self._gpu_visible()
        flags = cpu_flags()
        precision = dtype or compute_dtype(settings.precision, settings.fp16, on_gpu, flags)
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
        self.tokenizer = BertTokenizer.from_file(
            spec.vocab_path, lowercase=not settings.cased_tokenization
        )
        # the fixed cost of one forward call in tokens; warm_up measures it on this machine
        self.call_cost = DEFAULT_CALL_COST
        self._weights = weights
        self.graph = None  # the TensorFlow forward, once built (never, from a saved model)
        if self.runtime == "openvino":
            self._execute = self._openvino_or_fallback(precision, forward_cache)
        else:
            self._execute = self._build_graph(precision)
        self._weights = None  # the graph holds them; the encoder keeps no second copy

    def _gpu_visible(self) -> bool:
        """Whether TensorFlow would compute on a GPU. A worker placed on the CPU hides the
        GPUs from CUDA (``CUDA_VISIBLE_DEVICES=-1``), which answers without TensorFlow."""
        if os.environ.get("CUDA_VISIBLE_DEVICES") == "-1":
            return False
        return bool(self._load_tensorflow().config.list_physical_devices("GPU"))

    def _build_graph(self, dtype: str):
        """The TensorFlow forward in ``dtype`` (the one built already, if it is in it), from
        the weights given or read now."""
        if self.graph is not None and self.graph.compute_dtype.name == dtype:
            return self.graph
        self._load_tensorflow()
        from .tensorflow_forward import TensorFlowForward

        if self._weights is None:
            self._weights = load_weights(self.spec)
        self.graph = TensorFlowForward(self.spec, self.settings, self.layers, self._weights, dtype)
        return self.graph

    def _openvino_or_fallback(self, tensorflow_dtype: str, forward_cache: ForwardCache | None):
        """Run on OpenVINO; if it fails its start-up check and was only auto's choice, stay on
        TensorFlow (with a warning) rather than refuse to start, in ``tensorflow_dtype``
        (bfloat16 where OpenVINO would have computed it from the float32 graph). int8 exists
        only on OpenVINO: it refuses."""
        try:
            return self._openvino(forward_cache)
        except ModelError as error:
            if self.settings.runtime != "auto" or self.precision == "int8":
                raise
            self.logger.warning("%s; running on TensorFlow instead", error)
            self.runtime = "tensorflow"
            return self._build_graph(tensorflow_dtype)

    def _openvino(self, forward_cache: ForwardCache | None) -> Callable[..., np.ndarray]:
        """OpenVINO's forward: the saved model when one passes its check, else converted
        from the float32 TensorFlow graph (and saved for the next start)."""
        from .openvino_forward import compile_checked, convert_forward, make_probe

        threads = self._openvino_threads()
        saved = forward_cache.load(self.precision) if forward_cache else None
        if saved is not None:
            model, probe = saved
            entry = forward_cache.entry(self.precision)
            try:
                run = compile_checked(model, probe, threads, self.precision)
            except ModelError as error:
                self.logger.warning(
                    "the OpenVINO model saved in %s failed its check (%s); converting again",
                    entry,
                    error,
                )
            else:
                self.logger.info("OpenVINO model read as an earlier start saved it (%s)", entry)
                return run
        started = time.monotonic()
        graph = self._build_graph("float32")
        model = convert_forward(graph.function, self.precision)
        probe = make_probe(graph, (self.spec.config.vocab_size, self.max_len))
        # if this fails too, the runtime on this CPU is at fault, not the saved entry: it
        # stays for the machines (or settings of the ISA) where it passes
        run = compile_checked(model, probe, threads, self.precision)
        self.logger.info("converted to OpenVINO in %.1f s", time.monotonic() - started)
        if forward_cache and forward_cache.save(self.precision, model, probe, saved is not None):
            self.logger.info("saved for later starts in %s", forward_cache.entry(self.precision))
        return run

    def _openvino_threads(self) -> int:
        """``threads``, else those TensorFlow was given if it is loaded, else every core this
        process may use."""
        if self.threads:
            return self.threads
        tensorflow = sys.modules.get("tensorflow")
        threading = tensorflow.config.threading if tensorflow else None
        configured = threading.get_intra_op_parallelism_threads() if threading else 0
        return configured or len(os.sched_getaffinity(0))

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
            self.settings.pooling_strategy == PoolingStrategy.NONE
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
        if self.settings.pooling_strategy == PoolingStrategy.NONE:
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
            self._execute(ids, np.ones_like(ids), ids, np.full(count, length, np.int32))
        return len(shapes)

    def _measure_call_cost(self) -> float:
        """The fixed cost of a forward call in tokens: the time of a one-row call of 8 tokens
        against that of a 16 x 32 call (the fastest of three each, the least disturbed),
        kept within [8, 2048] so that one unlucky measurement cannot make the cut absurd.
        16 rows, not a full chunk of 64: on MiniLM (AMD EPYC Zen 3, 6 alternating rounds)
        the estimates matched (medians 15 and 14 tokens) at a quarter of the CPU (0.38
        against 1.64 s), which had become most of a start from a saved model."""

        def fastest(rows: int, length: int) -> float:
            ids = np.full((rows, length), 1, np.int32)
            arrays = (ids, np.ones_like(ids), np.zeros_like(ids), np.full(rows, length, np.int32))
            times = []
            for _ in range(3):
                started = time.perf_counter()
                self._execute(*arrays)
                times.append(time.perf_counter() - started)
            return min(times)

        small, large = fastest(1, 8), fastest(CALL_COST_ROWS, 32)
        per_token = max(large - small, 1e-9) / (CALL_COST_ROWS * 32 - 8)
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


def _import_tensorflow() -> ModuleType:
    import tensorflow

    return tensorflow


def _bucket_length(length: int, limit: int) -> int:
    index = bisect.bisect_left(LENGTH_BUCKETS, length)
    bucket = LENGTH_BUCKETS[index] if index < len(LENGTH_BUCKETS) else length
    return min(bucket, max(limit, length))


def _bucket_rows(rows: int) -> int:
    return 1 << (rows - 1).bit_length()
