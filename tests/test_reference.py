"""Sanity checks of the numpy oracle and of the checkpoint writers themselves."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.fixtures import checkpoints
from tests.reference.numpy_bert import (
    activation,
    forward_all_layers,
    make_features,
    pool,
    reference_encode,
)

TIGHT = 1e-9
STRATEGIES = [
    "NONE",
    "REDUCE_MEAN",
    "REDUCE_MAX",
    "REDUCE_MEAN_MAX",
    "CLS_TOKEN",
    "FIRST_TOKEN",
    "SEP_TOKEN",
    "LAST_TOKEN",
    "CLS_POOLED",
]


def _layers(weights, config, features, **kwargs):
    return forward_all_layers(
        weights, config, features.input_ids, features.input_mask, features.segment_ids, **kwargs
    )


def _pool(layers, strategy, pooling_layer, features, weights=None):
    return pool(layers, strategy, pooling_layer, features.input_mask, features.lengths, weights)


def test_gelu_is_exact_erf_gelu():
    gelu = activation("gelu")
    x = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.5])
    expected = [v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x]
    np.testing.assert_allclose(gelu(x), expected, rtol=0, atol=1e-15)
    assert gelu(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, abs=1e-15)
    np.testing.assert_allclose(activation("gelu_new")(x), gelu(x), atol=1e-3)
    with pytest.raises(ValueError, match="hidden_act"):
        activation("tanhh")


def test_make_features_pads_with_zeros():
    features = make_features([[2, 5, 3], [2, 3]], segment_rows=[[0, 0, 1], [0, 0]])
    np.testing.assert_array_equal(features.input_ids, [[2, 5, 3], [2, 3, 0]])
    np.testing.assert_array_equal(features.input_mask, [[1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(features.segment_ids, [[0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(features.lengths, [3, 2])
    assert features.input_ids.dtype == np.int32


def _naive_first_layer(weights, config, ids, segments):
    """Layer 0 for one unpadded row, token by token and head by head with Python scalars."""
    eps = 1e-12

    def w(name):
        return np.asarray(weights[name], dtype=np.float64)

    def layer_norm(v, scope):
        mean = sum(v) / len(v)
        var = sum((a - mean) ** 2 for a in v) / len(v)
        return np.array([(a - mean) / math.sqrt(var + eps) for a in v]) * w(f"{scope}/gamma") + w(
            f"{scope}/beta"
        )

    def dense(v, scope):
        return v @ w(f"{scope}/kernel") + w(f"{scope}/bias")

    emb = "bert/embeddings"
    rows = [
        layer_norm(
            w(f"{emb}/word_embeddings")[i]
            + w(f"{emb}/token_type_embeddings")[s]
            + w(f"{emb}/position_embeddings")[p],
            f"{emb}/LayerNorm",
        )
        for p, (i, s) in enumerate(zip(ids, segments))
    ]
    scope = "bert/encoder/layer_0"
    heads = config["num_attention_heads"]
    size = config["hidden_size"] // heads
    q, k, v = (
        [dense(r, f"{scope}/attention/self/{n}") for r in rows] for n in ("query", "key", "value")
    )
    outputs = []
    for t, row in enumerate(rows):
        context = np.zeros(config["hidden_size"])
        for h in range(heads):
            part = slice(h * size, (h + 1) * size)
            scores = [float(q[t][part] @ k[j][part]) / math.sqrt(size) for j in range(len(rows))]
            exps = [math.exp(s - max(scores)) for s in scores]
            for j, e in enumerate(exps):
                context[part] += e / sum(exps) * v[j][part]
        attended = layer_norm(
            dense(context, f"{scope}/attention/output/dense") + row,
            f"{scope}/attention/output/LayerNorm",
        )
        pre_activation = dense(attended, f"{scope}/intermediate/dense")
        inner = [a * 0.5 * (1 + math.erf(a / math.sqrt(2))) for a in pre_activation]
        out = dense(np.array(inner), f"{scope}/output/dense") + attended
        outputs.append(layer_norm(out, f"{scope}/output/LayerNorm"))
    return np.array(outputs)


def test_vectorised_forward_matches_naive_scalar_forward(tiny_config, tiny_weights):
    ids, segments = [2, 60, 61, 3, 70, 3], [0, 0, 0, 0, 1, 1]
    layers = _layers(tiny_weights, tiny_config, make_features([ids], [segments]))
    expected = _naive_first_layer(tiny_weights, tiny_config, ids, segments)
    np.testing.assert_allclose(layers[0][0], expected, rtol=0, atol=1e-12)


def test_every_layer_output_is_layer_normalised(tiny_config, tiny_weights):
    features = make_features([[2, 10, 11, 12, 3]])
    layers = _layers(tiny_weights, tiny_config, features)
    assert len(layers) == tiny_config["num_hidden_layers"]
    for index, layer in enumerate(layers):
        assert layer.shape == (1, 5, tiny_config["hidden_size"])
        assert layer.dtype == np.float64
        scope = f"bert/encoder/layer_{index}/output/LayerNorm"
        normalized = (layer - tiny_weights[f"{scope}/beta"]) / tiny_weights[f"{scope}/gamma"]
        np.testing.assert_allclose(normalized.mean(axis=-1), 0.0, atol=TIGHT)
        np.testing.assert_allclose(normalized.std(axis=-1), 1.0, atol=TIGHT)


@pytest.mark.parametrize("pooling_layer", [[-1], [-2, 0]])
@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "NONE"])
def test_padding_does_not_change_pooled_results(tiny_config, tiny_weights, strategy, pooling_layer):
    alone = make_features([[2, 10, 11, 3]])
    padded = make_features([[2, 10, 11, 3], [2, 20, 21, 22, 23, 24, 3]])
    results = [
        reference_encode(tiny_weights, tiny_config, features, strategy, pooling_layer)
        for features in (alone, padded)
    ]
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=0, atol=TIGHT)


def test_masked_tokens_are_not_attended(tiny_config, tiny_weights):
    # Row 0 masks its [CLS] out (as under mask_cls_sep); row 1 has two padding slots, whose
    # ids and segments are then made non-zero: no real token may notice either change.
    base = make_features([[2, 10, 11, 12, 3], [2, 13, 3]], mask_rows=[[0, 1, 1, 1, 1], [1, 1, 1]])
    changed = make_features(
        [[5, 10, 11, 12, 3], [2, 13, 3, 40, 41]],
        segment_rows=[[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]],
        mask_rows=[[0, 1, 1, 1, 1], [1, 1, 1, 0, 0]],
    )
    before_layers = _layers(tiny_weights, tiny_config, base)
    after_layers = _layers(tiny_weights, tiny_config, changed)
    for before, after in zip(before_layers, after_layers):
        np.testing.assert_allclose(after[0, 1:], before[0, 1:], rtol=0, atol=1e-12)
        np.testing.assert_allclose(after[1, :3], before[1, :3], rtol=0, atol=1e-12)
        assert not np.allclose(after[0, 0], before[0, 0])


def test_position_embeddings_break_permutation_symmetry(tiny_config, tiny_weights):
    ids = [2, 10, 11, 12, 3]
    order = [4, 2, 0, 3, 1]
    features = make_features([ids, [ids[i] for i in order]])
    plain = _layers(tiny_weights, tiny_config, features, no_position_embeddings=True)[-1]
    np.testing.assert_allclose(plain[1], plain[0][order], rtol=0, atol=1e-12)
    positional = _layers(tiny_weights, tiny_config, features)[-1]
    assert not np.allclose(positional[1], positional[0][order], atol=1e-3)


@pytest.fixture(scope="module")
def batch(tiny_config, tiny_weights):
    features = make_features([[2, 10, 11, 3], [2, 20, 21, 22, 23, 3], [2, 3]])
    return features, _layers(tiny_weights, tiny_config, features)


def test_none_keeps_real_rows_and_zeroes_padding(batch):
    features, layers = batch
    result = _pool(layers, "NONE", [-1], features)
    assert result.shape == layers[-1].shape
    np.testing.assert_array_equal(result[0, :4], layers[-1][0, :4])
    np.testing.assert_array_equal(result[0, 4:], 0.0)
    np.testing.assert_array_equal(result[2, 2:], 0.0)


def test_reduce_mean_and_max_use_only_real_tokens(batch):
    features, layers = batch
    mean = _pool(layers, "REDUCE_MEAN", [-1], features)
    maximum = _pool(layers, "REDUCE_MAX", [-1], features)
    for row, length in enumerate(features.lengths):
        real = layers[-1][row, :length]
        np.testing.assert_allclose(mean[row], real.mean(axis=0), rtol=1e-9, atol=TIGHT)
        np.testing.assert_array_equal(maximum[row], real.max(axis=0))
    both = _pool(layers, "REDUCE_MEAN_MAX", [-1], features)
    np.testing.assert_array_equal(both, np.concatenate([mean, maximum], axis=-1))


def test_token_strategies_pick_first_and_last_real_token(batch):
    features, layers = batch
    last = layers[-1][np.arange(3), features.lengths - 1]
    for strategy in ("SEP_TOKEN", "LAST_TOKEN"):
        np.testing.assert_array_equal(_pool(layers, strategy, [-1], features), last)
    for strategy in ("CLS_TOKEN", "FIRST_TOKEN"):
        np.testing.assert_array_equal(_pool(layers, strategy, [-1], features), layers[-1][:, 0])


def test_cls_pooled_is_tanh_of_pooler_on_last_layer_first_token(batch, tiny_weights):
    features, layers = batch
    kernel = tiny_weights["bert/pooler/dense/kernel"].astype(np.float64)
    bias = tiny_weights["bert/pooler/dense/bias"].astype(np.float64)
    expected = np.tanh(layers[-1][:, 0] @ kernel + bias)
    result = _pool(layers, "CLS_POOLED", [0], features, tiny_weights)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="pooler"):
        _pool(layers, "CLS_POOLED", [-1], features)


def test_layers_are_concatenated_in_pooling_layer_order(batch, tiny_config):
    features, layers = batch
    result = _pool(layers, "CLS_TOKEN", [-1, 0, -2], features)
    hidden = tiny_config["hidden_size"]
    assert result.shape == (3, 3 * hidden)
    for position, layer in enumerate((-1, 0, -2)):
        chunk = result[:, position * hidden : (position + 1) * hidden]
        np.testing.assert_array_equal(chunk, layers[layer][:, 0])


def test_unknown_strategy_is_rejected(batch):
    features, layers = batch
    with pytest.raises(ValueError, match="pooling strategy"):
        _pool(layers, "REDUCE_MEDIAN", [-1], features)


def test_google_checkpoint_round_trip(tmp_path, tiny_config, tiny_weights):
    import tensorflow as tf

    extras = {
        "global_step": np.array(123, dtype=np.int64),
        "output_weights": np.ones((2, tiny_config["hidden_size"]), np.float32),
        "bert/embeddings/word_embeddings/adam_m": np.zeros((3, 4), np.float32),
    }
    prefix = checkpoints.write_google_checkpoint(
        tmp_path, tiny_config, tiny_weights, checkpoints.tiny_vocab(), extra_variables=extras
    )
    reader = tf.train.load_checkpoint(str(prefix))
    assert set(reader.get_variable_to_shape_map()) == set(tiny_weights) | set(extras)
    for name, array in {**tiny_weights, **extras}.items():
        restored = reader.get_tensor(name)
        assert restored.dtype == array.dtype
        np.testing.assert_array_equal(restored, array)
    assert json.loads((tmp_path / "bert_config.json").read_text()) == tiny_config
    vocab = (tmp_path / "vocab.txt").read_text("utf-8").splitlines()
    assert vocab == checkpoints.tiny_vocab()


def test_fine_tuned_checkpoint_without_config(tmp_path, tiny_config, tiny_weights):
    import tensorflow as tf

    checkpoints.write_google_checkpoint(
        tmp_path,
        tiny_config,
        tiny_weights,
        [],
        ckpt_name="model.ckpt-7",
        write_config_and_vocab=False,
        write_checkpoint_state=True,
    )
    assert not (tmp_path / "bert_config.json").exists()
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-7")


@pytest.mark.parametrize(("prefix", "legacy"), [("bert.", False), ("", True)])
def test_hf_folder_round_trip(tmp_path, tiny_config, tiny_weights, prefix, legacy):
    from safetensors.numpy import load_file

    checkpoints.write_hf_folder(
        tmp_path, tiny_config, tiny_weights, checkpoints.tiny_vocab(), prefix, legacy
    )
    tensors = load_file(str(tmp_path / "model.safetensors"))
    layer_norm = "gamma" if legacy else "weight"
    np.testing.assert_array_equal(
        tensors[f"{prefix}encoder.layer.1.intermediate.dense.weight"],
        tiny_weights["bert/encoder/layer_1/intermediate/dense/kernel"].T,
    )
    np.testing.assert_array_equal(
        tensors[f"{prefix}embeddings.LayerNorm.{layer_norm}"],
        tiny_weights["bert/embeddings/LayerNorm/gamma"],
    )
    np.testing.assert_array_equal(tensors[f"{prefix}embeddings.position_ids"], [np.arange(64)])
    restored = checkpoints.hf_to_canonical(tensors, tiny_config, prefix, legacy)
    assert set(restored) == set(tiny_weights)
    for name, array in tiny_weights.items():
        np.testing.assert_array_equal(restored[name], array)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and config["layer_norm_eps"] == 1e-12


def _minilm_ids(minilm_dir, sentence):
    vocab = {t: i for i, t in enumerate((minilm_dir / "vocab.txt").read_text("utf-8").splitlines())}
    return [vocab["[CLS]"], *(vocab[word] for word in sentence.split()), vocab["[SEP]"]]


@pytest.mark.slow
def test_minilm_weights_map_to_every_canonical_name(minilm_weights, minilm_config):
    expected = checkpoints.canonical_shapes(minilm_config, with_pooler=True)
    assert {name: array.shape for name, array in minilm_weights.items()} == expected


@pytest.mark.slow
def test_minilm_forward_is_normalised_and_padding_invariant(
    minilm_dir, minilm_config, minilm_weights
):
    ids = _minilm_ids(minilm_dir, "hello world")
    alone = make_features([ids])
    padded = make_features([ids, _minilm_ids(minilm_dir, "this is a much longer sentence")])
    layers = _layers(minilm_weights, minilm_config, alone)
    gamma = minilm_weights["bert/encoder/layer_5/output/LayerNorm/gamma"]
    beta = minilm_weights["bert/encoder/layer_5/output/LayerNorm/beta"]
    normalized = (layers[-1] - beta) / gamma
    np.testing.assert_allclose(normalized.mean(axis=-1), 0.0, atol=TIGHT)
    np.testing.assert_allclose(normalized.std(axis=-1), 1.0, atol=1e-6)
    for strategy in ("REDUCE_MEAN", "REDUCE_MAX", "CLS_TOKEN", "LAST_TOKEN", "CLS_POOLED"):
        results = [
            reference_encode(minilm_weights, minilm_config, f, strategy, [-1])
            for f in (alone, padded)
        ]
        assert results[0].shape == (1, minilm_config["hidden_size"])
        np.testing.assert_allclose(results[1][0], results[0][0], rtol=0, atol=TIGHT)


@pytest.mark.slow
def test_minilm_mean_embeddings_rank_paraphrases_first(minilm_dir, minilm_config, minilm_weights):
    sentences = ["a man is eating food", "a man is eating a meal", "the girl is carrying a baby"]
    features = make_features([_minilm_ids(minilm_dir, s) for s in sentences])
    vectors = reference_encode(minilm_weights, minilm_config, features, "REDUCE_MEAN", [-1])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    paraphrase, unrelated = unit[0] @ unit[1], unit[0] @ unit[2]
    assert paraphrase > 0.8 and unrelated < 0.3, (paraphrase, unrelated)


@pytest.mark.slow
def test_minilm_matches_published_sentence_transformers_values(
    minilm_dir, minilm_config, minilm_weights
):
    # The leading values of sentence-transformers' (normalised, mean-pooled) embedding of
    # "Hello World" with all-MiniLM-L6-v2, as widely quoted; float32 there, float64 here.
    published = [-3.44772711e-02, 3.10231764e-02, 6.73499797e-03, 2.61090048e-02, -3.93620506e-02]
    features = make_features([_minilm_ids(minilm_dir, "hello world")])
    vector = reference_encode(minilm_weights, minilm_config, features, "REDUCE_MEAN", [-1])[0]
    np.testing.assert_allclose(vector[:5] / np.linalg.norm(vector), published, rtol=0, atol=1e-6)
