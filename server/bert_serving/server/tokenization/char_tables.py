"""Google's character classes and where Rust's normalization parts from Python's, as ranges.

Both are found by sweeping every code point through Python's ``unicodedata`` (and, for the
second, through the Rust ``tokenizers`` library too): 1.0 and 1.8 s of CPU on a quiet AMD
EPYC Zen 3, more on a busy machine, so each is computed once per machine and read from the
table cache afterwards (table_cache.py). The cache key holds everything a table depends on:
this Python (its Unicode data and string methods), the installed ``tokenizers`` and the
source of this module, so a change to any of them computes the tables anew.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import tokenizers
from tokenizers import normalizers

from .table_cache import Ranges, Tables, cached_tables

CJK_IDEOGRAPHS = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
SURROGATES = (0xD800, 0xDFFF)
_ASCII_PUNCTUATION = "".join(chr(c) for c in range(33, 127) if not chr(c).isalnum())
_SEPARATOR = "|"  # joins probe characters; untouched by every normalization step


def to_ranges(codes: Iterable[int]) -> Ranges:
    ranges: Ranges = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


class CharClasses(NamedTuple):
    """Google's character classes, as ranges of code points from Python's tables."""

    dropped: Ranges  # NUL, U+FFFD and control characters other than \t \n \r
    spaces: Ranges  # Google's whitespace plus whatever else `str.split()` splits on
    isolated: Ranges  # CJK ideographs and punctuation: each one is a token of its own
    accents: Ranges  # combining marks (Mn) dropped after NFD when lower-casing
    unordered: Ranges  # non-starters that NFD reorders but accent stripping keeps


@lru_cache(maxsize=None)
def char_classes() -> CharClasses:
    tables = cached_tables("char-classes", _depends_on(), CharClasses._fields, compute_char_classes)
    return CharClasses(**tables)


@lru_cache(maxsize=None)
def rust_lower_nfd_disagreements() -> Ranges:
    """Code points whose lower-cased NFD differs between Rust and Python (all other
    steps use classes computed from Python's tables, so they cannot disagree)."""
    tables = cached_tables(
        "rust-lower-nfd", _depends_on(), ("codes",), compute_rust_lower_nfd_disagreements
    )
    return tables["codes"]


def compute_char_classes() -> Tables:
    """The sweep behind ``char_classes``, uncached."""
    dropped, spaces, isolated, accents, unordered = [], [], [], [], []
    for code in range(0x110000):
        char = chr(code)
        category = unicodedata.category(char)
        if code in (0, 0xFFFD) or (category in ("Cc", "Cf") and char not in "\t\n\r"):
            dropped.append(code)
        elif char.isspace() or category == "Zs":
            spaces.append(code)
        if category.startswith("P") or char in _ASCII_PUNCTUATION:
            isolated.append(code)
        if category == "Mn":
            accents.append(code)
        elif unicodedata.combining(char):
            unordered.append(code)
    isolated.extend(c for low, high in CJK_IDEOGRAPHS for c in range(low, high + 1))
    found = (dropped, spaces, isolated, accents, unordered)
    return {name: to_ranges(codes) for name, codes in zip(CharClasses._fields, found)}


def compute_rust_lower_nfd_disagreements() -> Tables:
    """The sweep behind ``rust_lower_nfd_disagreements``, uncached."""
    codes = [
        code
        for code in range(0x110000)
        if not SURROGATES[0] <= code <= SURROGATES[1] and chr(code) != _SEPARATOR
    ]
    probe = _SEPARATOR.join(map(chr, codes))
    rust_steps = normalizers.Sequence([normalizers.Lowercase(), normalizers.NFD()])
    rust = rust_steps.normalize_str(probe).split(_SEPARATOR)
    python = unicodedata.normalize("NFD", probe.lower()).split(_SEPARATOR)
    return {"codes": to_ranges(c for c, ours, theirs in zip(codes, rust, python) if ours != theirs)}


@lru_cache(maxsize=None)
def _depends_on() -> tuple[str, ...]:
    return (
        sys.version,
        unicodedata.unidata_version,
        tokenizers.__version__,
        Path(__file__).read_text(encoding="utf-8"),
    )
