"""benchmarks/bench_pipeline.py runs end to end: two trees' pipelines, interleaved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_pipeline.py"


@pytest.mark.slow
def test_two_trees_take_turns_and_the_report_compares_them(google_model_dir, tmp_path):
    out = tmp_path / "pipeline.json"
    command = [sys.executable, str(SCRIPT), "--trees", str(ROOT), str(ROOT)]
    command += ["--blocks", "3", "--requests", "20", "--model_dir", str(google_model_dir)]
    done = subprocess.run(
        [*command, "--json", str(out)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [row["tree"] for row in report["trees"]] == [str(ROOT), str(ROOT)]
    for row in report["trees"]:
        assert len(row["block_p50s_ms"]) == 3 and row["p50_ms"] > 0
        assert set(row["cpu_ms_per_request"]) == {"front", "sink", "workers", "clients"}
        assert row["cpu_ms_total"] > 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# one-sentence round trips, fake worker: ")
    assert "the second faster in " in lines[-1] and lines[-1].endswith("of 3 paired blocks")
