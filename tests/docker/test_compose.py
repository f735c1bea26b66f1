"""docker/compose.yaml brought up with two worker containers: clients stream requests through
the front while one worker container is killed; every request must still be answered, with
the vectors the model gives in this process. Run with `make docker-test`."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field

import numpy as np
import pytest

from bert_serving.client import BertClient
from bert_serving.server.network import free_ports
from tests.docker.daemon import REPO, docker, docker_cli
from tests.docker.models import (
    SERVER_OPTIONS,
    TOLERANCE,
    embedded_model_dir,
    reference_encoder,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COMPOSE_FILE = REPO / "docker" / "compose.yaml"
WORKERS = 2
CLIENTS = 4
REQUESTS_PER_CLIENT = 100
KILL_AFTER = CLIENTS * REQUESTS_PER_CLIENT // 3  # answers before a worker is killed
BATCHES = [
    [f"{word} number {i} of batch {b}" for i in range(16)]
    for b, word in enumerate(["hello world", "the cat sat", "a dog ran", "good day"])
]
JOIN_SECONDS = 300


def compose_command() -> list[str]:
    """The Compose v2 plugin when the CLI has it, else Debian's docker-compose (v1)."""
    plugin = subprocess.run([docker_cli(), "compose", "version"], capture_output=True)
    if plugin.returncode == 0:
        return [docker_cli(), "compose"]
    legacy = subprocess.run(["docker-compose", "version"], capture_output=True, check=False)
    if legacy.returncode != 0:
        pytest.fail("no Docker Compose: apt-get install docker-compose")
    return ["docker-compose"]


@dataclass
class Stack:
    command: list[str]
    env: dict
    port: int
    port_out: int
    http_port: int
    answered: int = 0
    latencies: list[float] = field(default_factory=list)

    def compose(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            [*self.command, "-f", str(COMPOSE_FILE), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"compose {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def http(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as r:
            return json.load(r)

    def wait_for_workers(self, count: int) -> float:
        started = time.monotonic()
        while time.monotonic() - started < JOIN_SECONDS:
            try:
                if self.http("/health")["workers_serving"] >= count:
                    return time.monotonic() - started
            except OSError:
                pass  # the front is still starting
            time.sleep(2)
        raise AssertionError(f"{count} workers did not join in {JOIN_SECONDS} s:\n{self.logs()}")

    def logs(self) -> str:
        return self.compose("logs", "--no-color", timeout=60)


@pytest.fixture(scope="module")
def stack(cpu_image, report):
    port, port_out, port_worker, http_port = free_ports(4)
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": f"berttest{uuid.uuid4().hex[:6]}",
        "BERT_IMAGE": cpu_image,
        "BERT_PORT": str(port),
        "BERT_PORT_OUT": str(port_out),
        "BERT_PORT_WORKER": str(port_worker),
        "BERT_HTTP_PORT": str(http_port),
        "BERT_MODEL_ARGS": " ".join(SERVER_OPTIONS),
    }
    stack = Stack(compose_command(), env, port, port_out, http_port)
    started = time.monotonic()
    try:
        stack.compose("up", "-d", "--no-build", "--scale", f"worker={WORKERS}")
        seconds = stack.wait_for_workers(WORKERS)
        report.append(
            f"compose ({' '.join(stack.command[-1:])}): up, {WORKERS} workers serving "
            f"{time.monotonic() - started:.0f} s after `up` ({seconds:.0f} s after it returned)"
        )
        yield stack
    finally:
        started = time.monotonic()
        stack.compose("down", "--volumes", "--timeout", "30")
        report.append(f"compose: down in {time.monotonic() - started:.0f} s")


def test_the_stack_is_healthy(stack):
    ids = stack.compose("ps", "-q").split()
    assert len(ids) == 1 + WORKERS
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        health = [
            docker("inspect", "-f", "{{.State.Health.Status}}", i).stdout.strip() for i in ids
        ]
        if health == ["healthy"] * len(ids):
            return
        time.sleep(3)
    pytest.fail(f"not all healthy: {health}")


def test_a_killed_worker_loses_no_request(stack, report):
    reference = reference_encoder(embedded_model_dir())
    expected = [reference.encode(batch).embeddings for batch in BATCHES]
    victim = stack.compose("ps", "-q", "worker").split()[0]
    failures: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def stream(client_number: int) -> None:
        with BertClient(port=stack.port, port_out=stack.port_out, timeout=60000) as client:
            for i in range(REQUESTS_PER_CLIENT):
                which = (client_number + i) % len(BATCHES)
                started = time.monotonic()
                try:
                    vectors = client.encode(BATCHES[which])
                    np.testing.assert_allclose(vectors, expected[which], **TOLERANCE)
                except Exception as error:  # a lost or wrong answer: the finding
                    with lock:
                        failures.append(f"client {client_number}, request {i}: {error!r}")
                    continue
                with lock:
                    stack.latencies.append(time.monotonic() - started)
                    stack.answered += 1
                    if stack.answered >= KILL_AFTER:
                        enough.set()

    clients = [threading.Thread(target=stream, args=(n,)) for n in range(CLIENTS)]
    for client in clients:
        client.start()
    assert enough.wait(300), f"{stack.answered} answers before the kill; {failures}"
    docker("kill", victim)
    killed_at = stack.answered
    for client in clients:
        client.join(timeout=600)
    status = stack.http("/status/server")
    total = CLIENTS * REQUESTS_PER_CLIENT
    report.append(
        f"compose failover: killed a worker container after {killed_at} of {total} requests; "
        f"answered {stack.answered}, lost {total - stack.answered}, "
        f"max latency {max(stack.latencies):.2f} s, worker losses seen by the front "
        f"{status.get('num_worker_losses')}; the killed container is "
        f"{docker('inspect', '-f', '{{.State.Status}}', victim).stdout.strip()} "
        f"(restart: unless-stopped)"
    )
    assert not failures, failures[:5]
    assert stack.answered == total
    assert status["num_worker_losses"] >= 1, status
