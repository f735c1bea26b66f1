"""The PyPI client ``bert-serving-client==1.10.0``, unmodified, against this project's server.

The 1.10 client has the same import name as ours (``bert_serving.client``), so it lives in a
virtualenv of its own, made once per test session under pytest's tmp dir; the client side
runs as ``tests/compat/client_110_session.py`` with that venv's interpreter and reports JSON.

Versions: 1.10.0 imports and works on Python 3.11 with today's numpy (2.x) and pyzmq (27.x)
(it uses ``np.frombuffer`` and ``zmq.utils.jsonapi``, both still there), so nothing is pinned.
Installing reaches PyPI; where pip cannot, the tests skip and say why.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bert_serving.server import __version__ as server_version
from bert_serving.server.model import inspect_model
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder
from tests.servers import running_server

pytestmark = pytest.mark.slow  # every test here starts a server (or uses one)

CLIENT_110 = "bert-serving-client==1.10.0"
CLIENT_SCRIPT = Path(__file__).parent / "compat" / "client_110_session.py"
PIP_SECONDS = 600
SCRIPT_SECONDS = 120
SERVER_OPTIONS = ("-show_tokens_to_client", "-max_batch_size", "4")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@pytest.fixture(scope="session")
def client_110_python(tmp_path_factory) -> Path:
    """The interpreter of a fresh venv holding the 1.10 client, or a skip saying why not."""
    env_dir = tmp_path_factory.mktemp("venv_client_110")
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(env_dir)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtualenv: {_last_line(made.stderr)}")
    python = env_dir / "bin" / "python"
    try:
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", CLIENT_110, "numpy", "pyzmq"],
            capture_output=True,
            text=True,
            timeout=PIP_SECONDS,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"cannot install {CLIENT_110}: pip took over {PIP_SECONDS} s")
    if installed.returncode != 0:
        pytest.skip(f"cannot install {CLIENT_110}: {_last_line(installed.stderr)}")
    return python


@pytest.fixture(scope="module")
def server(google_model_dir):
    with running_server(google_model_dir, *SERVER_OPTIONS) as running:
        yield running


@pytest.fixture(scope="module")
def reference(google_model_dir, server) -> SentenceEncoder:
    """The same model with the server's own settings, in this process."""
    return SentenceEncoder(inspect_model(google_model_dir), EncoderSettings.from_args(server.args))


def run_client_110(python: Path, server, mode: str) -> tuple[dict, float]:
    """Run one mode of the 1.10 script; its JSON report and the wall time it took."""
    started = time.monotonic()
    try:
        finished = subprocess.run(
            [
                str(python),
                str(CLIENT_SCRIPT),
                mode,
                str(server.args.port),
                str(server.args.port_out),
            ],
            capture_output=True,
            text=True,
            timeout=SCRIPT_SECONDS,
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the 1.10 client hung ({mode}) for {SCRIPT_SECONDS} s: {hung.stderr!r}")
    seconds = time.monotonic() - started
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert "crashed" not in report, report.get("crashed")
    return report, seconds


@pytest.fixture(scope="module")
def session_report(client_110_python, server) -> dict:
    report, _ = run_client_110(client_110_python, server, "session")
    return report


def test_the_110_client_is_the_real_one(session_report):
    assert session_report["client_version"] == "1.10.0"


def test_config_has_the_fields_the_110_client_reads(session_report, server):
    config = session_report["config"]
    assert config["server_version"] == server_version
    assert config["max_seq_len"] == server.args.max_seq_len == 25
    assert config["show_tokens_to_client"] is True
    assert config["max_batch_size"] == 4


def test_status_answers_with_statistics(session_report):
    status = session_report["status"]
    assert status["server_version"] == server_version
    assert "statistic" in status


def test_encoded_strings_equal_the_in_process_encoder(session_report, reference):
    texts = session_report["texts"]
    plain = session_report["plain"]
    assert plain["dtype"] == "float32"
    got = np.array(plain["vectors"], dtype=np.float32)
    expected = reference.encode(texts).embeddings
    assert got.shape == expected.shape == (len(texts), 32)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_show_tokens_returns_the_servers_tokens(session_report, reference):
    texts = session_report["texts"]
    shown = session_report["shown"]
    expected = reference.encode(texts)
    np.testing.assert_allclose(np.array(shown["vectors"]), expected.embeddings, atol=1e-5)
    assert shown["tokens"] == expected.tokens
    assert shown["tokens"][0] == ["[CLS]", "hello", "world", "[SEP]"]
    assert shown["tokens"][1].count("[SEP]") == 2  # the ||| pair
    assert len(shown["tokens"][5]) == 25  # truncated to -max_seq_len


def test_tokenized_input_with_tokens(session_report, reference):
    tokenized_texts = session_report["tokenized_texts"]
    tokenized = session_report["tokenized"]
    expected = reference.encode(tokenized_texts, is_tokenized=True)
    np.testing.assert_allclose(np.array(tokenized["vectors"]), expected.embeddings, atol=1e-5)
    assert tokenized["tokens"] == expected.tokens
    assert tokenized["tokens"][0] == ["[CLS]", "hello", "world", "[SEP]"]


def test_non_blocking_encodes_fetched_all_in_order(session_report, reference):
    texts = session_report["texts"]
    fetched = np.array(session_report["fetched"]["vectors"])
    assert fetched.shape == (len(texts), 32)
    np.testing.assert_allclose(fetched, reference.encode(texts).embeddings, atol=1e-5)
    assert session_report["pending_after_fetch"] == 0


def test_list_output_format(session_report, reference):
    listed = session_report["listed"]
    assert listed["type"] == "list"
    texts = session_report["texts"][:2]
    np.testing.assert_allclose(
        np.array(listed["vectors"]), reference.encode(texts).embeddings, atol=1e-5
    )


def test_default_version_check_refuses_a_2x_server_quickly(client_110_python, server):
    """1.10 compares server_version with its own and raises AttributeError on a mismatch."""
    report, _ = run_client_110(client_110_python, server, "version_check")
    assert report["raised"] == "AttributeError", report
    assert "version mismatch" in report["message"]
    assert server_version in report["message"] and "1.10.0" in report["message"]
    assert report["seconds"] < 10, report


def test_clients_connecting_at_once_all_get_their_first_config(client_110_python, server):
    """The slow joiner: no first answer may be published before its subscription arrived."""
    report, _ = run_client_110(client_110_python, server, "crowd")
    clients = report["clients"]
    assert len(clients) == 24
    failed = [client for client in clients if not client["ok"]]
    assert not failed, failed
    assert all(client["max_seq_len"] == 25 for client in clients)
    assert max(client["seconds"] for client in clients) < 10, clients


def test_an_answer_waits_for_a_subscription_that_arrives_late(client_110_python, server):
    """Deterministic slow joiner: asked while unsubscribed, answered once subscribed."""
    report, _ = run_client_110(client_110_python, server, "late_listener")
    assert report["ok"], report
    assert report["server_version"] == server_version
    assert report["seconds"] < 5, report
