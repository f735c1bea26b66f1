"""AsyncBertClient: many concurrent awaits on one client, each with its own answer; the
checks, errors and timeouts of BertClient; against the fake server and a real one."""

from __future__ import annotations

import asyncio
import itertools
import time

import numpy as np
import pytest

from bert_serving.client import (
    AsyncBertClient,
    AsyncBertClientTimeoutError,
    BertClient,
    BertClientTimeoutError,
    BertServerError,
    HandshakeError,
    VersionMismatchError,
)
from bert_serving.client.normalization import unit_length
from tests.fake_server import FakeServer, fake_embedding, fake_tokens
from tests.servers import free_ports, running_server

WORDS = ["hello", "world", "good", "day", "to", "you", "the", "quick", "brown", "fox"]
NUM_TASKS = 200


def task_texts(index: int) -> list[str]:
    """A different small list of texts for each task."""
    size = 1 + index % 4
    return [
        f"{WORDS[(index + k) % len(WORDS)]} {WORDS[(index * 7 + k) % len(WORDS)]}"
        for k in range(size)
    ]


def connect(server: FakeServer, **options) -> AsyncBertClient:
    return AsyncBertClient(port=server.port, port_out=server.port_out, **options)


async def encode_all(client: AsyncBertClient, lists: list[list[str]]) -> list:
    return await asyncio.gather(*(client.encode(texts) for texts in lists))


def test_concurrent_awaits_get_their_own_answers_in_any_order():
    lists = [task_texts(index) for index in range(NUM_TASKS)]
    with FakeServer(reorder=8) as server:

        async def run() -> list:
            async with connect(server) as client:
                answers = await encode_all(client, lists)
                assert client.status["num_pending_request"] == 0
                return answers

        answers = asyncio.run(run())
    assert len(answers) == NUM_TASKS
    for texts, answer in zip(lists, answers):
        np.testing.assert_array_equal(answer, fake_embedding(texts))


def test_an_answer_arriving_after_its_timeout_is_dropped():
    with FakeServer(delay=0.4) as server:

        async def run():
            async with connect(server, timeout=150) as client:
                with pytest.raises(AsyncBertClientTimeoutError) as caught:
                    await client.encode(["too slow"])
                assert client.status["num_pending_request"] == 0
                client.timeout = 5000
                return caught.value, await client.encode(["second one"])

        error, answer = asyncio.run(run())
    assert isinstance(error, asyncio.TimeoutError)
    assert isinstance(error, BertClientTimeoutError)
    assert "within 150 ms" in str(error) and str(server.port) in str(error)
    np.testing.assert_array_equal(answer, fake_embedding(["second one"]))


def test_no_server_times_out_in_the_handshake():
    port, port_out = free_ports(2)

    async def run():
        async with AsyncBertClient(port=port, port_out=port_out, timeout=300):
            pass

    started = time.monotonic()
    with pytest.raises(AsyncBertClientTimeoutError, match="no answer to SHOW_CONFIG"):
        asyncio.run(run())
    assert time.monotonic() - started < 5


def test_unanswered_encodings_time_out_as_asyncio_timeouts():
    with FakeServer(answer_encodings=False) as server:

        async def run():
            async with connect(server, timeout=200) as client:
                await client.encode(["never answered"])

        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(run())


def test_the_handshake_resends_a_lost_config_request_and_checks_the_version():
    with FakeServer(drop_first=2) as server:

        async def run() -> dict:
            async with connect(server) as client:
                return await client.server_status()

        assert "statistic" in asyncio.run(run())
    with FakeServer(server_version="1.10.0") as old:

        async def refused():
            async with connect(old):
                pass

        with pytest.raises(VersionMismatchError):
            asyncio.run(refused())

        async def unchecked():
            async with connect(old, check_version=False) as client:
                return await client.encode(["hi"])

        np.testing.assert_array_equal(asyncio.run(unchecked()), fake_embedding(["hi"]))


def test_a_refused_request_raises_and_the_others_are_answered():
    with FakeServer() as server:

        async def run():
            async with connect(server) as client:
                return await asyncio.gather(
                    client.encode(["fine"]), client.encode(["BOOM"]), return_exceptions=True
                )

        fine, refused = asyncio.run(run())
    np.testing.assert_array_equal(fine, fake_embedding(["fine"]))
    assert isinstance(refused, BertServerError)
    assert "not welcome" in str(refused)


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        ("a string", TypeError, "texts must be a list"),
        ([], ValueError, "empty list"),
        (["ok", ""], ValueError, r"texts\[1\] is empty"),
        ([["a"]], TypeError, "is_tokenized=True"),
    ],
)
def test_texts_are_checked_before_anything_is_sent(texts, error, message):
    with FakeServer() as server:

        async def run():
            async with connect(server) as client:
                await client.encode(texts)

        with pytest.raises(error, match=message):
            asyncio.run(run())
        assert server.encoding_requests() == []


def test_tokens_list_output_normalize_and_chunks_as_the_blocking_client():
    texts = [" ".join(words) for words in itertools.combinations(WORDS[:5], 2)]  # 10 texts
    with FakeServer(show_tokens_to_client=True) as server:

        async def run():
            async with connect(server) as client:
                with_tokens = await client.encode(texts[:2], show_tokens=True)
                chunked = await client.encode(texts, chunk_size=3)
            async with connect(server, output_fmt="list", normalize=True) as client:
                listed = await client.encode(texts[:2])
            return with_tokens, chunked, listed

        (vectors, tokens), chunked, listed = asyncio.run(run())
        with BertClient(port=server.port, port_out=server.port_out) as blocking:
            expected_chunks = blocking.encode(texts, chunk_size=3)
    np.testing.assert_array_equal(vectors, fake_embedding(texts[:2]))
    assert tokens == fake_tokens(texts[:2])
    np.testing.assert_array_equal(chunked, expected_chunks)
    assert isinstance(listed, list)
    np.testing.assert_allclose(listed, unit_length(fake_embedding(texts[:2])), rtol=1e-6)


def test_show_tokens_warns_when_the_server_sends_none():
    with FakeServer() as server:

        async def run():
            async with connect(server) as client:
                return await client.encode(["hi"], show_tokens=True)

        with pytest.warns(UserWarning, match="show_tokens_to_client"):
            vectors = asyncio.run(run())
    np.testing.assert_array_equal(vectors, fake_embedding(["hi"]))


def test_closing_fails_pending_encodes_and_later_calls():
    with FakeServer(answer_encodings=False) as server:

        async def run():
            client = connect(server)
            pending = asyncio.ensure_future(client.encode(["waits"]))
            while not client.status["num_pending_request"]:
                await asyncio.sleep(0.01)
            client.close()
            with pytest.raises(RuntimeError, match="closed"):
                await pending
            with pytest.raises(RuntimeError, match="closed"):
                await client.encode(["after"])

        asyncio.run(run())


@pytest.mark.slow
def test_200_concurrent_encodes_match_the_blocking_client(google_model_dir):
    lists = [task_texts(index) for index in range(NUM_TASKS)]
    with running_server(google_model_dir, "-max_batch_size", "16") as server:
        ports = {"port": server.args.port, "port_out": server.args.port_out}

        async def run() -> list:
            async with AsyncBertClient(timeout=120_000, **ports) as client:
                return await encode_all(client, lists)

        answers = asyncio.run(run())
        with BertClient(**ports) as blocking:
            expected = [blocking.encode(texts) for texts in lists]
    for answer, wanted in zip(answers, expected):
        assert answer.shape == wanted.shape
        np.testing.assert_allclose(answer, wanted, atol=1e-5)


@pytest.mark.slow
def test_curve_encryption(google_model_dir, tmp_path):
    import zmq.auth

    public, secret = zmq.auth.create_certificates(str(tmp_path), "server")
    with running_server(google_model_dir, "-curve_secret_key", secret) as server:
        ports = {"port": server.args.port, "port_out": server.args.port_out, "timeout": 3000}

        async def encode(**curve) -> np.ndarray:
            async with AsyncBertClient(**ports, **curve) as client:
                return await client.encode(["encrypted"])

        assert asyncio.run(encode(curve_server_key=public)).shape == (1, 32)
        with pytest.raises(HandshakeError, match="requires CURVE"):
            asyncio.run(encode())  # plain TCP: the server refuses the handshake, said at once
