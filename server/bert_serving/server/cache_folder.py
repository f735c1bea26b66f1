"""The one folder where the server keeps what it computed once, for every process after it.

Two things live there: the tokenizer's character tables (``tokenization/table_cache.py``)
and converted OpenVINO models (``model/forward_cache.py``). Both are optimisations only,
each entry named by a hash of everything it depends on, so the folder can be deleted at any
time: the next start computes what it needs again.

Where: ``$BERT_SERVING_CACHE``, else ``$XDG_CACHE_HOME/bert-serving``, else
``~/.cache/bert-serving``.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "BERT_SERVING_CACHE"


def cache_folder() -> Path:
    """The folder (read from the environment on each call, so that a test or a deployment
    can point it elsewhere)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bert-serving"
