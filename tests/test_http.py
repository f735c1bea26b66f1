"""The HTTP proxy against a real server on a tiny checkpoint: every endpoint, every error."""

from __future__ import annotations

import base64
import gzip
import re
import time

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from bert_serving.client import BertClient
from bert_serving.server import BertServer
from bert_serving.server.http.app import create_app
from bert_serving.server.http.backend import ServerAddress, ServerConnection
from bert_serving.server.http.openapi_spec import PATHS
from bert_serving.server.http.proxy import start_proxy
from bert_serving.server.http.settings import ProxySettings
from bert_serving.server.server import ServerStartError
from tests.http_helpers import occupied_port, port_is_free, proxy_processes
from tests.servers import free_ports, running_server, server_args

pytestmark = pytest.mark.slow  # every test here starts a server (or uses one)

ALLOWED_ORIGIN = "http://allowed.example"
MAX_BODY = 4096
MAX_CONNECT = 3
HIDDEN_SIZE = 32
TEXTS = ["hello world", "good day to you", "the quick brown fox jumps"]


@pytest.fixture(scope="module")
def server(google_model_dir):
    (http_port,) = free_ports(1)
    with running_server(
        google_model_dir,
        "-http_port", str(http_port),
        "-max_batch_size", "4",
        "-cors", ALLOWED_ORIGIN,
        "-http_max_body", str(MAX_BODY),
        "-http_max_connect", str(MAX_CONNECT),
    ) as running:  # fmt: skip
        yield running


@pytest.fixture(scope="module")
def url(server) -> str:
    return f"http://127.0.0.1:{server.args.http_port}"


def encode(url: str, texts: list, **fields) -> np.ndarray:
    answer = requests.post(f"{url}/encode", json={"id": 7, "texts": texts, **fields})
    assert answer.status_code == 200, answer.text
    return np.array(answer.json()["result"])


def refusal(response: requests.Response, status: int) -> str:
    """The error message of a JSON error answer with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    return body["error"]


def openai_refusal(response: requests.Response, status: int) -> str:
    """The message of an error in OpenAI's shape, as /v1 answers them."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return error["message"]


def unit(vectors) -> np.ndarray:
    """Vectors of length 1, as /v1/embeddings answers them."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


# -- /encode ------------------------------------------------------------------------------


def test_encode_answers_as_1_10(url):
    answer = requests.post(
        f"{url}/encode", json={"id": 123, "texts": TEXTS, "is_tokenized": False}
    ).json()
    assert set(answer) == {"id", "result", "status"}
    assert (answer["id"], answer["status"]) == (123, 200)
    assert np.array(answer["result"]).shape == (len(TEXTS), HIDDEN_SIZE)


def test_encode_matches_the_zeromq_client(url, server):
    with BertClient(port=server.args.port, port_out=server.args.port_out) as client:
        expected = client.encode(TEXTS)
    np.testing.assert_allclose(encode(url, TEXTS), expected, atol=1e-5)


@pytest.mark.parametrize("request_id", ["abc", None, [1, 2], {"k": 1}, 1.5])
def test_any_json_id_is_echoed(url, request_id):
    answer = requests.post(f"{url}/encode", json={"id": request_id, "texts": ["hi"]})
    assert answer.json()["id"] == request_id


def test_tokenized_texts(url):
    tokenized = encode(url, [["hello", "world"]], is_tokenized=True)
    assert tokenized.shape == (1, HIDDEN_SIZE)


@pytest.mark.parametrize(
    "form",
    [
        {"id": "5", "texts": '["hello world", "good day to you"]'},
        {"id": "5", "texts": ["hello world", "good day to you"], "is_tokenized": "false"},
    ],
)
def test_form_bodies(url, form):
    answer = requests.post(f"{url}/encode", data=form).json()
    assert answer["id"] == 5
    np.testing.assert_allclose(answer["result"], encode(url, TEXTS[:2]), atol=1e-5)


BAD_ENCODE_BODIES = [
    ('{"id": 1, "texts": ["a"', "malformed JSON"),
    ("", "empty"),
    ("[1, 2]", "must be a JSON object"),
    ('{"id": NaN, "texts": ["a"]}', "NaN"),
    ('{"texts": ["a"]}', '"id" is missing'),
    ('{"id": 1}', '"texts" is missing'),
    ('{"id": 1, "texts": "a"}', "must be a list"),
    ('{"id": 1, "texts": []}', "empty list"),
    ('{"id": 1, "texts": ["a", 3]}', "texts[1] must be a str"),
    ('{"id": 1, "texts": ["a", "  "]}', "texts[1] is empty or only whitespace"),
    ('{"id": 1, "texts": [""]}', "texts[0] is empty"),
    ('{"id": 1, "texts": ["a"], "is_tokenized": "no"}', "is_tokenized"),
    ('{"id": 1, "texts": ["a"], "is_tokenized": true}', "texts[0] is a str"),
    ('{"id": 1, "texts": [["a", 1]], "is_tokenized": true}', "texts[0][1] must be a str"),
    ('{"id": 1, "texts": ["\\ud800"]}', "lone surrogate"),
]


@pytest.mark.parametrize(("body", "message"), BAD_ENCODE_BODIES)
def test_encode_mistakes_answer_400_with_the_reason(url, body, message):
    answer = requests.post(
        f"{url}/encode", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert message in refusal(answer, 400)


def test_form_mistakes_answer_400(url):
    assert '"id" is missing' in refusal(requests.post(f"{url}/encode", data={"texts": "a"}), 400)
    answer = requests.post(f"{url}/encode", data={"id": "1", "texts": "a", "is_tokenized": "x"})
    assert "is_tokenized" in refusal(answer, 400)


def test_a_body_over_the_limit_answers_413(url):
    answer = requests.post(f"{url}/encode", json={"id": 1, "texts": ["word " * MAX_BODY]})
    assert "-http_max_body" in refusal(answer, 413)


def test_the_proxy_keeps_serving_after_mistakes(url):
    for body, _ in BAD_ENCODE_BODIES:
        requests.post(f"{url}/encode", data=body.encode())
    assert encode(url, ["still here"]).shape == (1, HIDDEN_SIZE)


# -- routing errors, status, health -------------------------------------------------------


def test_unknown_paths_and_wrong_methods_answer_json(url):
    assert "/nowhere" in refusal(requests.get(f"{url}/nowhere"), 404)
    wrong = requests.get(f"{url}/encode")
    assert "use POST" in refusal(wrong, 405)
    assert "POST" in wrong.headers["Allow"]
    refusal(requests.delete(f"{url}/health"), 405)


def test_server_status(url):
    status = requests.get(f"{url}/status/server").json()
    assert status["http_port"] == int(url.rsplit(":", 1)[1])
    assert "num_queued_parts" in status["statistic"]


def test_client_status_is_the_proxys_one_link(url):
    encode(url, TEXTS)
    status = requests.get(f"{url}/status/client").json()
    assert status["max_concurrency"] == MAX_CONNECT
    (link,) = status["clients"]
    assert link["identity"].startswith("http-proxy-") and link["answers_received"] >= 1


def test_health_when_the_server_answers(url):
    answer = requests.get(f"{url}/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["ready"] is True
    assert answer.json()["workers_serving"] == 1


def test_health_and_metrics_when_no_server_answers(google_model_dir):
    args = server_args(google_model_dir)
    connection = ServerConnection(ServerAddress(*free_ports(2)), max_concurrency=1)
    try:
        client = create_app(ProxySettings.from_args(args), connection).test_client()
        answer = client.get("/health")
        assert answer.status_code == 503
        assert "did not answer over ZeroMQ" in answer.get_json()["error"]
        assert "bert_server_up 0.0" in client.get("/metrics").get_data(as_text=True)
    finally:
        connection.close()


# -- /v1/embeddings -----------------------------------------------------------------------


def embeddings(url: str, **body) -> requests.Response:
    return requests.post(f"{url}/v1/embeddings", json=body)


def test_embeddings_in_openai_format(url, google_model_dir):
    answer = embeddings(url, input=TEXTS, model="my-model").json()
    assert answer["object"] == "list"
    assert answer["model"] == "my-model"
    assert [item["index"] for item in answer["data"]] == [0, 1, 2]
    assert {item["object"] for item in answer["data"]} == {"embedding"}
    vectors = np.array([item["embedding"] for item in answer["data"]])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(vectors, unit(encode(url, TEXTS)), atol=1e-6)
    usage = answer["usage"]
    # [CLS] + word pieces + [SEP]; the tiny vocabulary has every word of TEXTS
    assert usage["prompt_tokens"] == usage["total_tokens"] == sum(len(t.split()) + 2 for t in TEXTS)


def test_embeddings_of_one_string_and_the_default_model(url, google_model_dir):
    answer = embeddings(url, input="hello world").json()
    assert len(answer["data"]) == 1
    assert answer["model"] == google_model_dir.name


def test_base64_embeddings_are_little_endian_float32(url):
    floats = embeddings(url, input=TEXTS).json()["data"]
    packed = embeddings(url, input=TEXTS, encoding_format="base64").json()["data"]
    for plain, encoded in zip(floats, packed):
        vector = np.frombuffer(base64.b64decode(encoded["embedding"]), dtype="<f4")
        np.testing.assert_allclose(vector, plain["embedding"], atol=1e-6)


def test_dimensions_equal_to_the_model_are_accepted(url):
    assert embeddings(url, input="hi", dimensions=HIDDEN_SIZE).status_code == 200
    answer = embeddings(url, input="hi", dimensions=8)
    assert "cannot be shortened" in openai_refusal(answer, 400)
    assert answer.json()["error"]["param"] == "dimensions"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"input" is missing'),
        ({"input": [[1, 2, 3]]}, "token arrays are not supported"),
        ({"input": [1, 2, 3]}, "token arrays are not supported"),
        ({"input": []}, "empty list"),
        ({"input": ["ok", " "]}, "input[1] is empty"),
        ({"input": ["ok", None]}, "input[1] must be a string"),
        ({"input": {"a": 1}}, "must be a string or a list"),
        ({"input": "hi", "model": 3}, '"model" must be a string'),
        ({"input": "hi", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "hi", "dimensions": "32"}, '"dimensions" must be a positive integer'),
        ({"input": "hi", "user": 5}, '"user" must be a string'),
    ],
)
def test_embeddings_mistakes_answer_400(url, body, message):
    assert message in openai_refusal(embeddings(url, **body), 400)


def test_the_openai_package_works_unchanged(url, server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    with BertClient(port=server.args.port, port_out=server.args.port_out) as zmq_client:
        expected = unit(zmq_client.encode(TEXTS))
    plain = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float")
    assert plain.model == "tiny"
    assert plain.usage.prompt_tokens == plain.usage.total_tokens > len(TEXTS)
    np.testing.assert_allclose([item.embedding for item in plain.data], expected, atol=1e-5)
    packed = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="base64")
    # asked for explicitly, base64 comes back as the string the server sent
    decoded = [np.frombuffer(base64.b64decode(item.embedding), "<f4") for item in packed.data]
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    # without encoding_format the package asks for base64 and decodes it itself
    default = client.embeddings.create(model="tiny", input=TEXTS)
    np.testing.assert_allclose([item.embedding for item in default.data], expected, atol=1e-5)


# -- compression, CORS, metrics, OpenAPI -------------------------------------------------


def test_large_answers_are_gzipped_when_asked(url):
    body = {"id": 1, "texts": TEXTS * 4}
    zipped = requests.post(f"{url}/encode", json=body, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert len(zipped.json()["result"]) == len(TEXTS) * 4  # requests has un-gzipped it
    raw = requests.post(
        f"{url}/encode", json=body, headers={"Accept-Encoding": "gzip"}, stream=True
    ).raw.read()
    assert gzip.decompress(raw).startswith(b"{")
    plain = requests.post(f"{url}/encode", json=body, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers


def test_cors_allows_the_configured_origin_only(url):
    allowed = requests.get(f"{url}/health", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    other = requests.get(f"{url}/health", headers={"Origin": "http://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = requests.options(
        f"{url}/encode",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def metric(text: str, name: str, default: float | None = None, **labels: str) -> float:
    label_text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = "^" + re.escape(f"{name}{{{label_text}}}" if labels else name) + r" (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    if match is None and default is not None:
        return default
    assert match, f"{name} {labels} not in the metrics"
    return float(match.group(1))


def test_metrics_count_requests_texts_errors_and_latency(url):
    before = requests.get(f"{url}/metrics").text
    ok_before = metric(before, "bert_http_requests_total", 0, endpoint="/encode", status="200")
    texts_before = metric(before, "bert_http_texts_total", 0, endpoint="/encode")
    encode(url, TEXTS)
    requests.post(f"{url}/encode", json={"id": 1})
    after = requests.get(f"{url}/metrics")
    assert after.headers["Content-Type"].startswith("text/plain")
    text = after.text
    assert metric(text, "bert_http_requests_total", endpoint="/encode", status="200") == (
        ok_before + 1
    )
    assert metric(text, "bert_http_texts_total", endpoint="/encode") == texts_before + len(TEXTS)
    assert metric(text, "bert_http_errors_total", endpoint="/encode", status="400") >= 1
    assert metric(text, "bert_http_request_duration_seconds_count", endpoint="/encode") >= 2
    assert metric(text, "bert_server_up") == 1
    for gauge in ("queued_parts", "in_flight_parts", "recent_requests_per_second"):
        assert metric(text, f"bert_server_{gauge}") >= 0
    assert metric(text, "bert_server_recent_requests_per_second") > 0
    assert metric(text, "bert_server_workers_serving") == 1
    assert metric(text, "bert_server_worker_losses_total") == 0
    assert metric(text, "bert_server_worker_rejoins_total") == 0
    (worker,) = requests.get(f"{url}/status/server").json()["workers"]
    labels = f'{{device="CPU",host="{worker["host"]}",name="{worker["name"]}",remote="false"}}'
    assert metric(text, f"bert_server_worker_parts_done_total{labels}") >= 1
    assert metric(text, f"bert_server_worker_last_heartbeat_seconds{labels}") < 3


@pytest.fixture(scope="module")
def api_schema(url):
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


OPERATIONS = [
    (path, method) for path, item in PATHS.items() for method in item if method != "parameters"
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_the_proxy_conforms_to_its_openapi_description(api_schema, url, path, method):
    """Valid and invalid requests generated from /openapi.json: no 500, nothing undocumented.

    (schemathesis' own pytest fixture loader does not run under pytest 9, hence ``given``.)
    """
    operation = api_schema[path][method]
    modes = [GenerationMode.POSITIVE]
    if "requestBody" in PATHS[path][method]:  # nothing else can be made invalid
        modes.append(GenerationMode.NEGATIVE)
    for mode in modes:

        @given(operation.as_strategy(mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case):
            case.call_and_validate(
                base_url=url,
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )

        conforms()


# -- life cycle ---------------------------------------------------------------------------


def test_token_pooling_server_refuses_openai_embeddings_and_stops_its_proxy(google_model_dir):
    (http_port,) = free_ports(1)
    url = f"http://127.0.0.1:{http_port}"
    others = proxy_processes()
    with running_server(
        google_model_dir, "-http_port", str(http_port), "-pooling_strategy", "NONE"
    ) as server:
        (proxy,) = proxy_processes() - others
        assert "use POST /encode" in openai_refusal(embeddings(url, input="hi"), 400)
        tokens = encode(url, ["hello world"])
        assert tokens.shape == (1, server.args.max_seq_len, HIDDEN_SIZE)
        server.close()
        assert not proxy.is_alive()
        assert proxy.exitcode == 0  # it stopped on SIGTERM, not killed
        assert port_is_free(http_port)


def test_a_server_on_a_busy_http_port_fails_at_once(google_model_dir):
    (http_port,) = free_ports(1)
    started = time.monotonic()
    with occupied_port(http_port), pytest.raises(ServerStartError, match=str(http_port)):
        BertServer(server_args(google_model_dir, "-http_port", str(http_port)))
    assert time.monotonic() - started < 5


def test_the_proxy_reports_a_busy_port_on_its_startup_pipe(google_model_dir):
    (http_port,) = free_ports(1)
    with occupied_port(http_port):
        process, pipe = start_proxy(
            ProxySettings.from_args(server_args(google_model_dir, "-http_port", str(http_port)))
        )
        assert pipe.poll(60)
        status, message = pipe.recv()
        process.join(10)
    assert status == "error"
    assert message.startswith(f"cannot bind -http_port {http_port}: ")


def test_dashboard_files_are_served(url):
    for path in ("/dashboard", "/dashboard/"):
        page = requests.get(url + path, timeout=30)
        assert page.status_code == 200 and "<html" in page.text.lower()
    script = requests.get(url + "/dashboard/dashboard.js", timeout=30)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    missing = requests.get(url + "/dashboard/nothing.js", timeout=30)
    assert missing.status_code == 404 and missing.json()["status"] == 404
