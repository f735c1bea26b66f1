"""The model half: checkpoints, BERT on TensorFlow 2, pooling and the sentence encoder.

``SentenceEncoder`` and ``Encoding`` are imported on first use, so that reading and checking a
checkpoint (which the server does before anything starts) needs no TensorFlow.
"""

from .checkpoint import ModelSpec, inspect_model, load_weights
from .config import BertConfig
from .errors import ModelError
from .settings import EncoderSettings, ModelLocation

__all__ = [
    "BertConfig",
    "EncoderSettings",
    "Encoding",
    "ModelError",
    "ModelLocation",
    "ModelSpec",
    "SentenceEncoder",
    "inspect_model",
    "load_weights",
]


def __getattr__(name: str):
    if name in ("SentenceEncoder", "Encoding"):
        from . import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
