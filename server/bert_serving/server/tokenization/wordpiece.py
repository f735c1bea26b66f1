"""Google's original BERT tokenization, run by the Rust `tokenizers` library for speed.

Google's rules are defined by Python's `unicodedata` tables, while the Rust pipeline has
tables of its own (some older, some newer). So the Rust pipeline is assembled from plain
`Replace`/`Split` steps whose character classes are computed from `unicodedata`
(char_tables.py), and only lower-casing and NFD are left to Rust. Texts containing a
character on which those two disagree with Python are tokenized by a pure-Python path
instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from .char_tables import SURROGATES, Ranges, char_classes, rust_lower_nfd_disagreements
from .vocab import VocabError, load_vocab

UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MAX_WORD_CHARS = 100  # longer words become [UNK] as a whole

_CAPITAL_SIGMA = 0x03A3


class WordPieces(NamedTuple):
    """The wordpieces of one text and their vocabulary ids."""

    tokens: list[str]
    ids: list[int]


def _onig_class(ranges: Ranges) -> str:
    """A character class in the syntax of the Oniguruma engine used by `tokenizers`."""
    return "[" + "".join(f"\\x{{{low:X}}}-\\x{{{high:X}}}" for low, high in ranges) + "]"


def python_class(ranges: Ranges) -> str:
    return "[" + "".join(f"\\U{low:08X}-\\U{high:08X}" for low, high in ranges) + "]"


def _rust_normalizer(lowercase: bool) -> normalizers.Normalizer:
    classes = char_classes()
    steps = [
        normalizers.Replace(Regex(_onig_class(classes.dropped)), ""),
        normalizers.Replace(Regex(_onig_class(classes.spaces)), " "),
    ]
    if lowercase:
        steps += [
            normalizers.Lowercase(),
            normalizers.NFD(),
            normalizers.Replace(Regex(_onig_class(classes.accents)), ""),
        ]
    return normalizers.Sequence(steps)


def python_normalize(text: str, lowercase: bool) -> str:
    """Google's cleaning, lower-casing and accent stripping, with Python's own tables."""
    text = text.translate(_clean_table())
    if lowercase:
        text = _accent_pattern().sub("", unicodedata.normalize("NFD", text.lower()))
    return text


@lru_cache(maxsize=None)
def _clean_table() -> dict[int, str | None]:
    classes = char_classes()
    table: dict[int, str | None] = {}
    for low, high in classes.spaces:
        table.update(dict.fromkeys(range(low, high + 1), " "))
    for low, high in classes.dropped:
        table.update(dict.fromkeys(range(low, high + 1)))
    return table


@lru_cache(maxsize=None)
def _accent_pattern() -> re.Pattern[str]:
    return re.compile(python_class(char_classes().accents))


@lru_cache(maxsize=None)
def _word_split_pattern() -> re.Pattern[str]:
    isolated = python_class(char_classes().isolated)
    return re.compile(f"{isolated}|[^{isolated[1:-1]}]+")


@lru_cache(maxsize=None)
def _python_only_pattern(lowercase: bool) -> re.Pattern[str]:
    """Characters that the Rust pipeline cannot treat exactly like Python does.

    - lone surrogates: valid in a Python `str` but not convertible to Rust;
    - under lower-casing, the capital sigma (Python lowers it to a final sigma at the
      end of a word, Rust lowers each character alone), non-starters that survive
      accent stripping (their NFD order depends on the engine's combining classes), and
      every character whose Rust lower-casing or NFD differs from Python's (the two
      follow different Unicode versions): found by running both over all code points.
    """
    special = [SURROGATES]
    if lowercase:
        special += [(_CAPITAL_SIGMA, _CAPITAL_SIGMA), *char_classes().unordered]
        special += rust_lower_nfd_disagreements()
    return re.compile(python_class(special))


class BertTokenizer:
    """Basic tokenization plus WordPiece exactly as Google's BERT, for one vocabulary."""

    unk_token = UNK_TOKEN
    cls_token = CLS_TOKEN
    sep_token = SEP_TOKEN

    def __init__(self, vocab: dict[str, int], lowercase: bool = True) -> None:
        if UNK_TOKEN not in vocab:
            raise VocabError(f"the vocabulary lacks {UNK_TOKEN}")
        self._vocab = dict(vocab)
        self._unk_id = self._vocab[UNK_TOKEN]
        self._lowercase = lowercase
        model = models.WordPiece(
            self._vocab, unk_token=UNK_TOKEN, max_input_chars_per_word=MAX_WORD_CHARS
        )
        self._rust = Tokenizer(model)
        self._rust.normalizer = _rust_normalizer(lowercase)
        self._rust.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(" ", "removed"),
                pre_tokenizers.Split(Regex(_onig_class(char_classes().isolated)), "isolated"),
            ]
        )
        self._python_only = _python_only_pattern(lowercase)
        # most texts are ASCII: skip the (slower) scan when no ASCII char needs Python
        self._ascii_is_fast = not self._python_only.search("".join(map(chr, range(128))))

    @classmethod
    def from_file(cls, path: str | Path, lowercase: bool = True) -> BertTokenizer:
        return cls(load_vocab(path), lowercase=lowercase)

    @property
    def vocab(self) -> dict[str, int]:
        return self._vocab

    @property
    def lowercase(self) -> bool:
        return self._lowercase

    def tokenize(self, text: str) -> list[str]:
        return self.encode_batch([text])[0].tokens

    def tokenize_batch(self, texts: Sequence[str]) -> list[list[str]]:
        return [pieces.tokens for pieces in self.encode_batch(texts)]

    def encode_batch(self, texts: Sequence[str]) -> list[WordPieces]:
        """Wordpieces and ids of every text, without special tokens, in one Rust call."""
        slow = [i for i, text in enumerate(texts) if self._needs_python(text)]
        if not slow:
            return self._encode_fast(texts)
        slow_set = set(slow)
        fast = iter(self._encode_fast([t for i, t in enumerate(texts) if i not in slow_set]))
        return [self._encode_slow(t) if i in slow_set else next(fast) for i, t in enumerate(texts)]

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        return [self._vocab.get(token, self._unk_id) for token in tokens]

    def _needs_python(self, text: str) -> bool:
        if self._ascii_is_fast and text.isascii():
            return False
        return self._python_only.search(text) is not None

    def _encode_fast(self, texts: Sequence[str]) -> list[WordPieces]:
        encodings = self._rust.encode_batch(list(texts), add_special_tokens=False)
        return [WordPieces(encoding.tokens, encoding.ids) for encoding in encodings]

    def _encode_slow(self, text: str) -> WordPieces:
        normalized = python_normalize(text, self._lowercase)
        tokens = [
            piece
            for word in normalized.split()
            for part in _word_split_pattern().findall(word)
            for piece in self._wordpiece(part)
        ]
        return WordPieces(tokens, self.convert_tokens_to_ids(tokens))

    def _wordpiece(self, word: str) -> list[str]:
        """Greedy longest match first; a position nothing matches makes the word [UNK]."""
        if len(word) > MAX_WORD_CHARS:
            return [UNK_TOKEN]
        pieces = []
        start = 0
        while start < len(word):
            prefix = "##" if start else ""
            for end in range(len(word), start, -1):
                if prefix + word[start:end] in self._vocab:
                    pieces.append(prefix + word[start:end])
                    start = end
                    break
            else:
                return [UNK_TOKEN]
        return pieces
