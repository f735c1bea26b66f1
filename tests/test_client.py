"""The client against a fake 1.10-style server over real ZeroMQ sockets."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bert_serving.client.client as client_module
from bert_serving.client import (
    BertClient,
    BertClientTimeoutError,
    BertServerError,
    ConcurrentBertClient,
    Response,
    VersionMismatchError,
    __version__,
)
from bert_serving.server.network import free_ports
from tests.fake_server import EMBEDDING_WIDTH, FakeServer, fake_embedding, fake_tokens

pytestmark = pytest.mark.timeout(30)

TEXTS = ["hello world", "good day to you", "third text"]


@pytest.fixture
def stack():
    with contextlib.ExitStack() as exit_stack:
        yield exit_stack


@pytest.fixture
def serve(stack):
    """Start a FakeServer with the given options; stopped after the test."""
    return lambda **options: stack.enter_context(FakeServer(**options))


@pytest.fixture
def connect(stack):
    """A BertClient on a server's ports (5 s timeout unless given); closed after the test."""

    def make(server, **options) -> BertClient:
        options.setdefault("timeout", 5000)
        client = BertClient(ip="127.0.0.1", port=server.port, port_out=server.port_out, **options)
        return stack.enter_context(client)

    return make


# ---- encode -------------------------------------------------------------------------


def test_encode_returns_the_server_rows_in_order(serve, connect):
    bc = connect(serve())
    vectors = bc.encode(TEXTS)
    assert isinstance(vectors, np.ndarray)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), EMBEDDING_WIDTH)
    np.testing.assert_array_equal(vectors, fake_embedding(TEXTS))


def test_float16_answers_keep_their_dtype(serve, connect):
    bc = connect(serve(dtype="float16"))
    vectors = bc.encode(TEXTS)
    assert vectors.dtype == np.float16
    np.testing.assert_array_equal(vectors, fake_embedding(TEXTS, "float16"))


def test_list_output_format(serve, connect):
    bc = connect(serve(), output_fmt="list")
    vectors = bc.encode(TEXTS)
    assert isinstance(vectors, list)
    assert vectors == fake_embedding(TEXTS).tolist()


def test_unknown_output_format_is_refused():
    with pytest.raises(ValueError, match="output_fmt"):
        BertClient(output_fmt="json")


def test_tokenized_input_is_sent_as_token_lists(serve, connect):
    server = serve()
    bc = connect(server)
    tokenized = [text.split() for text in TEXTS]
    np.testing.assert_array_equal(bc.encode(tokenized, is_tokenized=True), fake_embedding(TEXTS))
    sent = server.encoding_requests()[-1][1]
    assert sent == b'[["hello","world"],["good","day","to","you"],["third","text"]]'


def test_payload_is_compact_utf8_json_with_the_number_of_texts(serve, connect):
    server = serve()
    bc = connect(server)
    bc.encode(["héllo wörld", "日本語 です"])
    identity, payload, request_id, num_texts = server.encoding_requests()[-1]
    assert identity == bc.identity
    assert payload == '["héllo wörld","日本語 です"]'.encode()
    assert int(request_id) == bc.status["num_request"]
    assert num_texts == b"2"


def test_show_tokens_returns_the_server_tokens(serve, connect):
    bc = connect(serve(show_tokens_to_client=True))
    vectors, tokens = bc.encode(TEXTS, show_tokens=True)
    np.testing.assert_array_equal(vectors, fake_embedding(TEXTS))
    assert tokens == fake_tokens(TEXTS)
    assert tokens[0] == ["[CLS]", "hello", "world", "[SEP]"]


def test_show_tokens_without_server_support_warns_and_returns_the_embedding(serve, connect):
    bc = connect(serve(show_tokens_to_client=False))
    with pytest.warns(UserWarning, match="show_tokens_to_client"):
        vectors = bc.encode(TEXTS, show_tokens=True)
    np.testing.assert_array_equal(vectors, fake_embedding(TEXTS))


def test_show_tokens_without_server_support_is_silent_without_check_token_info(serve, connect):
    bc = connect(serve(show_tokens_to_client=False), check_token_info=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vectors = bc.encode(TEXTS, show_tokens=True)
    assert isinstance(vectors, np.ndarray)


BAD_INPUTS = [
    ("hello world", False, TypeError, r"texts must be a list of str, got str"),
    (("a", "b"), False, TypeError, r"texts must be a list .* got tuple"),
    ([], False, ValueError, r"texts is an empty list"),
    (["fine", 3], False, TypeError, r"texts\[1\] must be a str, got int: 3"),
    (["fine", None], False, TypeError, r"texts\[1\] must be a str, got NoneType"),
    (["fine", ""], False, ValueError, r"texts\[1\] is empty or only whitespace \(''\)"),
    (["  \t\n"], False, ValueError, r"texts\[0\] is empty or only whitespace"),
    ([["hello", "world"]], False, TypeError, r"texts\[0\] is a list .*is_tokenized=True"),
    (["hello world"], True, TypeError, r"texts\[0\] is a str 'hello world'.*is_tokenized=False"),
    ([["ok"], []], True, ValueError, r"texts\[1\] is an empty list of tokens"),
    ([["ok"], ("a",)], True, TypeError, r"texts\[1\] must be a list of str tokens, got tuple"),
    ([["ok", 7]], True, TypeError, r"texts\[0\]\[1\] must be a str token, got int: 7"),
    ([["ok", ""]], True, ValueError, r"texts\[0\]\[1\] is an empty or whitespace token"),
    ([], True, ValueError, r"texts is an empty list"),
]


def test_bad_input_raises_before_anything_is_sent(serve, connect):
    server = serve()
    bc = connect(server)
    for texts, is_tokenized, error, message in BAD_INPUTS:
        with pytest.raises(error, match=message):
            bc.encode(texts, is_tokenized=is_tokenized)
        with pytest.raises(error, match=message):
            bc.encode(texts, blocking=False, is_tokenized=is_tokenized)
    bc.encode(["a good one"])  # requests arrive in order: nothing was sent before this one
    assert [frames[1] for frames in server.encoding_requests()] == [b'["a good one"]']
    assert bc.status["num_pending_request"] == 0


# ---- handshake and version ----------------------------------------------------------


def test_handshake_survives_lost_config_answers(serve, connect):
    server = serve(drop_first=2)
    bc = connect(server)
    assert bc.server_config["server_version"] == "2.0.0"
    show_config = [frames for frames in server.requests if frames[1] == b"SHOW_CONFIG"]
    request_ids = [int(frames[2]) for frames in show_config]
    assert request_ids == list(range(1, len(request_ids) + 1))  # a new id for every resend
    np.testing.assert_array_equal(bc.encode(TEXTS), fake_embedding(TEXTS))


def test_handshake_with_no_server_times_out_naming_ip_and_ports():
    port, port_out = free_ports(2)
    started = time.monotonic()
    with pytest.raises(BertClientTimeoutError) as caught:
        BertClient(ip="127.0.0.1", port=port, port_out=port_out, timeout=800)
    assert time.monotonic() - started < 3
    assert isinstance(caught.value, TimeoutError)
    message = str(caught.value)
    assert "127.0.0.1" in message and str(port) in message and str(port_out) in message
    assert "not be running" in message and "ports may be wrong" in message


def test_handshake_is_bounded_even_without_timeout(monkeypatch):
    monkeypatch.setattr(client_module, "DEFAULT_COMMAND_TIMEOUT_MS", 700)
    port, port_out = free_ports(2)
    started = time.monotonic()
    with pytest.raises(BertClientTimeoutError, match="700 ms"):
        BertClient(ip="127.0.0.1", port=port, port_out=port_out)
    assert time.monotonic() - started < 3


def test_major_version_mismatch_is_refused(serve, connect):
    with pytest.raises(VersionMismatchError) as caught:
        connect(serve(server_version="1.10.0"))
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert "1.10.0" in message and __version__ in message
    assert "BertClient(check_version=False)" in message


def test_same_major_version_is_accepted(serve, connect):
    bc = connect(serve(server_version="2.7.1"))
    assert bc.server_config["server_version"] == "2.7.1"


def test_check_version_false_talks_to_a_1_10_server(serve, connect):
    bc = connect(serve(server_version="1.10.0"), check_version=False)
    np.testing.assert_array_equal(bc.encode(TEXTS), fake_embedding(TEXTS))


def test_ignore_all_checks_skips_the_handshake(serve, connect):
    server = serve(server_version="1.10.0", max_seq_len=1, show_tokens_to_client=False)
    bc = connect(server, ignore_all_checks=True)
    time.sleep(0.3)  # no handshake, so let the subscription reach the server first
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vectors, tokens = bc.encode(TEXTS, show_tokens=True)
    np.testing.assert_array_equal(vectors, fake_embedding(TEXTS))
    assert tokens == ""
    assert all(frames[1] != b"SHOW_CONFIG" for frames in server.requests)


def test_show_server_config_prints_it(serve, connect, capsys):
    connect(serve(), show_server_config=True)
    printed = capsys.readouterr().out
    assert "server_version = 2.0.0" in printed and "max_seq_len = 25" in printed


# ---- warnings, timeouts and server errors ------------------------------------------


def test_long_texts_warn_once_per_call(serve, connect):
    bc = connect(serve(max_seq_len=3))
    with pytest.warns(UserWarning, match=r"longer than max_seq_len \(3\)") as caught:
        bc.encode(["one two three four", "one two three four five", "short"])
    assert len(caught) == 1
    with pytest.warns(UserWarning, match=r"max_seq_len \(3\)"):
        bc.encode([["a", "b", "c", "d"]], is_tokenized=True)


def test_no_length_warning_when_short_unchecked_or_dynamic(serve, connect):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect(serve(max_seq_len=3)).encode(["one two three"])
        connect(serve(max_seq_len=3), check_length=False).encode(["one two three four"])
        connect(serve(max_seq_len=None)).encode(["one two three four"])


def test_encode_times_out_on_a_server_that_never_answers(serve, connect):
    bc = connect(serve(answer_encodings=False), timeout=300)
    started = time.monotonic()
    with pytest.raises(BertClientTimeoutError, match="no result for request") as caught:
        bc.encode(TEXTS)
    assert 0.25 < time.monotonic() - started < 2
    assert str(bc.port) in str(caught.value) and str(bc.port_out) in str(caught.value)
    assert bc.status["num_pending_request"] == 0  # the abandoned request is forgotten


def test_server_error_is_raised_for_its_request(serve, connect):
    bc = connect(serve())
    with pytest.raises(BertServerError, match=r"texts\[1\] is not welcome here") as caught:
        bc.encode(["fine", "a BOOM here"])
    assert isinstance(caught.value, RuntimeError)
    assert caught.value.request_id == bc.status["num_request"]
    assert caught.value.status == 400
    np.testing.assert_array_equal(bc.encode(TEXTS), fake_embedding(TEXTS))  # still usable


def test_server_error_from_fetch_and_fetch_all(serve, connect):
    bc = connect(serve())
    bc.encode(["BOOM"], blocking=False)
    with pytest.raises(BertServerError):
        list(bc.fetch())
    bc.encode(TEXTS, blocking=False)
    bc.encode(["BOOM"], blocking=False)
    with pytest.raises(BertServerError) as caught:
        bc.fetch_all()
    assert caught.value.request_id == bc.status["num_request"]
    assert bc.fetch_all() is None  # everything was received before raising


# ---- large encodes -----------------------------------------------------------------


def chunked_embedding(texts: list, chunk_size: int) -> np.ndarray:
    """What the fake server answers to texts sent in chunks (its last column counts per request)."""
    spans = range(0, len(texts), chunk_size)
    return np.concatenate([fake_embedding(texts[start : start + chunk_size]) for start in spans])


def test_a_large_encode_goes_in_chunks_and_comes_back_in_order(serve, connect):
    server = serve(reorder=3, show_tokens_to_client=True)  # answers come in reverse order
    bc = connect(server)
    texts = [f"text number {i}" for i in range(9)]
    vectors, tokens = bc.encode(texts, show_tokens=True, chunk_size=3)
    np.testing.assert_array_equal(vectors, chunked_embedding(texts, 3))
    assert tokens == fake_tokens(texts)
    assert [int(request[3]) for request in server.encoding_requests()] == [3, 3, 3]
    assert bc.status["num_pending_request"] == 0


def test_a_chunked_encode_in_list_format_and_with_a_progress_bar(serve, connect, capsys):
    bc = connect(serve(), output_fmt="list")
    texts = [f"sentence {i}" for i in range(10)]
    assert (
        bc.encode(texts, chunk_size=4, show_progress=True) == chunked_embedding(texts, 4).tolist()
    )
    assert "10/10" in capsys.readouterr().err


def test_without_tqdm_the_client_draws_its_own_progress_bar(serve, connect, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # "not installed"
    bc = connect(serve())
    bc.encode([f"sentence {i}" for i in range(5)], chunk_size=2, show_progress=True)
    drawn = capsys.readouterr().err
    assert "encoding 100% |" in drawn and "5/5 texts" in drawn and drawn.endswith("\n")


def test_a_failing_chunk_raises_and_the_client_stays_usable(serve, connect):
    bc = connect(serve())
    texts = ["one", "two", "a BOOM", "four", "five"]
    with pytest.raises(BertServerError, match="not welcome"):
        bc.encode(texts, chunk_size=2)
    assert bc.status["num_pending_request"] == 0
    np.testing.assert_array_equal(bc.encode(TEXTS), fake_embedding(TEXTS))


def test_chunks_are_halved_until_their_payload_fits():
    from bert_serving.client.chunks import chunk_spans

    texts = ["x" * 10] * 8
    spans = list(
        chunk_spans(
            len(texts), 8, lambda span: b"x" * 10 * (span[1] - span[0]), max_payload_bytes=25
        )
    )
    assert [span for span, _ in spans] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert [span for span, _ in chunk_spans(3, 2, lambda span: b"", None)] == [(0, 2), (2, 3)]
    with pytest.raises(ValueError, match="chunk_size"):
        list(chunk_spans(3, 0, lambda span: b"", None))


def test_token_embeddings_of_chunks_are_padded_to_the_longest():
    from bert_serving.client.chunks import join_rows

    joined = join_rows([np.ones((1, 2, 3)), np.ones((2, 4, 3))])
    assert joined.shape == (3, 4, 3) and joined[0, 2:].sum() == 0


# ---- non-blocking, fetch, encode_async --------------------------------------------


def test_fetch_all_sorts_out_of_order_answers(serve, connect):
    bc = connect(serve(reorder=3))
    batches = [["first text"], ["second", "text"], ["third one", "x", "y"]]
    assert all(bc.encode(batch, blocking=False) is None for batch in batches)
    assert bc.status["num_pending_request"] == 3
    results = bc.fetch_all(sort=True)
    for result, batch in zip(results, batches):
        np.testing.assert_array_equal(result, fake_embedding(batch))
    assert bc.fetch_all() is None

    for batch in batches:
        bc.encode(batch, blocking=False)
    arrived = bc.fetch_all(sort=False)
    assert [len(result) for result in arrived] == [3, 2, 1]  # the server reversed them

    for batch in batches:
        bc.encode(batch, blocking=False)
    joined = bc.fetch_all(concat=True)
    expected = np.concatenate([fake_embedding(batch) for batch in batches])
    np.testing.assert_array_equal(joined, expected)


def test_fetch_all_concat_with_list_output(serve, connect):
    bc = connect(serve(reorder=2), output_fmt="list")
    bc.encode(["a b"], blocking=False)
    bc.encode(["c", "d"], blocking=False)
    expected = fake_embedding(["a b"]).tolist() + fake_embedding(["c", "d"]).tolist()
    assert bc.fetch_all(concat=True) == expected


def test_fetch_yields_responses_in_arrival_order(serve, connect):
    bc = connect(serve(reorder=2, show_tokens_to_client=True))
    bc.encode(["first"], blocking=False)
    bc.encode(["second", "pair"], blocking=False)
    responses = list(bc.fetch())
    assert all(isinstance(response, Response) for response in responses)
    first_id = bc.status["num_request"] - 1
    assert [response.id for response in responses] == [first_id + 1, first_id]
    assert responses[1].tokens == [["[CLS]", "first", "[SEP]"]]
    np.testing.assert_array_equal(responses[0].embedding, fake_embedding(["second", "pair"]))
    assert list(bc.fetch()) == []


def test_blocking_encode_keeps_other_answers_for_fetch(serve, connect):
    bc = connect(serve(reorder=2))
    bc.encode(["early"], blocking=False)
    np.testing.assert_array_equal(bc.encode(["blocking"]), fake_embedding(["blocking"]))
    (early,) = bc.fetch_all()
    np.testing.assert_array_equal(early, fake_embedding(["early"]))


def test_encode_async_receives_every_batch(serve, connect):
    bc = connect(serve())
    batches = [[f"batch {b} text {i}" for i in range(b + 1)] for b in range(6)]
    received = list(bc.encode_async(iter(batches), delay=0))
    assert len(received) == len(batches)
    for response, batch in zip(sorted(received), batches):
        np.testing.assert_array_equal(response.embedding, fake_embedding(batch))


def test_encode_async_waits_for_a_slow_generator_and_honours_max_num_batch(serve, connect):
    bc = connect(serve())

    def slow_batches():
        for number in range(100):
            time.sleep(0.05)
            yield [f"slow batch {number}"]

    received = list(bc.encode_async(slow_batches(), max_num_batch=4, delay=0.01))
    assert len(received) == 4
    assert bc.status["num_pending_request"] == 0


def test_encode_async_reports_a_bad_batch_after_the_good_ones(serve, connect):
    bc = connect(serve())
    results = bc.encode_async(iter([["good"], [""], ["never sent"]]), delay=0)
    first = next(results)
    np.testing.assert_array_equal(first.embedding, fake_embedding(["good"]))
    with pytest.raises(ValueError, match=r"texts\[0\] is empty"):
        next(results)


def test_listen_in_clones_receives_every_result(serve, connect):
    server = serve()
    bc = connect(server)
    clones = [connect(server, identity=bc.identity) for _ in range(2)]
    heard = {}

    def listen(index: int, clone: BertClient) -> None:
        stream = clone.listen()
        heard[index] = [next(stream), next(stream)]
        try:
            next(stream)
        except BertServerError as error:
            heard[f"error {index}"] = error

    threads = [threading.Thread(target=listen, args=item) for item in enumerate(clones)]
    for thread in threads:
        thread.start()
    np.testing.assert_array_equal(bc.encode(["one"]), fake_embedding(["one"]))
    np.testing.assert_array_equal(bc.encode(["two", "three"]), fake_embedding(["two", "three"]))
    with pytest.raises(BertServerError):
        bc.encode(["BOOM"])
    for thread in threads:
        thread.join(10)
    for index in range(2):
        np.testing.assert_array_equal(heard[index][0], fake_embedding(["one"]))
        np.testing.assert_array_equal(heard[index][1], fake_embedding(["two", "three"]))
        assert isinstance(heard[f"error {index}"], BertServerError)


def test_listen_ignores_identities_that_only_share_its_prefix(serve, connect):
    server = serve()
    short = connect(server, identity="client", timeout=300)
    longer = connect(server, identity="client-with-longer-name")
    longer.encode(TEXTS)
    with pytest.raises(BertClientTimeoutError, match="nothing published"):
        next(short.listen())


# ---- properties and lifetime ----------------------------------------------------------


def test_server_config_status_and_client_status(serve, connect):
    server = serve(max_seq_len=40, show_tokens_to_client=True)
    bc = connect(server, identity="my-id")
    assert bc.identity == b"my-id"
    config = bc.server_config
    assert config["max_seq_len"] == 40 and config["show_tokens_to_client"] is True
    assert bc.server_status["statistic"]["num_total_request"] >= 2
    bc.encode(TEXTS, blocking=False)
    status = bc.status
    assert status == {
        "identity": "my-id",
        "num_request": status["num_request"],
        "num_pending_request": 1,
        "pending_request": [status["num_request"]],
        "output_fmt": "ndarray",
        "port": server.port,
        "port_out": server.port_out,
        "server_ip": "127.0.0.1",
        "client_version": __version__,
        "timeout": 5000,
    }
    assert status["num_request"] >= 3


def test_default_identity_is_a_uuid4(serve, connect):
    identity = connect(serve()).identity
    assert isinstance(identity, bytes) and len(identity) == 36 and identity[14:15] == b"4"


def test_close_is_idempotent_and_context_manager_closes(serve):
    server = serve()
    with BertClient(ip="127.0.0.1", port=server.port, port_out=server.port_out) as bc:
        np.testing.assert_array_equal(bc.encode(TEXTS), fake_embedding(TEXTS))
    bc.close()
    bc.close()
    with pytest.raises(RuntimeError, match="closed"):
        bc.encode(TEXTS)


# ---- ConcurrentBertClient ---------------------------------------------------------------


@pytest.fixture
def pool(serve, stack):
    """A ConcurrentBertClient on a fresh server: `pool(server_options..., pool_options...)`."""

    def make(max_concurrency: int = 4, timeout: int = 5000, **server_options):
        server = serve(**server_options)
        concurrent_client = ConcurrentBertClient(
            max_concurrency,
            ip="127.0.0.1",
            port=server.port,
            port_out=server.port_out,
            timeout=timeout,
        )
        return stack.enter_context(concurrent_client)

    return make


def test_concurrent_client_shared_by_eight_threads(pool):
    shared = pool(max_concurrency=3)
    outcomes = {}

    def work(worker: int) -> None:
        try:
            for round_number in range(5):
                texts = [f"worker {worker} round {round_number} #{i}" for i in range(worker + 1)]
                np.testing.assert_array_equal(shared.encode(texts), fake_embedding(texts))
            outcomes[worker] = "ok"
        except Exception as error:  # reported by the assertion below
            outcomes[worker] = error

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert outcomes == {worker: "ok" for worker in range(8)}
    assert len(shared.status) == 3


def test_concurrent_client_waits_for_a_free_client_within_the_timeout(pool):
    # the fake server answers one request at a time, each after 0.25 s: the timeout covers one
    # answer with room for a loaded machine (at 300 ms, 50 ms of scheduling delay failed it
    # once in CI) and gives up 0.2 s before encode_async below frees the client (>= 0.75 s)
    shared = pool(max_concurrency=1, timeout=500, delay=0.25)
    busy = threading.Thread(target=shared.encode, args=(TEXTS,))
    busy.start()
    time.sleep(0.05)
    shared.encode(["waits for the busy one"])  # the pool's only client is free after ~0.25 s
    busy.join()

    slow_results = shared.encode_async(iter([["x"]] * 3), delay=0.2)
    holder = threading.Thread(target=lambda: list(slow_results))
    holder.start()
    time.sleep(0.05)
    with pytest.raises(BertClientTimeoutError, match="no free client"):
        shared.server_status  # noqa: B018 -- the property asks the server
    holder.join()


def test_concurrent_client_methods(pool):
    shared = pool(max_concurrency=2)
    assert shared.server_config["server_version"] == "2.0.0"
    assert "statistic" in shared.server_status
    assert shared.fetch_all() is None
    assert list(shared.fetch()) == []

    shared.encode(["a"], blocking=False)
    shared.encode(["b", "c"], blocking=False)
    expected = np.concatenate([fake_embedding(["a"]), fake_embedding(["b", "c"])])
    np.testing.assert_array_equal(shared.fetch_all(concat=True), expected)

    shared.encode(["d"], blocking=False)
    np.testing.assert_array_equal(shared.encode(["e"]), fake_embedding(["e"]))
    (fetched,) = shared.fetch()
    np.testing.assert_array_equal(fetched.embedding, fake_embedding(["d"]))

    batches = [["async one"], ["async", "two"], ["async three"]]
    received = sorted(shared.encode_async(iter(batches), delay=0))
    assert [len(response.embedding) for response in received] == [1, 2, 1]
    assert all(status["num_pending_request"] == 0 for status in shared.status)


def test_concurrent_client_refuses_a_shared_identity_and_closes_twice(pool):
    with pytest.raises(ValueError, match="identity"):
        ConcurrentBertClient(2, identity="same")
    shared = pool(max_concurrency=2)
    shared.close()
    shared.close()
    with pytest.raises(RuntimeError, match="closed"):
        shared.encode(TEXTS)


def test_lone_surrogates_are_refused_before_sending():
    from bert_serving.client.checks import check_texts

    with pytest.raises(ValueError, match=r"texts\[1\] holds a lone surrogate"):
        check_texts(["fine", "broken \ud800"], is_tokenized=False)
    with pytest.raises(ValueError, match=r"texts\[0\]\[1\] holds a lone surrogate"):
        check_texts([["ok", "\udfff"]], is_tokenized=True)


PLAIN = st.characters(codec="utf-8", exclude_characters='"\\')  # no escape but controls


@settings(max_examples=2000, deadline=None)
@given(
    texts=st.one_of(
        st.lists(st.text(), max_size=5),
        st.lists(st.text(PLAIN, min_size=1), max_size=5),
        st.lists(st.lists(st.text(), max_size=3), max_size=3),
    )
)
def test_the_payload_is_json_dumps_byte_for_byte(texts):
    """Plain strings are joined from their UTF-8 without json.dumps: the bytes on the wire
    must be the very ones json.dumps makes, escapes and all (1.10's server reads them)."""
    from bert_serving.client.protocol import texts_payload

    expected = json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert texts_payload(texts) == expected


@pytest.mark.parametrize("control", ["", "\n", "\x1f"])
def test_a_large_payload_is_json_dumps_byte_for_byte_too(control):
    """Above 64 KB the control characters are looked for by numpy, not the expression."""
    from bert_serving.client.protocol import SMALL_PAYLOAD_BYTES, texts_payload

    texts = ["x" * SMALL_PAYLOAD_BYTES, "late " + control + " character"]
    expected = json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert texts_payload(texts) == expected


def test_a_lone_surrogate_fails_the_payload_as_json_dumps_does():
    from bert_serving.client.protocol import texts_payload

    with pytest.raises(UnicodeEncodeError):
        texts_payload(["fine", "broken \ud800"])
