"""The canonical weight names of one BERT (Google's TF1 checkpoint names) and their shapes."""

from __future__ import annotations

from .config import BertConfig

POOLER_KERNEL = "bert/pooler/dense/kernel"
POOLER_BIAS = "bert/pooler/dense/bias"


def layer_prefix(index: int) -> str:
    return f"bert/encoder/layer_{index}/"


def expected_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the model needs (pooler excluded: it is optional), by canonical name."""
    hidden, inner = config.hidden_size, config.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "bert/embeddings/word_embeddings": (config.vocab_size, hidden),
        "bert/embeddings/token_type_embeddings": (config.type_vocab_size, hidden),
        "bert/embeddings/position_embeddings": (config.max_position_embeddings, hidden),
        "bert/embeddings/LayerNorm/gamma": (hidden,),
        "bert/embeddings/LayerNorm/beta": (hidden,),
    }
    for index in range(config.num_hidden_layers):
        prefix = layer_prefix(index)
        for name in ("query", "key", "value"):
            shapes[f"{prefix}attention/self/{name}/kernel"] = (hidden, hidden)
            shapes[f"{prefix}attention/self/{name}/bias"] = (hidden,)
        shapes[f"{prefix}attention/output/dense/kernel"] = (hidden, hidden)
        shapes[f"{prefix}attention/output/dense/bias"] = (hidden,)
        shapes[f"{prefix}intermediate/dense/kernel"] = (hidden, inner)
        shapes[f"{prefix}intermediate/dense/bias"] = (inner,)
        shapes[f"{prefix}output/dense/kernel"] = (inner, hidden)
        shapes[f"{prefix}output/dense/bias"] = (hidden,)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            shapes[f"{prefix}{norm}/gamma"] = (hidden,)
            shapes[f"{prefix}{norm}/beta"] = (hidden,)
    return shapes


def pooler_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    hidden = config.hidden_size
    return {POOLER_KERNEL: (hidden, hidden), POOLER_BIAS: (hidden,)}


def canonical_from_hf(name: str) -> tuple[str, bool] | None:
    """Map a Hugging Face parameter name to (canonical name, needs transpose), or None.

    Hugging Face stores dense weights as [out, in] and may prefix everything with ``bert.``;
    task heads (``cls.``, ``classifier.``) and buffers (``position_ids``) map to None.
    """
    if name.startswith("bert."):
        name = name[len("bert.") :]
    parts = name.split(".")
    if parts[-1] not in ("weight", "bias", "gamma", "beta"):
        return None
    leaf = parts[-1]
    if parts[-2] == "LayerNorm":
        leaf = {"weight": "gamma", "bias": "beta"}.get(leaf, leaf)
        return "bert/" + "/".join(_hf_path(parts[:-1])) + "/" + leaf, False
    if parts[0] == "embeddings" and leaf == "weight" and len(parts) == 3:
        return f"bert/embeddings/{parts[1]}", False
    if leaf == "weight":
        return "bert/" + "/".join(_hf_path(parts[:-1])) + "/kernel", True
    if leaf == "bias":
        return "bert/" + "/".join(_hf_path(parts[:-1])) + "/bias", False
    return None


def _hf_path(parts: list[str]) -> list[str]:
    """``encoder.layer.3.x`` -> ``encoder/layer_3/x``; other segments are kept as they are."""
    out: list[str] = []
    index = 0
    while index < len(parts):
        if parts[index] == "layer" and index + 1 < len(parts) and parts[index + 1].isdigit():
            out.append(f"layer_{parts[index + 1]}")
            index += 2
        else:
            out.append(parts[index])
            index += 1
    return out
