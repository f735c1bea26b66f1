"""Peer benchmark: this project against sentence-transformers and ONNX Runtime, in one run.

    python benchmarks/bench_peers.py [--sentences 2048] [--rounds 3] [--smoke]
    make bench-peers       # in .venv-peers, which has torch, sentence-transformers, onnxruntime

Every method encodes the same seeded corpus with the same weights (all-MiniLM-L6-v2, or
--model-dir), truncating at the same --max-seq-len (special tokens included):

  sentence-transformers    SentenceTransformer(folder, device="cpu").encode with its own
                           default batching (32, length-sorted). Normalisation is left to the
                           folder's modules: all-MiniLM-L6-v2 ends with Normalize, so its
                           vectors are unit length (normalize_embeddings is not passed).
  onnxruntime              the weights exported once with torch.onnx (transformers' BertModel,
                           dynamic batch and sequence axes; cached in --work-dir), CPU
                           provider, ORT_ENABLE_ALL, one intra-op thread per core; texts
                           tokenized by tokenizers' BertWordPieceTokenizer on vocab.txt
                           (lower-cased), batches of --ort-batch sorted by token count, each
                           padded to its longest; mean pooling in numpy. Needs torch only to
                           export: a cached .onnx runs without it.
  onnxruntime+optimizer    the same on the output of onnxruntime.transformers.optimizer
                           (model_type bert)
  raw forward              this project's SentenceEncoder in this process, with the server's
                           settings: REDUCE_MEAN of the last layer (-pooling_layer -1), which
                           is sentence-transformers' mean pooling before normalisation, and
                           --precision (auto by default, as the server's users get it)
  raw forward, openvino    the same SentenceEncoder, in the same precision, on the runtime
  (or , tensorflow)        that the raw forward does not use: both engines in one run
  raw forward, int8        the same with -precision int8 (OpenVINO, int8 weights and
                           dynamically quantized activations); its vectors are checked
                           against --int8-min-cosine instead of --tolerance
  server (one call)        bert-serving-start in a subprocess (-cpu -num_worker 1
                           -pooling_layer -1 -max_seq_len N -precision P -runtime R, free
                           ports), one
                           BertClient.encode of all sentences
  server (batches of B)    the same server, one encode call per --server-batch sentences

--corpus short (the default) is one- or two-clause sentences of about 27 tokens; --corpus
long joins them into texts of 30 to 130 tokens, where per-token costs dominate.

The header and the JSON name the CPU and its vector instructions (AVX2, AVX-512, VNNI,
AMX) and ONEDNN_MAX_CPU_ISA when it is set, since every figure depends on them.

Correctness: each method's vectors are compared once with the raw forward's, all L2-normalised
(so that normalising and non-normalising methods compare alike); a difference above
--tolerance is reported as a mismatch and the exit status is 1.

Throughput is the best of --rounds rounds after one warm-up pass, the methods interleaved
within each round so that noise from other work on the machine hits all of them alike.
Latency: one sentence per call, the methods taking turns in blocks of 10, each after a
pause. The concurrency curve runs N client processes (processes rather than threads: in
one process every BertClient's receiving and decoding would share one GIL, and the client
would be measured instead of the server), each with its own BertClient sending its share
of batches of --client-batch sentences; every point encodes the whole corpus; sentences/s
is that total over the span from the first client's start to the last client's end
(CLOCK_MONOTONIC is shared by all processes), best of --rounds rounds.

Peers are optional: a method whose packages are missing is skipped with the reason, and
the rest still runs. Everything goes to --output as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import platform
import queue
import random
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

if TYPE_CHECKING:  # imported where used: spawned client processes import this module too
    from bert_serving.client import BertClient
    from bert_serving.server.model import SentenceEncoder

# sentence-transformers and transformers must read the local folder, never a hub
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DIR = REPO / "artifacts" / "peers"
RAW = "raw forward"
RAW_ON = "raw forward, {runtime}"  # the runtime the raw forward does not use
RAW_INT8 = "raw forward, int8"
SERVER = "server (one call)"
LONG_TOKENS = (30, 130)  # --corpus long: tokens per text, [CLS] and [SEP] included
WORDS_PER_TOKEN = 0.88  # of this grammar's text under BERT's WordPiece (punctuation counts)
ISA_FLAGS = {  # /proc/cpuinfo flag -> the name tables use
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}
SMOKE = {  # small enough for a tiny random model (64 positions) and under a minute
    "sentences": 64,
    "max_seq_len": 64,
    "rounds": 1,
    "latency_samples": 5,
    "concurrency": [1, 2],
    "client_batch": 16,
}
SERVER_READY_TIMEOUT_S = 300
CLIENT_TIMEOUT_MS = 600_000
CLIENT_PROCESS_TIMEOUT_S = 900
LATENCY_BLOCK = 10
SPIN_DOWN_S = 1.0  # idle time before each timed throughput run and latency block
VERSIONS_OF = (
    "bert-serving-server",
    "tensorflow-cpu",
    "tensorflow",
    "numpy",
    "torch",
    "transformers",
    "sentence-transformers",
    "onnx",
    "onnxscript",
    "onnxruntime",
)

# ---- the corpus -------------------------------------------------------------------------

SUBJECTS = (
    "the old farmer",
    "my younger sister",
    "a small group of students",
    "the new manager",
    "our neighbour across the street",
    "the tired doctor",
    "a young engineer",
    "the teacher",
    "most of the visitors",
    "the local bakery",
    "her grandfather",
    "the city council",
    "a friendly stranger",
    "the children in the park",
    "his best friend",
    "the author",
)
VERBS = (
    "carried",
    "noticed",
    "repaired",
    "painted",
    "described",
    "forgot",
    "ordered",
    "cleaned",
    "borrowed",
    "discovered",
    "recommended",
    "photographed",
    "criticised",
    "explained",
    "delivered",
    "sold",
)
OBJECTS = (
    "the broken fence",
    "a letter from the bank",
    "three heavy boxes of books",
    "the wooden table",
    "an unusual bird",
    "the weekly report",
    "a cheap bicycle",
    "the garden behind the house",
    "a cup of strong coffee",
    "the old photographs",
    "the plan for the new bridge",
    "a basket of fresh apples",
    "the difficult question",
)
PLACES = (
    "near the river",
    "after the long meeting",
    "in the quiet library",
    "on a cold morning",
    "before lunch",
    # word lists of the seeded corpus: alike in shape on purpose
    "at the edge of the town",
    "during the storm",
    "in front of everyone",
    "without any help",
    "late in the evening",
    "at the train station",
)
ADVERBS = ("quickly", "carefully", "quietly", "finally", "once again", "proudly")
OPENINGS = (
    "yesterday",
    "last winter",
    "according to the newspaper",
    "in the end",
    "as expected",
    "to everyone's surprise",
    "on the first day",
)
LINKS = ("and", "but", "so", "while", "because", "although")
ENDINGS = (
    "before anyone else arrived",
    "as the sun went down",
    "for the second time this year",
    "even though nobody had asked",
    "just as the rain began",
    "with surprising patience",
)


def corpus(count: int, seed: int) -> list[str]:
    """Seeded English-like sentences of one or two clauses, so that lengths vary as real
    text does (about 27 tokens on average with [CLS] and [SEP])."""
    rng = random.Random(seed)
    return [_sentence(rng) for _ in range(count)]


def long_corpus(count: int, seed: int) -> list[str]:
    """Texts of about 30 to 130 tokens: sentences of the same grammar joined until a drawn
    length (uniform in LONG_TOKENS) is reached, then cut at a word boundary."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        words_wanted = int(rng.randint(*LONG_TOKENS) * WORDS_PER_TOKEN)
        words: list[str] = []
        while len(words) < words_wanted:
            words += _sentence(rng).split()
        texts.append(" ".join(words[:words_wanted]))
    return texts


CORPORA = {"short": corpus, "long": long_corpus}


def _clause(rng: random.Random) -> str:
    words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
    if rng.random() < 0.3:
        words.insert(1, rng.choice(ADVERBS))
    if rng.random() < 0.7:
        words.append(rng.choice(PLACES))
    return " ".join(words)


def _sentence(rng: random.Random) -> str:
    text = _clause(rng)
    if rng.random() < 0.4:
        text = f"{rng.choice(OPENINGS)}, {text}"
    if rng.random() < 0.75:
        text += f", {rng.choice(LINKS)} {_clause(rng)}"
    if rng.random() < 0.4:
        text += f" {rng.choice(ENDINGS)}"
    return text[0].upper() + text[1:] + rng.choice(".....!?")


# ---- the methods ------------------------------------------------------------------------


@dataclass
class Method:
    """One way to encode: sentences in, vectors [N, D] out."""

    name: str
    encode: Callable[[list[str]], np.ndarray]
    # timed one sentence per call too (not for a second row of the same engine)
    latency: bool = True
    # lossy by design (int8): checked by its lowest cosine to the raw forward instead
    min_cosine: float | None = None


class UnavailableError(Exception):
    """A peer that cannot run here; the message says why."""


@dataclass(frozen=True)
class Setup:
    """What every method shares: the weights, the truncation and where files go."""

    model_dir: Path
    max_len: int
    precision: str  # of the raw forward and the server (the peers compute in float32)
    runtime: str  # -runtime of the raw forward and the server
    work_dir: Path
    ort_batch: int


def require_hf_folder(setup: Setup) -> None:
    """The peers read Hugging Face folders only (config.json + model.safetensors)."""
    for name in ("config.json", "model.safetensors"):
        if not (setup.model_dir / name).is_file():
            raise UnavailableError(f"{setup.model_dir} has no {name} (not a Hugging Face folder)")


def sentence_transformers_method(setup: Setup) -> Method:
    """SentenceTransformer as its users call it: local folder, CPU, default batching."""
    require_hf_folder(setup)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise UnavailableError(f"not importable ({error})") from None
    model = SentenceTransformer(str(setup.model_dir), device="cpu")
    model.max_seq_length = setup.max_len
    return Method(
        "sentence-transformers", lambda texts: model.encode(texts, show_progress_bar=False)
    )


def onnxruntime_method(setup: Setup) -> Method:
    """ONNX Runtime on the exported graph as ORT's own graph optimisations leave it."""
    return _ort_method("onnxruntime", exported_onnx(setup), setup)


def onnxruntime_optimized_method(setup: Setup) -> Method:
    """ONNX Runtime after its transformer optimizer (fused operators where it finds them)."""
    return _ort_method("onnxruntime+optimizer", optimized_onnx(exported_onnx(setup)), setup)


def _import_onnxruntime():
    """The onnxruntime module, or the reason it cannot be used."""
    try:
        import onnxruntime
    except ImportError as error:
        raise UnavailableError(f"not importable ({error})") from None
    return onnxruntime


def exported_onnx(setup: Setup) -> Path:
    """The model as ONNX, exported once per weights file and then read from the cache."""
    require_hf_folder(setup)
    _import_onnxruntime()
    path = setup.work_dir / f"{setup.model_dir.name}-{_weights_digest(setup.model_dir)}.onnx"
    if not path.is_file():
        _export_onnx(setup.model_dir, path)
    return path


def _weights_digest(model_dir: Path) -> str:
    """A short hash of config and weights, so that a cache never serves other weights."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        digest.update((model_dir / name).read_bytes())
    return digest.hexdigest()[:12]


def _export_onnx(model_dir: Path, path: Path) -> None:
    """torch.onnx.export of BertModel's last hidden state, batch and sequence dynamic.

    The torch.export-based exporter (dynamo=True) is used: the TorchScript tracer bakes
    transformers' data-dependent attention-mask branches into the graph, which then ignores
    padding (seen here with transformers 5.23: padded rows off by more than 1).
    """
    try:
        import torch
        from transformers import BertModel
    except ImportError as error:
        raise UnavailableError(f"no cached {path.name} and cannot export it ({error})") from None
    print(f"exporting {model_dir} to {path} ...", file=sys.stderr, flush=True)
    model = BertModel.from_pretrained(str(model_dir)).eval()
    # three distinct tensors: the exporter would treat one tensor passed twice as one input
    example = [torch.ones((2, 8), dtype=torch.int64) for _ in range(2)]
    example.append(torch.zeros((2, 8), dtype=torch.int64))
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    partial = path.with_suffix(".partial.onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        last_hidden_state_module(model),
        tuple(example),
        str(partial),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_shapes=({0: batch, 1: sequence},) * 3,
        dynamo=True,
        external_data=False,
    )
    partial.replace(path)


def last_hidden_state_module(model):
    """BertModel with positional inputs and one output, as the exporter wants it (the class
    is made here because torch is imported only when exporting)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return LastHiddenState().eval()


def optimized_onnx(source: Path) -> Path:
    """onnxruntime.transformers.optimizer's rewrite of ``source``, cached beside it."""
    path = source.with_name(f"{source.stem}-optimized.onnx")
    if path.is_file():
        return path
    try:
        from onnxruntime.transformers import optimizer
    except ImportError as error:
        raise UnavailableError(f"its optimizer is not importable ({error})") from None
    model = optimizer.optimize_model(str(source), model_type="bert", num_heads=0, hidden_size=0)
    fused = {name: count for name, count in model.get_fused_operator_statistics().items() if count}
    print(f"ORT transformer optimizer fused: {fused}", file=sys.stderr, flush=True)
    model.save_model_to_file(str(path))
    return path


def _ort_method(name: str, path: Path, setup: Setup) -> Method:
    """An InferenceSession with every graph optimisation and a thread per core, behind a
    length-sorted batcher: ORT as a user who tunes it for this CPU would run it."""
    ort = _import_onnxruntime()
    from tokenizers import BertWordPieceTokenizer

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = cpu_cores()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tokenizer = BertWordPieceTokenizer(str(setup.model_dir / "vocab.txt"), lowercase=True)
    tokenizer.enable_truncation(setup.max_len)
    inputs = [node.name for node in session.get_inputs()]

    def encode(texts: list[str]) -> np.ndarray:
        encodings = tokenizer.encode_batch(texts)
        order = np.argsort([len(encoding.ids) for encoding in encodings], kind="stable")
        result = None
        for start in range(0, len(order), setup.ort_batch):
            rows = order[start : start + setup.ort_batch]
            feed = _padded([encodings[row] for row in rows])
            pooled = _mean_pool(session.run(None, {k: feed[k] for k in inputs})[0], feed)
            if result is None:
                result = np.empty((len(texts), pooled.shape[1]), np.float32)
            result[rows] = pooled
        return result

    return Method(name, encode)


def _padded(encodings: list) -> dict[str, np.ndarray]:
    """Token ids, mask and segments of one batch, padded to its longest row only."""
    width = max(len(encoding.ids) for encoding in encodings)
    feed = {
        name: np.zeros((len(encodings), width), np.int64)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    for row, encoding in enumerate(encodings):
        length = len(encoding.ids)
        feed["input_ids"][row, :length] = encoding.ids
        feed["attention_mask"][row, :length] = 1
        feed["token_type_ids"][row, :length] = encoding.type_ids
    return feed


def _mean_pool(hidden: np.ndarray, feed: dict[str, np.ndarray]) -> np.ndarray:
    """Mean over the real tokens, as sentence-transformers' Pooling(mean) computes it."""
    mask = feed["attention_mask"][..., None].astype(np.float32)
    return (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)


def raw_encoder(setup: Setup, **overrides: str) -> SentenceEncoder:
    """This project's SentenceEncoder with exactly the settings the server is started with
    (``overrides``: another -runtime or -precision for an extra row)."""
    from bert_serving.server.model import SentenceEncoder

    settings = {"precision": setup.precision, "runtime": setup.runtime, **overrides}
    encoder = SentenceEncoder.from_pretrained(
        setup.model_dir,
        max_seq_len=setup.max_len,
        pooling_strategy="REDUCE_MEAN",
        pooling_layer=(-1,),
        **settings,
    )
    encoder.warm_up()  # as a worker does: it measures the cost of a call, which cuts batches
    return encoder


def raw_methods(setup: Setup, min_cosine: float) -> tuple[SentenceEncoder, list[Method], dict]:
    """The raw forward as the server runs it, plus the same precision on the other runtime
    and int8 rows; a row that cannot load is skipped with why."""
    encoder = raw_encoder(setup)
    methods = [_encoder_method(RAW, encoder)]
    other = "tensorflow" if encoder.runtime == "openvino" else "openvino"
    extra = {
        RAW_ON.format(runtime=other): ({"precision": encoder.precision, "runtime": other}, None),
        RAW_INT8: ({"precision": "int8", "runtime": "auto"}, min_cosine),
    }
    skipped = {}
    for name, (overrides, cosine) in extra.items():
        try:
            methods.append(_encoder_method(name, raw_encoder(setup, **overrides), cosine))
        except Exception as error:  # e.g. openvino not installed: the other rows still run
            skipped[name] = f"{type(error).__name__}: {error}"
    return encoder, methods, skipped


def _encoder_method(name: str, encoder: SentenceEncoder, min_cosine: float | None = None):
    return Method(name, lambda batch: encoder.encode(batch).embeddings, min_cosine=min_cosine)


PEERS: tuple[tuple[str, Callable[[Setup], Method]], ...] = (
    ("sentence-transformers", sentence_transformers_method),
    ("onnxruntime", onnxruntime_method),
    ("onnxruntime+optimizer", onnxruntime_optimized_method),
)


def peer_methods(setup: Setup) -> tuple[list[Method], dict[str, str]]:
    """The peers that can run here, and why each of the others cannot."""
    methods, skipped = [], {}
    for name, build in PEERS:
        try:
            methods.append(build(setup))
        except UnavailableError as reason:
            skipped[name] = str(reason)
        except Exception as error:  # a peer that fails to load must not stop the others
            skipped[name] = f"failed to load: {type(error).__name__}: {error}"
    return methods, skipped


# ---- the server -------------------------------------------------------------------------


def cpu_cores() -> int:
    """The cores this process may run on (ORT's threads, the report)."""
    return len(os.sched_getaffinity(0))


@contextmanager
def server_process(setup: Setup) -> Iterator[tuple[subprocess.Popen, int, int]]:
    """``bert-serving-start`` as a user runs it, in its own process (its own GIL); stopped
    with SIGTERM (a graceful drain) afterwards. Its log goes to --work-dir/server.log."""
    from bert_serving.server.network import free_ports

    port, port_out = free_ports(2)
    command = [sys.executable, "-m", "bert_serving.server.cli.start", "-cpu"]
    command += ["-model_dir", str(setup.model_dir), "-port", str(port), "-port_out", str(port_out)]
    command += ["-num_worker", "1", "-pooling_layer", "-1", "-max_seq_len", str(setup.max_len)]
    command += ["-precision", setup.precision, "-runtime", setup.runtime]
    setup.work_dir.mkdir(parents=True, exist_ok=True)
    with open(setup.work_dir / "server.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process, port, port_out
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def connect_when_ready(
    process: subprocess.Popen, port: int, port_out: int, log: Path
) -> BertClient:
    """A BertClient once every worker of the server has loaded (config says ``ready``)."""
    from bert_serving.client import BertClient, BertClientTimeoutError

    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    client = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
        try:
            client = client or BertClient(port=port, port_out=port_out, timeout=CLIENT_TIMEOUT_MS)
            if client.server_config.get("ready"):
                return client
        except BertClientTimeoutError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the server was not ready in {SERVER_READY_TIMEOUT_S} s; see {log}")


def server_methods(client: BertClient, batch_rows: int) -> list[Method]:
    """All sentences in one call (the server splits them), and in client-side batches."""

    def batched(texts: list[str]) -> np.ndarray:
        parts = [client.encode(texts[i : i + batch_rows]) for i in range(0, len(texts), batch_rows)]
        return np.concatenate(parts)

    return [
        Method(SERVER, client.encode),
        Method(f"server (batches of {batch_rows})", batched, latency=False),
    ]


# ---- measuring --------------------------------------------------------------------------


def warm_up(methods: list[Method], texts: list[str]) -> dict[str, np.ndarray]:
    """One untimed pass of each method (tracing, caches, lazy loads); its vectors are the
    ones checked for correctness."""
    vectors = {}
    for method in methods:
        progress(f"warm-up: {method.name}")
        vectors[method.name] = np.asarray(method.encode(texts), np.float32)
    return vectors


def agreement(
    reference: np.ndarray, vectors: np.ndarray, tolerance: float, lowest_cosine: float | None
) -> dict:
    """Largest difference of the L2-normalised vectors, and whether it is within tolerance
    (or, for a lossy method, whether its lowest cosine reaches ``lowest_cosine``)."""
    if reference.shape != vectors.shape:
        return {"ok": False, "shape": list(vectors.shape), "expected": list(reference.shape)}
    a, b = _unit(reference), _unit(vectors)
    max_abs = float(np.abs(a - b).max())
    min_cosine = float((a * b).sum(axis=1).min())
    if lowest_cosine is None:
        ok = max_abs <= tolerance and 1 - min_cosine <= tolerance
    else:
        ok = min_cosine >= lowest_cosine
    return {"ok": ok, "max_abs_diff": max_abs, "min_cosine": min_cosine}


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float64)  # so that a vector's cosine with itself is 1
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def throughput(methods: list[Method], texts: list[str], rounds: int) -> dict[str, list[float]]:
    """Sentences/s of every round, methods interleaved within each round, each after a
    pause: the previous method's thread pools (OpenMP's, ORT's, Eigen's) keep spinning
    for a while after their work, which must not be charged to the next method."""
    rates: dict[str, list[float]] = {method.name: [] for method in methods}
    for index in range(rounds):
        progress(f"throughput round {index + 1}/{rounds}")
        for method in methods:
            time.sleep(SPIN_DOWN_S)
            start = time.perf_counter()
            method.encode(texts)
            rates[method.name].append(len(texts) / (time.perf_counter() - start))
    return rates


def latencies(methods: list[Method], texts: list[str], samples: int) -> dict[str, list[float]]:
    """Milliseconds of one-sentence calls. The methods take turns in blocks, each block
    after the throughput runs' pause and opened by one untimed call: thread pools (ORT's,
    OpenMP's, Eigen's, TBB's) spin for a while after their work, and the previous method's
    spinning must not be charged to the next."""
    timed = [method for method in methods if method.latency]
    progress(f"latency: {samples} one-sentence calls per method")
    result: dict[str, list[float]] = {method.name: [] for method in timed}
    for first in range(0, samples, LATENCY_BLOCK):
        for method in timed:
            time.sleep(SPIN_DOWN_S)
            method.encode(texts[:1])
            for index in range(first, min(first + LATENCY_BLOCK, samples)):
                sentence = [texts[index % len(texts)]]
                start = time.perf_counter()
                method.encode(sentence)
                result[method.name].append((time.perf_counter() - start) * 1000)
    return result


def concurrency_curve(
    port: int, port_out: int, texts: list[str], batch_rows: int, clients: list[int], rounds: int
) -> dict[int, list[float]]:
    """Aggregate sentences/s through the server for each number of client processes."""
    batches = [texts[i : i + batch_rows] for i in range(0, len(texts), batch_rows)]
    curve = {}
    for count in clients:
        progress(f"concurrency: {count} client processes")
        curve[count] = _concurrency_point(port, port_out, batches, count, rounds)
    return curve


def _concurrency_point(
    port: int, port_out: int, batches: list[list[str]], count: int, rounds: int
) -> list[float]:
    """Spawned (not forked: this process holds TensorFlow's threads) clients that start
    each round together at a barrier; the rate of a round spans first start to last end."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [
        context.Process(
            target=client_rounds,
            args=(port, port_out, batches[index::count], rounds, barrier, results),
        )
        for index in range(count)
    ]
    for process in processes:
        process.start()
    spans = _collect(results, processes)
    for process in processes:
        process.join()
    total = sum(len(batch) for batch in batches)
    return [
        total / (max(span[r][1] for span in spans) - min(span[r][0] for span in spans))
        for r in range(rounds)
    ]


def _collect(results, processes: list) -> list[list[tuple[float, float]]]:
    """Every client's (start, end) per round; fails fast if a client process dies."""
    spans = []
    deadline = time.monotonic() + CLIENT_PROCESS_TIMEOUT_S
    while len(spans) < len(processes):
        try:
            spans.append(results.get(timeout=1))
        except queue.Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                for process in processes:
                    process.kill()
                raise RuntimeError(f"client processes failed (exit codes {failed})") from None
    return spans


def client_rounds(
    port: int, port_out: int, batches: list[list[str]], rounds: int, barrier, results
) -> None:
    """One client process: connect, then per round wait for the others and send its share."""
    from bert_serving.client import BertClient

    spans = []
    with BertClient(port=port, port_out=port_out, timeout=CLIENT_TIMEOUT_MS) as client:
        for _ in range(rounds):
            barrier.wait(CLIENT_PROCESS_TIMEOUT_S)
            start = time.monotonic()
            for batch in batches:
                client.encode(batch)
            spans.append((start, time.monotonic()))
    results.put(spans)


# ---- summarising and printing -----------------------------------------------------------


def progress(message: str) -> None:
    """Where the run is, on stderr (the report goes to stdout)."""
    print(f"[bench_peers] {message}", file=sys.stderr, flush=True)


def summary(rates: list[float]) -> dict:
    """Best (the least disturbed round), median, and every round for the record."""
    return {"best": max(rates), "median": float(np.median(rates)), "rounds": rates}


def ratios(best: dict[str, float]) -> dict[str, float]:
    """Every server row over every in-process method: above 1 the server is faster."""
    servers = [name for name in best if name.startswith("server")]
    others = [name for name in best if not name.startswith("server")]
    return {f"{s} / {o}": best[s] / best[o] for s in servers for o in others}


def server_overhead(best: dict[str, float]) -> dict[str, float]:
    """Extra time per sentence of each server row over the raw forward, in %."""
    servers = {name: rate for name, rate in best.items() if name.startswith("server")}
    return {name: (best[RAW] / rate - 1) * 100 for name, rate in servers.items()}


def latency_summary(samples: dict[str, list[float]]) -> dict[str, dict]:
    """Percentiles of each method's one-sentence calls, in ms."""
    return {
        name: {
            "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)),
            "mean": float(np.mean(values)),
            "samples": len(values),
        }
        for name, values in samples.items()
    }


def environment() -> dict:
    """What the numbers depend on: versions, cores, and how busy the machine was."""
    from bert_serving.server.benchmark.machine import installed_versions

    versions = installed_versions(VERSIONS_OF)
    return {
        "python": platform.python_version(),
        "cpu": cpu_description(),
        "cores": cpu_cores(),
        "load_average": list(os.getloadavg()),
        "versions": versions,
    }


def cpu_description() -> dict:
    """The CPU's model name (with family and model numbers), its vector instructions that
    matter here, and the oneDNN ISA cap when ONEDNN_MAX_CPU_ISA is set (which makes oneDNN
    act as an older CPU)."""
    from bert_serving.server.benchmark.machine import cpu_model
    from bert_serving.server.model.precision import cpu_flags

    flags = cpu_flags()
    return {
        "model": cpu_model() or "unknown",
        "isa": [name for flag, name in ISA_FLAGS.items() if flag in flags],
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
    }


def cpu_line(cpu: dict) -> str:
    """``AMD EPYC, family 25 model 17 (AVX2, AVX-512, ...)``, with the oneDNN cap if set."""
    text = f"{cpu['model']} ({', '.join(cpu['isa']) or 'no AVX2'})"
    if cpu["onednn_max_cpu_isa"]:
        text += f", ONEDNN_MAX_CPU_ISA={cpu['onednn_max_cpu_isa']}"
    return text


def print_report(report: dict) -> None:
    """The human-readable summary of the JSON report."""
    corpus_info, options = report["corpus"], report["settings"]
    print(
        f"\n{corpus_info['sentences']} sentences (seed {options['seed']}), "
        f"{corpus_info['mean_tokens']:.1f} tokens on average ({corpus_info['min_tokens']}-"
        f"{corpus_info['max_tokens']}, [CLS]/[SEP] included), max_seq_len {options['max_seq_len']}"
        f", -precision {options['precision']} -runtime {options['runtime']} (raw forward and "
        f"server: {report['raw_forward']['precision']} on {report['raw_forward']['runtime']}; "
        f"the peers run float32), corpus {options['corpus']}"
        f"\nCPU {cpu_line(report['environment']['cpu'])}"
        f"\nmodel {options['model_dir']}; {report['environment']['cores']} cores, load average "
        f"{report['environment']['load_average'][0]:.2f} at start, "
        f"{report['load_average_end'][0]:.2f} at end"
    )
    for name, reason in report["skipped"].items():
        print(f"skipped {name}: {reason}")
    _print_agreement(report["agreement"], options["tolerance"])
    _print_throughput(report["throughput"], options["rounds"])
    _print_ratios(report["ratios"], report["server_overhead_pct"])
    _print_latency(report["latency_ms"])
    _print_concurrency(report["concurrency"], options)


def _print_agreement(results: dict[str, dict], tolerance: float) -> None:
    print(
        f"\ncorrectness against the raw forward (L2-normalised vectors, tolerance {tolerance}; "
        "int8 rows: their lowest cosine against --int8-min-cosine):"
    )
    for name, check in results.items():
        verdict = "ok" if check["ok"] else "MISMATCH"
        if "max_abs_diff" in check:
            detail = f"max |diff| {check['max_abs_diff']:.2e}  min cosine {check['min_cosine']:.7f}"
        else:
            detail = f"shape {check['shape']}, expected {check['expected']}"
        print(f"  {name:<28} {detail}  {verdict}")


def _print_throughput(results: dict[str, dict], rounds: int) -> None:
    print(f"\nthroughput, sentences/s (best of {rounds} interleaved rounds after one warm-up):")
    print(f"  {'method':<28} {'best':>9} {'median':>9}")
    for name, rate in results.items():
        print(f"  {name:<28} {rate['best']:9.1f} {rate['median']:9.1f}")


def _print_ratios(results: dict[str, float], overhead: dict[str, float]) -> None:
    print("\nratios of best throughput (above 1: the server is faster):")
    for name, value in results.items():
        print(f"  {name:<55} {value:6.2f}x")
    for name, percent in overhead.items():
        print(f"  {name}: server overhead {percent:+.1f}% time per sentence over the raw forward")


def _print_latency(results: dict[str, dict]) -> None:
    samples = next(iter(results.values()))["samples"]
    print(f"\nlatency, one sentence per call, ms ({samples} samples):")
    print(f"  {'method':<28} {'p50':>8} {'p99':>8}")
    for name, values in results.items():
        print(f"  {name:<28} {values['p50']:8.2f} {values['p99']:8.2f}")


def _print_concurrency(points: list[dict], options: dict) -> None:
    print(
        f"\nconcurrency: N client processes, batches of {options['client_batch']}, "
        f"{options['sentences']} sentences per point, best of {options['rounds']}:"
    )
    print(f"  {'clients':>7} {'sentences/s':>12} {'median':>9}")
    for point in points:
        print(f"  {point['clients']:>7} {point['best']:12.1f} {point['median']:9.1f}")


# ---- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, with --smoke's small values applied."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[4:]),
    )

    def option(flag: str, default: object, text: str) -> None:
        kind = type(default)
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default %(default)s)")

    parser.add_argument("--model-dir", type=Path, help="BERT folder (default: all-MiniLM-L6-v2)")
    option("--sentences", 2048, "corpus size")
    option("--seed", 0, "corpus seed")
    option("--max-seq-len", 128, "truncation, the same for every method")
    option(
        "--precision",
        "auto",
        "forward pass of the raw forward and the server, as -precision: auto is what server "
        "users get (bfloat16 on CPUs with AMX or AVX512_BF16); float32 computes as the peers do",
    )
    option(
        "--runtime",
        "auto",
        "-runtime of the raw forward and the server: auto, tensorflow or openvino",
    )
    parser.add_argument(
        "--corpus",
        choices=sorted(CORPORA),
        default="short",
        help="short: sentences of about 27 tokens; long: texts of 30 to 130 tokens "
        "(default %(default)s)",
    )
    option("--int8-min-cosine", 0.99, "lowest cosine the int8 row must keep to the raw forward")
    option("--rounds", 3, "timed rounds after the warm-up")
    option("--latency-samples", 200, "one-sentence calls per method")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8, 16, 32],
        help="numbers of concurrent client processes (default 1 2 4 8 16 32)",
    )
    option("--client-batch", 64, "sentences per call of the concurrency curve")
    option("--server-batch", 256, "sentences per call of the batched server row")
    option("--ort-batch", 32, "ONNX Runtime batch rows")
    parser.add_argument(
        "--tolerance",
        type=float,
        help="largest allowed difference from the raw forward (default 1e-4 under float32, "
        "5e-3 otherwise: bfloat16 differs from the float32 peers by about 3e-3)",
    )
    option("--work-dir", DEFAULT_WORK_DIR, "ONNX cache, server log")
    parser.add_argument("--output", type=Path, help="JSON report (default WORK_DIR/results.json)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"a quick run for CI: overrides {', '.join(SMOKE)} with {list(SMOKE.values())}",
    )
    options = parser.parse_args(argv)
    if options.smoke:
        vars(options).update(SMOKE)
    if max(options.concurrency) > math.ceil(options.sentences / options.client_batch):
        parser.error("--concurrency: more clients than batches of --client-batch sentences")
    options.output = options.output or options.work_dir / "results.json"
    if options.tolerance is None:
        options.tolerance = 1e-4 if options.precision == "float32" else 5e-3
    return options


def model_dir(options: argparse.Namespace) -> Path:
    """--model-dir, or the installed all-MiniLM-L6-v2."""
    if options.model_dir is not None:
        return options.model_dir.resolve()
    from bert_serving.server.default_model import default_model_dir

    return default_model_dir()


def run(options: argparse.Namespace) -> dict:
    """Load every method, measure them all on one corpus, and return the report."""
    setup = Setup(
        model_dir(options),
        options.max_seq_len,
        options.precision,
        options.runtime,
        options.work_dir,
        options.ort_batch,
    )
    texts = CORPORA[options.corpus](options.sentences, options.seed)
    start_environment = environment()
    with server_process(setup) as (process, port, port_out):  # loads while we load the peers
        methods, skipped = peer_methods(setup)
        encoder, raw_rows, raw_skipped = raw_methods(setup, options.int8_min_cosine)
        methods += raw_rows
        skipped.update(raw_skipped)
        progress("waiting for the server")
        client = connect_when_ready(process, port, port_out, setup.work_dir / "server.log")
        with client:
            methods += server_methods(client, options.server_batch)
            vectors = warm_up(methods, texts)
            rates = throughput(methods, texts, options.rounds)
            latency = latencies(methods, texts, options.latency_samples)
        curve = concurrency_curve(
            port, port_out, texts, options.client_batch, options.concurrency, options.rounds
        )
    lengths = encoder.featurize(texts).lengths
    best = {name: max(values) for name, values in rates.items()}
    return {
        "settings": {**vars(options), "model_dir": str(setup.model_dir)},
        # what -precision and -runtime auto resolved to on this CPU
        "raw_forward": {"precision": encoder.precision, "runtime": encoder.runtime},
        "environment": start_environment,
        "load_average_end": list(os.getloadavg()),
        "corpus": {
            "sentences": len(texts),
            "mean_tokens": float(lengths.mean()),
            "min_tokens": int(lengths.min()),
            "max_tokens": int(lengths.max()),
        },
        "skipped": skipped,
        "agreement": {
            method.name: agreement(
                vectors[RAW], vectors[method.name], options.tolerance, method.min_cosine
            )
            for method in methods
            if method.name != RAW
        },
        "throughput": {name: summary(values) for name, values in rates.items()},
        "ratios": ratios(best),
        "server_overhead_pct": server_overhead(best),
        "latency_ms": latency_summary(latency),
        "concurrency": [{"clients": count, **summary(values)} for count, values in curve.items()],
    }


def main(argv: list[str] | None = None) -> int:
    """Run, print, save; exit 1 if some method's vectors disagree with the raw forward."""
    options = parse_args(argv)
    report = run(options)
    print_report(report)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten to {options.output}")
    return 0 if all(check["ok"] for check in report["agreement"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
