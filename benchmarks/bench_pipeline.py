"""The pipeline's own cost of a one-sentence request, for one or more source trees, interleaved.

    python benchmarks/bench_pipeline.py [--trees . ../other-checkout] [--blocks 20]
                                        [--requests 500] [--model_dir DIR] [--json out.json]

Each tree runs in processes of its own (``PYTHONPATH=<tree>/server:<tree>/client``): a front
with no local worker, one fake worker that answers at once (``bench_front.fake_worker``) and
one client sending one sentence at a time. What is left of a round trip is the pipeline:
client, front, worker, front, sink, client, and the Python of each. The trees take turns in
blocks of ``--requests`` requests, the order alternating, so that a shared machine whose
speed drifts by a third within minutes slows them alike. For each tree the table gives the
median of its blocks' p50 round trips and the CPU time a request cost each process; with two
trees, the ratio of the second to the first and in how many paired blocks it was faster.

The fake worker and the CPU accounting come from this checkout's ``bench_front.py``, so an
older tree must still serve it (``_serve_fronts``, ``Membership``, ``ComputeThread``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_front import (
    cpu_seconds,
    cpu_text,
    front_without_workers,
    process_roles,
    start_fake_worker,
    wait_for_workers,
)

SENTENCE = ["a sentence of about the usual length, sent on its own"]
READY = "ready"


def serve(commands, model_dir: str | None) -> None:
    """The runner (in a tree's own processes): start everything, then for each number read
    from stdin run that many requests and print one JSON line of what they cost."""
    context = multiprocessing.get_context("spawn")
    with front_without_workers(model_dir) as (server, ports):
        fake = start_fake_worker(server, ports, 0)
        port, port_out = ports.port, ports.port_out
        wait_for_workers(port, port_out, 1)
        ours, theirs = context.Pipe()
        client = context.Process(target=sequential_client, args=(port, port_out, theirs))
        client.start()
        ours.recv()  # connected
        roles = process_roles(server, [fake])
        print(READY, flush=True)
        for line in commands:
            count = int(line)
            before = {role: cpu_seconds(pids) for role, pids in roles.items()}
            ours.send(count)
            p50, client_cpu = ours.recv()
            cpu = {role: (cpu_seconds(pids) - before[role]) for role, pids in roles.items()}
            cpu["clients"] = client_cpu
            cpu_ms = {role: round(seconds * 1e3 / count, 3) for role, seconds in cpu.items()}
            print(json.dumps({"p50_ms": round(p50 * 1e3, 3), "cpu_ms": cpu_ms}), flush=True)
        ours.send(0)
        client.join()
        fake.terminate()


def sequential_client(port: int, port_out: int, conn) -> None:
    """One sentence at a time, as many as asked; answer (p50 seconds, CPU seconds)."""
    from bert_serving.client import BertClient

    with BertClient(port=port, port_out=port_out, timeout=10000) as bc:
        for _ in range(50):  # the first answers pay for connections and caches
            bc.encode(SENTENCE)
        conn.send(READY)
        while count := conn.recv():
            times = []
            cpu_before = time.process_time()
            for _ in range(count):
                started = time.perf_counter()
                bc.encode(SENTENCE)
                times.append(time.perf_counter() - started)
            conn.send((statistics.median(times), time.process_time() - cpu_before))


def start_runner(tree: Path, model_dir: str | None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{tree / 'server'}{os.pathsep}{tree / 'client'}")
    command = [sys.executable, __file__, "--serve"]
    if model_dir:
        command += ["--model_dir", model_dir]
    runner = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    for line in runner.stdout:
        if line.strip() == READY:
            return runner
    raise RuntimeError(f"the pipeline of {tree} did not start (exit code {runner.wait()})")


def measure(trees: list[Path], blocks: int, requests: int, model_dir: str | None) -> dict:
    runners = [start_runner(tree, model_dir) for tree in trees]
    results: list[list[dict]] = [[] for _ in trees]
    try:
        for block in range(blocks):
            order = range(len(trees)) if block % 2 == 0 else reversed(range(len(trees)))
            for index in order:
                runners[index].stdin.write(f"{requests}\n")
                runners[index].stdin.flush()
                results[index].append(json.loads(runners[index].stdout.readline()))
    finally:
        for runner in runners:
            runner.stdin.close()
            runner.wait(60)
    return {"trees": [summary(tree, rows) for tree, rows in zip(trees, results)]}


def summary(tree: Path, rows: list[dict]) -> dict:
    roles = rows[0]["cpu_ms"]
    cpu = {role: round(statistics.median(row["cpu_ms"][role] for row in rows), 3) for role in roles}
    return {
        "tree": str(tree),
        "p50_ms": round(statistics.median(row["p50_ms"] for row in rows), 3),
        "block_p50s_ms": [row["p50_ms"] for row in rows],
        "cpu_ms_per_request": cpu,
        "cpu_ms_total": round(sum(cpu.values()), 3),
    }


def print_report(report: dict) -> None:
    print(f"# one-sentence round trips, fake worker: {report['cpu']}, {report['cores']} cores")
    for row in report["trees"]:
        costs = cpu_text(row["cpu_ms_per_request"])
        print(
            f"{row['tree']}: p50 {row['p50_ms']:.3f} ms; CPU ms a request: {costs} "
            f"(total {row['cpu_ms_total']:.2f})"
        )
    if len(report["trees"]) == 2:
        first, second = report["trees"]
        faster = sum(
            b < a for a, b in zip(first["block_p50s_ms"], second["block_p50s_ms"], strict=True)
        )
        print(
            f"second / first: p50 {second['p50_ms'] / first['p50_ms']:.2f}x, CPU "
            f"{second['cpu_ms_total'] / first['cpu_ms_total']:.2f}x; the second faster in "
            f"{faster} of {len(first['block_p50s_ms'])} paired blocks"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", type=Path, nargs="+", default=[Path(".")])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--requests", type=int, default=500, help="one-sentence requests a block")
    parser.add_argument("--model_dir", default=None, help="the served model (default: MiniLM)")
    parser.add_argument("--json", default=None, help="also write the report to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(sys.stdin, options.model_dir)
        return
    from bench_peers import cpu_description, cpu_line

    trees = [tree.resolve() for tree in options.trees]
    report = measure(trees, options.blocks, options.requests, options.model_dir)
    report.update(cpu=cpu_line(cpu_description()), cores=os.cpu_count())
    print_report(report)
    if options.json:
        with open(options.json, "w") as out:
            json.dump(report, out, indent=1)


if __name__ == "__main__":
    main()
