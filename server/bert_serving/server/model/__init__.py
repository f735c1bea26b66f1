"""The model half: checkpoints, BERT on TensorFlow 2, pooling and the sentence encoder."""

from .checkpoint import ModelSpec, inspect_model, load_weights
from .config import BertConfig
from .errors import ModelError

__all__ = ["BertConfig", "ModelError", "ModelSpec", "inspect_model", "load_weights"]
