"""The first wordpieces of a text without tokenizing all of it.

The model keeps at most `max_seq_len` tokens, so a giant text (8 MB, 100 MB) need not go
through the tokenizer whole: only a prefix does, one that yields the same first
wordpieces as the whole text. Following Google's steps (clean, space out CJK ideographs,
split on whitespace, then per word: lower-case, strip accents, split on punctuation,
WordPiece), a prefix ending before `text[p]` is exact:

- if `text[p]` is whitespace or a CJK ideograph: the text is split into words there
  before any step that looks at a character's neighbours;
- if `text[p]` is punctuation that lower-casing and NFD leave as it is and that is a
  starter (combining class 0): the prefix then normalizes to a prefix of the normalized
  text ending where a punctuation split happens anyway. This needs lower-casing to be
  context free, i.e. the text to be cased or to have no capital sigma (the only
  character Python lowers by its neighbours), or else the punctuation to end a sigma's
  context (is not case-ignorable: "," ends it, "." does not).

Before tokenizing, the prefix is also rid of characters that cannot make a token, which
keeps a text of mostly such characters cheap: control and format characters (cleaning
drops them first), repeated whitespace (splitting ignores the count), accents (Mn, which
lower-casing drops after NFD; only when lower-casing is context free, as the cased
U+0345 is an accent). And a run of more than `MAX_WORD_CHARS + 1` cased letters that
each normalize to one cased letter (and digits, when context free), whose piece is
`[UNK]` however long it is, is shortened to `MAX_WORD_CHARS + 1` of them.

The prefix starts at `START_CHARS_PER_PIECE` characters per wanted piece and grows 4x
until it yields enough pieces or is the whole text. So the characters tokenized stay
below 4/3 of the last prefix, which is at most 4x what the text needed plus the distance
to the next cut. Python's regular expressions test a class of Basic Multilingual Plane
characters in constant time per character, so the classes keep to the BMP (fewer cuts
cost speed, never exactness) and the CJK ideographs beyond it are searched for apart; the
scans that may read the whole text run at C speed (about 0.4 s per 100 MB here).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from .char_tables import CJK_IDEOGRAPHS, Ranges, char_classes, to_ranges
from .wordpiece import (
    MAX_WORD_CHARS,
    BertTokenizer,
    WordPieces,
    python_class,
    python_normalize,
)

START_CHARS_PER_PIECE = 8
MIN_START_CHARS = 256
GROWTH = 4
_CAPITAL_SIGMA = "\u03a3"
_BMP_END = 0xFFFF
_CASED_LETTERS = ("Lu", "Ll", "Lt")
_DIGITS = [(ord("0"), ord("9"))]


class _Patterns(NamedTuple):
    word_cuts: re.Pattern[str]  # exact in every text
    astral_word_cuts: re.Pattern[str]  # the CJK ideographs beyond the BMP, searched apart
    cuts: re.Pattern[str]  # word cuts and stable punctuation: exact when context free
    sigma_safe_cuts: re.Pattern[str]  # word cuts and punctuation that ends a sigma's context
    spaces: re.Pattern[str]  # a run of whitespace
    dropped: re.Pattern[str]  # characters cleaning removes
    dropped_or_accents: re.Pattern[str]  # and accents: removable when context free


@lru_cache(maxsize=None)
def _patterns() -> _Patterns:
    classes = char_classes()
    word_cuts = [*classes.spaces, *CJK_IDEOGRAPHS]
    ideographs = {code for low, high in CJK_IDEOGRAPHS for code in range(low, high + 1)}
    stable = [
        code
        for low, high in _bmp(classes.isolated)
        for code in range(low, high + 1)
        if code not in ideographs and _is_stable_punctuation(chr(code))
    ]
    sigma_safe = [code for code in stable if _ends_sigma_context(chr(code))]

    def pattern(ranges: Ranges, repeat: str = "") -> re.Pattern[str]:
        return re.compile(python_class(_bmp(ranges)) + repeat)

    astral_ideographs = [(low, high) for low, high in CJK_IDEOGRAPHS if low > _BMP_END]
    return _Patterns(
        pattern(word_cuts),
        re.compile(python_class(astral_ideographs)),
        pattern(word_cuts + to_ranges(stable)),
        pattern(word_cuts + to_ranges(sigma_safe)),
        pattern(classes.spaces, "+"),
        pattern(classes.dropped, "+"),
        pattern(classes.dropped + classes.accents, "+"),
    )


def _bmp(ranges: Ranges) -> Ranges:
    return [(low, min(high, _BMP_END)) for low, high in ranges if low <= _BMP_END]


def _ends_sigma_context(char: str) -> bool:
    """Whether Python lowers a capital sigma before `char` as a word's last letter even
    when a letter follows: `char` is not case-ignorable, so the sigma cannot see past it."""
    return ("\u0391" + _CAPITAL_SIGMA + char + "\u0391").lower()[1] == "\u03c2"


@lru_cache(maxsize=None)
def _long_run(lowercase: bool, context_free: bool) -> re.Pattern[str]:
    """A run of more than MAX_WORD_CHARS + 1 characters that each normalize to exactly
    one cased letter (or digit, when context free): its piece is [UNK] however long the
    run is, and a cased letter (never case-ignorable) ends a sigma's context the same way
    whichever one it is, so keeping MAX_WORD_CHARS + 1 of them changes no token."""
    letters = to_ranges(
        code for code in range(_BMP_END + 1) if _is_plain_letter(chr(code), lowercase)
    )
    ranges = letters + _DIGITS if context_free else letters
    return re.compile(python_class(ranges) + f"{{{MAX_WORD_CHARS + 2},}}")


def _is_plain_letter(char: str, lowercase: bool) -> bool:
    if unicodedata.category(char) not in _CASED_LETTERS or unicodedata.combining(char):
        return False
    normalized = python_normalize(char, lowercase)
    return (
        len(normalized) == 1
        and unicodedata.category(normalized) in _CASED_LETTERS
        and not unicodedata.combining(normalized)
    )


def _is_stable_punctuation(char: str) -> bool:
    """Punctuation that normalization keeps as itself and NFD reordering cannot cross."""
    return (
        unicodedata.combining(char) == 0
        and char.lower() == char
        and unicodedata.normalize("NFD", char) == char
    )


def encode_prefixes(tokenizer: BertTokenizer, texts: list[str], limit: int) -> list[WordPieces]:
    """`tokenizer.encode_batch(texts)` with each text's pieces cut to `limit`, tokenizing
    short texts in one batch call as before and long ones through `first_pieces`."""
    start = _start_chars(limit)
    short = [text for text in texts if len(text) <= start]
    encoded = iter(tokenizer.encode_batch(short) if short else [])
    return [
        _cut(next(encoded), limit)
        if len(text) <= start
        else first_pieces(text, limit, tokenizer.encode_batch, tokenizer.lowercase)
        for text in texts
    ]


def first_pieces(
    text: str, limit: int, encode: Callable[[list[str]], list[WordPieces]], lowercase: bool
) -> WordPieces:
    """The first `limit` wordpieces of `text` (all of them if it has fewer), exactly as
    `encode([text])[0]` cut to `limit`, tokenizing only a prefix of the text."""
    rules = _rules(text, lowercase)
    size = _start_chars(limit)
    while True:
        cut = _next_cut(text, size, rules.cuts)
        pieces = encode([_without_tokenless_chars(text[:cut], rules)])[0]
        if cut is None or len(pieces.ids) >= limit:
            return _cut(pieces, limit)
        size = max(GROWTH * size, cut + 1)


class _Rules(NamedTuple):
    """What may be done to one text (see the module's docstring)."""

    cuts: re.Pattern[str]
    long_run: re.Pattern[str]  # shortened to MAX_WORD_CHARS + 1
    strip_accents: bool  # accents removed before tokenizing


def _rules(text: str, lowercase: bool) -> _Rules:
    context_free = not lowercase or _CAPITAL_SIGMA not in text
    patterns = _patterns()
    cuts = patterns.cuts if context_free else patterns.sigma_safe_cuts
    return _Rules(cuts, _long_run(lowercase, context_free), lowercase and context_free)


def _next_cut(text: str, start: int, cuts: re.Pattern[str]) -> int | None:
    """A cut at or after `start` (the first BMP one), None if there is none.

    Ideographs beyond the BMP would slow every character's test as part of `cuts`, so
    they are searched for apart, and only as far as `start` again (before the first BMP
    cut): far enough for a text made of them, and cheap for any other giant text."""
    if start >= len(text):
        return None
    found = cuts.search(text, start)
    end = found.start() if found else len(text)
    window_end = min(end, 2 * start + MIN_START_CHARS)
    astral = _patterns().astral_word_cuts.search(text, start, window_end)
    return astral.start() if astral else (found.start() if found else None)


def _without_tokenless_chars(text: str, rules: _Rules) -> str:
    """`text` less what cannot change its wordpieces (see the module's docstring)."""
    patterns = _patterns()
    removable = patterns.dropped_or_accents if rules.strip_accents else patterns.dropped
    text = rules.long_run.sub(_keep_unk_length, text)  # first: it shrinks a giant word
    text = patterns.spaces.sub(" ", removable.sub("", text))
    return rules.long_run.sub(_keep_unk_length, text)  # removals may have joined runs


def _keep_unk_length(run: re.Match[str]) -> str:
    """A piece longer than MAX_WORD_CHARS is [UNK] whatever its length: keep just enough."""
    return run.group()[: MAX_WORD_CHARS + 1]


def _start_chars(limit: int) -> int:
    return max(MIN_START_CHARS, START_CHARS_PER_PIECE * limit)


def _cut(pieces: WordPieces, limit: int) -> WordPieces:
    return WordPieces(pieces.tokens[:limit], pieces.ids[:limit])
