"""TEI's API on the proxy, the error shape of each route family, and -normalize: real
servers on the tiny checkpoint, compared with what the ZeroMQ client gets."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import requests

from bert_serving.client import BertClient
from bert_serving.client.normalization import unit_length
from bert_serving.server import __version__
from bert_serving.server.http.errors import error_body
from bert_serving.server.http.tei import MAX_CLIENT_BATCH_SIZE, TeiRequest, server_inputs
from bert_serving.server.http.tokens import TokenCounter
from bert_serving.server.model.normalization import l2_normalized
from bert_serving.server.tokenization import BertTokenizer
from tests.fixtures.checkpoints import tiny_vocab
from tests.servers import free_ports, running_server

HIDDEN_SIZE = 32
MAX_SEQ_LEN = 25
TEXTS = ["hello world", "good day to you", "the quick brown fox jumps"]
# 6 x 5 + 4 = 34 words, one word piece each in the tiny vocabulary: longer than 25 tokens
LONG_WORDS = ["the", "quick", "brown", "fox", "jumps"] * 6 + ["good", "day", "to", "you"]


def http_server(model_dir, *extra: str):
    (http_port,) = free_ports(1)
    return running_server(model_dir, "-http_port", str(http_port), *extra)


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.args.http_port}"


@pytest.fixture(scope="module")
def server(google_model_dir):
    with http_server(google_model_dir) as running:
        yield running


@pytest.fixture(scope="module")
def url(server) -> str:
    return url_of(server)


@pytest.fixture(scope="module")
def raw(server) -> np.ndarray:
    """What the ZeroMQ client gets for TEXTS: 1.10's raw vectors."""
    with BertClient(port=server.args.port, port_out=server.args.port_out) as client:
        return client.encode(TEXTS)


def post(url: str, route: str, body) -> requests.Response:
    return requests.post(f"{url}{route}", json=body, timeout=60)


def tei_refusal(response: requests.Response, status: int, error_type: str) -> str:
    """The message of an error in TEI's shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"}
    assert body["error_type"] == error_type
    return body["error"]


def encode(url: str, texts: list, is_tokenized: bool = False) -> np.ndarray:
    answer = post(url, "/encode", {"id": 1, "texts": texts, "is_tokenized": is_tokenized})
    assert answer.status_code == 200, answer.text
    return np.array(answer.json()["result"])


# -- /embed and POST / --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("route", ["/embed", "/"])
def test_embed_answers_unit_vectors_by_default(url, raw, route):
    answer = post(url, route, {"inputs": TEXTS})
    assert answer.status_code == 200, answer.text
    vectors = np.array(answer.json())
    assert vectors.shape == (len(TEXTS), HIDDEN_SIZE)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(vectors, l2_normalized(raw), atol=1e-6)


@pytest.mark.slow
def test_embed_of_one_string_is_a_list_of_one_vector(url, raw):
    vectors = np.array(post(url, "/embed", {"inputs": TEXTS[1]}).json())
    np.testing.assert_allclose(vectors, l2_normalized(raw[1:2]), atol=1e-6)


@pytest.mark.slow
def test_embed_without_normalize_is_the_raw_vector(url, raw):
    vectors = post(url, "/embed", {"inputs": TEXTS, "normalize": False}).json()
    np.testing.assert_allclose(vectors, raw, atol=1e-5)


@pytest.mark.slow
def test_long_inputs_are_cut_on_the_right_by_default(url):
    text = " ".join(LONG_WORDS)
    for body in ({"inputs": text}, {"inputs": text, "truncate": True}):
        vectors = post(url, "/embed", {**body, "normalize": False}).json()
        np.testing.assert_allclose(vectors, encode(url, [text]), atol=1e-5)


@pytest.mark.slow
def test_left_truncation_keeps_the_end_of_a_long_input(url):
    body = {"inputs": [" ".join(LONG_WORDS), "hello world"], "normalize": False}
    vectors = post(url, "/embed", {**body, "truncation_direction": "Left"}).json()
    tail = LONG_WORDS[-(MAX_SEQ_LEN - 2) :]  # [CLS] and [SEP] take two of the 25
    expected = encode(url, [tail, ["hello", "world"]], is_tokenized=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    right = post(url, "/embed", {**body, "truncation_direction": "right"}).json()
    assert not np.allclose(vectors[0], right[0], atol=1e-3)


@pytest.mark.slow
def test_a_long_input_without_truncate_answers_422(url):
    answer = post(url, "/embed", {"inputs": ["hi", " ".join(LONG_WORDS)], "truncate": False})
    message = tei_refusal(answer, 422, "Validation")
    assert f"must have less than {MAX_SEQ_LEN} tokens. Given: {len(LONG_WORDS) + 2}" in message
    assert "inputs[1]" in message


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "status", "error_type", "message"),
    [
        ({"inputs": []}, 400, "Empty", "`inputs` cannot be empty"),
        ({"inputs": ["a"] * (MAX_CLIENT_BATCH_SIZE + 1)}, 413, "Validation", "batch size"),
        ({}, 422, "Validation", '"inputs" is missing'),
        ({"inputs": [[101, 102]]}, 422, "Validation", "token ids are not accepted"),
        ({"inputs": 3}, 422, "Validation", "a string or a list of strings"),
        ({"inputs": ["ok", " "]}, 422, "Validation", "inputs[1] is empty"),
        ({"inputs": "\ud800"}, 422, "Validation", "lone surrogate"),
        ({"inputs": "hi", "normalize": "yes"}, 422, "Validation", '"normalize" must be true'),
        ({"inputs": "hi", "truncate": 1}, 422, "Validation", '"truncate" must be true'),
        ({"inputs": "hi", "truncation_direction": "up"}, 422, "Validation", "truncation_dir"),
        ({"inputs": "hi", "prompt_name": "query"}, 422, "Validation", "no prompts"),
        ({"inputs": "hi", "dimensions": 8}, 422, "Validation", "cannot be shortened"),
        ([1, 2], 422, "Validation", "must be a JSON object"),
    ],
)
def test_embed_mistakes_answer_in_tei_shape(url, body, status, error_type, message):
    assert message in tei_refusal(post(url, "/embed", body), status, error_type)


@pytest.mark.slow
def test_malformed_json_and_an_oversized_body_on_tei_routes(url):
    broken = requests.post(f"{url}/embed", data=b'{"inputs": ', timeout=30)
    assert "malformed JSON" in tei_refusal(broken, 422, "Validation")
    huge = requests.post(f"{url}/tokenize", data=b" " * (11 * 2**20), timeout=30)
    assert "-http_max_body" in tei_refusal(huge, 413, "Validation")
    wrong_method = requests.get(f"{url}/embed", timeout=30)
    assert "use POST" in tei_refusal(wrong_method, 405, "Validation")


@pytest.mark.slow
def test_dimensions_equal_to_the_model_are_accepted(url):
    assert post(url, "/embed", {"inputs": "hi", "dimensions": HIDDEN_SIZE}).status_code == 200


@pytest.mark.slow
def test_embed_all_needs_token_embeddings(url):
    answer = post(url, "/embed_all", {"inputs": "hello world"})
    assert "-pooling_strategy NONE" in tei_refusal(answer, 424, "Backend")


# -- /tokenize and /info ------------------------------------------------------------------


@pytest.mark.slow
def test_tokenize_shows_the_servers_word_pieces(url):
    answer = post(url, "/tokenize", {"inputs": ["hello world", "good day"]})
    assert answer.status_code == 200, answer.text
    first, second = answer.json()
    assert [token["text"] for token in first] == ["[CLS]", "hello", "world", "[SEP]"]
    assert [token["special"] for token in first] == [True, False, False, True]
    assert {token["start"] for token in first} == {None}
    assert len({token["id"] for token in second}) == 4
    plain = post(url, "/tokenize", {"inputs": "hello world", "add_special_tokens": False}).json()
    assert [[token["text"] for token in tokens] for tokens in plain] == [["hello", "world"]]


@pytest.mark.slow
def test_tokenize_does_not_cut(url):
    (tokens,) = post(url, "/tokenize", {"inputs": " ".join(LONG_WORDS)}).json()
    assert len(tokens) == len(LONG_WORDS) + 2


@pytest.mark.slow
def test_info(url, google_model_dir):
    info = requests.get(f"{url}/info", timeout=30).json()
    assert info["model_id"] == google_model_dir.name
    assert info["max_input_length"] == MAX_SEQ_LEN
    assert info["model_dtype"] == "float32"
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["version"] == __version__
    assert info["max_client_batch_size"] == MAX_CLIENT_BATCH_SIZE
    assert info["auto_truncate"] is True


# -- error shapes by route family ---------------------------------------------------------


def test_each_route_family_has_its_error_shape():
    assert error_body("/encode", 400, "m") == {"status": 400, "error": "m"}
    assert error_body("/embed", 422, "m") == {"error": "m", "error_type": "Validation"}
    assert error_body("/", 424, "m") == {"error": "m", "error_type": "Backend"}
    assert error_body("/v1/embeddings", 400, "m", "input") == {
        "error": {"message": "m", "type": "invalid_request_error", "param": "input", "code": None}
    }
    assert error_body("/v1/x", 504, "m")["error"]["type"] == "server_error"


@pytest.mark.slow
def test_unknown_v1_paths_answer_in_openai_shape(url):
    answer = requests.get(f"{url}/v1/models", timeout=30)
    assert answer.status_code == 404
    assert "/v1/models" in answer.json()["error"]["message"]


# -- token embeddings: /embed_all ---------------------------------------------------------


@pytest.mark.slow
def test_embed_all_gives_the_vectors_of_each_texts_tokens(google_model_dir):
    with http_server(google_model_dir, "-pooling_strategy", "NONE") as none_server:
        url = url_of(none_server)
        answer = post(url, "/embed_all", {"inputs": TEXTS})
        assert answer.status_code == 200, answer.text
        padded = encode(url, TEXTS)  # [texts, max_seq_len, hidden], zero after each text
        for row, (text, vectors) in enumerate(zip(TEXTS, answer.json())):
            assert len(vectors) == len(text.split()) + 2
            np.testing.assert_allclose(vectors, padded[row, : len(vectors)], atol=1e-5)
        long = post(url, "/embed_all", {"inputs": " ".join(LONG_WORDS)}).json()
        assert [len(vectors) for vectors in long] == [MAX_SEQ_LEN]
        refused = post(url, "/embed", {"inputs": "hi"})
        assert "/embed_all" in tei_refusal(refused, 424, "Backend")


# -- -normalize and BertClient(normalize=True) ----------------------------------------------


@pytest.mark.slow
def test_normalize_flag_gives_unit_vectors_over_zeromq_and_encode(google_model_dir, raw):
    with http_server(google_model_dir, "-normalize") as normalizing:
        with BertClient(port=normalizing.args.port, port_out=normalizing.args.port_out) as client:
            vectors = client.encode(TEXTS)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
        np.testing.assert_allclose(vectors, l2_normalized(raw), atol=1e-6)
        np.testing.assert_allclose(encode(url_of(normalizing), TEXTS), vectors, atol=1e-6)


@pytest.mark.slow
def test_the_client_can_ask_for_unit_vectors(server, raw):
    ports = {"port": server.args.port, "port_out": server.args.port_out}
    with BertClient(normalize=True, **ports) as client:
        np.testing.assert_allclose(client.encode(TEXTS), l2_normalized(raw), atol=1e-6)
        chunked = client.encode(TEXTS * 3, chunk_size=2)
        np.testing.assert_allclose(chunked, l2_normalized(np.vstack([raw] * 3)), atol=1e-6)
    with BertClient(normalize=True, output_fmt="list", **ports) as client:
        np.testing.assert_allclose(client.encode(TEXTS), l2_normalized(raw), atol=1e-6)


@pytest.mark.parametrize("normalized", [l2_normalized, unit_length])  # server's, client's
def test_normalization_keeps_dtype_and_zero_vectors(normalized):
    vectors = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float16)
    assert normalized(vectors).dtype == np.float16
    np.testing.assert_allclose(normalized(vectors), [[0.6, 0.8], [0, 0]], atol=1e-3)
    tokens = np.full((2, 3, 4), 300.0, dtype=np.float16)  # 300² overflows float16
    np.testing.assert_allclose(normalized(tokens), 0.5, atol=1e-3)


def test_length_checks_cost_memory_by_max_seq_len_not_by_the_longest_text():
    """1000 short inputs and one of 20,000 words: padding every row to the longest would
    take 240 MB; the check pads to max_seq_len + 1 instead."""
    counter = TokenCounter(BertTokenizer(dict(zip(tiny_vocab(), range(1000)))), 25, True)
    texts = ["hello world"] * 1000 + ["hello " * 20_000]
    tracemalloc.start()
    try:
        inputs = server_inputs(TeiRequest(texts, True, None, False, None), counter)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak
    assert inputs.lengths.tolist() == [4] * 1000 + [MAX_SEQ_LEN]
    assert not inputs.is_tokenized
