"""Turning a batch of texts (or pre-tokenized texts) into the padded arrays the model reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from .prefix import encode_prefixes
from .wordpiece import CLS_TOKEN, SEP_TOKEN, UNK_TOKEN, BertTokenizer, WordPieces

PAIR_SEPARATOR = " ||| "  # splits a string into sentences A and B (first occurrence)
PAIR_SEPARATOR_TOKEN = "|||"  # the same for pre-tokenized input


@dataclass
class InputFeatures:
    """One batch of model inputs; arrays are int32, rows zero padded to the longest."""

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    lengths: np.ndarray
    tokens: list[list[str]]


Pair = tuple[WordPieces, Optional[WordPieces]]  # sentence A, and B if the text is a pair


def build_features(
    texts: Sequence[str] | Sequence[Sequence[str]],
    tokenizer: BertTokenizer,
    *,
    max_len: int,
    is_tokenized: bool = False,
    add_special_tokens: bool = True,
    mask_cls_sep: bool = False,
) -> InputFeatures:
    """Tokenize, split pairs, truncate to `max_len` (specials included) and pad.

    Strings are tokenized in a single batch call because the server does this for
    every request; pre-tokenized tokens are looked up as they are (no lower-casing).
    """
    # no sentence keeps more pieces than this, and truncating a pair gives the same
    # lengths when each side is first cut to it (see `truncated_pair_lengths`)
    limit = max(0, max_len - 2 if add_special_tokens else max_len)
    pairs = (
        _tokenized_pairs(texts, tokenizer, limit)
        if is_tokenized
        else _string_pairs(texts, tokenizer, limit)
    )
    specials = None
    if add_special_tokens:
        specials = _Specials(*tokenizer.convert_tokens_to_ids([CLS_TOKEN, SEP_TOKEN]))
    return _pad([_row(a, b, max_len, specials) for a, b in pairs], mask_cls_sep)


def _string_pairs(texts: Sequence[str], tokenizer: BertTokenizer, limit: int) -> list[Pair]:
    """Each sentence's first `limit` pieces: the cost stays bounded for giant texts."""
    parts = [text.split(PAIR_SEPARATOR, 1) for text in texts]
    sentences = [sentence for part in parts for sentence in part]
    encoded = iter(encode_prefixes(tokenizer, sentences, limit))
    return [(next(encoded), next(encoded) if len(part) == 2 else None) for part in parts]


def _tokenized_pairs(
    texts: Sequence[Sequence[str]], tokenizer: BertTokenizer, limit: int
) -> list[Pair]:
    vocab = tokenizer.vocab
    unk_id = vocab[UNK_TOKEN]

    def lookup(tokens: Sequence[str]) -> WordPieces:
        tokens = tokens[:limit]
        ids = [vocab.get(token, unk_id) for token in tokens]
        return WordPieces([t if t in vocab else UNK_TOKEN for t in tokens], ids)

    pairs: list[Pair] = []
    for text in texts:
        tokens = list(text)
        if PAIR_SEPARATOR_TOKEN in tokens:
            cut = tokens.index(PAIR_SEPARATOR_TOKEN)
            pairs.append((lookup(tokens[:cut]), lookup(tokens[cut + 1 :])))
        else:
            pairs.append((lookup(tokens), None))
    return pairs


def truncated_pair_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths left after dropping the last token of the longer side (B on ties) until
    both fit in `budget`, computed without the loop.

    The result is the same when both lengths are first cut to any limit >= `budget`,
    which is why a sentence is never tokenized beyond that limit."""
    if len_a + len_b <= budget:
        return len_a, len_b
    shorter = min(len_a, len_b)
    if budget - shorter >= shorter:  # only the longer side loses tokens
        return (budget - shorter, len_b) if len_a > len_b else (len_a, budget - shorter)
    return (budget + 1) // 2, budget // 2


class _Row(NamedTuple):
    """One row before padding, and where its [CLS] and [SEP] sit."""

    tokens: list[str]
    ids: list[int]
    segments: list[int]
    special_positions: list[int]


class _Specials(NamedTuple):
    cls_id: int
    sep_id: int


def _row(a: WordPieces, b: WordPieces | None, max_len: int, specials: _Specials | None) -> _Row:
    if b is None:
        keep = max_len - 2 if specials else max_len
        tokens, ids = a.tokens[:keep], a.ids[:keep]
        if specials is None:
            return _Row(tokens, ids, [0] * len(ids), [])
        return _Row(
            [CLS_TOKEN, *tokens, SEP_TOKEN],
            [specials.cls_id, *ids, specials.sep_id],
            [0] * (len(ids) + 2),
            [0, len(ids) + 1],
        )
    budget = max_len - 3 if specials else max_len
    len_a, len_b = truncated_pair_lengths(len(a.ids), len(b.ids), budget)
    if specials is None:
        return _Row(
            a.tokens[:len_a] + b.tokens[:len_b],
            a.ids[:len_a] + b.ids[:len_b],
            [0] * len_a + [1] * len_b,
            [],
        )
    cls_id, sep_id = specials
    return _Row(
        [CLS_TOKEN, *a.tokens[:len_a], SEP_TOKEN, *b.tokens[:len_b], SEP_TOKEN],
        [cls_id, *a.ids[:len_a], sep_id, *b.ids[:len_b], sep_id],
        [0] * (len_a + 2) + [1] * (len_b + 1),
        [0, len_a + 1, len_a + len_b + 2],
    )


def _pad(rows: list[_Row], mask_cls_sep: bool) -> InputFeatures:
    lengths = np.array([len(row.ids) for row in rows], dtype=np.int32)
    width = int(lengths.max(initial=0))
    input_ids = np.zeros((len(rows), width), dtype=np.int32)
    segment_ids = np.zeros_like(input_ids)
    for index, row in enumerate(rows):
        input_ids[index, : len(row.ids)] = row.ids
        segment_ids[index, : len(row.segments)] = row.segments
    input_mask = (np.arange(width) < lengths[:, None]).astype(np.int32)
    if mask_cls_sep:
        for index, row in enumerate(rows):
            input_mask[index, row.special_positions] = 0
    return InputFeatures(input_ids, input_mask, segment_ids, lengths, [row.tokens for row in rows])
