"""Every HTTP route against raw bodies and headers from hypothesis: never a 5xx, every error
as JSON, and the proxy still serving afterwards (a real proxy on loopback, a real server on
the tiny checkpoint behind it).

The bodies are what a careless or hostile client sends: random bytes, any JSON (NaN and
Infinity included), near-valid requests with fields of every type, deep nesting of the
whole body or of one field, numbers too large for a float, keys given twice, invalid UTF-8
and lone surrogates, and valid requests with a few bytes changed. At least
``TOTAL_EXAMPLES`` are sent, split across the routes.
"""

from __future__ import annotations

import json
import math
from urllib.parse import quote

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bert_serving.server.http.openapi_spec import PATHS
from bert_serving.server.http.payloads import MAX_JSON_DEPTH, nesting_depth, strict_json
from tests.http_helpers import proxy_processes
from tests.servers import free_ports, running_server

TOTAL_EXAMPLES = 10_000
OPERATIONS = [
    (path, method.upper())
    for path, item in PATHS.items()
    for method in item
    if method != "parameters"
]
EXAMPLES_PER_ROUTE = math.ceil(TOTAL_EXAMPLES / len(OPERATIONS))
FIELDS = [
    "id", "texts", "is_tokenized", "input", "model", "encoding_format", "dimensions", "user",
    "inputs", "normalize", "truncate", "truncation_direction", "prompt_name",
    "add_special_tokens",
]  # fmt: skip
VALID_BODIES = [
    {"id": 1, "texts": ["hello world"]},
    {"input": ["hello world"], "model": "m"},
    {"inputs": ["hello world"], "normalize": False},
    {"inputs": "hello world", "add_special_tokens": True},
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "text/plain",
    "application/octet-stream",
]
examples_sent = 0


@pytest.fixture(scope="module")
def proxy(google_model_dir):
    """The proxy process of a running server, and its URL."""
    (http_port,) = free_ports(1)
    others = proxy_processes()
    with running_server(google_model_dir, "-http_port", str(http_port)):
        (process,) = proxy_processes() - others
        yield process, f"http://127.0.0.1:{http_port}"
    print(f"\nHTTP fuzz examples sent: {examples_sent}")


@pytest.fixture(scope="module")
def url(proxy) -> str:
    return proxy[1]


@pytest.fixture(scope="module")
def session():
    with requests.Session() as kept_alive:
        yield kept_alive


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def dumped(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def nested(depth: int, opener: bytes) -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    inner = b"[" if opener == b"[" else b'{"a":'
    return inner * depth + b"1" * (opener == b"{") + closer * depth


@st.composite
def deep_bodies(draw) -> bytes:
    # 10**6 (the 2 MB body of issue 17) is sent rarely: its transfer would dominate the run
    depth = draw(st.sampled_from([63, 64, 65, 100, 999, 1000, 5000, 100_000] * 4 + [10**6]))
    deep = nested(depth, draw(st.sampled_from([b"[", b"{"])))
    field = draw(st.sampled_from(FIELDS))
    return draw(
        st.sampled_from([deep, b'{"%s": %s, "texts": ["a"], "id": 1}' % (field.encode(), deep)])
    )


@st.composite
def odd_numbers(draw) -> bytes:
    number = draw(
        st.sampled_from([b"1e999999", b"-1e400", b"NaN", b"Infinity", b"-Infinity", b"1" * 5000])
    )
    field = draw(st.sampled_from(FIELDS)).encode()
    return b'{"%s": %s, "id": 1, "texts": ["a"], "input": "a", "inputs": "a"}' % (field, number)


@st.composite
def near_valid_bodies(draw) -> bytes:
    body = dict(draw(st.sampled_from(VALID_BODIES)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        body[name] = draw(json_values)
    return dumped(body)


@st.composite
def repeated_keys(draw) -> bytes:
    field = draw(st.sampled_from(FIELDS)).encode()
    return b'{"%s": ["a"], "%s": "b", "id": 1, "texts": ["a"]}' % (field, field)


@st.composite
def mutated_bodies(draw) -> bytes:
    body = bytearray(dumped(draw(st.sampled_from(VALID_BODIES))))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(body) - 1))
        body[position] = draw(st.integers(0, 255))
    return bytes(body)


text_bodies = st.sampled_from(
    [
        b'{"id": 1, "texts": ["\xff\xfe"]}',
        b'{"inputs": "\xc3\x28"}',
        b'{"input": "\\ud800"}',
        b'{"inputs": ["\\udfff"], "texts": ["\\ud800"], "id": 1}',
        b"\xef\xbb\xbf" + dumped(VALID_BODIES[0]),
        dumped(VALID_BODIES[0]).decode().encode("utf-16"),
        b"id=1&texts=%FF%FE&texts=",
        b'--x\r\nContent-Disposition: form-data; name="id"\r\n\r\n[[[[\r\n--x--\r\n',
    ]
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(dumped),
    near_valid_bodies(),
    deep_bodies(),
    odd_numbers(),
    repeated_keys(),
    mutated_bodies(),
    text_bodies,
    st.just(b""),
)
# any value HTTP allows (visible ASCII, spaces, obs-text): waitress answers others itself
header_text = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"),
    max_size=40,
).map(str.strip)  # HTTP drops the spaces around a value (and requests refuses them)
headers = st.fixed_dictionaries(
    {"Content-Type": st.sampled_from(CONTENT_TYPES) | header_text},
    optional={
        "Content-Encoding": st.sampled_from(["gzip", "identity", "br"]) | header_text,
        "Accept-Encoding": st.sampled_from(["gzip", "br", "zstd", "*"]) | header_text,
        "Accept": header_text,
        "Authorization": header_text,
        "X-API-Key": header_text,
        "Origin": header_text,
    },
)


def concrete(path: str, file_name: str) -> str:
    return path.replace("{file}", quote(file_name, safe=""))


@pytest.mark.slow
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_any_body_and_headers_answer_below_500(proxy, url, session, path, method):
    @given(
        body=bodies,
        sent_headers=headers,
        verb=st.sampled_from([method] * 8 + ["GET", "POST", "PUT", "DELETE", "PATCH"]),
        file_name=st.text(max_size=12),
    )
    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def never_a_server_error(body, sent_headers, verb, file_name):
        global examples_sent
        examples_sent += 1
        answer = session.request(
            verb, url + concrete(path, file_name), data=body, headers=sent_headers, timeout=60
        )
        assert answer.status_code < 500, (answer.status_code, answer.text[:300], body[:200])
        if answer.status_code >= 400:
            assert answer.headers["Content-Type"] == "application/json", answer.text[:300]
            assert isinstance(answer.json(), dict)

    never_a_server_error()
    assert proxy[0].is_alive()  # the same proxy process: it was never replaced
    still_serving = session.post(f"{url}/encode", json={"id": 1, "texts": ["hello world"]})
    assert still_serving.status_code == 200
    assert np.array(still_serving.json()["result"]).shape == (1, 32)


# -- the cases of issue 17, one by one ----------------------------------------------------

MILLION_DEEP = b"[" * 10**6 + b"]" * 10**6
POST_ROUTES = [path for path, method in OPERATIONS if method == "POST"]


@pytest.mark.slow
@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (MILLION_DEEP, "nested deeper than 64 levels"),
        (b'{"id": %s, "texts": ["a"], "input": "a", "inputs": "a"}' % MILLION_DEEP, "nested"),
        (b'{"id": 1, "texts": %s, "input": %s, "inputs": %s}' % ((nested(65, b"["),) * 3), "64"),
        (b'{"id": 1e999, "texts": ["a"], "input": "a", "inputs": "a"}', "too large"),
        (b'{"id": NaN, "texts": ["a"], "input": "a", "inputs": "a"}', "NaN is not"),
        (b'{"id": 1, "id": 2, "texts": ["a"], "input": "a", "inputs": "a"}', "appears twice"),
        (b'{"id": 1, "texts": ["\xff"], "input": "\xff", "inputs": "\xff"}', "malformed JSON"),
    ],
)
def test_hostile_json_gets_a_4xx_that_names_the_problem(url, session, route, body, message):
    answer = session.post(url + route, data=body, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text[:300]
    assert message in answer.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
        ('{"a": 1e400}', "too large for a float"),
        ('{"a": -Infinity}', "-Infinity is not a JSON value"),
        ('{"a": 1, "b": {"c": 1, "c": 2}}', "'c' appears twice"),
        ("1" * 5000, "digits"),
    ],
)
def test_strict_json_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        strict_json(text)


def test_strict_json_reads_plain_json_and_nesting_up_to_the_limit():
    deepest = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert nesting_depth(strict_json(deepest)) == MAX_JSON_DEPTH
    value = strict_json('{"id": [1, {"a": [2.5e300, null]}], "texts": ["x"]}')
    assert value == {"id": [1, {"a": [2.5e300, None]}], "texts": ["x"]}
    assert nesting_depth(value) == 4
    assert nesting_depth("text") == 0
