"""Soak (issue 5, item 4): 32 concurrent clients with mixed request sizes against a server
in its own process; every answer correct and delivered to the right client, the server's
memory flat, throughput reported."""

# Starting and stopping the server process looks like bench_peers.py's on purpose: the
# benchmark must not import the tests.

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bert_serving.client import BertClient
from bert_serving.server.model import EncoderSettings, SentenceEncoder, inspect_model
from tests.servers import free_ports, ports_are_free, start_command
from tests.wire import descendants, tree_rss_bytes, wait_until_gone

pytestmark = pytest.mark.slow  # every test here starts a server (or uses one)

WORDS = ["hello", "world", "this", "is", "it", "good", "day", "first", "do", "then", "right"]
NUM_CLIENTS = 32
TEXTS_PER_CLIENT = 48  # each client draws only from its own texts, so rows cannot be mixed up
WARMUP_REQUESTS = 30  # per client
SOAK_REQUESTS = 300  # per client, in two halves
MAX_GROWTH_RATIO = 0.15
MAX_GROWTH_BYTES = 50 * 2**20
MB = 2**20


def distinct_pool(size: int, seed: int) -> list[str]:
    """Distinct sentences over the tiny vocabulary (distinct tokens, so distinct vectors)."""
    rng = np.random.default_rng(seed)
    pool: dict[str, None] = {}
    while len(pool) < size:
        pool[" ".join(rng.choice(WORDS, size=int(rng.integers(2, 14))))] = None
    return list(pool)


def request_size(rng: np.random.Generator) -> int:
    """Mostly small requests, some of a few dozen texts, a few of up to 300."""
    kind = rng.random()
    if kind < 0.75:
        return int(rng.integers(1, 9))
    if kind < 0.95:
        return int(rng.integers(9, 80))
    return int(rng.integers(80, 301))


class Soak:
    """The shared state of the client threads: the expected rows and what went wrong."""

    def __init__(self, pool: list[str], expected: np.ndarray, port: int, port_out: int):
        self.pool = pool
        self.expected = expected
        self.port = port
        self.port_out = port_out
        self.errors: list[str] = []
        self.requests = 0
        self.texts = 0
        self.lock = threading.Lock()

    def run_client(self, index: int, num_requests: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        own = np.arange(index * TEXTS_PER_CLIENT, (index + 1) * TEXTS_PER_CLIENT)
        try:
            with BertClient(port=self.port, port_out=self.port_out, timeout=60000) as bc:
                for number in range(num_requests):
                    rows = rng.choice(own, size=request_size(rng))
                    got = bc.encode([self.pool[row] for row in rows])
                    if got.shape != (len(rows), self.expected.shape[1]) or not np.allclose(
                        got, self.expected[rows], atol=1e-5
                    ):
                        with self.lock:
                            self.errors.append(f"client {index} request {number}: wrong rows")
                    with self.lock:
                        self.requests += 1
                        self.texts += len(rows)
        except Exception as err:
            with self.lock:
                self.errors.append(f"client {index}: {type(err).__name__}: {err}")

    def run(self, num_requests: int, seed: int) -> float:
        """All clients at once; returns the wall time."""
        threads = [
            threading.Thread(target=self.run_client, args=(index, num_requests, seed + index))
            for index in range(NUM_CLIENTS)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        assert not any(thread.is_alive() for thread in threads), "a client thread hangs"
        return time.monotonic() - started


@pytest.mark.slow
def test_soak_32_clients(google_model_dir: Path, tmp_path: Path):
    pool = distinct_pool(NUM_CLIENTS * TEXTS_PER_CLIENT, seed=0)
    encoder = SentenceEncoder(inspect_model(google_model_dir), EncoderSettings(precision="float32"))
    expected = np.concatenate(
        [encoder.encode(pool[start : start + 256]).embeddings for start in range(0, len(pool), 256)]
    )
    port, port_out = free_ports(2)
    command = start_command(
        google_model_dir, port, port_out, "-num_worker", "2", "-max_batch_size", "32"
    )
    with open(tmp_path / "server.log", "w+") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            soak = Soak(pool, expected, port, port_out)
            warmup = soak.run(WARMUP_REQUESTS, seed=1000)
            assert not soak.errors, soak.errors[:5]
            rss_before = tree_rss_bytes(server.pid)
            before = soak.requests, soak.texts
            wall = soak.run(SOAK_REQUESTS // 2, seed=2000)
            rss_half = tree_rss_bytes(server.pid)
            wall += soak.run(SOAK_REQUESTS - SOAK_REQUESTS // 2, seed=3000)
            rss_after = tree_rss_bytes(server.pid)
            requests, texts = soak.requests - before[0], soak.texts - before[1]
            growth = rss_after - rss_before
            print(
                f"\nsoak: {NUM_CLIENTS} clients, {requests} requests, {texts} texts in "
                f"{wall:.1f} s (warm-up {warmup:.1f} s): {requests / wall:.0f} requests/s, "
                f"{texts / wall:.0f} texts/s; server RSS {rss_before / MB:.0f} MB -> "
                f"{rss_half / MB:.0f} MB (half way) -> "
                f"{rss_after / MB:.0f} MB ({growth / MB:+.1f} MB, "
                f"{100 * growth / rss_before:+.1f} %), {len(descendants(server.pid))} children"
            )
            assert not soak.errors, soak.errors[:5]
            assert requests == NUM_CLIENTS * SOAK_REQUESTS
            assert growth < max(MAX_GROWTH_RATIO * rss_before, MAX_GROWTH_BYTES)
            children = descendants(server.pid)
            with BertClient(port=port, port_out=port_out, timeout=10000) as bc:
                status = bc.server_status["statistic"]
            print(f"server statistic: {status}")
        finally:
            server.terminate()
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
            log.seek(0)
            errors = [line for line in log if line.startswith(("E:", "W:"))]
            print("".join(errors[-20:]))
    assert wait_until_gone(children, 10) == []
    assert ports_are_free(port, port_out)
