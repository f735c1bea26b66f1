"""Counting the tokens the model is fed, for the ``usage`` of OpenAI-style answers.

The proxy loads the server's own vocabulary and settings, so the count is exact: the
word pieces plus [CLS] and [SEP], cut at the sequence length the workers use.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from ..model.checkpoint import inspect_model
from ..tokenization import BertTokenizer, build_features


class TokenCounter:
    def __init__(self, tokenizer: BertTokenizer, max_len: int, add_special_tokens: bool) -> None:
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.add_special_tokens = add_special_tokens

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TokenCounter:
        """The tokenizer and length limit of the server started with ``args``."""
        quiet = logging.getLogger(__name__)  # the server has already logged the model's files
        spec = inspect_model(
            args.model_dir, args.tuned_model_dir, args.ckpt_name, args.config_name, quiet
        )
        tokenizer = BertTokenizer.from_file(spec.vocab_path, lowercase=not args.cased_tokenization)
        max_len = args.max_seq_len or spec.config.max_position_embeddings
        return cls(tokenizer, max_len, add_special_tokens=not args.no_special_token)

    def count(self, texts: Sequence[str]) -> int:
        features = build_features(
            texts, self.tokenizer, max_len=self.max_len, add_special_tokens=self.add_special_tokens
        )
        return int(features.lengths.sum())
