"""-runtime: which engine runs the forward pass, and that OpenVINO gives TensorFlow's vectors.

Parity is held to 1e-5 in float32 for every pooling strategy and layer choice, on the tiny
random checkpoints (both layouts, other configs) and on the real MiniLM (slow)."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from bert_serving.client import BertClient
from bert_serving.server.args import PoolingStrategy, get_args_parser
from bert_serving.server.model import ModelError, inspect_model
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder
from bert_serving.server.model.openvino_forward import (
    PRECISION_HINTS,
    check_against,
    compile_checked,
    convert_forward,
    make_probe,
    process_core,
)
from bert_serving.server.model.precision import cpu_flags, has_bf16_instructions
from bert_serving.server.model.runtime import choose_runtime
from tests.fixtures import checkpoints
from tests.servers import running_server
from tests.test_minilm import TEXTS
from tests.test_model import features
from tests.test_precision import AMX, AVX2_ONLY, AVX512_BF16

pytest.importorskip("openvino", reason="the cpu extra installs openvino")

STRATEGIES = [str(strategy) for strategy in PoolingStrategy]
PARITY = 1e-5


@pytest.mark.parametrize(
    ("runtime", "dtype", "on_gpu", "xla", "flags", "expected"),
    [
        ("auto", "float32", False, False, AVX2_ONLY, "openvino"),  # AVX2 and AVX-512 alike
        ("auto", "float32", False, False, AMX, "openvino"),
        ("auto", "bfloat16", False, False, AMX, "openvino"),  # auto's precision on AMX
        ("auto", "bfloat16", False, False, AVX512_BF16, "openvino"),  # and on AMD Zen 4/5
        ("auto", "bfloat16", False, False, AVX2_ONLY, "tensorflow"),  # forced on an AVX2 CPU
        ("auto", "bfloat16", False, True, AMX, "tensorflow"),  # -xla is TensorFlow's
        ("auto", "float32", True, False, AVX512_BF16, "tensorflow"),  # the GPU path
        ("auto", "float32", False, True, AVX512_BF16, "tensorflow"),
        ("tensorflow", "float32", False, False, AVX512_BF16, "tensorflow"),
        ("tensorflow", "bfloat16", False, False, AMX, "tensorflow"),
        ("openvino", "float32", False, False, AVX512_BF16, "openvino"),
        ("openvino", "bfloat16", False, False, AMX, "openvino"),
    ],
)
def test_auto_picks_the_faster_runtime_for_the_cpu(runtime, dtype, on_gpu, xla, flags, expected):
    assert choose_runtime(runtime, dtype, on_gpu, True, xla, flags) == expected


def test_auto_falls_back_to_tensorflow_without_openvino():
    assert choose_runtime("auto", "float32", False, False) == "tensorflow"


@pytest.mark.parametrize(
    ("runtime", "dtype", "on_gpu", "have_openvino", "message"),
    [
        ("openvino", "bfloat16", False, True, "bfloat16 only on CPUs with bfloat16 instructions"),
        ("openvino", "float16", False, True, "computes float32, bfloat16 and int8, not float16"),
        ("openvino", "float32", True, True, "not float32 on a GPU"),
        ("openvino", "float32", False, False, "needs the openvino package"),
        ("onnx", "float32", False, True, "valid values are auto, tensorflow, openvino"),
    ],
)
def test_impossible_runtime_choices_are_refused_with_the_reason(
    runtime, dtype, on_gpu, have_openvino, message
):
    with pytest.raises(ValueError, match=message):
        choose_runtime(runtime, dtype, on_gpu, have_openvino, cpu_flags=AVX2_ONLY)


def test_the_start_command_takes_runtime():
    parser = get_args_parser()
    assert parser.parse_args(["-model_dir", "m"]).runtime == "auto"
    assert parser.parse_args(["-model_dir", "m", "-runtime", "openvino"]).runtime == "openvino"
    with pytest.raises(SystemExit):
        parser.parse_args(["-model_dir", "m", "-runtime", "onnx"])


CPU_HAS_BF16 = has_bf16_instructions(cpu_flags())


def test_an_encoder_refuses_openvino_in_bfloat16_on_a_cpu_without_it(google_model_dir, monkeypatch):
    monkeypatch.setattr("bert_serving.server.model.encoder.cpu_flags", lambda: AVX2_ONLY)
    settings = EncoderSettings(runtime="openvino", precision="bfloat16")
    with pytest.raises(ModelError, match="bfloat16 only on CPUs with bfloat16 instructions"):
        SentenceEncoder(inspect_model(google_model_dir), settings)
    forced = SentenceEncoder(inspect_model(google_model_dir), EncoderSettings(precision="bfloat16"))
    assert forced.execution == "bfloat16 on tensorflow"


@pytest.mark.skipif(not CPU_HAS_BF16, reason="OpenVINO computes bfloat16 with AVX512_BF16 or AMX")
def test_openvino_computes_bfloat16_close_to_float32_on_a_cpu_with_it(google_model_dir):
    spec = inspect_model(google_model_dir)
    exact = SentenceEncoder(spec, EncoderSettings(precision="float32", runtime="tensorflow"))
    fast = SentenceEncoder(spec, EncoderSettings(precision="bfloat16"))
    assert fast.execution == "bfloat16 on openvino"
    assert fast.graph.compute_dtype == tf.float32  # OpenVINO converts the float32 graph
    want, got = exact.encode_features(features()), fast.encode_features(features())
    cosine = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    assert got.dtype == np.float32
    assert cosine.min() > 0.999
    assert np.abs(got - want).max() > 1e-5  # really computed in bfloat16


def encoder_pair(model_dir, **settings) -> tuple[SentenceEncoder, SentenceEncoder]:
    """The same settings on TensorFlow and on OpenVINO, one set of weights."""
    spec = inspect_model(model_dir)
    settings.setdefault("precision", "float32")
    pair = tuple(
        SentenceEncoder(spec, EncoderSettings(runtime=runtime, **settings))
        for runtime in ("tensorflow", "openvino")
    )
    assert [encoder.runtime for encoder in pair] == ["tensorflow", "openvino"]
    return pair


def assert_same_vectors(pair, feats) -> float:
    want, got = (encoder.encode_features(feats) for encoder in pair)
    assert got.shape == want.shape and got.dtype == want.dtype
    difference = float(np.abs(got.astype(np.float64) - want).max())
    assert difference <= PARITY, difference
    assert np.abs(want).max() > 0.1  # real vectors, not zeros on both sides
    return difference


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("layers", [(-1,), (-2,), (0,), (-1, 0), (1, -3, 2)])
def test_openvino_gives_tensorflows_vectors_for_every_strategy_and_layer(
    google_model_dir, strategy, layers
):
    pair = encoder_pair(
        google_model_dir, pooling_strategy=strategy, pooling_layer=layers, max_seq_len=16
    )
    assert_same_vectors(pair, features())


@pytest.mark.parametrize(
    "settings",
    [
        {"mask_cls_sep": True},
        {"no_position_embeddings": True},
        {"fp16": True},
        {"max_seq_len": None, "pooling_strategy": "NONE"},
        {"max_seq_len": None, "pooling_strategy": "NONE", "fixed_embed_length": True},
    ],
)
def test_openvino_parity_under_the_other_model_options(google_model_dir, settings):
    assert_same_vectors(encoder_pair(google_model_dir, **settings), features())


@pytest.mark.parametrize(
    "overrides",
    [
        {"hidden_act": "gelu_new", "num_hidden_layers": 2},
        {"hidden_act": "relu", "num_attention_heads": 2, "hidden_size": 16},
        {"hidden_act": "silu", "intermediate_size": 64, "layer_norm_eps": 1e-6},
    ],
)
@pytest.mark.parametrize("layout", ["google", "hf"])
def test_openvino_parity_on_other_configs_and_both_layouts(tmp_path, overrides, layout):
    checkpoints.write_random_model(tmp_path, layout, seed=3, **overrides)
    assert_same_vectors(encoder_pair(tmp_path, pooling_layer=(-1,)), features())


def test_openvino_handles_changing_shapes_in_one_encoder(google_model_dir):
    """Batches of every size and length through one compiled model (its shape cache)."""
    pair = encoder_pair(google_model_dir, max_seq_len=None, pooling_layer=(-1,))
    rng = np.random.default_rng(4)
    for _ in range(12):
        rows = [
            [2, *rng.integers(5, 130, size=int(n)).tolist(), 3]
            for n in rng.integers(0, 60, size=int(rng.integers(1, 150)))
        ]
        assert_same_vectors(pair, features(rows, [None] * len(rows)))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["REDUCE_MEAN", "REDUCE_MAX", "CLS_TOKEN", "NONE"])
@pytest.mark.parametrize("layers", [(-1,), (-2,), (-1, -4)])
def test_openvino_gives_tensorflows_vectors_on_minilm(minilm_dir, strategy, layers):
    pair = encoder_pair(
        minilm_dir, pooling_strategy=strategy, pooling_layer=layers, max_seq_len=None
    )
    texts = TEXTS * 20  # more than one chunk of rows, of mixed lengths
    want, got = (encoder.encode(texts).embeddings for encoder in pair)
    difference = float(np.abs(got - want).max())
    print(f"MiniLM {strategy} {layers}: largest difference {difference:.2e}")
    assert difference <= PARITY


def test_threads_sharing_an_openvino_encoder_each_get_their_own_vectors(google_model_dir):
    """One OpenVINO request runs one inference at a time: threads take turns on it (without
    that, the tests' shared reference encoders got 'Infer Request is busy' or another
    call's output)."""
    tensorflow, openvino = encoder_pair(google_model_dir)
    batches = [[f"word{i} " * (1 + (i * 7 + j) % 20) for j in range(1 + i % 9)] for i in range(24)]
    wanted = [tensorflow.encode(batch).embeddings for batch in batches]
    errors: list[BaseException] = []

    def encode_every_fourth(start: int) -> None:
        try:
            for _ in range(3):
                for index in range(start, len(batches), 4):
                    got = openvino.encode(batches[index]).embeddings
                    np.testing.assert_allclose(got, wanted[index], atol=PARITY)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=encode_every_fourth, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def tiny_forward(google_model_dir, **settings):
    """The tiny model's TensorFlow forward and the limits of its start-up probe."""
    encoder = SentenceEncoder(
        inspect_model(google_model_dir), EncoderSettings(runtime="tensorflow", **settings)
    )
    return encoder.graph, (encoder.spec.config.vocab_size, encoder.max_len)


def test_openvino_fuses_every_layer_norm_and_gelu(google_model_dir):
    """bert.py writes layer norm and GELU in the forms OpenVINO recognises: each layer norm
    one normalisation kernel (MVN), each GELU folded into the matmul before it. Written
    otherwise, they run as separate reductions and element-wise kernels, slower."""
    forward, _ = tiny_forward(google_model_dir, pooling_layer=(-1,))  # every layer computed
    config = inspect_model(google_model_dir).config
    assert config.hidden_act == "gelu"
    compiled = process_core().compile_model(
        convert_forward(forward.function), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    kernels = [
        (info["layerType"].astype(str), info["originalLayersNames"].astype(str).split(","))
        for info in (op.get_rt_info() for op in compiled.get_runtime_model().get_ops())
    ]
    kinds = [kind for kind, _ in kernels]
    layers = config.num_hidden_layers
    assert kinds.count("MVN") == 2 * layers + 1  # embeddings, then two a layer
    with_activation = [
        names for kind, names in kernels if kind == "FullyConnected" and len(names) > 1
    ]
    assert len(with_activation) == layers


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
def test_the_start_up_check_refuses_a_runtime_that_computes_something_else(
    google_model_dir, precision
):
    forward, limits = tiny_forward(google_model_dir)
    probe = make_probe(forward, limits)
    check_against(probe, forward, precision)

    def skewed(*inputs):
        vectors = forward(*inputs)
        vectors[0] = -vectors[0]  # one text's vector wrong is enough
        return vectors

    with pytest.raises(ModelError, match="disagrees with TensorFlow on this CPU"):
        check_against(probe, skewed, precision)

    def failing(*inputs):
        raise RuntimeError("could not create a primitive descriptor")

    with pytest.raises(
        ModelError, match=r"failed its start-up check \(could not create a primitive descriptor\)"
    ):
        check_against(probe, failing, precision)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_auto_stays_on_tensorflow_when_openvino_fails_its_check(
    google_model_dir, monkeypatch, caplog, precision
):
    def broken(*args, **kwargs):
        raise ModelError("the OpenVINO runtime disagrees with TensorFlow on this CPU")

    monkeypatch.setattr("bert_serving.server.model.encoder.choose_runtime", lambda *a: "openvino")
    monkeypatch.setattr("bert_serving.server.model.openvino_forward.compile_checked", broken)
    spec = inspect_model(google_model_dir)
    encoder = SentenceEncoder(spec, EncoderSettings(precision=precision))
    assert encoder.execution == f"{precision} on tensorflow"
    assert "running on TensorFlow instead" in caplog.text
    # the graph OpenVINO was to convert is float32: bfloat16 on TensorFlow is built anew
    assert encoder.graph.model.layers[0].qkv.kernel.dtype.name == precision
    assert encoder.encode(["still answers"]).embeddings.shape == (1, 32)
    with pytest.raises(ModelError, match="disagrees"):  # asked for by name: refuse to start
        SentenceEncoder(spec, EncoderSettings(precision=precision, runtime="openvino"))


def test_bfloat16_that_openvino_would_not_compute_is_refused(google_model_dir, monkeypatch):
    """The compiled model's precision is read back: had OpenVINO kept float32 (as on a CPU
    without bfloat16 instructions), the encoder would claim bfloat16 and compute float32."""
    monkeypatch.setitem(PRECISION_HINTS, "bfloat16", "f32")  # what such a CPU would do
    forward, limits = tiny_forward(google_model_dir, precision="float32")
    model = convert_forward(forward.function)
    with pytest.raises(ModelError, match="OpenVINO computes f32 on this CPU where bfloat16"):
        compile_checked(model, make_probe(forward, limits), 1, "bfloat16")


# An encoder made on the main thread and freed on another, then a signal with a Python
# handler on the main thread (as bert-serving-start's SIGTERM handling does). pytest's
# faulthandler is enabled too, so the main thread starts with an alternate stack of its own.
FREED_ELSEWHERE_THEN_SIGNALLED = """
import faulthandler, gc, os, signal, sys, threading
from bert_serving.server.model import inspect_model
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder
faulthandler.enable()
encoder = SentenceEncoder(inspect_model(sys.argv[1]), EncoderSettings(runtime="openvino"))
encoder.encode(["hello world"])
held = [encoder]
del encoder

def free() -> None:
    held.clear()
    gc.collect()

freeing = threading.Thread(target=free)
freeing.start()
freeing.join()
signal.signal(signal.SIGTERM, lambda *_: print("SIGTERM handled", flush=True))
os.kill(os.getpid(), signal.SIGTERM)
"""


def test_a_signal_after_an_encoder_was_freed_on_another_thread_is_handled(google_model_dir):
    """OpenVINO's CPU plugin unmaps the alternate signal stack it gave its creating thread
    when it is destroyed on another thread: one process-wide core keeps it alive."""
    done = subprocess.run(
        [sys.executable, "-c", FREED_ELSEWHERE_THEN_SIGNALLED, str(google_model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"exit code {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "SIGTERM handled"


@pytest.mark.slow
def test_a_server_on_openvino_answers_tensorflows_vectors(google_model_dir):
    exact = SentenceEncoder(
        inspect_model(google_model_dir), EncoderSettings(precision="float32", runtime="tensorflow")
    )
    texts = ["an openvino worker", "answers every request", "with the same vectors"]
    with running_server(
        google_model_dir, "-runtime", "openvino", "-precision", "float32"
    ) as server:
        ports = {"port": server.args.port, "port_out": server.args.port_out}
        with BertClient(timeout=60000, **ports) as bc:
            got = bc.encode(texts)
    assert np.abs(got - exact.encode(texts).embeddings).max() <= PARITY
