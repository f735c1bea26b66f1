"""A converted OpenVINO model is saved once and read by every later start, never wrongly."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bert_serving.client import BertClient
from bert_serving.server.cache_folder import CACHE_ENV
from bert_serving.server.model import EncoderSettings, ModelError, inspect_model
from bert_serving.server.model import forward_cache as forward_cache_module
from bert_serving.server.model.encoder import SentenceEncoder
from bert_serving.server.model.fingerprint import dumps, encoding_fingerprint
from bert_serving.server.model.forward_cache import MODEL_FILE, PROBE_FILE, ForwardCache
from tests.servers import running_server
from tests.test_minilm import TEXTS as MINILM_TEXTS

pytest.importorskip("openvino", reason="the cpu extra installs openvino")

TEXTS = ["a saved model", "answers with the vectors", "of the model it was converted from"]
SETTINGS = EncoderSettings(runtime="openvino", precision="float32")

# a worker's start in a fresh process, where TensorFlow is not loaded yet: it must not be
READ_WITHOUT_TENSORFLOW = """
import json, os, sys
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # as a CPU worker runs
from pathlib import Path
from bert_serving.server.model import EncoderSettings, ModelError, inspect_model
from bert_serving.server.model.encoder import SentenceEncoder
from bert_serving.server.model.forward_cache import ForwardCache

def refuse():
    raise AssertionError("TensorFlow was asked for")

model_dir, identity, folder, texts, precision = sys.argv[1:6]
encoder = SentenceEncoder(
    inspect_model(model_dir),
    EncoderSettings(runtime="openvino", precision=precision),
    threads=1,
    forward_cache=ForwardCache(identity, Path(folder)),
    load_tensorflow=refuse,
)
vectors = encoder.encode(json.loads(texts)).embeddings
print(json.dumps({
    "tensorflow_imported": "tensorflow" in sys.modules,
    "graph_built": encoder.graph is not None,
    "vectors": vectors.tolist(),
}))
"""


def identity_of(model_dir: Path, settings: EncoderSettings = SETTINGS) -> str:
    return dumps(encoding_fingerprint(inspect_model(model_dir), settings))


def cached_encoder(
    model_dir: Path, folder: Path, settings: EncoderSettings = SETTINGS, threads: int = 1
) -> SentenceEncoder:
    cache = ForwardCache(identity_of(model_dir, settings), folder)
    return SentenceEncoder(inspect_model(model_dir), settings, threads=threads, forward_cache=cache)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_a_later_start_reads_the_saved_model_without_tensorflow(
    google_model_dir, tmp_path, precision
):
    settings = EncoderSettings(runtime="openvino", precision=precision)
    first = cached_encoder(google_model_dir, tmp_path, settings)
    assert first.graph is not None  # nothing saved yet: converted from TensorFlow's graph
    entry = ForwardCache(identity_of(google_model_dir, settings), tmp_path).entry(precision)
    assert {path.name for path in entry.iterdir()} == {MODEL_FILE, "model.bin", PROBE_FILE}
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            READ_WITHOUT_TENSORFLOW,
            str(google_model_dir),
            identity_of(google_model_dir, settings),
            str(tmp_path),
            json.dumps(TEXTS),
            precision,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    read = json.loads(answer.stdout.splitlines()[-1])
    assert not read["tensorflow_imported"] and not read["graph_built"]
    # the same compiled arithmetic: not close, identical
    assert np.array_equal(np.array(read["vectors"], np.float32), first.encode(TEXTS).embeddings)


def test_the_converting_worker_and_every_later_one_give_identical_vectors(minilm_dir, tmp_path):
    """The model as saved computes what the converted one did, bit for bit: a server whose
    first worker converted and whose others read agrees with itself (given the same cut of
    the batch into calls: both here keep the default call cost)."""
    settings = EncoderSettings(
        runtime="openvino", precision="float32", pooling_layer=(-1,), max_seq_len=128
    )
    converting = cached_encoder(minilm_dir, tmp_path, settings, threads=2)
    reading = cached_encoder(minilm_dir, tmp_path, settings, threads=2)
    assert converting.graph is not None and reading.graph is None
    rng = np.random.default_rng(0)
    words = " ".join(MINILM_TEXTS).split()
    texts = [" ".join(rng.choice(words, int(rng.integers(3, 90)))) for _ in range(96)]
    assert np.array_equal(converting.encode(texts).embeddings, reading.encode(texts).embeddings)


def test_an_entry_is_named_by_everything_the_model_depends_on(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="fingerprint"):
        ForwardCache("", tmp_path)  # no identity: every model would share one entry
    entry = ForwardCache("fingerprint", tmp_path).entry("float32")
    assert ForwardCache("fingerprint", tmp_path).entry("float32") == entry
    assert ForwardCache("other weights", tmp_path).entry("float32") != entry
    assert ForwardCache("fingerprint", tmp_path).entry("int8") != entry
    monkeypatch.setattr(forward_cache_module, "_versions", lambda: ("2099.1", "tensorflow 9"))
    assert ForwardCache("fingerprint", tmp_path).entry("float32") != entry
    monkeypatch.undo()
    monkeypatch.setattr(forward_cache_module, "_model_code_digest", lambda: "edited bert.py")
    assert ForwardCache("fingerprint", tmp_path).entry("float32") != entry


@pytest.mark.parametrize(
    "setting",
    [  # what TensorFlowForward builds differently, and max_seq_len, which bounds the probe
        {"pooling_strategy": "CLS_TOKEN"},
        {"pooling_layer": (-1,)},
        {"pooling_layer": (-1, -2)},
        {"no_position_embeddings": True},
        {"fp16": True},
        {"max_seq_len": 40},
    ],
)
def test_a_setting_that_changes_the_converted_model_gets_another_entry(
    google_model_dir, tmp_path, setting
):
    """The entry is named from the worker's fingerprint: each setting that the graph or its
    check depends on must change it, or two settings would share one saved model."""
    other = EncoderSettings(runtime="openvino", precision="float32", **setting)
    entries = {
        ForwardCache(identity_of(google_model_dir, settings), tmp_path).entry("float32")
        for settings in (SETTINGS, other)
    }
    assert len(entries) == 2


def truncate_weights(entry: Path) -> None:
    weights = entry / "model.bin"
    weights.write_bytes(weights.read_bytes()[:1000])


def garble_the_graph(entry: Path) -> None:
    (entry / MODEL_FILE).write_text("<net>not a model</net>")


def remove_the_probe(entry: Path) -> None:
    (entry / PROBE_FILE).unlink()


def expect_other_vectors(entry: Path) -> None:
    """A model whose probe says other vectors: as if the files were another model's."""
    with np.load(entry / PROBE_FILE) as stored:
        arrays = dict(stored)
    arrays["expected"] = arrays["expected"][::-1].copy()
    np.savez(entry / PROBE_FILE, **arrays)


@pytest.mark.parametrize(
    "damage", [truncate_weights, garble_the_graph, remove_the_probe, expect_other_vectors]
)
def test_a_damaged_entry_is_converted_again_and_replaced(
    google_model_dir, tmp_path, caplog, damage
):
    exact = SentenceEncoder(
        inspect_model(google_model_dir), EncoderSettings(precision="float32", runtime="tensorflow")
    )
    want = exact.encode(TEXTS).embeddings
    cached_encoder(google_model_dir, tmp_path)
    cache = ForwardCache(identity_of(google_model_dir), tmp_path)
    damage(cache.entry("float32"))
    with caplog.at_level(logging.WARNING):
        again = cached_encoder(google_model_dir, tmp_path)
    assert again.graph is not None  # converted again, not served from the damaged entry
    assert np.abs(again.encode(TEXTS).embeddings - want).max() <= 1e-5
    if damage is expect_other_vectors:  # readable but wrong: the start-up check caught it
        assert "failed its check" in caplog.text and "converting again" in caplog.text
    replaced = cached_encoder(google_model_dir, tmp_path)
    assert replaced.graph is None  # the entry written in its place is whole and right
    assert np.array_equal(replaced.encode(TEXTS).embeddings, again.encode(TEXTS).embeddings)
    assert not [path for path in tmp_path.rglob(".*") if path.is_dir()]  # no staging left


def test_an_entry_is_kept_when_the_runtime_on_this_cpu_fails_its_check(
    google_model_dir, tmp_path, monkeypatch
):
    """The saved model and a fresh conversion both fail: the CPU's runtime is at fault
    (seen: int8 with oneDNN capped to AVX2), and the entry stays for where it passes."""
    cached_encoder(google_model_dir, tmp_path)
    weights = ForwardCache(identity_of(google_model_dir), tmp_path).entry("float32") / "model.bin"
    saved = weights.stat().st_ino

    def failing(*args):
        raise ModelError("the OpenVINO runtime disagrees with TensorFlow on this CPU")

    monkeypatch.setattr("bert_serving.server.model.openvino_forward.compile_checked", failing)
    with pytest.raises(ModelError, match="disagrees"):
        cached_encoder(google_model_dir, tmp_path)  # -runtime openvino: refuses to start
    assert weights.stat().st_ino == saved


def test_of_two_workers_saving_at_once_the_first_entry_stays(google_model_dir, tmp_path):
    cached_encoder(google_model_dir, tmp_path)  # converted and saved
    cache = ForwardCache(identity_of(google_model_dir), tmp_path)
    weights = cache.entry("float32") / "model.bin"
    first = weights.stat().st_ino
    model, probe = cache.load("float32")
    assert not cache.save("float32", model, probe)  # the second worker's save
    assert weights.stat().st_ino == first  # never moved while another worker may read it
    assert [path.name for path in (tmp_path / "openvino").iterdir()] == [weights.parent.name]


def test_a_folder_that_cannot_be_written_is_skipped(google_model_dir, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    for _ in range(2):  # each start converts its own; none fails for the cache
        encoder = cached_encoder(google_model_dir, blocker / "cache")
        assert encoder.graph is not None
        assert encoder.encode(TEXTS).embeddings.shape == (3, 32)


def worker_maps() -> list[str]:
    """The memory maps of this process's worker children (those of a running server)."""
    workers = [p for p in multiprocessing.active_children() if p.name.startswith("WORKER-")]
    assert workers
    return [Path(f"/proc/{worker.pid}/maps").read_text() for worker in workers]


@pytest.mark.slow
def test_a_restarted_server_starts_its_workers_without_tensorflow(
    google_model_dir, tmp_path, monkeypatch
):
    """The first start converts and saves; the second one's workers load no TensorFlow
    (no library of it in their memory) and answer the same vectors."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    answers = []
    for start in ("first", "second"):
        with running_server(google_model_dir, "-runtime", "openvino", "-num_worker", "1") as server:
            loaded = ["pywrap_tensorflow" in maps for maps in worker_maps()]
            assert loaded == [start == "first"], start
            ports = {"port": server.args.port, "port_out": server.args.port_out}
            with BertClient(timeout=60000, **ports) as client:
                answers.append(client.encode(TEXTS))
    assert np.array_equal(*answers)
    assert os.listdir(tmp_path / "openvino")
