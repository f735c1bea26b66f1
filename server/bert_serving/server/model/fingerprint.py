"""A fingerprint of "which vectors": the model's files and every setting that changes them.

A worker on another host loads the model from its own disk and takes its own arguments; if
either differs from the front's, its vectors differ, and a client would get a mix. The
front and each worker compute this fingerprint independently and the front refuses a
worker whose fingerprint differs, naming what differs. Files are hashed in full (SHA-256):
about a second for BERT-base, paid once at start-up, and exact.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..protocol.messages import INTERNAL_PROTOCOL
from .checkpoint import ModelSpec
from .settings import EncoderSettings

# settings that change the vectors; -xla, batch sizes and devices do not
VECTOR_SETTINGS = (
    "max_seq_len",
    "pooling_strategy",
    "pooling_layer",
    "mask_cls_sep",
    "no_special_token",
    "no_position_embeddings",
    "fixed_embed_length",
    "cased_tokenization",
    "fp16",
    "precision",
    "normalize",
)
HASH_BLOCK = 1 << 20


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_files(spec: ModelSpec) -> list[Path]:
    """Every file the weights are read from (a checkpoint's index and data shards, or the
    safetensors files), each once."""
    files: set[Path] = set()
    for source in spec.origin.values():
        path = Path(source.path)
        if path.is_file():
            files.add(path)
        else:  # a TF checkpoint prefix: its .index and .data-* shards
            files.update(p for p in path.parent.glob(path.name + ".*") if p.is_file())
    return sorted(files)


def encoding_fingerprint(spec: ModelSpec, settings: EncoderSettings) -> dict[str, Any]:
    """The model's file digests (by file name, so that folders may differ) and the vector
    settings, as a JSON-ready dict."""
    return {
        "config": file_digest(spec.config_path),
        "vocab": file_digest(spec.vocab_path),
        "weights": {path.name: file_digest(path) for path in weight_files(spec)},
        "settings": {name: _plain(getattr(settings, name)) for name in VECTOR_SETTINGS},
        "internal_protocol": INTERNAL_PROTOCOL,
    }


def fingerprint_differences(front: dict[str, Any], worker: dict[str, Any]) -> list[str]:
    """What differs, in words a user can act on; empty when the two match."""
    differences = []
    ours, theirs = front.get("internal_protocol", 1), worker.get("internal_protocol", 1)
    if ours != theirs:
        differences.append(
            f"it speaks internal protocol revision {theirs}, this front {ours} "
            "(install the same bert-serving-server release on the front and its workers)"
        )
    for part, what in (("config", "the model config"), ("vocab", "the vocabulary")):
        if front.get(part) != worker.get(part):
            differences.append(f"{what} ({part} file) differs")
    if front.get("weights") != worker.get("weights"):
        differences.append("the weights differ (another model, or another fine-tuned checkpoint)")
    front_settings, worker_settings = front.get("settings", {}), worker.get("settings", {})
    for name in VECTOR_SETTINGS:
        if front_settings.get(name) != worker_settings.get(name):
            differences.append(
                f"-{name}: the front has {front_settings.get(name)!r}, "
                f"the worker {worker_settings.get(name)!r}"
            )
    return differences


def dumps(fingerprint: dict[str, Any]) -> str:
    return json.dumps(fingerprint, sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return str(value) if not isinstance(value, (int, float, bool, type(None), list)) else value
