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
from bert_serving.server.ventilator import Ventilator
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
    HANG = os.environ.get("BERT_SERVING_TEST_HANG")
    if POISON or HANG:
        import threading

        import bert_serving.server.worker.compute as compute

        encode_batch = compute.encode_batch

        def misbehave(encoder, batch, with_tokens, logger):
            texts = [text for task in batch for text in task.texts]
            if POISON and any(POISON in text for text in texts):
                os._exit(3)
            if HANG and any(HANG in text for text in texts):
                threading.Event().wait()  # stuck, as in a driver call: heartbeats go on
            return encode_batch(encoder, batch, with_tokens, logger)

        compute.encode_batch = misbehave
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
            with pytest.raises(BertServerError, match="crashed or hung a worker 2 times"):
                bc.encode(["fine", "the poison pill"])
            bc.fetch_all()
            assert bc.encode(["after the poison"]).shape == (1, 32)
        assert server.supervisor.restarts == 2


def stream_and_check(server, reference, seconds: float, clients: int = 2):
    """``clients`` threads encode for ``seconds``, checking every answer against the
    in-process encoder; return the latencies and errors (both filled as they go) and the
    threads."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + seconds

    def stream(client_index: int) -> None:
        try:
            with client_for(server) as bc:
                number = 0
                while time.monotonic() < deadline:
                    texts = texts_for(client_index * 10000 + number)
                    started = time.monotonic()
                    vectors = bc.encode(texts)
                    latencies.append(time.monotonic() - started)
                    want = reference.encode(texts).embeddings
                    np.testing.assert_allclose(vectors, want, atol=1e-5)
                    number += 1
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=stream, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    return latencies, errors, threads


@pytest.mark.parametrize("num_worker", [2, 1])
def test_a_stopped_worker_is_given_up_on_and_replaced(google_model_dir, num_worker):
    """SIGSTOP: alive but silent. Its parts go elsewhere (or to its replacement) within the
    worker timeout, the stopped process is killed and replaced, and nothing is lost."""
    reference = SentenceEncoder(
        inspect_model(google_model_dir), EncoderSettings(precision="float32")
    )
    with running_server(
        google_model_dir, "-num_worker", str(num_worker), "-max_batch_size", "8"
    ) as server:
        latencies, errors, threads = stream_and_check(server, reference, seconds=14)
        wait_for(lambda: len(latencies) > 20, 60, "the first answers")
        victim = server.supervisor.workers[0]
        os.kill(victim.process.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        wait_for(lambda: not victim.process.is_alive(), 30, "the stopped worker killed")
        detected = time.monotonic() - stopped
        for thread in threads:
            thread.join(120)
        with client_for(server) as bc:
            statistic = bc.server_status
        assert statistic["num_worker_losses"] == 1 and server.supervisor.restarts == 1
        assert len(server.supervisor.workers) == num_worker
    assert not errors, errors
    timeout = server.args.worker_timeout
    # detected within the timeout plus a heartbeat period (and the machine's noise)
    assert detected < timeout + timeout / 3 + 2.0, detected
    longest = max(latencies)
    print(
        f"\n{num_worker} workers: stopped worker given up on {detected:.1f} s after SIGSTOP; "
        f"{len(latencies)} requests, all correct, longest wait {longest:.1f} s"
    )
    if num_worker > 1:  # the other worker takes the parts at once
        assert longest < timeout + timeout / 3 + 5.0, longest


def test_a_front_held_up_longer_than_the_timeout_gives_up_on_no_beating_worker(
    google_model_dir, monkeypatch
):
    """The front runs in the user's process, where other threads can hold the GIL. Its loop
    is held up here for longer than the worker timeout right after a liveness round; the
    worker beat all along (its beats wait in the socket), so it must not count as lost."""
    stall_s = 1.4  # the timeout (1 s) plus more than a heartbeat period (1/3 s)
    stalls = []
    check_liveness = Ventilator._check_liveness

    def check_then_stall_once(ventilator: Ventilator) -> None:
        check_liveness(ventilator)
        if ventilator.ready.is_set() and not stalls:
            stalls.append(time.monotonic())
            time.sleep(stall_s)

    monkeypatch.setattr(Ventilator, "_check_liveness", check_then_stall_once)
    with running_server(google_model_dir, "-worker_timeout", "1") as server:
        wait_for(lambda: stalls, 30, "the loop held up once")
        wait_for(lambda: time.monotonic() > stalls[0] + stall_s + 1.0, 10, "two beats after")
        with client_for(server) as bc:
            assert bc.encode(["still the same worker"]).shape == (1, 32)
            statistic = bc.server_status
        assert statistic["num_worker_losses"] == 0
        assert server.supervisor.restarts == 0


def test_a_hung_worker_is_replaced_and_a_request_that_hangs_twice_is_refused(
    google_model_dir, tmp_path, monkeypatch
):
    """Stuck in a call while its heartbeats go on: only progress tells. The bound here is
    the 3 s floor (the tiny model's parts should take milliseconds)."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("BERT_SERVING_TEST_HANG", "endless loop")
    with running_server(
        google_model_dir, "-num_worker", "2", "-worker_progress_timeout", "3"
    ) as server:
        with client_for(server) as bc:
            started = time.monotonic()
            with pytest.raises(BertServerError, match="crashed or hung a worker 2 times"):
                bc.encode(["the endless loop"])
            refused_after = time.monotonic() - started
            assert bc.encode(["still serving"]).shape == (1, 32)
            statistic = bc.server_status
        assert statistic["num_worker_losses"] == 2
        # the second hung worker is killed as the request is refused; its death is seen at
        # the supervisor's next check
        wait_for(lambda: server.supervisor.restarts == 2, 10, "the second replacement")
    print(f"\na request that hangs workers was refused after {refused_after:.1f} s")
