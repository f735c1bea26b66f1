"""benchmarks/bench_peers.py runs end to end in smoke mode on the tiny model.

In the main venv torch, sentence-transformers and onnxruntime are absent: the script must
name each skipped peer with its reason and still measure the raw forward and the server.
Only the shape of the report is checked, never a speed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the benchmark commands start servers

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_peers.py"
RAW = "raw forward"
SERVERS = ("server (one call)", "server (batches of 256)")
PEER_MODULES = {
    "sentence-transformers": "sentence_transformers",
    "onnxruntime": "onnxruntime",
    "onnxruntime+optimizer": "onnxruntime",
}


@pytest.fixture(scope="module")
def smoke(hf_model_dir: Path, tmp_path_factory) -> tuple[str, dict]:
    """One smoke run: its stdout and its JSON report."""
    work_dir = tmp_path_factory.mktemp("bench_peers")
    command = [sys.executable, str(SCRIPT), "--smoke", "--model-dir", str(hf_model_dir)]
    command += ["--work-dir", str(work_dir)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, json.loads((work_dir / "results.json").read_text())


@pytest.mark.parametrize("peer", PEER_MODULES)
def test_a_missing_peer_is_skipped_with_its_reason(smoke, peer: str) -> None:
    module = PEER_MODULES[peer]
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    stdout, report = smoke
    assert re.search(rf"^skipped {re.escape(peer)}: .*'{module}'", stdout, re.MULTILINE)
    assert module in report["skipped"][peer]
    assert peer not in report["throughput"]


def test_raw_and_server_rows_and_ratios_are_printed(smoke) -> None:
    stdout, _ = smoke
    for name in (RAW, *SERVERS):
        assert re.search(rf"^  {re.escape(name)} +[\d.]+ +[\d.]+$", stdout, re.MULTILINE), name
    for server in SERVERS:
        assert re.search(rf"^  {re.escape(server)} / {RAW} +[\d.]+x$", stdout, re.MULTILINE)
        assert f"{server}: server overhead" in stdout


def test_the_server_agrees_with_the_raw_forward(smoke) -> None:
    _, report = smoke
    for server in SERVERS:
        assert report["agreement"][server]["ok"], report["agreement"][server]


def test_the_json_holds_speeds_latencies_and_a_concurrency_curve(smoke) -> None:
    _, report = smoke
    for name in (RAW, *SERVERS):
        rate = report["throughput"][name]
        assert rate["best"] > 0 and len(rate["rounds"]) == 1
    for name in (RAW, SERVERS[0]):
        latency = report["latency_ms"][name]
        assert 0 < latency["p50"] <= latency["p99"] and latency["samples"] == 5
    assert [point["clients"] for point in report["concurrency"]] == [1, 2]
    assert all(point["best"] > 0 for point in report["concurrency"])
    assert report["ratios"][f"{SERVERS[0]} / {RAW}"] > 0


def test_the_cpu_and_its_instructions_head_the_report(smoke) -> None:
    stdout, report = smoke
    cpu = report["environment"]["cpu"]
    assert cpu["model"] and isinstance(cpu["isa"], list)
    assert re.search(rf"^CPU {re.escape(cpu['model'])} \(", stdout, re.MULTILINE)
    for name in cpu["isa"]:
        assert name in (
            "AVX2",
            "AVX-512",
            "AVX512-VNNI",
            "AVX-VNNI",
            "AVX512-BF16",
            "AMX-BF16",
            "AMX-INT8",
        )


def test_openvino_and_int8_rows_are_measured_and_checked(smoke) -> None:
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed here")
    _, report = smoke
    # the engine the raw forward does not run on (auto's choice differs between CPUs)
    (other,) = {"raw forward, openvino", "raw forward, tensorflow"} & set(report["throughput"])
    for name in (other, "raw forward, int8"):
        assert report["throughput"][name]["best"] > 0
        assert report["agreement"][name]["ok"], report["agreement"][name]
    if report["raw_forward"]["precision"] == "float32":  # the same vectors on either engine
        assert report["agreement"][other]["max_abs_diff"] <= 1e-5
    else:  # two engines' bfloat16 (AMX CPUs): each rounds its own way
        assert report["raw_forward"] == {"precision": "bfloat16", "runtime": "openvino"}
        assert other == "raw forward, tensorflow"
    assert report["agreement"]["raw forward, int8"]["max_abs_diff"] > 1e-5  # really int8


def load_script():
    spec = importlib.util.spec_from_file_location("bench_peers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_long_corpus_holds_texts_of_30_to_130_tokens(minilm_dir: Path) -> None:
    from bert_serving.server.tokenization import BertTokenizer

    tokenizer = BertTokenizer.from_file(minilm_dir / "vocab.txt", lowercase=True)
    script = load_script()
    texts = script.long_corpus(500, 0)
    assert texts == script.long_corpus(500, 0)  # seeded
    lengths = [len(tokenizer.tokenize(text)) + 2 for text in texts]
    assert min(lengths) >= 25 and max(lengths) <= 140
    assert 70 <= sum(lengths) / len(lengths) <= 90
