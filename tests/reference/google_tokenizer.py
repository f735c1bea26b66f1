"""A slow, literal, pure-Python statement of Google's original BERT tokenization rules.

Tests use it as the oracle for the fast tokenizer of the server, so it favours being
obviously right over being quick: every rule is one small function over characters.
"""

# The CJK ranges repeat the server's on purpose: an oracle that imported them would not be
# independent of the code it checks.

from __future__ import annotations

import unicodedata

UNK = "[UNK]"
MAX_WORD_CHARS = 100

_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_ASCII_PUNCTUATION = (range(33, 48), range(58, 65), range(91, 97), range(123, 127))


def is_whitespace(char: str) -> bool:
    """Tab, newline and carriage return are whitespace here, not control characters."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def is_punctuation(char: str) -> bool:
    """ASCII symbols such as `$` or `^` count as punctuation although Unicode says Sc/Sk."""
    code = ord(char)
    if any(code in block for block in _ASCII_PUNCTUATION):
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk_ideograph(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def clean(text: str) -> str:
    kept = []
    for char in text:
        if ord(char) in (0, 0xFFFD) or is_control(char):
            continue
        kept.append(" " if is_whitespace(char) else char)
    return "".join(kept)


def space_out_cjk(text: str) -> str:
    return "".join(f" {char} " if is_cjk_ideograph(char) else char for char in text)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


def split_on_punctuation(word: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for char in word:
        if is_punctuation(char):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(char)
        else:
            current.append(char)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(text: str, lowercase: bool) -> list[str]:
    """Clean, space out CJK, split on whitespace, lower/strip accents, split punctuation."""
    words = space_out_cjk(clean(text)).split()
    pieces: list[str] = []
    for word in words:
        if lowercase:
            word = strip_accents(word.lower())
        pieces.extend(split_on_punctuation(word))
    # the original joins and splits once more, in case lowering produced whitespace
    return " ".join(pieces).split()


def wordpiece(word: str, vocab: dict[str, int] | set[str]) -> list[str]:
    """Greedy longest-match-first; one unmatched position makes the whole word unknown."""
    if len(word) > MAX_WORD_CHARS:
        return [UNK]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        match = None
        while end > start:
            candidate = word[start:end] if start == 0 else "##" + word[start:end]
            if candidate in vocab:
                match = candidate
                break
            end -= 1
        if match is None:
            return [UNK]
        pieces.append(match)
        start = end
    return pieces


def tokenize(text: str, vocab: dict[str, int] | set[str], lowercase: bool = True) -> list[str]:
    return [piece for word in basic_tokenize(text, lowercase) for piece in wordpiece(word, vocab)]
