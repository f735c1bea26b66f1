"""A checkpoint's names and shapes read without TensorFlow are exactly TensorFlow's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bert_serving.server.model import ModelError, inspect_model
from bert_serving.server.model.checkpoint_index import _fields, _int, _message, checkpoint_shapes
from tests.fixtures import checkpoints


def tensorflows_shapes(prefix: Path) -> dict[str, tuple[int, ...]]:
    shapes = tf.train.load_checkpoint(str(prefix)).get_variable_to_shape_map()
    return {name: tuple(shape) for name, shape in shapes.items()}


def save(prefix: Path, variables: dict[str, np.ndarray]) -> Path:
    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[name]) for name in names],
    )
    return prefix


def test_a_bert_checkpoint_with_a_fine_tuning_runs_leftovers(tmp_path, tiny_config, tiny_weights):
    leftovers = {
        "global_step": np.array(1000, np.int64),
        "bert/encoder/layer_0/output/dense/kernel/adam_m": np.zeros((64, 32), np.float32),
        "output_weights": np.ones((2, 32), np.float64),
        "label_names": np.array([b"yes", b"no"]),
        "a/scalar_half": np.array(1.5, np.float16),
    }
    prefix = checkpoints.write_google_checkpoint(
        tmp_path, tiny_config, tiny_weights, checkpoints.tiny_vocab(), extra_variables=leftovers
    )
    shapes = checkpoint_shapes(prefix)
    assert shapes == tensorflows_shapes(prefix)
    assert shapes["global_step"] == () and shapes["label_names"] == (2,)


def test_thousands_of_names_span_many_blocks(tmp_path):
    """Enough entries for many 4 KB data blocks, with keys that share long prefixes."""
    variables = {
        f"bert/encoder/layer_{layer}/attention/self/{part}_{n}": np.zeros((layer % 3, n % 4 + 1))
        for layer in range(30)
        for part in ("query", "key", "value")
        for n in range(40)
    }
    prefix = save(tmp_path / "many", variables)
    assert len(checkpoint_shapes(prefix)) == len(variables)
    assert checkpoint_shapes(prefix) == tensorflows_shapes(prefix)


def test_a_checkpoint_of_several_shards(tmp_path):
    parts = []
    for shard in range(3):
        variables = {
            f"shard{shard}/w{n}": np.full((shard + 1, n + 2), n, np.float32) for n in range(5)
        }
        parts.append(str(save(tmp_path / f"part-{shard}", variables)))
    prefix = tmp_path / "merged"
    tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=str(prefix))
    assert len(list(tmp_path.glob("merged.data-*-of-00003"))) == 3
    assert checkpoint_shapes(prefix) == tensorflows_shapes(prefix)


def corrupt_magic(prefix: Path) -> None:
    index = Path(f"{prefix}.index")
    data = bytearray(index.read_bytes())
    data[-1] ^= 0xFF
    index.write_bytes(bytes(data))


def truncate_index(prefix: Path) -> None:
    index = Path(f"{prefix}.index")
    index.write_bytes(index.read_bytes()[:30])


def flip_a_bit_in_a_name(prefix: Path) -> None:
    """A letter of a tensor's name changed (still a well-formed table, another name):
    TensorFlow's reader refuses it by the block's checksum, and so must this one."""
    index = Path(f"{prefix}.index")
    data = bytearray(index.read_bytes())
    data[data.index(b"word_embeddings")] ^= 0x01  # "w" becomes "v"
    index.write_bytes(bytes(data))


def shorten_the_data(prefix: Path) -> None:
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:100])


@pytest.mark.parametrize(
    "damage", [corrupt_magic, truncate_index, flip_a_bit_in_a_name, shorten_the_data]
)
def test_what_it_does_not_plainly_read_is_refused_not_guessed(
    tmp_path, tiny_config, tiny_weights, damage
):
    prefix = checkpoints.write_google_checkpoint(
        tmp_path, tiny_config, tiny_weights, checkpoints.tiny_vocab()
    )
    damage(prefix)
    with pytest.raises(ValueError):
        checkpoint_shapes(prefix)


def test_a_field_of_the_wrong_kind_is_refused_not_a_crash():
    """A number where a message belongs, or bytes where a number does: ValueError, which
    hands the file to TensorFlow's reader, never a TypeError out of the model check."""
    shard_as_bytes = _fields(bytes([3 << 3 | 2, 1, ord("x")]))  # field 3, length-delimited
    with pytest.raises(ValueError, match="field 3"):
        _int(shard_as_bytes, 3, 0)
    shape_as_number = _fields(bytes([2 << 3 | 0, 5]))  # field 2, a varint
    with pytest.raises(ValueError, match="field 2"):
        _message(shape_as_number, 2)


def test_a_damaged_index_is_still_judged_by_tensorflow(tmp_path, tiny_config, tiny_weights):
    """The fallback: the model check reports TensorFlow's own verdict, as before."""
    prefix = checkpoints.write_google_checkpoint(
        tmp_path, tiny_config, tiny_weights, checkpoints.tiny_vocab()
    )
    truncate_index(prefix)
    with pytest.raises(ModelError, match="not a readable TensorFlow checkpoint"):
        inspect_model(tmp_path)


CHECK_WITHOUT_TENSORFLOW = """
import sys
from bert_serving.server.model import inspect_model
spec = inspect_model(sys.argv[1])
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
print(spec.config.num_hidden_layers, len(spec.origin))
"""


def test_checking_a_google_model_imports_no_tensorflow(google_model_dir, tiny_config):
    checked = subprocess.run(
        [sys.executable, "-c", CHECK_WITHOUT_TENSORFLOW, str(google_model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    layers, tensors = checked.stdout.split()
    assert int(layers) == tiny_config["num_hidden_layers"] and int(tensors) > 0
