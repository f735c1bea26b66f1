"""BERT hyper-parameters, from Google's ``bert_config.json`` or a Hugging Face ``config.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

SUPPORTED_ACTIVATIONS = (
    "gelu",
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "relu",
    "silu",
    "swish",
)
_REQUIRED_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)


@dataclass(frozen=True)
class BertConfig:
    """The shape and numerics of one BERT; both checkpoint layouts share these keys."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_json_file(cls, path: str | Path) -> BertConfig:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelError(f"{path}: not a readable JSON config ({err})") from None
        if not isinstance(raw, dict):
            raise ModelError(f"{path}: a BERT config must be a JSON object")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> BertConfig:
        missing = [key for key in _REQUIRED_KEYS if key not in raw]
        if missing:
            raise ModelError(f"{source}: missing {', '.join(missing)}")
        model_type = raw.get("model_type", "bert")
        if model_type != "bert":
            raise ModelError(f"{source}: model_type {model_type!r} is not a BERT model")
        config = cls(
            vocab_size=_positive_int(raw, "vocab_size", source),
            hidden_size=_positive_int(raw, "hidden_size", source),
            num_hidden_layers=_positive_int(raw, "num_hidden_layers", source),
            num_attention_heads=_positive_int(raw, "num_attention_heads", source),
            intermediate_size=_positive_int(raw, "intermediate_size", source),
            max_position_embeddings=_positive_int(raw, "max_position_embeddings", source),
            type_vocab_size=_positive_int(raw, "type_vocab_size", source, default=2),
            hidden_act=str(raw.get("hidden_act", "gelu")),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        )
        if config.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ModelError(
                f"{source}: unsupported hidden_act {config.hidden_act!r}; "
                f"supported: {', '.join(SUPPORTED_ACTIVATIONS)}"
            )
        if config.hidden_size % config.num_attention_heads:
            raise ModelError(
                f"{source}: hidden_size {config.hidden_size} is not a multiple of "
                f"num_attention_heads {config.num_attention_heads}"
            )
        return config


def _positive_int(raw: dict, key: str, source: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{source}: {key} must be a positive integer, got {value!r}")
    return value
