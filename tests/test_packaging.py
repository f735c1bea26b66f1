"""What the server package declares is what it needs: ``./server[http]`` alone, in a fresh
virtualenv with no client package, starts a front and its HTTP proxy; the benchmark extra,
which needs this project's client, is refused rather than served PyPI's 1.10 client."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.servers import free_ports

pytestmark = pytest.mark.slow  # a virtualenv, an install, a server

ROOT = Path(__file__).resolve().parents[1]
PIP_SECONDS = 900


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of ./server: building in place would leave build/ in the work tree."""
    copy = tmp_path_factory.mktemp("server_source") / "server"
    shutil.copytree(ROOT / "server", copy, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    return copy


@pytest.fixture(scope="module")
def server_only_python(tmp_path_factory, source) -> Path:
    """A fresh virtualenv with ``./server[http]`` installed, and nothing else of ours."""
    env_dir = tmp_path_factory.mktemp("venv_server_http")
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{source}[http]"],
        capture_output=True,
        text=True,
        timeout=PIP_SECONDS,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return python


def test_the_http_extra_alone_runs_a_front_and_its_proxy(server_only_python, hf_model_dir):
    no_client = subprocess.run(
        [str(server_only_python), "-c", "import bert_serving.client"], capture_output=True
    )
    assert no_client.returncode != 0, "the client package must not be installed here"
    port, port_out, port_worker, http_port = free_ports(4)
    command = [str(server_only_python), "-m", "bert_serving.server.cli.start"]
    command += ["-model_dir", str(hf_model_dir), "-num_worker", "0"]  # safetensors: no TF
    command += ["-port", str(port), "-port_out", str(port_out), "-port_worker", str(port_worker)]
    command += ["-http_port", str(http_port), "-bind_ip", "127.0.0.1"]
    front = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        health = _wait_for_health(f"http://127.0.0.1:{http_port}/health", front)
        assert health == {
            "status": "ok",
            "ready": True,
            "server_version": health["server_version"],
            "workers_serving": 0,
        }
    finally:
        front.terminate()
        _, errors = front.communicate(timeout=60)
    assert "Traceback" not in errors, errors[-3000:]


def test_the_benchmark_extra_refuses_pypis_110_client(server_only_python, source):
    extra = f"{source}[benchmark]"
    refused = subprocess.run(
        [str(server_only_python), "-m", "pip", "install", "--dry-run", "-q", extra],
        capture_output=True,
        text=True,
        timeout=PIP_SECONDS,
    )
    assert refused.returncode != 0
    assert "bert-serving-client" in refused.stderr


def _wait_for_health(url: str, front: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert front.poll() is None, front.stderr.read()[-3000:]
        try:
            answer = requests.get(url, timeout=5)
            if answer.status_code == 200 and answer.json()["ready"]:
                return answer.json()
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 and ready within 120 s")
