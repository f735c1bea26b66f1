"""Crash recovery: kill -9 a worker, then the sink, in the middle of a stream of requests;
every request still returns once, complete and correct. A poison request gets an error."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time

import numpy as np
import pytest

from bert_serving.client import BertClient, BertServerError
from bert_serving.server.model import EncoderSettings, SentenceEncoder, inspect_model
from tests.servers import running_server

pytestmark = pytest.mark.slow  # every test here starts a server (or uses one)

WORDS = ["hello", "world", "this", "is", "it", "good", "day", "first", "do", "then", "right"]


def texts_for(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(WORDS, size=int(rng.integers(1, 10))))
        for _ in range(int(rng.integers(1, 25)))
    ]


def client_for(server, **kwargs) -> BertClient:
    return BertClient(
        port=server.args.port, port_out=server.args.port_out, timeout=120000, **kwargs
    )


def wait_for(condition, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def test_killing_a_worker_and_the_sink_loses_no_request(google_model_dir):
    reference = SentenceEncoder(
        inspect_model(google_model_dir), EncoderSettings(precision="float32")
    )
    answers: dict[tuple[int, int], np.ndarray] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def stream(client_index: int, server) -> None:
        try:
            with client_for(server) as bc:
                for number in range(1000):
                    if stop.is_set():
                        return
                    answers[(client_index, number)] = bc.encode(
                        texts_for(client_index * 1000 + number)
                    )
        except BaseException as err:
            errors.append(err)

    with running_server(
        google_model_dir, "-num_worker", "2", "-max_batch_size", "4", "-prefetch_size", "3"
    ) as server:
        threads = [threading.Thread(target=stream, args=(i, server)) for i in range(4)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(answers) > 20, 60, "the first answers")

        victim = server.supervisor.workers[0]
        os.kill(victim.process.pid, signal.SIGKILL)
        killed, before = time.monotonic(), len(answers)
        wait_for(lambda: len(answers) > before + 10, 60, "answers after the worker kill")
        replaced = wait_for(
            lambda: len(server.supervisor.workers) == 2 and not server.supervisor.loading,
            120,
            "a replacement worker",
        )
        print(f"\nworker killed: replacement loaded {time.monotonic() - killed:.1f} s later")

        sink = next(c for c in server.supervisor.children if c.role == "sink")
        os.kill(sink.process.pid, signal.SIGKILL)
        killed, before = time.monotonic(), len(answers)
        recovery = wait_for(lambda: len(answers) > before + 5, 60, "answers after the sink kill")
        print(f"sink killed: answers flow again after {recovery:.1f} s")
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(120)
        assert server.supervisor.restarts == 2
        assert replaced >= 0

    assert not errors, errors
    for (client_index, number), vectors in answers.items():
        want = reference.encode(texts_for(client_index * 1000 + number)).embeddings
        np.testing.assert_allclose(vectors, want, atol=1e-5)
    print(f"{len(answers)} requests answered, all correct, none lost")


SITECUSTOMIZE = textwrap.dedent('''
    """Test-only fault injection: a worker dies when it meets the poison text."""
    import os

    POISON = os.environ.get("BERT_SERVING_TEST_POISON")
    if POISON:
        import bert_serving.server.worker as worker

        encode_batch = worker._encode_batch

        def crash_on_poison(encoder, batch, with_tokens, logger):
            if any(POISON in text for task in batch for text in task.texts):
                os._exit(3)
            return encode_batch(encoder, batch, with_tokens, logger)

        worker._encode_batch = crash_on_poison
''')


def test_a_poison_request_gets_an_error_and_the_server_goes_on(
    google_model_dir, tmp_path, monkeypatch
):
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("BERT_SERVING_TEST_POISON", "poison pill")
    with running_server(google_model_dir, "-num_worker", "1") as server:
        with client_for(server) as bc:
            bc.encode(["before"], blocking=False)
            with pytest.raises(BertServerError, match="crashed a worker 2 times"):
                bc.encode(["fine", "the poison pill"])
            bc.fetch_all()
            assert bc.encode(["after the poison"]).shape == (1, 32)
        assert server.supervisor.restarts == 2
