"""How much one front (ventilator + sink) can route: fake workers, real everything else.

    python benchmarks/bench_front.py [--workers 1 2 4] [--batches 1 64 256] [--clients 4]
                                     [--seconds 5] [--json results.json]

A front starts with no local workers and a worker port; N fake workers register with it over
TCP on loopback, exactly as ``bert-serving-worker`` does (same sessions, heartbeats, credit
and answers), except that their "model" answers at once with zero vectors of the served
model's width. Client processes then stream requests of a fixed batch size. What comes out is
the front's own ceiling: sentences/s and MB/s of vectors routed, for one front and N workers.
On a 2-core machine the clients and fake workers share the cores with the front, so the
figures are a floor of what a front on its own host routes.

Each row also says what a request cost each process in CPU time (Linux: read from /proc):
the front (this process: the ventilator and ZeroMQ's threads), the sink, the fake workers
and the clients. With ``--workers 1 --batches 1 --clients 1`` that is the pipeline's own
cost of a one-sentence request, which a real worker's forward pass shares the cores with.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np
from bench_peers import cpu_description, cpu_line

from bert_serving.client import BertClient
from bert_serving.server import BertServer
from bert_serving.server.args import get_args_parser
from bert_serving.server.benchmark.machine import describe_machine
from bert_serving.server.logger import get_logger
from bert_serving.server.network import free_ports
from bert_serving.server.protocol import Hello
from bert_serving.server.worker.compute import ComputeThread
from bert_serving.server.worker.process import _serve_fronts
from bert_serving.server.worker.session import Membership
from bert_serving.server.worker.settings import FrontAddress


@dataclass
class FakeDtype:
    name: str = "float32"


class FakeEncoder:
    """Answers at once: zero vectors of the served model's width, so only routing counts."""

    output_length_varies = False
    compute_dtype = FakeDtype()
    max_len = 25

    def __init__(self, width: int):
        self.width = width

    def encode(self, texts, is_tokenized: bool = False):
        return _Encoding(np.zeros((len(texts), self.width), np.float32), [])


class Ports(NamedTuple):
    port: int
    port_out: int
    port_worker: int


@dataclass
class _Encoding:
    embeddings: np.ndarray
    tokens: list


def fake_worker(port_worker: int, fingerprint: str, width: int, index: int) -> None:
    """A worker process whose model is ``FakeEncoder``; everything else is the real worker."""
    logger = get_logger(f"WORKER-{index}")
    hello = Hello(f"fake:{index}", "fake", "CPU", True, fingerprint, "float32", 1e-6)
    front = FrontAddress(f"tcp://127.0.0.1:{port_worker}", remote=True)
    membership = Membership(front, hello, prefetch_size=10, timeout=3.0)
    compute = ComputeThread(FakeEncoder(width), 256, current_part=None, logger=logger)
    _serve_fronts(compute, membership, b"", logger)


@contextmanager
def front_without_workers(model_dir: str | None) -> Iterator[tuple[BertServer, Ports]]:
    """A front in this process with no local worker, its worker port on loopback."""
    ports = Ports(*free_ports(3))
    argv = ["-port", str(ports.port), "-port_out", str(ports.port_out)]
    argv += ["-port_worker", str(ports.port_worker), "-num_worker", "0"]
    argv += ["-bind_ip", "127.0.0.1", "-max_batch_size", "256"]
    if model_dir:
        argv += ["-model_dir", model_dir]
    with BertServer(get_args_parser().parse_args(argv)) as server:
        yield server, ports


def start_fake_worker(server: BertServer, ports: Ports, index: int):
    """A fake worker process registering with ``server`` (stopped with ``terminate``)."""
    fingerprint = json.dumps(server.fingerprint, sort_keys=True)
    width = server.spec.config.hidden_size
    fake = multiprocessing.get_context("spawn").Process(
        target=fake_worker, args=(ports.port_worker, fingerprint, width, index), daemon=True
    )
    fake.start()
    return fake


def process_roles(server: BertServer, fakes: list) -> dict[str, list[int]]:
    """The processes whose CPU a request costs, by role (the clients report their own)."""
    sink = [child.process.pid for child in server.supervisor.children if child.role == "sink"]
    return {"front": [os.getpid()], "sink": sink, "workers": [fake.pid for fake in fakes]}


def cpu_text(costs: dict[str, float]) -> str:
    return ", ".join(f"{role} {ms:.2f}" for role, ms in costs.items())


def client(port: int, port_out: int, batch: int, seconds: float, results, start) -> None:
    """Once connected, and every client is, stream requests for ``seconds``; report (texts,
    requests, CPU seconds) of the stream."""
    texts = [f"sentence {i} of a batch" for i in range(batch)]
    done = requests = 0
    with BertClient(port=port, port_out=port_out, timeout=60000) as bc:
        bc.encode(texts)
        results.put(None)
        start.wait()
        cpu_before = time.process_time()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            bc.encode(texts)
            done += batch
            requests += 1
        cpu = time.process_time() - cpu_before
    results.put((done, requests, cpu))


def measure(
    server, width: int, workers: int, batch: int, clients: int, seconds: float, fakes: list
) -> dict:
    context = multiprocessing.get_context("spawn")
    results, start = context.Queue(), context.Event()
    args = (server.args.port, server.args.port_out, batch, seconds, results, start)
    processes = [context.Process(target=client, args=args) for _ in range(clients)]
    roles = process_roles(server, fakes)
    for process in processes:
        process.start()
    for _ in processes:
        results.get(timeout=120)  # connected
    cpu_before = {role: cpu_seconds(pids) for role, pids in roles.items()}
    started = time.monotonic()
    start.set()
    reports = [results.get(timeout=seconds + 120) for _ in processes]
    cpu = {role: cpu_seconds(pids) - cpu_before[role] for role, pids in roles.items()}
    elapsed = time.monotonic() - started
    for process in processes:
        process.join()
    texts = sum(report[0] for report in reports)
    requests = max(1, sum(report[1] for report in reports))
    cpu["clients"] = sum(report[2] for report in reports)
    per_second = texts / seconds
    return {
        "workers": workers,
        "batch": batch,
        "clients": clients,
        "sentences_per_s": round(per_second),
        "mb_per_s": round(per_second * width * 4 / 1e6, 1),
        "wall_s": round(elapsed, 1),
        "cpu_ms_per_request": {role: round(s * 1e3 / requests, 3) for role, s in cpu.items()},
    }


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of the processes, all their threads (0 without /proc)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--model_dir", default=None, help="the served model, for its width (default: MiniLM)"
    )
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    options = parser.parse_args()
    machine = {**describe_machine(), "cpu": cpu_description()}  # the model, with its ISA
    print(
        f"# one front, fake workers: {cpu_line(machine['cpu'])}, {machine['cores']} cores, "
        f"{machine['platform']}, Python {machine['python']}"
    )
    rows = []
    with front_without_workers(options.model_dir) as (server, ports):
        width = server.spec.config.hidden_size
        fakes = []
        for count in sorted(options.workers):
            while len(fakes) < count:
                fakes.append(start_fake_worker(server, ports, len(fakes)))
            wait_for_workers(ports.port, ports.port_out, count)
            for batch in options.batches:
                row = measure(server, width, count, batch, options.clients, options.seconds, fakes)
                rows.append(row)
                print(
                    f"{row['workers']} fake workers, batch {row['batch']:>3}, "
                    f"{row['clients']} clients: {row['sentences_per_s']:>7} sentences/s, "
                    f"{row['mb_per_s']:>6} MB/s of vectors; "
                    f"CPU ms a request: {cpu_text(row['cpu_ms_per_request'])}"
                )
        for fake in fakes:
            fake.terminate()
    if options.json:
        with open(options.json, "w") as out:
            json.dump({"machine": machine, "rows": rows}, out, indent=1)


def wait_for_workers(port: int, port_out: int, count: int) -> None:
    with BertClient(port=port, port_out=port_out, timeout=30000) as bc:
        deadline = time.monotonic() + 60
        while bc.server_status["num_workers_serving"] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} fake workers did not register")
            time.sleep(0.2)


if __name__ == "__main__":
    main()
