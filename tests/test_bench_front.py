"""benchmarks/bench_front.py runs end to end: a front, fake workers, clients, a table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_front.py"


@pytest.mark.slow
def test_one_front_with_fake_workers_prints_its_routing_rate(google_model_dir, tmp_path):
    out = tmp_path / "front.json"
    command = [sys.executable, str(SCRIPT), "--model_dir", str(google_model_dir)]
    command += ["--workers", "1", "2", "--batches", "1", "8", "--clients", "2", "--seconds", "1"]
    done = subprocess.run(
        [*command, "--json", str(out)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(row["workers"], row["batch"]) for row in rows] == [(1, 1), (1, 8), (2, 1), (2, 8)]
    assert all(row["sentences_per_s"] > 0 for row in rows)
    for row in rows:  # what a request cost each process, every one of them busy
        costs = row["cpu_ms_per_request"]
        assert set(costs) == {"front", "sink", "workers", "clients"}
        assert all(ms > 0 for ms in costs.values()), row
    assert "CPU ms a request: front " in done.stdout
    assert "2 fake workers, batch   8, 2 clients:" in done.stdout
    cpu = json.loads(out.read_text())["machine"]["cpu"]  # named as bench_peers names it
    header = done.stdout.splitlines()[0]
    assert header.startswith(f"# one front, fake workers: {cpu['model']} (")
    assert header.count(cpu["model"]) == 1  # once, with its ISA, not again in a dict
    assert isinstance(cpu["isa"], list)
