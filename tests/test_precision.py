"""-precision: which number format the forward pass uses, and what bfloat16 costs in accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from bert_serving.client import BertClient
from bert_serving.server.model import inspect_model
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder
from bert_serving.server.model.precision import compute_dtype, cpu_flags, has_bf16_instructions
from tests.servers import running_server
from tests.test_minilm import TEXTS

AMX = frozenset({"avx512f", "amx_tile", "amx_bf16"})
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})  # AMD EPYC Zen 4 and 5
AVX2_ONLY = frozenset({"avx2", "fma"})


@pytest.mark.parametrize(
    ("precision", "fp16", "on_gpu", "flags", "expected"),
    [
        ("auto", False, False, AMX, "bfloat16"),
        ("auto", False, False, AVX512_BF16, "bfloat16"),
        ("auto", False, False, AVX2_ONLY, "float32"),  # emulated bfloat16 would be slower
        ("float32", False, False, AMX, "float32"),
        ("bfloat16", False, False, AVX2_ONLY, "bfloat16"),
        ("auto", True, True, AMX, "float16"),  # -fp16 on a GPU, as in 1.10
        ("auto", False, True, AMX, "float32"),
        ("auto", True, False, AMX, "bfloat16"),  # on a CPU -fp16 only converts the output
    ],
)
def test_the_compute_dtype_follows_precision_device_and_cpu(
    precision, fp16, on_gpu, flags, expected
):
    assert compute_dtype(precision, fp16, on_gpu, flags) == expected


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="valid values are auto, float32, bfloat16, int8"):
        compute_dtype("int4", False, False, AMX)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 amx_bf16 avx512f\nbugs\t: x\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse2", "amx_bf16", "avx512f"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["tensorflow", "openvino"])
def test_bfloat16_vectors_of_the_real_model_stay_close_to_float32(minilm_dir, runtime):
    if runtime == "openvino" and not has_bf16_instructions(cpu_flags()):
        pytest.skip("OpenVINO computes bfloat16 only with AVX512_BF16 or AMX")
    spec = inspect_model(minilm_dir)
    settings = {"max_seq_len": None, "pooling_layer": (-1,)}
    exact = SentenceEncoder(spec, EncoderSettings(precision="float32", **settings))
    fast = SentenceEncoder(spec, EncoderSettings(precision="bfloat16", runtime=runtime, **settings))
    assert fast.execution == f"bfloat16 on {runtime}"
    if runtime == "tensorflow":  # OpenVINO converts the float32 graph and computes in bf16
        assert fast.graph.model.layers[0].qkv.kernel.dtype.name == "bfloat16"
    want, got = exact.encode(TEXTS).embeddings, fast.encode(TEXTS).embeddings
    assert got.dtype == np.float32
    worst = float(cosines(got, want).min())
    print(f"bfloat16 on {runtime} against float32: lowest cosine {worst:.6f}")
    assert 0.999 < worst < 1.0 - 1e-9  # close, and really computed differently


@pytest.mark.slow
def test_a_bfloat16_server_answers_close_to_a_float32_encoder(google_model_dir):
    exact = SentenceEncoder(inspect_model(google_model_dir), EncoderSettings(precision="float32"))
    texts = ["a bfloat16 server", "answers every request", "close to float32"]
    with running_server(google_model_dir, "-precision", "bfloat16") as server:
        ports = {"port": server.args.port, "port_out": server.args.port_out}
        with BertClient(timeout=60000, **ports) as bc:
            assert bc.server_config["precision"] == "bfloat16"
            got = bc.encode(texts)
    assert cosines(got, exact.encode(texts).embeddings).min() > 0.999
