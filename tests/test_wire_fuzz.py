"""Bad input on the wire never kills or stalls the server (issue 5, item 2).

A catalogue of malformed messages sent on a bare PUSH socket, a hypothesis fuzzer of the
live server and a unit fuzzer of ``protocol.parse_request``. Whenever the sender's identity
and a numeric request id are readable (frames 0 and 2), it must get an error answer on that
id; in every case a normal client must go on getting correct answers.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bert_serving.client import BertClient
from bert_serving.server import BertServer, protocol
from bert_serving.server.model import EncoderSettings, SentenceEncoder, inspect_model
from bert_serving.server.protocol import plain_json
from tests.servers import server_args
from tests.wire import (
    MAX_ID_DIGITS,
    RawPeer,
    error_message,
    is_error_answer,
    request_id_of,
)

WORDS = ["hello", "world", "this", "is", "it", "good", "day", "first", "do", "then", "right"]
HEALTH_TEXTS = ["hello world", "good day ||| first do it", "this is it"]
MAX_REQUEST_BYTES = 1_000_000
SERVER_OPTIONS = (
    "-num_worker",
    "1",
    "-max_batch_size",
    "8",
    "-max_request_bytes",
    str(MAX_REQUEST_BYTES),
)
FUZZ_EXAMPLES = 300
FUZZ_CHECK_EVERY = 50
FUZZ_TIME_BOUND_S = 240.0
UNIT_FUZZ_EXAMPLES = 4000
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


class LiveServer:
    """One long-running server for the module, started again if a case killed it, so that
    one fatal input fails its own test and not every test after it."""

    def __init__(self, model_dir) -> None:
        self.model_dir = model_dir
        self.server: BertServer | None = None
        self.restarts = 0

    def get(self) -> BertServer:
        if self.server is not None and not self.server.is_alive():
            self.server.close()
            self.server = None
            self.restarts += 1
        if self.server is None:
            self.server = BertServer(server_args(self.model_dir, *SERVER_OPTIONS))
            self.server.start()
            self.server.wait_until_ready(180)
        return self.server

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture(scope="module")
def live(google_model_dir) -> Iterator[LiveServer]:
    holder = LiveServer(google_model_dir)
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture()
def server(live: LiveServer) -> BertServer:
    return live.get()


@pytest.fixture(scope="module")
def expected(google_model_dir) -> np.ndarray:
    """HEALTH_TEXTS encoded in this process: what the server must keep answering."""
    encoder = SentenceEncoder(inspect_model(google_model_dir), EncoderSettings(precision="float32"))
    return encoder.encode(HEALTH_TEXTS).embeddings


def assert_still_serving(server: BertServer, expected: np.ndarray) -> None:
    """The ventilator thread lives and a fresh, normal client gets correct vectors."""
    assert server.is_alive(), f"the server thread died: {server.error!r}"
    with BertClient(port=server.args.port, port_out=server.args.port_out, timeout=30000) as bc:
        np.testing.assert_allclose(bc.encode(HEALTH_TEXTS), expected, atol=1e-5)
    assert server.is_alive(), f"the server thread died: {server.error!r}"


# -- the catalogue --------------------------------------------------------------------------

VALID = b'["hello world"]'


def frame_count(count: int) -> tuple[list[bytes], tuple[str | re.Pattern, ...]]:
    """A message cut or padded to ``count`` frames, and what its error must say: how many
    frames were expected and how many came."""
    full = [b"", VALID, b"11", b"1", b"extra", b"more"]
    return full[:count], ("frame", re.compile(r"\b4\b"), re.compile(rf"\b{count}\b"))


# a table: its rows are alike on purpose
CASES = {
    # wrong frame counts: the identity (and from 3 frames on, the id) are still there
    "1-frame": ([b""], None),
    "2-frames": ([b"", VALID], None),
    "3-frames": frame_count(3),
    "5-frames": frame_count(5),
    "6-frames": frame_count(6),
    "3-frames-command": ([b"", b"SHOW_CONFIG", b"11"], ("frame",)),
    "5-frames-command": ([b"", b"SHOW_CONFIG", b"11", b"0", b"x"], ("frame",)),
    # request ids nobody can answer on
    "id-letters": ([b"", VALID, b"abc", b"1"], None),
    "id-negative": ([b"", VALID, b"-1", b"1"], None),
    "id-empty": ([b"", VALID, b"", b"1"], None),
    "id-space": ([b"", VALID, b" 7", b"1"], None),
    "id-arabic-digits": ([b"", VALID, "٣".encode(), b"1"], None),
    "id-float": ([b"", VALID, b"1.5", b"1"], None),
    "id-too-many-digits": ([b"", VALID, b"9" * (MAX_ID_DIGITS + 1), b"1"], None),
    # huge but readable ids
    "id-huge-30-digits": ([b"", b"[1]", b"9" * 30, b"1"], ("texts[0]",)),
    "id-huge-200-digits": ([b"", b"[1]", b"1" + b"0" * 200, b"1"], ("texts[0]",)),
    "id-leading-zeros": ([b"", b"[1]", b"0007", b"1"], ("texts[0]",)),
    # identities
    "identity-empty": ([b"-", VALID, b"11", b"1"], None),
    "identity-binary": ([b"\x00\xff\xfe-bin", b"[1]", b"11", b"1"], ("texts[0]",)),
    "identity-10kb": ([b"L" * 10240, b"[1]", b"11", b"1"], ("texts[0]",)),
    # payloads that are not JSON text lists
    "not-json": ([b"", b"not json", b"11", b"1"], ("nor JSON",)),
    "not-utf8": ([b"", b"\xff\xfe\xfd", b"11", b"1"], ("UTF-8",)),
    "utf8-then-garbage": ([b"", b'["a\xc3"]', b"11", b"1"], ("UTF-8",)),
    "payload-empty": ([b"", b"", b"11", b"0"], ()),
    "json-number": ([b"", b"42", b"11", b"1"], ("non-empty list",)),
    "json-string": ([b"", b'"hello"', b"11", b"1"], ("non-empty list",)),
    "json-dict": ([b"", b'{"texts": ["hello"]}', b"11", b"1"], ("non-empty list",)),
    "json-null": ([b"", b"null", b"11", b"0"], ("non-empty list",)),
    "json-true": ([b"", b"true", b"11", b"1"], ("non-empty list",)),
    "json-nan": ([b"", b"[NaN]", b"11", b"1"], ("texts[0]",)),
    "nested-number-lists": ([b"", b"[[1, 2], [3]]", b"11", b"2"], ("texts[0][0]",)),
    "deeply-nested-lists": ([b"", b"[" * 100000 + b"]" * 100000, b"11", b"1"], ()),
    "mixed-strings-then-lists": ([b"", b'["hello", ["world"]]', b"11", b"2"], ("texts[1]",)),
    "mixed-lists-then-strings": ([b"", b'[["hello"], "world"]', b"11", b"2"], ("texts[1]",)),
    "list-with-null": ([b"", b'["hello", null]', b"11", b"2"], ("texts[1]",)),
    "list-of-dicts": ([b"", b'[{"a": 1}]', b"11", b"1"], ("texts[0]",)),
    "empty-list": ([b"", b"[]", b"11", b"0"], ("non-empty list",)),
    "deep-nesting": ([b"", b"[" * 200_000 + b"]" * 200_000, b"11", b"1"], ("nested too deeply",)),
    "empty-string": ([b"", b'["hello", ""]', b"11", b"2"], ("texts[1]",)),
    "whitespace-string": ([b"", b'[" \\t\\n\\u3000 "]', b"11", b"1"], ("texts[0]",)),
    "empty-token": ([b"", b'[["hello", ""]]', b"11", b"1"], ("texts[0][1]",)),
    "whitespace-token": ([b"", b'[["hello", "  "]]', b"11", b"1"], ("texts[0][1]",)),
    "empty-token-list": ([b"", b"[[]]", b"11", b"1"], ("texts[0]",)),
    "second-token-list-empty": ([b"", b'[["hello"], []]', b"11", b"2"], ("texts[1]",)),
    "token-number": ([b"", b'[["hello", 7]]', b"11", b"1"], ("texts[0][1]",)),
    # count frames
    "count-too-big": ([b"", b'["a", "b"]', b"11", b"5"], ("count frame says 5", "has 2")),
    "count-zero": ([b"", b'["a", "b"]', b"11", b"0"], ("count frame says 0",)),
    "count-huge": ([b"", b'["a"]', b"11", b"9" * 40], ("count frame",)),
    "count-letters": ([b"", b'["a"]', b"11", b"one"], ("count frame",)),
    "count-negative": ([b"", b'["a"]', b"11", b"-1"], ("count frame",)),
    "count-empty": ([b"", b'["a"]', b"11", b""], ("count frame",)),
    # requests over -max_request_bytes; far over it, ZeroMQ drops the sender's connection
    "over-size-limit": (
        [b"", json.dumps(["hello world"] * 80_000).encode(), b"11", b"80000"],
        ("max_request_bytes",),
    ),
    "far-over-size-limit": ([b"", b"[" + b'"hello",' * 700_000 + b'"end"]', b"11", b"1"], None),
    # commands the server does not know (must not be taken for TERMINATION either)
    "command-plural": ([b"", b"SHOW_CONFIGS", b"11", b"0"], ("nor JSON",)),
    "command-lowercase": ([b"", b"show_config", b"11", b"0"], ("nor JSON",)),
    "command-terminate": ([b"", b"TERMINATE", b"11", b"0"], ("nor JSON",)),
    "command-termination-space": ([b"", b"TERMINATION ", b"11", b"0"], ("nor JSON",)),
    "command-termination-nul": ([b"", b"TERMINATION\x00", b"11", b"0"], ("nor JSON",)),
}


def addressed(name: str, frames: list[bytes]) -> list[bytes]:
    """Give the case its own identity (frame 0), unless it tests the empty identity."""
    frames = list(frames)
    if frames and frames[0] == b"":
        frames[0] = f"wire-{name}".encode()
    elif frames and frames[0] == b"-":
        frames[0] = b""
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_answered_and_the_server_goes_on(server, expected, name):
    frames, must_say = CASES[name]
    frames = addressed(name, frames)
    request_id = request_id_of(frames)
    if must_say is not None:
        assert request_id is not None, "a case that expects an answer needs a readable id"
    with RawPeer(server.args.port, server.args.port_out) as peer:
        peer.sync()  # subscribed, so an answer cannot be held back for a slow joiner
        started = time.monotonic()
        peer.send(frames)
        if must_say is not None:
            answer = peer.wait_for(frames[0], request_id)
            assert answer is not None, (
                f"no answer on request id {request_id} within 5 s "
                f"(server alive: {server.is_alive()})"
            )
            print(f"\n{name}: answered in {time.monotonic() - started:.3f} s: {answer[1][:120]!r}")
            assert is_error_answer(answer), f"not an error answer: {[f[:80] for f in answer]}"
            message = error_message(answer)
            for wanted in must_say:
                found = (
                    wanted.search(message) if isinstance(wanted, re.Pattern) else wanted in message
                )
                assert found, f"{wanted!r} not in {message!r}"
        peer.sync()  # the bad message has been handled
    assert_still_serving(server, expected)


def test_catalogue_size():
    """How many bad-input cases the catalogue holds (the issue's closing note reports it)."""
    answered = sum(1 for frames, must_say in CASES.values() if must_say is not None)
    print(f"\nbad-input catalogue: {len(CASES)} cases, {answered} of them must be answered")
    assert len(CASES) >= 40


@pytest.mark.slow
def test_a_reused_request_id_is_answered_again(server, expected):
    """A client that restarts with a fixed identity counts its ids from 1 again; its
    requests must still be answered, not mistaken for late duplicates."""
    port, port_out = server.args.port, server.args.port_out
    for attempt in range(2):
        with BertClient(port=port, port_out=port_out, timeout=10000, identity="fixed-id") as bc:
            got = bc.encode(HEALTH_TEXTS)
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"attempt {attempt}")
    assert server.is_alive()


# -- fuzzing the live server ----------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
SENTENCES = st.lists(st.sampled_from([*WORDS, "|||", "!", "", " "]), max_size=12).map(" ".join)
TEXT_LISTS = st.lists(st.one_of(SENTENCES, st.text(max_size=40)), max_size=40)
TOKEN_LISTS = st.lists(
    st.lists(st.one_of(st.sampled_from([*WORDS, "|||"]), st.text(max_size=8)), max_size=12),
    max_size=20,
)
MIXED_LISTS = st.lists(st.one_of(SENTENCES, TOKEN_LISTS, JSON_VALUES), max_size=8)
COMMAND_WORDS = st.sampled_from(
    [
        protocol.SHOW_CONFIG,
        protocol.SHOW_STATUS,
        b"SHOW_CONFIGS",
        b"show_config",
        b"TERMINATE",
        b"TERMINATION ",
        b"SHOW_",
        b"",
    ]
)


def _dump(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


PAYLOADS = st.one_of(
    TEXT_LISTS.map(_dump),
    TOKEN_LISTS.map(_dump),
    MIXED_LISTS.map(_dump),
    JSON_VALUES.map(_dump),
    COMMAND_WORDS,
    st.one_of(st.integers(1, 5000), st.sampled_from([999, 1000, 100000])).map(_nested),
    st.binary(max_size=64),
    st.text(max_size=30).map(lambda text: text.encode("utf-8")),
)
DIGITS = st.integers(0, 10**40).map(lambda number: str(number).encode())
SMALL_IDS = st.integers(0, 10**6).map(lambda number: str(number).encode())
IDS = st.one_of(SMALL_IDS, SMALL_IDS, SMALL_IDS, DIGITS, st.binary(max_size=8))
IDENTITIES = st.one_of(
    st.uuids().map(lambda uuid: str(uuid).encode()),  # what real clients use
    st.uuids().map(lambda uuid: str(uuid).encode()),
    st.text(min_size=1, max_size=16).map(lambda text: b"fuzz-" + text.encode("utf-8")),
    st.binary(min_size=1, max_size=24),
    st.binary(max_size=2),
)


@st.composite
def almost_valid(draw) -> list[bytes]:
    """A valid-looking 4-frame request with some of its frames replaced or cut."""
    payload = draw(PAYLOADS)
    try:
        length = len(json.loads(payload))
    except (ValueError, TypeError, RecursionError):
        length = 0
    count = draw(st.one_of(st.just(str(length).encode()), DIGITS, st.binary(max_size=4)))
    frames = [draw(IDENTITIES), payload, draw(IDS), count]
    mutation = draw(st.sampled_from(["keep", "keep", "keep", "cut", "extend"]))
    if mutation == "cut":
        frames = frames[: draw(st.integers(1, 3))]
    elif mutation == "extend":
        frames += draw(st.lists(st.binary(max_size=16), min_size=1, max_size=3))
    return frames


ARBITRARY = st.lists(st.binary(max_size=64), min_size=0, max_size=7)
MESSAGES = st.one_of(ARBITRARY, almost_valid(), almost_valid(), almost_valid())


def would_terminate(frames: list[bytes]) -> bool:
    """The one input the fuzzer must not send: it asks the server to shut down."""
    return len(frames) > 1 and frames[1] == protocol.TERMINATION


@pytest.mark.slow
def test_fuzz_the_live_server(server, expected):
    counts: Counter[str] = Counter()
    seen: set[tuple[bytes, int]] = set()
    started = time.monotonic()
    with RawPeer(server.args.port, server.args.port_out) as peer:
        peer.sync()

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=SLOW_OK,
        )
        @given(frames=MESSAGES)
        @example(frames=[b"fuzz-deep", _nested(100000), b"1", b"1"])
        @example(frames=[b"fuzz-short", VALID, b"1"])
        def send_one(frames: list[bytes]) -> None:
            if time.monotonic() - started > FUZZ_TIME_BOUND_S:
                counts["skipped (time bound)"] += 1
                return
            counts["examples"] += 1
            if not frames or would_terminate(frames):
                counts["not sent (empty or TERMINATION)"] += 1
                return
            peer.send(frames)
            counts["sent"] += 1
            request_id = request_id_of(frames)
            if request_id is not None and (frames[0], request_id) not in seen:
                seen.add((frames[0], request_id))
                answer = peer.wait_for(frames[0], request_id, timeout=15.0)
                assert answer is not None, f"no answer to {[f[:40] for f in frames]}"
                counts["answered as error" if is_error_answer(answer) else "answered"] += 1
            if counts["sent"] % FUZZ_CHECK_EVERY == 0:
                peer.sync()
                assert_still_serving(server, expected)
                counts["health checks"] += 1

        try:
            send_one()
            peer.sync()
            assert_still_serving(server, expected)
            counts["health checks"] += 1
        finally:
            print(f"\nlive fuzz in {time.monotonic() - started:.1f} s: {dict(counts)}")


# -- fuzzing parse_request ------------------------------------------------------------------


def test_fuzz_parse_request():
    counts: Counter[str] = Counter()

    @settings(
        max_examples=UNIT_FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=SLOW_OK,
    )
    @given(frames=MESSAGES)
    def parse_one(frames: list[bytes]) -> None:
        counts["examples"] += 1
        answerable = request_id_of(frames) is not None
        try:
            request = protocol.parse_request(frames)
        except protocol.BadRequestError:
            counts["refused with an answer"] += 1
            return
        except ValueError:
            counts["dropped (nobody to answer)"] += 1
            assert not answerable, "identity and request id are readable: answer the sender"
            return
        counts["accepted"] += 1
        assert len(frames) == 4
        assert request.client == frames[0] and request.client
        assert request.request_id == int(frames[2])
        if request.command is not None:
            assert request.command in protocol.COMMANDS and request.texts is None
            return
        assert protocol.check_texts(request.texts) == request.is_tokenized
        assert len(request.texts) == int(frames[3])

    try:
        parse_one()
    finally:
        print(f"\nparse_request fuzz: {dict(counts)}")


# -- deeply nested JSON on the ZeroMQ port ---------------------------------------------------

NESTINGS = {
    "a million brackets": b"[" * 10**6 + b"]" * 10**6,
    "nested inside a text list": b'["a", ' + b"[" * 200_000 + b"]" * 200_000 + b"]",
    "nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "unclosed": b"[" * 500_000,
}


@pytest.mark.parametrize("name", list(NESTINGS))
def test_deeply_nested_json_is_refused_with_an_answer(name):
    payload = NESTINGS[name]
    with pytest.raises(protocol.BadRequestError):
        protocol.parse_request([b"client", payload, b"7", b"1"])


@settings(max_examples=300, deadline=None, database=None)
@given(
    depth=st.integers(min_value=1, max_value=200_000),
    opener=st.sampled_from([(b"[", b"]"), (b'{"k":', b"}")]),
    inside=st.sampled_from([b'"text"', b"1", b"[]", b"null"]),
)
def test_fuzz_nesting_depth_never_escapes_as_another_error(depth, opener, inside):
    """At any depth the parser answers: a request, or BadRequestError naming the problem."""
    start, end = opener
    payload = start * depth + inside + end * depth
    try:
        protocol.parse_request([b"client", payload, b"7", b"1"])
    except protocol.BadRequestError as refused:
        assert str(refused)


# -- the plain-string reader gives exactly what json.loads gives -----------------------------

# bytes that make or break a JSON array of plain strings, joined at random
PLAIN_PIECES = [
    *(b'"', b'"', b'"', b"[", b"]", b",", b", ", b" ", b" , ", b"a", b"b c", b"1", b"null"),
    *(b"\\", b'\\"', b"\\n", b"\\u00e9", b"\\ud800", b"\\udc00", b"[]", b"{}", b'{"a":"b"}'),
    *(b"\n", b"\t", b"\r", b"\x00", b"\x1f", b"\x7f", b"\xef\xbb\xbf"),  # control chars, BOM
    *("é".encode(), "你好".encode(), "\U0001f44d".encode(), "\u2028".encode()),
    *(b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"),  # not UTF-8 (surrogate, >U+10FFFF)
]
PLAIN_ALPHABET = st.characters(codec="utf-8", exclude_characters='"\\', min_codepoint=0x20)
SERIALIZATIONS = [
    {"ensure_ascii": False, "separators": (",", ":")},  # this project's client
    {},  # 1.10's client: pyzmq's jsonapi.dumps, json.dumps's defaults
    {"separators": (",", ":")},  # older pyzmq
    {"ensure_ascii": False, "indent": 1},
]


@st.composite
def text_array_payloads(draw) -> bytes:
    """A payload as some client would send it, or a random splice of JSON's pieces."""
    if draw(st.booleans()):
        return b"".join(draw(st.lists(st.sampled_from(PLAIN_PIECES), max_size=30)))
    plain = st.text(PLAIN_ALPHABET, min_size=1, max_size=20)
    text = st.one_of(st.text(max_size=20), plain, plain)
    texts = draw(st.lists(text, min_size=1, max_size=6))
    return json.dumps(texts, **draw(st.sampled_from(SERIALIZATIONS))).encode("utf-8")


def parse_outcome(payload: bytes) -> tuple:
    """What parse_request makes of the payload: its texts, or the error it answers."""
    try:
        count = str(len(json.loads(payload))).encode()
    except (ValueError, TypeError, RecursionError):
        count = b"1"
    try:
        request = protocol.parse_request([b"client", payload, b"7", count])
    except protocol.BadRequestError as refused:
        return ("refused", str(refused))
    return ("texts", request.texts, request.is_tokenized, request.spans is not None)


def test_fuzz_plain_string_reader_agrees_with_json_loads():
    """Texts read at their spans, without json.loads, must be exactly json.loads's, and
    every payload the reader leaves alone must still get json.loads's answer or error."""
    read_plainly = Counter()

    @settings(max_examples=3000, deadline=None, database=None, suppress_health_check=SLOW_OK)
    @given(payload=text_array_payloads())
    def agree(payload: bytes) -> None:
        fast = parse_outcome(payload)
        with mock.patch.object(protocol.wire, "plain_string_spans", return_value=None):
            reference = parse_outcome(payload)
        assert fast[:3] == reference[:3]
        read_plainly[fast[-1] is True] += 1

    agree()
    # the plain path must really be exercised (about one example in seven takes it)
    assert read_plainly[True] > 200, read_plainly


@settings(max_examples=3000, deadline=None, database=None, suppress_health_check=SLOW_OK)
@given(payload=text_array_payloads())
def test_fuzz_the_small_and_the_large_payload_readers_agree(payload):
    """Small payloads are split at their quotes, large ones scanned with numpy: the same
    spans (or the same refusal) for every payload."""
    split = plain_json.spans_by_splitting(payload)
    scanned = plain_json.spans_by_scanning(payload)
    assert (split is None) == (scanned is None)
    if split is not None:
        assert split.dtype == scanned.dtype and np.array_equal(split, scanned)


def test_a_large_payload_is_read_at_its_spans_by_the_scan():
    texts = [f"plain text number {index}" for index in range(5000)]
    payload = json.dumps(texts).encode()
    assert len(payload) > plain_json.SMALL_PAYLOAD_BYTES
    spans = plain_json.plain_string_spans(payload)
    assert [payload[start:end].decode() for start, end in spans] == texts


@pytest.mark.parametrize(
    "payload",
    [b'["a","b"]', b'["a", "b"]', b' [ "a","b" ] ', '["ünï", "你好"]'.encode()],
)
def test_plain_payloads_are_read_at_their_spans(payload):
    spans = plain_json.plain_string_spans(payload)
    assert spans is not None
    assert [payload[start:end].decode() for start, end in spans] == json.loads(payload)


@pytest.mark.parametrize(
    "payload",
    [b'["a" , "b"]', b'["a",\n"b"]', b'["a\\"b"]', b'["a\tb"]', b'[["a"]]', b'["a",1]', b'"a"'],
)
def test_other_payloads_are_left_to_json_loads(payload):
    assert plain_json.plain_string_spans(payload) is None
