"""The whole pipeline: real server processes, real ZeroMQ sockets, this project's client."""

# (test_timeouts.py imports the same helpers from tests.servers)

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import zmq

from bert_serving.client import BertClient, BertServerError
from bert_serving.server import BertServer, __version__
from bert_serving.server.args import ArgumentError
from bert_serving.server.model import ModelError, inspect_model
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder
from bert_serving.server.server import ServerStartError
from tests.servers import (
    free_ports,
    ports_are_free,
    run_terminate,
    running_server,
    server_args,
    start_command,
)

WORDS = [
    "hello",
    "world",
    "this",
    "is",
    "it",
    "good",
    "day",
    "first",
    "do",
    "then",
    "right",
    "better",
]
SERVER_OPTIONS = (
    "-num_worker",
    "2",
    "-max_batch_size",
    "4",
    "-priority_batch_size",
    "2",
    "-show_tokens_to_client",
    "-max_seq_len",
    "16",
)


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 12)))) for _ in range(count)]


@pytest.fixture(scope="module")
def server(google_model_dir):
    with running_server(google_model_dir, *SERVER_OPTIONS) as running:
        yield running


@pytest.fixture(scope="module")
def reference(google_model_dir):
    """The same model in this process: what every answer must equal."""
    encoder = SentenceEncoder(
        inspect_model(google_model_dir), EncoderSettings(max_seq_len=16, precision="float32")
    )
    return lambda texts, **kw: encoder.encode(texts, **kw)


def client_for(server, **kwargs) -> BertClient:
    return BertClient(port=server.args.port, port_out=server.args.port_out, timeout=60000, **kwargs)


@pytest.mark.slow
def test_encode_equals_the_in_process_encoder(server, reference):
    texts = sentences(10)
    with client_for(server) as bc:
        got = bc.encode(texts)
    np.testing.assert_allclose(got, reference(texts).embeddings, atol=1e-5)


@pytest.mark.slow
def test_request_larger_than_max_batch_size_comes_back_whole_and_in_order(server, reference):
    texts = sentences(103, seed=1)
    with client_for(server) as bc:
        got = bc.encode(texts)
    assert got.shape == (103, 32)
    np.testing.assert_allclose(got, reference(texts).embeddings, atol=1e-5)


@pytest.mark.slow
def test_concurrent_clients_each_get_their_own_rows(server, reference):
    results, errors = {}, []

    def work(index: int) -> None:
        try:
            texts = sentences(7 + index, seed=100 + index)
            with client_for(server) as bc:
                for _ in range(3):
                    results[index] = (texts, bc.encode(texts))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert len(results) == 6
    for texts, got in results.values():
        np.testing.assert_allclose(got, reference(texts).embeddings, atol=1e-5)


@pytest.mark.slow
def test_tokens_are_shown_when_asked(server):
    with client_for(server) as bc:
        vectors, tokens = bc.encode(["hello world!", "thisis it"], show_tokens=True)
        assert tokens == [
            ["[CLS]", "hello", "world", "!", "[SEP]"],
            ["[CLS]", "this", "##is", "it", "[SEP]"],
        ]
        _, tokens = bc.encode(
            [["hello", "world!"], ["thisis", "it"]], is_tokenized=True, show_tokens=True
        )
        assert tokens == [["[CLS]", "hello", "[UNK]", "[SEP]"], ["[CLS]", "[UNK]", "it", "[SEP]"]]
        assert vectors.shape == (2, 32)


@pytest.mark.slow
def test_tokens_of_a_split_request_stay_in_order(server):
    texts = sentences(9, seed=5)
    with client_for(server) as bc:
        _, tokens = bc.encode(texts, show_tokens=True)
    assert [t[1:-1] for t in tokens] == [text.split()[:14] for text in texts]


@pytest.mark.slow
def test_sentence_pairs(server, reference):
    texts = ["hello world ||| good day", "first do it ||| then do it right"]
    with client_for(server) as bc:
        got, tokens = bc.encode(texts, show_tokens=True)
    assert tokens[0] == ["[CLS]", "hello", "world", "[SEP]", "good", "day", "[SEP]"]
    np.testing.assert_allclose(got, reference(texts).embeddings, atol=1e-5)


@pytest.mark.slow
def test_non_blocking_encode_and_fetch_all(server, reference):
    batches = [sentences(n, seed=n) for n in (3, 9, 1)]
    with client_for(server) as bc:
        for batch in batches:
            assert bc.encode(batch, blocking=False) is None
        merged = bc.fetch_all(sort=True, concat=True)
    want = np.concatenate([reference(b).embeddings for b in batches])
    np.testing.assert_allclose(merged, want, atol=1e-5)


@pytest.mark.slow
def test_encode_async(server):
    batches = [sentences(5, seed=i) for i in range(6)]
    with client_for(server) as bc:
        received = list(bc.encode_async(iter(batches)))
    assert sorted(r.embedding.shape[0] for r in received) == [5] * 6


@pytest.mark.slow
def test_multicast_clones_receive_the_same_result(server):
    with client_for(server) as bc:
        received: list[np.ndarray] = []

        def clone() -> None:
            with client_for(server, identity=bc.identity, ignore_all_checks=True) as listener:
                received.append(next(iter(listener.listen())))

        threads = [threading.Thread(target=clone) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # let both clones subscribe
        sent = bc.encode(["hello world", "good day"])
        for thread in threads:
            thread.join(30)
    assert len(received) == 2
    for vectors in received:
        np.testing.assert_array_equal(vectors, sent)


@pytest.mark.slow
def test_server_config_and_status(server):
    with client_for(server) as bc:
        config = bc.server_config
        status = bc.server_status
    assert config["server_version"] == __version__
    assert config["max_seq_len"] == 16
    assert config["show_tokens_to_client"] is True
    assert config["pooling_strategy"] == "REDUCE_MEAN"
    for field in (
        "model_dir",
        "num_worker",
        "max_batch_size",
        "port",
        "port_out",
        "pooling_layer",
        "tensorflow_version",
        "python_version",
        "pyzmq_version",
        "zmq_version",
        "server_start_time",
        "server_current_time",
        "num_process",
        "device_map",
    ):
        assert field in config, field
    assert config["device_map"] == [-1, -1]
    statistic = status["statistic"]
    assert statistic["num_data_request"] >= 1
    assert statistic["num_sys_request"] >= 2
    assert statistic["num_active_client"] >= 1
    assert statistic["latency_ms"]["count"] >= 1 and statistic["latency_ms"]["p95"] > 0
    assert statistic["recent_request_per_second"] > 0


@pytest.mark.slow
def test_priority_request_overtakes_a_large_job(server):
    """The small request does not wait for the big job: it is answered in well under half
    the big job's time (relative, so that a faster server does not make it fail)."""
    with client_for(server) as big, client_for(server) as small:
        started = time.monotonic()
        big.encode(sentences(6000, seed=9), blocking=False)
        time.sleep(0.2)
        small.encode(["good day"])
        small_done = time.monotonic() - started
        big.fetch_all()
        big_done = time.monotonic() - started
    assert small_done < big_done / 2, (small_done, big_done)


def raw_request(server, frames: list[bytes], identity: bytes) -> list[bytes]:
    """Send frames on a bare PUSH socket and wait for what is published to identity."""
    context = zmq.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, identity)
    sub.setsockopt(zmq.RCVTIMEO, 20000)
    sub.connect(f"tcp://127.0.0.1:{server.args.port_out}")
    push = context.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{server.args.port}")
    try:
        push.send_multipart(frames)
        return sub.recv_multipart()
    finally:
        push.close(0)
        sub.close(0)


@pytest.mark.parametrize(
    "payload,count,message",
    [
        (b'["hello", ""]', b"2", "texts[1] must be a non-empty string"),
        (b"[1, 2]", b"2", "texts[0] must be a non-empty string"),
        (b"{}", b"0", "non-empty list"),
        (b"\xff\xfe", b"1", "not UTF-8"),
        (b"not json", b"1", "nor JSON"),
        (b'["a", "b"]', b"5", "the count frame says 5 texts, the payload has 2"),
        (b'["hello \\ud800 world"]', b"1", "texts[0] holds a lone surrogate"),
        (b'[["ok", "\\udfff"]]', b"1", "texts[0][1] holds a lone surrogate"),
    ],
)
@pytest.mark.slow
def test_bad_input_gets_an_error_and_the_server_goes_on(server, payload, count, message):
    identity = b"raw-client-" + count + payload[:4].hex().encode()
    frames = raw_request(server, [identity, payload, b"7", count], identity)
    header = json.loads(frames[1])
    assert message in header["error"]
    assert frames[-1] == b"7"
    with client_for(server) as bc:
        assert bc.encode(["still serving"]).shape == (1, 32)


@pytest.mark.slow
def test_client_raises_the_server_error(server):
    """A request that slipped past the client's own checks (sent here through its private
    sender) is refused by the server, and the client raises the server's message."""
    with client_for(server) as bc:
        bc._send(b"[[]]", 1, expect_encoding=True)
        with pytest.raises(BertServerError, match="texts\\[0\\] must be a non-empty list"):
            bc.fetch_all()
        assert bc.encode(["after the error"]).shape == (1, 32)


@pytest.fixture(scope="module")
def dynamic_none_server(google_model_dir):
    with running_server(
        google_model_dir,
        "-pooling_strategy",
        "NONE",
        "-max_seq_len",
        "NONE",
        "-max_batch_size",
        "2",
    ) as running:
        yield running


@pytest.mark.slow
def test_none_pooling_with_dynamic_length(dynamic_none_server):
    texts = ["hello", "hello world this is it good day", "day"]
    with client_for(dynamic_none_server) as bc:
        vectors = bc.encode(texts)
        assert bc.server_config["max_seq_len"] is None
    assert vectors.shape == (3, 9, 32)  # parts of different lengths padded to the longest
    assert not vectors[0, 3:].any() and vectors[0, :3].any()


@pytest.mark.slow
def test_fixed_embed_length(google_model_dir):
    with running_server(
        google_model_dir, "-pooling_strategy", "NONE", "-max_seq_len", "NONE", "-fixed_embed_length"
    ) as running, client_for(running) as bc:
        assert bc.encode(["hello world"]).shape == (1, 64, 32)


@pytest.mark.slow
def test_terminate_cli_stops_everything_and_frees_the_ports(google_model_dir):
    with running_server(google_model_dir) as running:
        children = [child.process for child in running.supervisor.children]
        result = run_terminate(running.args.port)
        assert result.returncode == 0, result.stderr
        running.join(30)
        assert not running.is_alive()
        assert not any(child.is_alive() for child in children)
        assert ports_are_free(running.args.port, running.args.port_out)


@pytest.mark.slow
def test_shutdown_static_method(google_model_dir):
    with running_server(google_model_dir) as running:
        args = type(
            "ShutdownArgs", (), {"ip": "127.0.0.1", "port": running.args.port, "timeout": 20000}
        )()
        assert BertServer.shutdown(args)
        running.join(30)
        assert not running.is_alive()


def test_refusals_happen_before_anything_starts(google_model_dir, tmp_path):
    with pytest.raises(ArgumentError, match="pooling_layer"):
        BertServer(server_args(google_model_dir, "-pooling_layer", "-7"))
    with pytest.raises(ArgumentError, match="missing: no such directory"):
        BertServer(server_args(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="holds neither a TensorFlow checkpoint"):
        BertServer(server_args(tmp_path / "empty"))
    taken_in, _taken_out = free_ports(2)
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", taken_in))
        holder.listen()
        args = server_args(google_model_dir)
        args.port = taken_in
        with pytest.raises(ServerStartError, match=f"cannot bind -port {taken_in}"):
            BertServer(args)


def test_client_error_class_is_exported():
    assert issubclass(BertServerError, RuntimeError)


@pytest.mark.slow
def test_start_and_terminate_command_lines(google_model_dir):
    port, port_out = free_ports(2)
    start = subprocess.Popen(
        start_command(google_model_dir, port, port_out),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with BertClient(port=port, port_out=port_out, timeout=120000) as bc:
            assert bc.encode(["hello world"]).shape == (1, 32)
        stop = run_terminate(port)
        assert stop.returncode == 0, stop.stderr
        assert start.wait(60) == 0
    finally:
        start.kill()
    log = start.stderr.read()
    assert "pooling_strategy = REDUCE_MEAN" in log
    assert "all 1 workers ready" in log
    assert ports_are_free(port, port_out)
