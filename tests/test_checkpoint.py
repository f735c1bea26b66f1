"""Loading both checkpoint layouts, fine-tuned overrides, and the errors a user can hit."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from bert_serving.server.model import ModelError, inspect_model, load_weights
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder
from tests.fixtures import checkpoints
from tests.reference.numpy_bert import make_features, reference_encode

FEATURES = make_features([[2, 10, 11, 3], [2, 30, 31, 32, 33, 3]])


def vectors(model_dir, **kwargs):
    spec = inspect_model(model_dir, **kwargs)
    return SentenceEncoder(spec, EncoderSettings(precision="float32")).encode_features(FEATURES)


def test_google_and_hf_layouts_give_the_same_vectors(google_model_dir, hf_model_dir):
    np.testing.assert_allclose(vectors(google_model_dir), vectors(hf_model_dir), atol=1e-6)


@pytest.mark.parametrize("prefix,legacy", [("", False), ("bert.", True), ("", True)])
def test_hf_prefixes_and_legacy_layernorm_names(
    tmp_path, tiny_config, tiny_weights, google_model_dir, prefix, legacy
):
    checkpoints.write_hf_folder(
        tmp_path,
        tiny_config,
        tiny_weights,
        checkpoints.tiny_vocab(),
        prefix=prefix,
        legacy_layernorm_names=legacy,
    )
    np.testing.assert_allclose(vectors(tmp_path), vectors(google_model_dir), atol=1e-6)


def test_weights_are_read_exactly(google_model_dir, hf_model_dir, tiny_weights):
    for directory in (google_model_dir, hf_model_dir):
        loaded = load_weights(inspect_model(directory))
        assert set(loaded) == set(tiny_weights)
        for name, value in tiny_weights.items():
            np.testing.assert_array_equal(loaded[name], value, err_msg=name)


def test_fine_tuned_checkpoint_overrides_weights_and_extras_are_ignored(
    tmp_path, google_model_dir, tiny_config, caplog
):
    tuned = checkpoints.random_weights(tiny_config, seed=42)
    extras = {
        "global_step": np.array(343, np.int64),
        "output_weights": np.zeros((2, 32), np.float32),
        "output_bias": np.zeros(2, np.float32),
        "bert/encoder/layer_0/output/dense/kernel/adam_m": np.zeros((37, 32), np.float32),
    }
    checkpoints.write_google_checkpoint(
        tmp_path,
        tiny_config,
        tuned,
        checkpoints.tiny_vocab(),
        ckpt_name="model.ckpt-343",
        extra_variables=extras,
        write_config_and_vocab=False,
    )
    with caplog.at_level(logging.INFO):
        spec = inspect_model(google_model_dir, tmp_path, ckpt_name="model.ckpt-343")
    assert "ignored 4 non-BERT variables" in caplog.text  # global_step, head, adam slot
    assert any(str(tmp_path) in line for line in spec.describe_origin())
    got = SentenceEncoder(
        spec, EncoderSettings(max_seq_len=None, precision="float32")
    ).encode_features(FEATURES)
    want = reference_encode(tuned, tiny_config, FEATURES, "REDUCE_MEAN", [-2])
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_custom_config_name(tmp_path, tiny_config, tiny_weights, google_model_dir):
    checkpoints.write_google_checkpoint(
        tmp_path, tiny_config, tiny_weights, checkpoints.tiny_vocab(), config_name="my_config.json"
    )
    np.testing.assert_allclose(
        vectors(tmp_path, config_name="my_config.json"), vectors(google_model_dir), atol=1e-6
    )


def test_pooler_is_optional(tmp_path, tiny_config):
    weights = checkpoints.random_weights(tiny_config, with_pooler=False)
    checkpoints.write_hf_folder(tmp_path, tiny_config, weights, checkpoints.tiny_vocab())
    spec = inspect_model(tmp_path)
    assert not spec.has_pooler
    with pytest.raises(ModelError, match=r"CLS_POOLED: the model has no pooler layer"):
        SentenceEncoder(spec, EncoderSettings(pooling_strategy="CLS_POOLED"))


def copy_model(source, target):
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize(
    "mutate,pattern",
    [
        (lambda d: (d / "vocab.txt").unlink(), r"vocab\.txt"),
        (lambda d: (d / "bert_config.json").unlink(), r"bert_config\.json: config file not found"),
        (lambda d: (d / "bert_config.json").write_text("{oops"), "not a readable JSON config"),
        (
            lambda d: [p.unlink() for p in d.glob("bert_model.ckpt.*")],
            "neither a TensorFlow checkpoint bert_model.ckpt.index nor a Hugging Face "
            "model.safetensors",
        ),
    ],
)
def test_broken_google_folders_name_the_file(tmp_path, google_model_dir, mutate, pattern):
    directory = copy_model(google_model_dir, tmp_path / "model")
    mutate(directory)
    with pytest.raises(ModelError, match=pattern):
        inspect_model(directory)


def write_config(directory, **changes):
    path = directory / "bert_config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_unsupported_activation(tmp_path, google_model_dir):
    directory = copy_model(google_model_dir, tmp_path / "model")
    write_config(directory, hidden_act="mish")
    with pytest.raises(ModelError, match=r"bert_config.json: unsupported hidden_act 'mish'"):
        inspect_model(directory)


def test_wrong_shape_names_the_tensor(tmp_path, google_model_dir):
    directory = copy_model(google_model_dir, tmp_path / "model")
    write_config(directory, intermediate_size=40)
    with pytest.raises(
        ModelError,
        match=r"dense/kernel has shape \[37, 32\], "
        r"but bert_config.json implies \[40, 32\]",
    ):
        inspect_model(directory)


def test_vocab_larger_than_config(tmp_path, google_model_dir):
    directory = copy_model(google_model_dir, tmp_path / "model")
    with open(directory / "vocab.txt", "a", encoding="utf-8") as vocab:
        vocab.write("extra1\nextra2\n")
    with pytest.raises(
        ModelError, match=r"vocab.txt: 138 tokens, but bert_config.json says vocab_size 136"
    ):
        inspect_model(directory)


def test_missing_weights(tmp_path, tiny_config, tiny_weights):
    partial = {k: v for k, v in tiny_weights.items() if "layer_2" not in k}
    checkpoints.write_google_checkpoint(tmp_path, tiny_config, partial, checkpoints.tiny_vocab())
    with pytest.raises(ModelError, match=r"BERT weights missing, e.g. bert/encoder/layer_2"):
        inspect_model(tmp_path)


def test_checkpoint_name_hint(tmp_path, google_model_dir, tiny_config, tiny_weights):
    checkpoints.write_google_checkpoint(
        tmp_path,
        tiny_config,
        tiny_weights,
        checkpoints.tiny_vocab(),
        ckpt_name="model.ckpt-7",
        write_config_and_vocab=False,
    )
    with pytest.raises(ModelError, match=r"checkpoints there: model.ckpt-7"):
        inspect_model(google_model_dir, tmp_path)


def test_pytorch_bin_hint(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0")
    with pytest.raises(ModelError, match=r"save the model as model.safetensors"):
        inspect_model(tmp_path)


def test_not_a_directory(tmp_path):
    with pytest.raises(ModelError, match=r"-model_dir is not a directory"):
        inspect_model(tmp_path / "nowhere")


def test_corrupt_safetensors(tmp_path, hf_model_dir):
    directory = copy_model(hf_model_dir, tmp_path / "model")
    (directory / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match=r"model.safetensors: not a readable safetensors file"):
        inspect_model(directory)


def test_non_bert_model_type(tmp_path, hf_model_dir):
    directory = copy_model(hf_model_dir, tmp_path / "model")
    config = json.loads((directory / "config.json").read_text())
    config["model_type"] = "roberta"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r"model_type 'roberta' is not a BERT model"):
        inspect_model(directory)
