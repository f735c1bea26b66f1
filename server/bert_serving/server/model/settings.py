"""What a worker needs to build its encoder, as plain frozen values (no TensorFlow here).

The server builds these once from the start arguments and hands them to each worker
process; a remote worker will compare them with its front's, so they are the single record
of "which model, encoded how".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .checkpoint import DEFAULT_CKPT_NAME, DEFAULT_CONFIG_NAME, ModelSpec, inspect_model


@dataclass(frozen=True)
class ModelLocation:
    """Where the model's files are: ``-model_dir`` and the options that pick files in it."""

    model_dir: str
    tuned_model_dir: str | None = None
    ckpt_name: str = DEFAULT_CKPT_NAME
    config_name: str = DEFAULT_CONFIG_NAME

    @classmethod
    def from_args(cls, args) -> ModelLocation:
        return cls(
            str(Path(args.model_dir)),
            args.tuned_model_dir,
            args.ckpt_name,
            args.config_name,
        )

    def inspect(self, logger=None) -> ModelSpec:
        """Locate and check the files (no arrays read); ModelError on any problem."""
        return inspect_model(
            self.model_dir, self.tuned_model_dir, self.ckpt_name, self.config_name, logger
        )


@dataclass(frozen=True)
class EncoderSettings:
    """The model-side options of ``bert-serving-start``, with the same names and defaults."""

    max_seq_len: int | None = 25
    pooling_strategy: str = "REDUCE_MEAN"
    pooling_layer: tuple[int, ...] = (-2,)
    mask_cls_sep: bool = False
    no_special_token: bool = False
    no_position_embeddings: bool = False
    fixed_embed_length: bool = False
    normalize: bool = False
    cased_tokenization: bool = False
    fp16: bool = False
    xla: bool = False
    precision: str = "auto"
    runtime: str = "auto"

    @classmethod
    def from_args(cls, args) -> EncoderSettings:
        """Settings from a parsed ``bert-serving-start`` namespace."""
        return cls(
            **{name: getattr(args, name) for name in cls.__dataclass_fields__}
            | {
                "pooling_strategy": str(args.pooling_strategy),
                "pooling_layer": tuple(args.pooling_layer),
            }
        )
