"""What a server's start costs: converting the model to OpenVINO, or reading it as saved.

    python benchmarks/bench_startup.py [--model_dir DIR] [--workers 2] [--rounds 3]
                                       [--json out.json]

Each round starts a server twice on the same model, in one cache folder of this run
(``BERT_SERVING_CACHE``): once after its saved OpenVINO models were deleted (every worker
imports TensorFlow, reads the checkpoint, builds, traces and converts the graph, as every
start did before the cache), once with them in place (model/forward_cache.py). The order
alternates between rounds, so that a shared machine's drift slows both alike; the
tokenizer's tables are cached in both. For each start: seconds from ``start()`` to ready,
each worker's CPU seconds and resident memory at readiness, and the same memory after it
answered a few hundred texts. The table gives medians and the ratio of the two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_front import cpu_seconds

from bert_serving.client import BertClient
from bert_serving.server import BertServer
from bert_serving.server.benchmark.machine import cpu_model
from bert_serving.server.cache_folder import CACHE_ENV
from bert_serving.server.default_model import default_model_dir
from bert_serving.server.helper import get_args_parser
from bert_serving.server.model.precision import cpu_flags
from bert_serving.server.network import free_ports

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
TEXTS = [f"sentence number {number} of the start-up benchmark" for number in range(256)]


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_start(model_dir: str, workers: int) -> dict[str, float]:
    port, port_out = free_ports(2)
    argv = ["-model_dir", model_dir, "-port", str(port), "-port_out", str(port_out), "-cpu"]
    argv += ["-num_worker", str(workers), "-precision", "float32"]
    args = get_args_parser().parse_args(argv)
    server = BertServer(args)
    started = time.monotonic()
    server.start()
    try:
        server.wait_until_ready(600)
        ready = time.monotonic() - started
        pids = [child.process.pid for child in server.supervisor.workers]
        cpu = [cpu_seconds([pid]) for pid in pids]
        memory = [resident_mb(pid) for pid in pids]
        with BertClient(port=port, port_out=port_out, timeout=120000) as client:
            client.encode(TEXTS)
        served = [resident_mb(pid) for pid in pids]
    finally:
        server.close()
    return {
        "ready_s": ready,
        "worker_cpu_s": statistics.median(cpu),
        "worker_rss_mb": statistics.median(memory),
        "worker_rss_after_mb": statistics.median(served),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", default=None, help="default: all-MiniLM-L6-v2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    options = parser.parse_args()
    model_dir = options.model_dir or str(default_model_dir())
    folder = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    os.environ[CACHE_ENV] = str(folder)
    runs: dict[str, list[dict[str, float]]] = {"converting": [], "reading saved": []}
    try:
        one_start(model_dir, 1)  # fill the tokenizer's tables, outside the measurement
        for number in range(options.rounds):
            order = ["converting", "reading saved"]
            for kind in order if number % 2 == 0 else order[::-1]:
                if kind == "converting":
                    shutil.rmtree(folder / "openvino", ignore_errors=True)
                else:
                    assert (folder / "openvino").exists(), "nothing was saved"
                runs[kind].append(one_start(model_dir, options.workers))
                print(kind, json.dumps(runs[kind][-1]), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    flags = cpu_flags()
    print(f"\n{cpu_model()}; {', '.join(f for f in ISA_FLAGS if f in flags) or 'no AVX2'}")
    print(f"{model_dir}: {options.workers} workers, medians of {options.rounds} starts each\n")
    print("| | converting | reading saved | ratio |\n|---|---|---|---|")
    summary = {}
    for measure in runs["converting"][0]:
        before, after = (statistics.median(run[measure] for run in runs[kind]) for kind in runs)
        summary[measure] = {"converting": before, "reading saved": after}
        print(f"| {measure} | {before:.1f} | {after:.1f} | {after / before:.2f}x |")
    if options.json:
        options.json.write_text(json.dumps({"runs": runs, "medians": summary}, indent=1))


if __name__ == "__main__":
    main()
