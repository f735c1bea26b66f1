"""Our TF2 encoder against Hugging Face ``transformers`` (PyTorch) on the real all-MiniLM-L6-v2.

An independent implementation of the same network is the strongest check that weights are
mapped, tokens are produced and pooling is done the way BERT defines them. Optional: it
needs ``torch`` and ``transformers``, which the project does not depend on, and skips with
the install command where they are missing. Run it with ``-s`` to see the differences.

Hugging Face runs one sentence at a time (no padding, so no mask to apply on its side);
ours runs the whole batch, padded, as the server would. ``hidden_states[k]`` of HF is the
output of k layers (0 is the embeddings), so our ``pooling_layer`` i is ``hidden_states[i + 1]``.

One known, intended difference is kept out of the sentences: a literal ``[UNK]`` or ``[SEP]``
in raw text is one special token to HF but ``[``, ``unk``, ``]`` to Google's tokenizer, which
bert-as-service 1.10 used and ours follows.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local folder: never the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

INSTALL_HINT = "pip install torch==2.13.0 transformers to run this comparison"
torch = pytest.importorskip("torch", reason=f"PyTorch is not installed: {INSTALL_HINT}")
transformers = pytest.importorskip(
    "transformers", reason=f"transformers is not installed: {INSTALL_HINT}"
)

from bert_serving.server.model import inspect_model  # noqa: E402  (after the skips)
from bert_serving.server.model.checkpoint import load_weights  # noqa: E402
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder  # noqa: E402

TOLERANCE = 1e-4
PAIR_SEPARATOR = " ||| "
MIDDLE_LAYER = 2  # of 6: the output of the third layer, HF hidden_states[3]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, World! How are you doing today?",
    "Café déjà vu: naïve façades in São Paulo and Zürich.",
    "我爱北京天安门",
    "混合 text 和中文 with numbers 3.14 and 2024",
    "What is the capital of France? ||| Paris is the capital of France.",
    "unaffable counterintuitiveness, antidisestablishmentarianism",
    "Emoji 🙂 and symbols § ¶ † become unknown or split",
    "a",
    "Straße ÀÉÎÕÜ ñandú œuvre",
    "  spaces\tand\nnewlines   everywhere  ",
]


def split_pair(text: str) -> tuple[str, str | None]:
    first, _, second = text.partition(PAIR_SEPARATOR)
    return first, (second if PAIR_SEPARATOR in text else None)


def hf_tokenizer_classes() -> list[type]:
    """Every BERT tokenizer this transformers has: Rust-backed and pure Python (4.x calls these
    BertTokenizerFast and BertTokenizer; 5.x BertTokenizer and BertTokenizerLegacy)."""
    names = ("BertTokenizer", "BertTokenizerFast", "BertTokenizerLegacy")
    modules = [transformers]
    try:
        from transformers.models.bert import tokenization_bert_legacy

        modules.append(tokenization_bert_legacy)
    except ImportError:  # transformers 4.x: no legacy module, both classes are top level
        pass
    classes = [getattr(module, name, None) for module in modules for name in names]
    return list(dict.fromkeys(cls for cls in classes if cls is not None))


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    return transformers.BertTokenizer.from_pretrained(str(minilm_dir))


@pytest.fixture(scope="module")
def hf_outputs(minilm_dir, hf_tokenizer) -> list[dict[str, np.ndarray]]:
    """Per sentence: HF's token ids, token type ids, every hidden state and the pooler output."""
    model = transformers.BertModel.from_pretrained(str(minilm_dir))
    model.eval()
    outputs = []
    with torch.no_grad():
        for text in SENTENCES:
            first, second = split_pair(text)
            inputs = hf_tokenizer(first, second, return_tensors="pt")
            result = model(**inputs, output_hidden_states=True)
            outputs.append(
                {
                    "input_ids": inputs["input_ids"][0].numpy(),
                    "token_type_ids": inputs["token_type_ids"][0].numpy(),
                    "hidden_states": [state[0].numpy() for state in result.hidden_states],
                    "pooler_output": result.pooler_output[0].numpy(),
                }
            )
    return outputs


@pytest.fixture(scope="module")
def minilm_spec(minilm_dir):
    return inspect_model(minilm_dir)


@pytest.fixture(scope="module")
def minilm_tensors(minilm_spec) -> dict[str, np.ndarray]:
    return load_weights(minilm_spec)


@pytest.fixture(scope="module")
def ours(minilm_spec, minilm_tensors):
    """``ours(strategy, layers)``: our encoder's output for SENTENCES, the server's way."""

    def encode(strategy: str, layers: tuple[int, ...] = (-1,)) -> np.ndarray:
        settings = EncoderSettings(
            max_seq_len=None, pooling_strategy=strategy, pooling_layer=layers, precision="float32"
        )
        encoder = SentenceEncoder(minilm_spec, settings, weights=minilm_tensors)
        return encoder.encode(SENTENCES).embeddings

    return encode


def report(what: str, ours_array: np.ndarray, theirs: np.ndarray) -> float:
    difference = float(np.max(np.abs(ours_array - theirs)))
    print(f"\n[transformers parity] {what}: max abs difference {difference:.3g}")
    return difference


def test_token_ids_equal_hugging_face(minilm_dir, minilm_spec, minilm_tensors):
    encoder = SentenceEncoder(
        minilm_spec, EncoderSettings(max_seq_len=None), weights=minilm_tensors
    )
    features = encoder.featurize(SENTENCES)
    classes = hf_tokenizer_classes()
    print(f"\n[transformers parity] token ids compared with {[c.__name__ for c in classes]}")
    for tokenizer_class in classes:
        tokenizer = tokenizer_class.from_pretrained(str(minilm_dir))
        for row, text in enumerate(SENTENCES):
            first, second = split_pair(text)
            expected = tokenizer(first, second, return_token_type_ids=True)
            length = int(features.lengths[row])
            assert features.input_ids[row, :length].tolist() == expected["input_ids"], (
                tokenizer_class.__name__,
                text,
                features.tokens[row],
                tokenizer.convert_ids_to_tokens(expected["input_ids"]),
            )
            assert features.segment_ids[row, :length].tolist() == expected["token_type_ids"]


def test_reduce_mean_of_the_last_layer(ours, hf_outputs):
    theirs = np.stack([out["hidden_states"][-1].mean(axis=0) for out in hf_outputs])
    assert report("REDUCE_MEAN, last layer", ours("REDUCE_MEAN"), theirs) < TOLERANCE


def test_cls_token(ours, hf_outputs):
    theirs = np.stack([out["hidden_states"][-1][0] for out in hf_outputs])
    assert report("CLS_TOKEN, last layer", ours("CLS_TOKEN"), theirs) < TOLERANCE


def test_cls_pooled_is_the_pooler_output(ours, hf_outputs):
    theirs = np.stack([out["pooler_output"] for out in hf_outputs])
    assert report("CLS_POOLED (pooler_output)", ours("CLS_POOLED"), theirs) < TOLERANCE


def test_none_gives_every_token_state_and_zero_padding(ours, hf_outputs):
    states = ours("NONE")
    longest = max(len(out["input_ids"]) for out in hf_outputs)
    assert states.shape == (len(SENTENCES), longest, 384)
    worst = 0.0
    for row, out in enumerate(hf_outputs):
        length = len(out["input_ids"])
        worst = max(worst, float(np.max(np.abs(states[row, :length] - out["hidden_states"][-1]))))
        assert not states[row, length:].any()
    print(f"\n[transformers parity] NONE (token states): max abs difference {worst:.3g}")
    assert worst < TOLERANCE


def test_reduce_mean_of_a_middle_layer(ours, hf_outputs):
    theirs = np.stack([out["hidden_states"][MIDDLE_LAYER + 1].mean(axis=0) for out in hf_outputs])
    got = ours("REDUCE_MEAN", (MIDDLE_LAYER,))
    assert report(f"REDUCE_MEAN, layer {MIDDLE_LAYER}", got, theirs) < TOLERANCE
    negative = ours("REDUCE_MEAN", (MIDDLE_LAYER - 6,))
    np.testing.assert_array_equal(negative, got)


def test_two_layers_are_concatenated_in_order(ours, hf_outputs):
    theirs = np.stack(
        [
            np.concatenate(
                [out["hidden_states"][-1].mean(axis=0), out["hidden_states"][2].mean(axis=0)]
            )
            for out in hf_outputs
        ]
    )
    assert report("REDUCE_MEAN, layers (-1, 1)", ours("REDUCE_MEAN", (-1, 1)), theirs) < TOLERANCE
