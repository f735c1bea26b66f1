"""The real all-MiniLM-L6-v2 weights: its Hugging Face folder and a Google-layout copy agree,
and both agree with the numpy reference."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bert_serving.server.model import inspect_model
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder
from tests.fixtures import checkpoints
from tests.reference.numpy_bert import reference_encode

TEXTS = [
    "First do it",
    "then do it right ||| then do it better",
    "Ångström's café serves naïve crème brûlée",
    "你好么？我 还 可以",
    "unaffable antidisestablishmentarianism " + "x" * 120,
    "The quick brown fox jumps over the lazy dog. " * 3,
]
SETTINGS = {"max_seq_len": None, "pooling_layer": (-1, -4), "precision": "float32"}


@pytest.fixture(scope="module")
def google_copy(tmp_path_factory, minilm_dir, minilm_config, minilm_weights):
    """all-MiniLM-L6-v2 rewritten as Google's release layout (bert_config.json + TF1 ckpt)."""
    directory = tmp_path_factory.mktemp("minilm_google")
    keys = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "max_position_embeddings",
        "type_vocab_size",
    )
    config = {key: minilm_config[key] for key in keys}
    vocab = (minilm_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    checkpoints.write_google_checkpoint(directory, config, minilm_weights, vocab[:-1])
    assert json.loads((directory / "bert_config.json").read_text())["hidden_size"] == 384
    return directory


@pytest.mark.parametrize("strategy", ["REDUCE_MEAN", "NONE", "CLS_POOLED", "LAST_TOKEN"])
def test_hf_folder_and_google_copy_give_the_same_vectors(minilm_dir, google_copy, strategy):
    settings = EncoderSettings(pooling_strategy=strategy, **SETTINGS)
    from_hf = SentenceEncoder(inspect_model(minilm_dir), settings).encode(TEXTS)
    from_google = SentenceEncoder(inspect_model(google_copy), settings).encode(TEXTS)
    assert from_hf.tokens == from_google.tokens
    np.testing.assert_allclose(from_hf.embeddings, from_google.embeddings, atol=1e-6)


def test_real_weights_match_the_numpy_reference(minilm_dir, minilm_config, minilm_weights):
    encoder = SentenceEncoder(inspect_model(minilm_dir), EncoderSettings(**SETTINGS))
    features = encoder.featurize(TEXTS)
    got = encoder.encode_features(features)
    want = reference_encode(minilm_weights, minilm_config, features, "REDUCE_MEAN", [-1, -4])
    difference = float(np.abs(got - want).max())
    print(f"largest difference against the float64 reference: {difference:.2e}")
    assert difference < 1e-4


def test_sentence_transformers_style_embedding_is_meaningful(minilm_dir):
    """Mean of the last layer, normalised, as all-MiniLM-L6-v2 was trained to be used."""
    encoder = SentenceEncoder(
        inspect_model(minilm_dir),
        EncoderSettings(pooling_layer=(-1,), max_seq_len=128, precision="float32"),
    )
    vectors = encoder.encode(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The girl is carrying a baby.",
            "A man is riding a horse.",
        ]
    )
    unit = vectors.embeddings / np.linalg.norm(vectors.embeddings, axis=1, keepdims=True)
    similarity = unit @ unit.T
    assert similarity[0, 1] > 0.6 > similarity[0, 2]
    assert similarity[0, 1] > similarity[0, 3]


def test_tuned_model_dir_with_hf_weights(tmp_path, minilm_dir, google_copy):
    """A fine-tuned Hugging Face folder overrides a Google-layout base model."""
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    shutil.copy(minilm_dir / "model.safetensors", tuned / "model.safetensors")
    spec = inspect_model(google_copy, tuned)
    assert {source.layout for source in spec.origin.values()} == {"huggingface"}
