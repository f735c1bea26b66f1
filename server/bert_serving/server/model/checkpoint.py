"""Find, check and read BERT weights in Google's TF1 layout or a Hugging Face folder.

Everything is checked from metadata (names, shapes) in :func:`inspect_model`, so a bad model
fails in the main process with one clear message before any worker starts; the arrays are
read later, in each worker, by :func:`load_weights`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoint_index import checkpoint_shapes
from .config import BertConfig
from .errors import ModelError
from .weights import canonical_from_hf, expected_shapes, pooler_shapes

DEFAULT_CKPT_NAME = "bert_model.ckpt"
DEFAULT_CONFIG_NAME = "bert_config.json"
HF_CONFIG_NAME = "config.json"
HF_WEIGHTS_NAME = "model.safetensors"
HF_INDEX_NAME = "model.safetensors.index.json"
VOCAB_NAME = "vocab.txt"


class WeightSource:
    """One checkpoint on disk, seen through canonical names."""

    layout = ""

    def __init__(self, path: Path):
        self.path = path

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape of every BERT tensor in the file (others are left out)."""
        raise NotImplementedError

    def ignored(self) -> list[str]:
        """Names in the file that are not BERT weights (optimizer slots, task heads, steps)."""
        raise NotImplementedError

    def read(self, names: list[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __str__(self) -> str:
        return f"{self.path} ({self.layout})"


class GoogleCheckpoint(WeightSource):
    """A TF1 checkpoint (``<prefix>.index`` + data shards) with ``bert/...`` variable names.

    Names and shapes come from the index, read without TensorFlow (checkpoint_index.py),
    so that checking a model costs no TensorFlow import; TensorFlow's reader is opened only
    to read the arrays, or to judge a checkpoint that index reader does not plainly read.
    """

    layout = "google"

    def __init__(self, prefix: Path):
        super().__init__(prefix)
        self._reader = None
        try:
            all_shapes = checkpoint_shapes(prefix)
        except (OSError, ValueError):
            all_shapes = self._tensorflow_reader().get_variable_to_shape_map()
        self._shapes = {n: tuple(s) for n, s in all_shapes.items() if _is_bert_weight(n)}
        self._ignored = sorted(set(all_shapes) - set(self._shapes))

    def _tensorflow_reader(self):
        if self._reader is None:
            import tensorflow as tf

            try:
                self._reader = tf.train.load_checkpoint(str(self.path))
            except Exception as err:  # TF raises several types for unreadable checkpoints
                raise ModelError(
                    f"{self.path}: not a readable TensorFlow checkpoint ({err})"
                ) from None
        return self._reader

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    def ignored(self) -> list[str]:
        return self._ignored

    def read(self, names: list[str]) -> dict[str, np.ndarray]:
        reader = self._tensorflow_reader()
        return {name: np.asarray(reader.get_tensor(name), np.float32) for name in names}


class SafetensorsFolder(WeightSource):
    """Hugging Face ``model.safetensors`` (or its sharded index), read into numpy, no PyTorch."""

    layout = "huggingface"

    def __init__(self, path: Path):
        super().__init__(path)
        from safetensors import safe_open

        self._open = safe_open
        self._files = self._shard_files(path)
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._origin: dict[str, tuple[Path, str, bool]] = {}
        self._ignored: list[str] = []
        for shard in sorted(set(self._files)):
            try:
                with safe_open(str(shard), framework="np") as handle:
                    for key in handle.keys():  # noqa: SIM118 (safe_open is no dict)
                        self._index(shard, key, tuple(handle.get_slice(key).get_shape()))
            except ModelError:
                raise
            except Exception as err:
                raise ModelError(f"{shard}: not a readable safetensors file ({err})") from None

    @staticmethod
    def _shard_files(path: Path) -> list[Path]:
        if path.name != HF_INDEX_NAME:
            return [path]
        try:
            weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(f"{path}: not a safetensors index with a weight_map ({err})") from None
        return [path.parent / name for name in weight_map.values()]

    def _index(self, shard: Path, key: str, shape: tuple[int, ...]) -> None:
        mapped = canonical_from_hf(key)
        if mapped is None:
            self._ignored.append(key)
            return
        name, transpose = mapped
        if name in self._origin:
            raise ModelError(f"{shard}: {key} and another parameter both map to {name}")
        self._origin[name] = (shard, key, transpose)
        self._shapes[name] = shape[::-1] if transpose else shape

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    def ignored(self) -> list[str]:
        return self._ignored

    def read(self, names: list[str]) -> dict[str, np.ndarray]:
        by_shard: dict[Path, list[str]] = {}
        for name in names:
            by_shard.setdefault(self._origin[name][0], []).append(name)
        arrays: dict[str, np.ndarray] = {}
        for shard, shard_names in by_shard.items():
            with self._open(str(shard), framework="np") as handle:
                for name in shard_names:
                    _, key, transpose = self._origin[name]
                    try:
                        value = handle.get_tensor(key)
                    except Exception as err:
                        raise ModelError(f"{shard}: cannot read {key} ({err})") from None
                    value = value.T if transpose else value
                    arrays[name] = np.ascontiguousarray(value, dtype=np.float32)
        return arrays


def _is_bert_weight(name: str) -> bool:
    """Google names of the encoder proper; optimizer slots and heads are not."""
    return name.startswith("bert/") and not name.endswith(("/adam_m", "/adam_v", "Momentum"))


@dataclass
class ModelSpec:
    """A checked model: its config, vocab and which file each weight is read from."""

    config: BertConfig
    config_path: Path
    vocab_path: Path
    origin: dict[str, WeightSource] = field(repr=False)
    do_lower_case: bool | None = None

    @property
    def has_pooler(self) -> bool:
        return all(name in self.origin for name in pooler_shapes(self.config))

    def describe_origin(self) -> list[str]:
        """One line per file: how many weights come from it (a fine-tuned file overrides)."""
        counts: dict[str, int] = {}
        for source in self.origin.values():
            counts[str(source)] = counts.get(str(source), 0) + 1
        return [f"{count} weights from {source}" for source, count in counts.items()]


def inspect_model(
    model_dir: str | Path,
    tuned_model_dir: str | Path | None = None,
    ckpt_name: str = DEFAULT_CKPT_NAME,
    config_name: str = DEFAULT_CONFIG_NAME,
    logger: logging.Logger | None = None,
) -> ModelSpec:
    """Locate and check a model without reading its arrays; raise ModelError on any problem."""
    logger = logger or logging.getLogger(__name__)
    model_dir = _existing_dir(model_dir, "model_dir")
    if tuned_model_dir is None:
        config_path, base = _locate(model_dir, ckpt_name, config_name, tuned=False)
        sources = [base]
    else:
        # -ckpt_name names the fine-tuned checkpoint; model_dir's own weights, if any, are
        # the base that it overrides (a fine-tuned checkpoint normally holds all of them)
        tuned_dir = _existing_dir(tuned_model_dir, "tuned_model_dir")
        _, base = _locate(tuned_dir, ckpt_name, config_name, tuned=True)
        sources = [base]
        try:
            config_path, pretrained = _locate(model_dir, DEFAULT_CKPT_NAME, config_name, False)
            sources.insert(0, pretrained)
        except ModelError:
            config_path = _config_path(model_dir, config_name)
    config = BertConfig.from_json_file(config_path)
    vocab_path = model_dir / VOCAB_NAME
    _check_vocab(vocab_path, config, config_path)

    required = expected_shapes(config)
    optional = pooler_shapes(config)
    origin: dict[str, WeightSource] = {}
    for source in sources:  # later sources (the fine-tuned one) override earlier ones
        wrong = []
        for name, shape in source.shapes().items():
            want = required.get(name) or optional.get(name)
            if want is None:
                continue
            if shape != want:
                wrong.append(
                    f"{name} has shape {list(shape)}, but {config_path.name} implies {list(want)}"
                )
            origin[name] = source
        if wrong:  # every one, by name: one wrong setting of the config shows in several
            raise ModelError(f"{source.path}: {'; '.join(sorted(wrong))}")
        if source.ignored():
            logger.info(
                "%s: ignored %d non-BERT variables (e.g. %s)",
                source.path,
                len(source.ignored()),
                ", ".join(source.ignored()[:3]),
            )
    missing = [name for name in required if name not in origin]
    if missing:
        raise ModelError(
            f"{base.path}: {len(missing)} BERT weights missing, e.g. {', '.join(missing[:3])}"
        )
    spec = ModelSpec(config, config_path, vocab_path, origin, _lower_case_hint(model_dir))
    for line in spec.describe_origin():
        logger.info(line)
    return spec


def load_weights(spec: ModelSpec) -> dict[str, np.ndarray]:
    """Read every weight of a checked model from the file it comes from."""
    by_source: dict[WeightSource, list[str]] = {}
    for name, source in spec.origin.items():
        by_source.setdefault(source, []).append(name)
    weights: dict[str, np.ndarray] = {}
    for source, names in by_source.items():
        weights.update(source.read(names))
    return weights


def _existing_dir(path: str | Path, option: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ModelError(f"{path}: -{option} is not a directory")
    return path


def _locate(
    directory: Path, ckpt_name: str, config_name: str, tuned: bool
) -> tuple[Path, WeightSource]:
    """(config path, weights) of a folder in either layout; the config is unused when tuned."""
    google_prefix = directory / ckpt_name
    if Path(f"{google_prefix}.index").is_file():
        return directory / config_name, GoogleCheckpoint(google_prefix)
    for name in (HF_WEIGHTS_NAME, HF_INDEX_NAME):
        if (directory / name).is_file():
            return _config_path(directory, config_name), SafetensorsFolder(directory / name)
    raise ModelError(_nothing_found_message(directory, ckpt_name, tuned))


def _config_path(directory: Path, config_name: str) -> Path:
    """``-config_name`` if it is there, else a Hugging Face ``config.json`` if that is."""
    path = directory / config_name
    if not path.is_file() and (directory / HF_CONFIG_NAME).is_file():
        return directory / HF_CONFIG_NAME
    return path


def _nothing_found_message(directory: Path, ckpt_name: str, tuned: bool) -> str:
    role = "-tuned_model_dir" if tuned else "-model_dir"
    found = sorted(p.name[: -len(".index")] for p in directory.glob("*.index"))
    hint = ""
    if found:
        hint = f"; checkpoints there: {', '.join(found)} (choose one with -ckpt_name)"
    elif any(directory.glob("*.bin")):
        hint = "; PyTorch .bin weights are not read: save the model as model.safetensors"
    return (
        f"{directory}: {role} holds neither a TensorFlow checkpoint {ckpt_name}.index "
        f"nor a Hugging Face {HF_WEIGHTS_NAME}{hint}"
    )


def _check_vocab(vocab_path: Path, config: BertConfig, config_path: Path) -> None:
    from ..tokenization import load_vocab

    try:
        vocab = load_vocab(vocab_path)
    except ValueError as err:
        raise ModelError(str(err)) from None
    size = max(vocab.values()) + 1
    if size > config.vocab_size:
        raise ModelError(
            f"{vocab_path}: {size} tokens, but {config_path.name} says vocab_size "
            f"{config.vocab_size}: the vocab does not belong to this model"
        )


def _lower_case_hint(model_dir: Path) -> bool | None:
    """Hugging Face folders say whether their tokenizer lower-cases; Google folders do not."""
    path = model_dir / "tokenizer_config.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("do_lower_case")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None
