"""The server's own tokenization in the proxy: token counts, lengths and TEI's ``/tokenize``.

The proxy loads the server's own vocabulary and settings, so what it counts is exactly what
the model is fed: the word pieces plus [CLS] and [SEP], cut at the sequence length the
workers use.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import numpy as np

from ..model.settings import EncoderSettings, ModelLocation
from ..tokenization import BertTokenizer, InputFeatures, build_features

UNLIMITED = sys.maxsize


class TokenCounter:
    def __init__(self, tokenizer: BertTokenizer, max_len: int, add_special_tokens: bool) -> None:
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.add_special_tokens = add_special_tokens

    @classmethod
    def from_settings(cls, model: ModelLocation, encoder: EncoderSettings) -> TokenCounter:
        """The tokenizer and length limit of the server's workers."""
        spec = model.inspect(logging.getLogger(__name__))  # the server logged the files already
        lowercase = not encoder.cased_tokenization
        tokenizer = BertTokenizer.from_file(spec.vocab_path, lowercase=lowercase)
        max_len = encoder.max_seq_len or spec.config.max_position_embeddings
        return cls(tokenizer, max_len, add_special_tokens=not encoder.no_special_token)

    @property
    def num_special_tokens(self) -> int:
        """[CLS] and [SEP] around a single text, or nothing under -no_special_token."""
        return 2 if self.add_special_tokens else 0

    def count(self, texts: Sequence[str]) -> int:
        return int(self.lengths(texts).sum())

    def lengths(self, texts: Sequence[str], limit: int | None = None) -> np.ndarray:
        """Tokens of each text as the model is fed them (cut at max_len), or cut at ``limit``.

        The arrays behind are as wide as the longest result, so a ``limit`` just past
        max_len tells which texts are too long at a bounded cost.
        """
        return self.features(texts, self.add_special_tokens, limit).lengths

    def features(
        self, texts: Sequence[str], add_special_tokens: bool, limit: int | None = None
    ) -> InputFeatures:
        return build_features(
            texts,
            self.tokenizer,
            max_len=limit or self.max_len,
            add_special_tokens=add_special_tokens,
        )

    def tails(self, texts: Sequence[str]) -> list[list[str]]:
        """The word pieces of each text, the last ones only when it is too long: TEI's
        ``truncation_direction: left``, sent to the server as tokenized input."""
        keep = self.max_len - self.num_special_tokens
        return [pieces[-keep:] for pieces in self.tokenizer.tokenize_batch(texts)]
