"""Nothing waits forever (issue 5, item 3): timeouts on the client side, graceful shutdown
with requests in flight, no orphan process, ports freed, and a clear refusal of a port in
use."""

# The shutdown tests share a shape on purpose: start, load, stop one way, check the drain.

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from bert_serving.client import BertClient, BertClientTimeoutError
from bert_serving.server import BertServer
from bert_serving.server.model import EncoderSettings, SentenceEncoder, inspect_model
from bert_serving.server.supervisor import ServerStartError
from tests.servers import (
    free_ports,
    ports_are_free,
    run_terminate,
    running_server,
    server_args,
    start_command,
    wait_until_read,
)
from tests.wire import descendants, wait_until_gone

WORDS = ["hello", "world", "this", "is", "it", "good", "day", "first", "do", "then", "right"]
TIMEOUT_MS = 2000
BOUND_S = 5.0  # a 2 or 3 s timeout must fire within this
DRAIN_BOUND_S = 10.0  # what the server allows in-flight requests on shutdown
LOAD_CLIENTS = 8
LOAD_REQUESTS = 3
LOAD_TEXTS = 400


def sentences(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 16)))) for _ in range(count)]


@pytest.fixture(scope="module")
def reference(google_model_dir):
    encoder = SentenceEncoder(inspect_model(google_model_dir), EncoderSettings(precision="float32"))
    return lambda texts: encoder.encode(texts).embeddings


def assert_times_out(make_call, *names: str) -> float:
    """The call raises BertClientTimeoutError within BOUND_S, naming ``names``."""
    started = time.monotonic()
    with pytest.raises(BertClientTimeoutError) as caught:
        make_call()
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_S, f"took {elapsed:.1f} s"
    for name in names:
        assert name in str(caught.value), f"{name!r} not in {caught.value}"
    return elapsed


# -- a server that is not there -------------------------------------------------------------


def test_closed_port_times_out_naming_the_address():
    port, port_out = free_ports(2)
    elapsed = assert_times_out(
        lambda: BertClient(ip="127.0.0.1", port=port, port_out=port_out, timeout=TIMEOUT_MS),
        "127.0.0.1",
        f"port={port}",
        f"port_out={port_out}",
    )
    print(f"\nhandshake against a closed port gave up after {elapsed:.2f} s")


def test_a_port_that_speaks_no_zeromq_times_out():
    """A wrong port (something else listens there) is no different from no server."""
    port_out = free_ports(1)[0]
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        assert_times_out(
            lambda: BertClient(port=port, port_out=port_out, timeout=TIMEOUT_MS),
            f"port={port}",
        )


def test_encode_without_handshake_against_a_closed_port_times_out():
    port, port_out = free_ports(2)
    with BertClient(port=port, port_out=port_out, timeout=TIMEOUT_MS, ignore_all_checks=True) as bc:
        assert_times_out(lambda: bc.encode(["hello world"]), f"port={port}")
        assert_times_out(lambda: bc.server_status, f"port_out={port_out}")


@pytest.mark.slow
def test_a_stopped_server_gives_a_timeout_not_a_hang(google_model_dir):
    with running_server(google_model_dir) as server:
        bc = BertClient(port=server.args.port, port_out=server.args.port_out, timeout=3000)
        assert bc.encode(["hello world"]).shape == (1, 32)
    assert not server.is_alive()
    with bc:
        assert_times_out(lambda: bc.encode(["hello world"]), f"port={server.args.port}")
        bc.encode(["good day"], blocking=False)
        assert_times_out(bc.fetch_all)


@pytest.mark.slow
def test_a_killed_server_gives_a_timeout_and_leaves_no_orphan(google_model_dir, tmp_path):
    """kill -9 of the server process: the waiting client times out, and the workers and
    the sink notice their parent is gone and exit."""
    with subprocess_server(google_model_dir, tmp_path) as (process, port, port_out):
        children = descendants(process.pid)
        assert len(children) >= 2, "expected a sink and a worker"
        with BertClient(port=port, port_out=port_out, timeout=3000) as bc:
            bc.encode(sentences(3000, seed=1), blocking=False)
            os.kill(process.pid, signal.SIGKILL)
            assert_times_out(bc.fetch_all)
        process.wait(10)
        assert wait_until_gone(children, 10) == [], "orphans after kill -9 of the server"
        assert ports_are_free(port, port_out)


@pytest.mark.slow
def test_a_server_still_starting_answers_config_and_then_encodes(google_model_dir, reference):
    server = BertServer(server_args(google_model_dir))
    server.start()
    try:
        started = time.monotonic()
        with BertClient(port=server.args.port, port_out=server.args.port_out, timeout=60000) as bc:
            handshake = time.monotonic() - started
            ready_at_handshake = server.is_ready.is_set()
            config = bc.server_config
            texts = sentences(5, seed=2)
            got = bc.encode(texts)
            encoded = time.monotonic() - started
        print(f"\nhandshake after {handshake:.2f} s, first encoding after {encoded:.2f} s")
        assert not ready_at_handshake, "the workers were ready before the handshake: no test"
        assert "ready" in config and "server_version" in config
        np.testing.assert_allclose(got, reference(texts), atol=1e-5)
    finally:
        server.close()


# -- graceful shutdown ----------------------------------------------------------------------


class Load:
    """Several clients with non-blocking requests of a few hundred texts each, all of them
    accepted by the server (read by the ventilator) when ``start`` returns, unless it is
    told not to wait for that."""

    def __init__(self, port: int, port_out: int):
        self.clients = [
            BertClient(port=port, port_out=port_out, timeout=int(2 * DRAIN_BOUND_S * 1000))
            for _ in range(LOAD_CLIENTS)
        ]
        self.texts: list[list[list[str]]] = []

    def start(self, until_read: bool = True) -> None:
        for index, bc in enumerate(self.clients):
            batches = [
                sentences(LOAD_TEXTS, seed=100 * index + number) for number in range(LOAD_REQUESTS)
            ]
            for batch in batches:
                bc.encode(batch, blocking=False)
            self.texts.append(batches)
        if until_read:
            wait_until_read(self.clients)

    def check_all_answered(self, reference) -> float:
        """Every request comes back complete and correct; returns the wait in seconds."""
        started = time.monotonic()
        for bc, batches in zip(self.clients, self.texts):
            got = bc.fetch_all(sort=True)
            assert got is not None and len(got) == len(batches)
            for vectors, batch in zip(got, batches):
                np.testing.assert_allclose(vectors, reference(batch), atol=1e-5)
        return time.monotonic() - started

    def close(self) -> None:
        for bc in self.clients:
            bc.close()


@pytest.mark.slow
def test_close_finishes_requests_in_flight(google_model_dir, reference):
    with running_server(google_model_dir) as server:
        children = [child.process.pid for child in server.supervisor.children]
        load = Load(server.args.port, server.args.port_out)
        try:
            load.start()
            queued = server.ventilator.scheduler.queued
            started = time.monotonic()
            server.close()
            closed = time.monotonic() - started
            print(f"\nclose() with {queued} parts queued took {closed:.1f} s")
            load.check_all_answered(reference)
        finally:
            load.close()
    assert closed < DRAIN_BOUND_S + 15
    assert not server.is_alive()
    assert wait_until_gone(children, 5) == [], "child processes left after close()"
    assert ports_are_free(server.args.port, server.args.port_out)


@pytest.mark.slow
def test_termination_finishes_requests_in_flight(google_model_dir, reference):
    with running_server(google_model_dir) as server:
        children = [child.process.pid for child in server.supervisor.children]
        load = Load(server.args.port, server.args.port_out)
        try:
            load.start()
            result = run_terminate(server.args.port)
            assert result.returncode == 0, result.stderr
            load.check_all_answered(reference)
        finally:
            load.close()
        server.join(DRAIN_BOUND_S + 15)
        assert not server.is_alive()
    assert wait_until_gone(children, 5) == [], "child processes left after TERMINATION"
    assert ports_are_free(server.args.port, server.args.port_out)


@pytest.mark.slow
def test_requests_waiting_unread_at_the_stop_are_answered(google_model_dir, reference):
    """The loop reads one message a turn, so requests can wait in the front's socket when
    the stop comes; they were sent before it and are answered. The loop is held in a turn
    while they arrive, so that the stop is sure to find them unread."""
    with running_server(google_model_dir) as server:
        ventilator = server.ventilator
        load = Load(server.args.port, server.args.port_out)
        dispatch = ventilator._dispatch
        in_turn, go_on = threading.Event(), threading.Event()

        def held_dispatch() -> None:
            in_turn.set()
            go_on.wait(30)
            dispatch()

        closing = threading.Thread(target=server.close)
        try:
            ventilator._dispatch = held_dispatch
            assert in_turn.wait(10), "the loop never reached a turn"
            load.start(until_read=False)
            time.sleep(0.5)  # the requests reach the front's socket; the held loop reads none
            closing.start()
            while not server._stop_requested.is_set():  # close() asks for the stop first
                time.sleep(0.01)
            ventilator._dispatch = dispatch
            go_on.set()
            load.check_all_answered(reference)
        finally:
            go_on.set()
            load.close()
        closing.join(DRAIN_BOUND_S + 15)
        assert not server.is_alive()


@contextmanager
def subprocess_server(model_dir: Path, log_dir: Path, *extra: str) -> Iterator[tuple]:
    """``bert-serving-start`` as its own process, ready; yields (process, port, port_out)."""
    port, port_out = free_ports(2)
    log = open(log_dir / "server.log", "w+")  # noqa: SIM115 (closed below)
    command = start_command(model_dir, port, port_out, *extra)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        with BertClient(port=port, port_out=port_out, timeout=120000) as bc:
            deadline = time.monotonic() + 180
            while not bc.server_config.get("ready"):
                assert time.monotonic() < deadline, "the server did not get ready"
                time.sleep(0.2)
        yield process, port, port_out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.seek(0)
        print(log.read()[-3000:])
        log.close()


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight(google_model_dir, reference, tmp_path):
    with subprocess_server(google_model_dir, tmp_path) as (process, port, port_out):
        children = descendants(process.pid)
        load = Load(port, port_out)
        try:
            load.start()
            process.send_signal(signal.SIGTERM)
            load.check_all_answered(reference)
        finally:
            load.close()
        assert process.wait(DRAIN_BOUND_S + 15) == 0
    assert wait_until_gone(children, 5) == [], "child processes left after SIGTERM"
    assert ports_are_free(port, port_out)


# -- a port in use --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("taken", ["port", "port_out"])
def test_a_second_server_on_a_used_port_fails_at_once(google_model_dir, taken):
    with running_server(google_model_dir) as first:
        args = server_args(google_model_dir)
        setattr(args, taken, getattr(first.args, taken))
        started = time.monotonic()
        with pytest.raises(ServerStartError, match=str(getattr(first.args, taken))) as caught:
            BertServer(args)
        assert time.monotonic() - started < BOUND_S
        assert "cannot bind" in str(caught.value)
        with BertClient(port=first.args.port, port_out=first.args.port_out, timeout=10000) as bc:
            assert bc.encode(["still serving"]).shape == (1, 32)
    other = "port_out" if taken == "port" else "port"
    assert ports_are_free(getattr(args, other)), "the failed server kept its other port"


@pytest.mark.slow
@pytest.mark.parametrize("taken", ["port", "port_out"])
def test_the_start_command_refuses_a_used_port_clearly(google_model_dir, taken):
    port, port_out = free_ports(2)
    busy = port if taken == "port" else port_out
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", busy))
        holder.listen()
        started = time.monotonic()
        result = subprocess.run(
            start_command(google_model_dir, port, port_out),
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    print(f"\nrefused in {elapsed:.1f} s: {result.stderr.strip().splitlines()[-1:]}")
    assert result.returncode != 0
    assert "cannot bind" in result.stderr and str(busy) in result.stderr
    assert "Traceback" not in result.stderr, "a clear message, not a traceback"
