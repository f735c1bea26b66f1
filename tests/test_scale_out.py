"""Workers on other hosts, over real TCP between network namespaces (``tests/netns.py``).

The front runs in one namespace, workers in others, clients beside the front. The network is
broken for real (a link cut, a stopped or killed process, a restarted front) while clients
stream; every answer is checked against the in-process encoder afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq.auth

from bert_serving.server.model import EncoderSettings, SentenceEncoder, inspect_model
from tests import netns
from tests.scale_client import texts_for

pytestmark = pytest.mark.slow  # every test here starts a front and workers

PORT, PORT_OUT, PORT_WORKER = 5555, 5556, 5557
COMMON = ("-cpu", "-precision", "float32", "-max_batch_size", "4")
CLIENT_110_SCRIPT = Path(__file__).parent / "compat" / "client_110_session.py"
TIMEOUT = 3.0  # -worker_timeout, the default
BOUND = TIMEOUT + TIMEOUT / 3  # silence noticed: the timeout, checked every heartbeat period
SLACK = 3.0  # a shared 2-core machine's noise

cluster = netns.cluster_fixture(["front", "w1", "w2"])


@pytest.fixture(scope="module")
def reference(google_model_dir) -> SentenceEncoder:
    return SentenceEncoder(inspect_model(google_model_dir), EncoderSettings(precision="float32"))


def start_front(cluster, model_dir, log_dir: Path, *extra: str) -> subprocess.Popen:
    front = cluster["front"]
    argv = ["-m", "bert_serving.server.cli.start", "-model_dir", str(model_dir)]
    argv += ["-port", str(PORT), "-port_out", str(PORT_OUT), "-port_worker", str(PORT_WORKER)]
    argv += ["-num_worker", "0", *COMMON, *extra]
    log = open(log_dir / "front.log", "a")  # noqa: SIM115 (kept open for the process)
    process = front.python(argv, stdout=log, stderr=subprocess.STDOUT)
    netns.wait_for_tcp(front, front.address, PORT, timeout=60)
    return process


def start_worker(cluster, name: str, model_dir, log_dir: Path, *extra: str) -> subprocess.Popen:
    host = cluster[name]
    argv = ["-m", "bert_serving.server.cli.worker", "-ip", cluster["front"].address]
    argv += ["-port_worker", str(PORT_WORKER), "-model_dir", str(model_dir), *COMMON, *extra]
    log = open(log_dir / f"{name}.log", "a")  # noqa: SIM115 (kept open for the process)
    return host.python(argv, stdout=log, stderr=subprocess.STDOUT)


def start_front_and_two_workers(cluster, model_dir, log_dir: Path) -> subprocess.Popen:
    """The front in its namespace, a worker in each other one, both registered."""
    front = start_front(cluster, model_dir, log_dir)
    start_worker(cluster, "w1", model_dir, log_dir)
    start_worker(cluster, "w2", model_dir, log_dir)
    wait_for_workers(cluster, 2)
    return front


def status(cluster) -> dict:
    done = cluster["front"].run(
        [sys.executable, "-m", "tests.scale_client", "status", str(PORT), str(PORT_OUT)], 90
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for_workers(cluster, count: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = status(cluster)
        if answer["num_workers_serving"] == count:
            return answer
        assert time.monotonic() < deadline, f"{count} workers did not join: {answer['workers']}"
        time.sleep(0.5)


def start_stream(cluster, seconds: float, out_dir: Path, first: int = 0) -> subprocess.Popen:
    argv = ["-m", "tests.scale_client", "stream", str(PORT), str(PORT_OUT), str(seconds)]
    return cluster["front"].python([*argv, str(out_dir), str(first)])


def judge_stream(process: subprocess.Popen, out_dir: Path, reference) -> dict:
    """Every answer equals the in-process encoder's; return the report."""
    assert process.wait(180) == 0
    report = json.loads((out_dir / "report.json").read_text())
    assert report["errors"] == []
    with np.load(out_dir / "answers.npz") as answers:
        assert len(answers.files) == len(report["latencies"]) > 10
        for number in answers.files:
            want = reference.encode(texts_for(int(number))).embeddings
            np.testing.assert_allclose(answers[number], want, atol=1e-5)
    return report


def worker_pids(host) -> list[int]:
    """The worker processes (spawned children) of a host's bert-serving-worker."""
    pids = []
    for pid in host.pids():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            pids.append(pid)
    return pids


def test_two_remote_workers_serve_both_clients_as_a_local_server_would(
    cluster, google_model_dir, reference, client_110_python, tmp_path
):
    start_front(cluster, google_model_dir, tmp_path, "-show_tokens_to_client")
    start_worker(cluster, "w1", google_model_dir, tmp_path)
    start_worker(cluster, "w2", google_model_dir, tmp_path)
    workers = wait_for_workers(cluster, 2)["workers"]
    assert {worker["remote"] for worker in workers} == {True}
    assert len({worker["host"] + worker["name"] for worker in workers}) == 2
    report = judge_stream(
        start_stream(cluster, 4, tmp_path / "stream"), tmp_path / "stream", reference
    )
    session = cluster["front"].run(
        [str(client_110_python), str(CLIENT_110_SCRIPT), "session", str(PORT), str(PORT_OUT)], 120
    )
    assert session.returncode == 0, session.stderr
    answer = json.loads(session.stdout)
    assert "crashed" not in answer, answer["crashed"]
    assert answer["client_version"] == "1.10.0"
    got = np.array(answer["plain"]["vectors"], dtype=np.float32)
    expected = reference.encode(answer["texts"])
    np.testing.assert_allclose(got, expected.embeddings, atol=1e-5)
    assert answer["shown"]["tokens"] == expected.tokens  # tokens came from remote workers
    done = [worker["parts_done"] for worker in status(cluster)["workers"]]
    assert all(parts > 0 for parts in done), f"both workers served: {done}"
    print(f"\n{len(report['latencies'])} requests, parts per worker {done}")


def test_a_cut_off_worker_is_given_up_on_and_rejoins_when_the_link_heals(
    cluster, google_model_dir, reference, tmp_path
):
    start_front_and_two_workers(cluster, google_model_dir, tmp_path)
    stream = start_stream(cluster, 18, tmp_path / "stream")
    time.sleep(4)
    cut_at = time.time()
    cluster["w1"].cut()
    time.sleep(7)
    cluster["w1"].heal()
    healed_at = time.time()
    report = judge_stream(stream, tmp_path / "stream", reference)
    timeline = report["timeline"]
    lost_at = next(at for at, serving in timeline if at > cut_at and serving == 1)
    back_at = next(at for at, serving in timeline if at > healed_at and serving == 2)
    detection = lost_at - cut_at
    answer = status(cluster)
    assert answer["num_worker_losses"] == 1 and answer["num_worker_rejoins"] == 1
    assert detection < BOUND + SLACK, detection
    longest = max(report["latencies"])
    assert longest < BOUND + SLACK, longest  # its parts were answered by the other worker
    print(
        f"\ncut off: given up on {detection:.1f} s after the cut, rejoined "
        f"{back_at - healed_at:.1f} s after the link healed; {len(report['latencies'])} "
        f"requests, none lost, longest wait {longest:.1f} s"
    )


def test_stopped_and_killed_workers_lose_nothing_and_come_back(
    cluster, google_model_dir, reference, tmp_path
):
    start_front_and_two_workers(cluster, google_model_dir, tmp_path)
    stream = start_stream(cluster, 20, tmp_path / "stream")
    time.sleep(3)
    (stopped,) = worker_pids(cluster["w1"])
    os.kill(stopped, signal.SIGSTOP)
    time.sleep(6)
    os.kill(stopped, signal.SIGCONT)  # it finds its front silent, and registers again
    time.sleep(3)
    (killed,) = worker_pids(cluster["w2"])
    os.kill(killed, signal.SIGKILL)  # its pool starts it again; it registers again
    report = judge_stream(stream, tmp_path / "stream", reference)
    answer = wait_for_workers(cluster, 2)
    assert answer["num_worker_losses"] == 2
    assert worker_pids(cluster["w2"]) != [killed]
    longest = max(report["latencies"])
    print(f"\n{len(report['latencies'])} requests, none lost; longest wait {longest:.1f} s")


def test_a_restarted_front_gets_its_workers_back(cluster, google_model_dir, reference, tmp_path):
    front = start_front_and_two_workers(cluster, google_model_dir, tmp_path)
    front.send_signal(signal.SIGTERM)
    assert front.wait(60) == 0
    restarted = time.monotonic()
    start_front(cluster, google_model_dir, tmp_path)
    wait_for_workers(cluster, 2)
    rejoined = time.monotonic() - restarted
    judge_stream(start_stream(cluster, 3, tmp_path / "after"), tmp_path / "after", reference)
    print(f"\nboth workers served the restarted front {rejoined:.1f} s after it started")


def test_other_vectors_and_wrong_keys_are_refused(
    cluster, google_model_dir, reference, tmp_path, monkeypatch
):
    keys = tmp_path / "keys"
    allowed = keys / "allowed"
    allowed.mkdir(parents=True)
    for name in ("front", "worker", "stranger"):
        zmq.auth.create_certificates(str(keys), name)
    (allowed / "worker.key").write_bytes((keys / "worker.key").read_bytes())
    front_keys = ("-curve_secret_key", str(keys / "front.key_secret"))
    monkeypatch.setenv("SCALE_CLIENT_CURVE", str(keys / "front.key_secret"))  # its clients
    start_front(
        cluster, google_model_dir, tmp_path, *front_keys, "-curve_worker_keys", str(allowed)
    )
    good = ("-curve_server_key", str(keys / "front.key"), "-curve_secret_key")
    cases = {
        "other pooling": (*good, str(keys / "worker.key_secret"), "-pooling_strategy", "CLS_TOKEN"),
        "unlisted key": (*good, str(keys / "stranger.key_secret")),
        "no CURVE": (),
    }
    for what, extra in cases.items():
        worker = start_worker(cluster, "w1", google_model_dir, tmp_path, *extra)
        assert worker.wait(120) == 1, what
    log = (tmp_path / "w1.log").read_text()
    assert "-pooling_strategy: the front has 'REDUCE_MEAN', the worker 'CLS_TOKEN'" in log
    assert "the peer refused this side's CURVE key" in log
    assert "the peer requires CURVE: pass -curve_server_key" in log
    assert "refused worker" in (tmp_path / "front.log").read_text()
    start_worker(cluster, "w2", google_model_dir, tmp_path, *good, str(keys / "worker.key_secret"))
    wait_for_workers(cluster, 1)
    judge_stream(start_stream(cluster, 3, tmp_path / "stream"), tmp_path / "stream", reference)


def test_local_and_remote_workers_serve_one_front(cluster, google_model_dir, reference, tmp_path):
    start_front(cluster, google_model_dir, tmp_path, "-num_worker", "1")
    start_worker(cluster, "w1", google_model_dir, tmp_path)
    workers = wait_for_workers(cluster, 2)["workers"]
    assert sorted(worker["remote"] for worker in workers) == [False, True]
    judge_stream(start_stream(cluster, 5, tmp_path / "stream"), tmp_path / "stream", reference)
    done = {worker["remote"]: worker["parts_done"] for worker in status(cluster)["workers"]}
    assert done[False] > 0 and done[True] > 0, done
