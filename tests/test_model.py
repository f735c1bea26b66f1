"""The TensorFlow encoder against the independent numpy reference (tests/reference)."""

from __future__ import annotations

import numpy as np
import pytest

from bert_serving.server.args import PoolingStrategy
from bert_serving.server.model.checkpoint import inspect_model
from bert_serving.server.model.encoder import CHUNK_ROWS, EncoderSettings, SentenceEncoder
from tests.fixtures import checkpoints
from tests.reference.numpy_bert import make_features, reference_encode

STRATEGIES = [str(strategy) for strategy in PoolingStrategy]  # every one the CLI accepts
ROWS = [[2, 10, 11, 12, 3], [2, 40, 3], [2, 20, 21, 22, 23, 24, 25, 26, 3, 30, 31, 3], [2, 3]]
SEGMENTS = [None, None, [0] * 9 + [1] * 3, None]


def features(rows=ROWS, segments=SEGMENTS, masks=None):
    return make_features(rows, [s or [0] * len(r) for r, s in zip(rows, segments)], masks)


def encoder_for(model_dir, **settings) -> SentenceEncoder:
    settings.setdefault("precision", "float32")  # the reference is float64
    return SentenceEncoder(inspect_model(model_dir), EncoderSettings(**settings))


def assert_matches_reference(
    encoder, weights, config, feats, strategy, layers, atol=2e-4, no_position_embeddings=False
):
    got = encoder.encode_features(feats)
    want = reference_encode(
        weights,
        config,
        feats,
        strategy,
        list(layers),
        no_position_embeddings=no_position_embeddings,
    )
    if strategy == "NONE":
        assert got.shape[1] >= want.shape[1]
        assert not got[:, want.shape[1] :].any(), "NONE pads with zeros beyond the real length"
        got = got[:, : want.shape[1]]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=atol, rtol=1e-3)
    return float(np.abs(got - want).max())


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("layers", [(-1,), (-2,), (0,), (-1, 0), (1, -3, 2)])
def test_every_strategy_and_layer_choice_matches_reference(
    google_model_dir, tiny_weights, tiny_config, strategy, layers
):
    encoder = encoder_for(
        google_model_dir, pooling_strategy=strategy, pooling_layer=layers, max_seq_len=16
    )
    assert_matches_reference(encoder, tiny_weights, tiny_config, features(), strategy, layers)


@pytest.mark.parametrize(
    "overrides",
    [
        {"hidden_act": "gelu_new", "num_hidden_layers": 2},
        {"hidden_act": "relu", "num_attention_heads": 2, "hidden_size": 16},
        {"hidden_act": "silu", "intermediate_size": 64, "layer_norm_eps": 1e-6},
        {"type_vocab_size": 3, "max_position_embeddings": 40},
    ],
)
@pytest.mark.parametrize("layout", ["google", "hf"])
def test_other_configs_and_both_layouts(tmp_path, overrides, layout):
    config = checkpoints.tiny_config(**overrides)
    weights = checkpoints.random_weights(config, seed=7)
    vocab = checkpoints.tiny_vocab()
    if layout == "google":
        checkpoints.write_google_checkpoint(tmp_path, config, weights, vocab)
    else:
        checkpoints.write_hf_folder(tmp_path, config, weights, vocab, prefix="")
    for strategy in ("REDUCE_MEAN", "NONE", "LAST_TOKEN"):
        encoder = encoder_for(
            tmp_path, pooling_strategy=strategy, pooling_layer=(-1, 0), max_seq_len=20
        )
        assert_matches_reference(encoder, weights, config, features(), strategy, (-1, 0))


def test_masks_of_mask_cls_sep_leave_out_cls_and_sep(google_model_dir, tiny_weights, tiny_config):
    masks = [[0] + [1] * (len(r) - 2) + [0] for r in ROWS]
    masks[2][8] = 0  # the pair's middle [SEP]
    feats = features(masks=masks)
    for strategy in ("NONE", "REDUCE_MEAN", "REDUCE_MAX"):
        encoder = encoder_for(google_model_dir, pooling_strategy=strategy, max_seq_len=16)
        assert_matches_reference(encoder, tiny_weights, tiny_config, feats, strategy, (-2,))
    none = encoder_for(google_model_dir, pooling_strategy="NONE").encode_features(feats)
    assert not none[:, 0].any(), "[CLS] rows are zero under mask_cls_sep"


def test_no_position_embeddings(google_model_dir, tiny_weights, tiny_config):
    encoder = encoder_for(google_model_dir, no_position_embeddings=True)
    assert_matches_reference(
        encoder,
        tiny_weights,
        tiny_config,
        features(),
        "REDUCE_MEAN",
        (-2,),
        no_position_embeddings=True,
    )


def test_xla_gives_the_same_vectors(google_model_dir, tiny_weights, tiny_config):
    for strategy in ("REDUCE_MEAN_MAX", "NONE"):
        encoder = encoder_for(google_model_dir, xla=True, pooling_strategy=strategy)
        assert_matches_reference(encoder, tiny_weights, tiny_config, features(), strategy, (-2,))


def test_fp16_returns_float16_close_to_reference(google_model_dir, tiny_weights, tiny_config):
    encoder = encoder_for(google_model_dir, fp16=True)
    assert encoder.encode_features(features()).dtype == np.float16
    assert_matches_reference(
        encoder, tiny_weights, tiny_config, features(), "REDUCE_MEAN", (-2,), atol=2e-2
    )


def test_float16_arithmetic_path_stays_close(google_model_dir, tiny_weights, tiny_config):
    """The reduced-precision compute used on GPUs, run here on the CPU."""
    spec = inspect_model(google_model_dir)
    encoder = SentenceEncoder(spec, EncoderSettings(fp16=True), dtype="float16")
    assert encoder.graph.compute_dtype.name == "float16"
    assert_matches_reference(
        encoder, tiny_weights, tiny_config, features(), "REDUCE_MEAN", (-2,), atol=8e-2
    )


def test_chunks_of_mixed_lengths_come_back_in_order(google_model_dir, tiny_weights, tiny_config):
    rng = np.random.default_rng(3)
    rows = [
        [2, *rng.integers(5, 130, size=int(n)).tolist(), 3]
        for n in rng.integers(0, 40, size=CHUNK_ROWS * 2 + 5)
    ]
    feats = make_features(rows)
    for xla in (False, True):
        encoder = encoder_for(google_model_dir, xla=xla, max_seq_len=None)
        assert_matches_reference(encoder, tiny_weights, tiny_config, feats, "REDUCE_MEAN", (-2,))
    # however the batch is cut into calls (many small ones, or the fewest), the same vectors
    encoder = encoder_for(google_model_dir, max_seq_len=None)
    for call_cost in (0.0, 1e9):
        encoder.call_cost = call_cost
        assert_matches_reference(encoder, tiny_weights, tiny_config, feats, "REDUCE_MEAN", (-2,))


def test_warm_up_measures_what_a_forward_call_costs(google_model_dir):
    encoder = encoder_for(google_model_dir)
    encoder.call_cost = -1.0
    encoder.warm_up()
    assert 8 <= encoder.call_cost <= 2048


def test_none_pooling_output_length(google_model_dir):
    feats = features()
    fixed = encoder_for(google_model_dir, pooling_strategy="NONE", max_seq_len=30)
    assert fixed.encode_features(feats).shape == (4, 30, 32)
    dynamic = encoder_for(google_model_dir, pooling_strategy="NONE", max_seq_len=None)
    assert dynamic.encode_features(feats).shape == (4, 12, 32)
    full = encoder_for(
        google_model_dir, pooling_strategy="NONE", max_seq_len=None, fixed_embed_length=True
    )
    assert full.encode_features(feats).shape == (4, 64, 32)


def test_only_needed_layers_are_built(google_model_dir):
    def layers_built(**settings) -> int:
        return len(encoder_for(google_model_dir, **settings).graph.model.layers)

    assert layers_built(pooling_layer=(0,)) == 1
    assert layers_built(pooling_layer=(-2,)) == 2
    assert layers_built(pooling_strategy="CLS_POOLED") == 3


def test_xla_compiles_a_bounded_set_of_shapes(google_model_dir):
    """Under -xla every forward call gets a bucketed shape, so a long-running server compiles
    each bucket once instead of once per request shape."""
    encoder = encoder_for(google_model_dir, xla=True, max_seq_len=None)
    shapes = set()
    forward = encoder.graph.function

    def recording(input_ids, *rest):
        shapes.add(input_ids.shape)
        return forward(input_ids, *rest)

    encoder.graph.function = recording
    rng = np.random.default_rng(1)
    for _ in range(40):
        rows = [
            [2, *rng.integers(5, 130, size=int(n)).tolist(), 3]
            for n in rng.integers(0, 60, size=int(rng.integers(1, 100)))
        ]
        encoder.encode_features(make_features(rows))
    assert len(shapes) <= 30, shapes
    assert {rows for rows, _ in shapes} <= {1, 2, 4, 8, 16, 32, 64}
    assert {length for _, length in shapes} <= {8, 16, 24, 32, 48, 64}


def test_xla_warm_up_compiles_every_shape_a_request_can_get(google_model_dir):
    """Compiling at start-up: after warm_up, no request of any size triggers a compilation."""
    encoder = encoder_for(google_model_dir, xla=True, max_seq_len=8)
    assert encoder.warm_up() == 7  # 1, 2, 4, ..., 64 rows of 8 tokens
    compiled = encoder.graph.function.experimental_get_tracing_count()
    rng = np.random.default_rng(2)
    for size in (1, 3, 17, 64, 100):
        lengths = rng.integers(0, 7, size)  # at most 8 tokens with [CLS] and [SEP]
        rows = [[2, *rng.integers(5, 130, size=int(n)).tolist(), 3] for n in lengths]
        encoder.encode_features(make_features(rows))
    assert encoder.graph.function.experimental_get_tracing_count() == compiled
