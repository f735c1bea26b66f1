"""The OpenAPI 3 description of every endpoint, served at ``/openapi.json``.

Built in Python rather than kept as a JSON file so the shared pieces (the error body,
the texts) are written once; the tests check the running proxy against it.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TEXT = {"type": "string", "pattern": "\\S", "description": "a text with something to encode"}
ANY_JSON: dict = {"description": "any JSON value"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, schema: str = "Error") -> dict:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


def _json_answer(description: str, schema: dict) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


TOO_LARGE = _error("the body is larger than -http_max_body")
REFUSED = _error("a mistake in the request, or the server refused it; the message says which")
TIMEOUT = _error("the server did not answer in time")
OPENAI_ERRORS = {
    "400": _error("a mistake in the request; the message says which", "OpenAIError"),
    "413": _error("the body is larger than -http_max_body", "OpenAIError"),
    "504": _error("the server did not answer in time", "OpenAIError"),
}
TEI_ERRORS = {
    "400": _error("`inputs` is an empty list (error_type Empty)", "TeiError"),
    "413": _error("the body is larger than -http_max_body, or too many inputs", "TeiError"),
    "422": _error("a mistake in the request, or an input too long (Validation)", "TeiError"),
}
TEI_ENCODING_ERRORS = {
    **TEI_ERRORS,
    "424": _error("the server cannot give these embeddings, or refused (Backend)", "TeiError"),
    "504": _error("the server did not answer in time (Backend)", "TeiError"),
}
TEI_TEXTS = {
    "oneOf": [TEXT, {"type": "array", "minItems": 1, "maxItems": 4096, "items": TEXT}],
    "description": "a text or a list of texts (token ids are not accepted)",
}
NULLABLE_BOOLEAN = {"type": "boolean", "nullable": True}
FLOATS = {"type": "array", "items": {"type": "number"}}

TEI_EMBED_ALL_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "inputs": TEI_TEXTS,
        "truncate": {**NULLABLE_BOOLEAN, "description": "null: cut (auto_truncate)"},
        "truncation_direction": {
            "type": "string",
            "enum": ["right", "left", "Right", "Left"],
            "default": "right",
        },
        "dimensions": {"type": "integer", "nullable": True, "description": "only the model's"},
        "prompt_name": {"type": "string", "nullable": True, "description": "must be null"},
    },
}
TEI_EMBED_REQUEST = {
    **TEI_EMBED_ALL_REQUEST,
    "properties": {
        **TEI_EMBED_ALL_REQUEST["properties"],
        "normalize": {"type": "boolean", "default": True},
    },
}

SCHEMAS: dict[str, Any] = {
    "TeiEmbedRequest": TEI_EMBED_REQUEST,
    "TeiEmbedAllRequest": TEI_EMBED_ALL_REQUEST,
    "Error": {
        "type": "object",
        "required": ["status", "error"],
        "properties": {
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "error": {"type": "string"},
        },
    },
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": "string", "nullable": True},
                    "code": {"type": "string", "nullable": True},
                },
            }
        },
    },
    "TeiError": {
        "type": "object",
        "required": ["error", "error_type"],
        "properties": {
            "error": {"type": "string"},
            "error_type": {
                "type": "string",
                "enum": ["Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer", "Empty"],
            },
        },
    },
    "TeiTokenizeRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "add_special_tokens": {"type": "boolean", "default": True},
        },
    },
    "TeiToken": {
        "type": "object",
        "required": ["id", "text", "special", "start", "stop"],
        "properties": {
            "id": {"type": "integer", "minimum": 0},
            "text": {"type": "string"},
            "special": {"type": "boolean"},
            "start": {"type": "integer", "nullable": True, "description": "always null here"},
            "stop": {"type": "integer", "nullable": True, "description": "always null here"},
        },
    },
    "TeiInfo": {
        "type": "object",
        "required": [
            "model_id",
            "model_dtype",
            "model_type",
            "max_concurrent_requests",
            "max_input_length",
            "max_batch_tokens",
            "max_client_batch_size",
            "auto_truncate",
            "tokenization_workers",
            "version",
        ],
        "properties": {
            "model_id": {"type": "string"},
            "model_dtype": {"type": "string"},
            "model_type": {"type": "object"},
            "max_concurrent_requests": {"type": "integer"},
            "max_input_length": {"type": "integer"},
            "max_batch_tokens": {"type": "integer"},
            "max_client_batch_size": {"type": "integer"},
            "auto_truncate": {"type": "boolean"},
            "tokenization_workers": {"type": "integer"},
            "version": {"type": "string"},
        },
    },
    "EncodeRequest": {
        "type": "object",
        "required": ["id", "texts"],
        "properties": {
            "id": ANY_JSON,
            "texts": {
                "type": "array",
                "minItems": 1,
                "description": "strings, or lists of tokens with is_tokenized",
                "items": {"oneOf": [TEXT, {"type": "array", "minItems": 1, "items": TEXT}]},
            },
            "is_tokenized": {"type": "boolean", "default": False},
        },
    },
    "EncodeForm": {
        "type": "object",
        "required": ["id", "texts"],
        "properties": {
            "id": {"type": "string", "description": "parsed as JSON when it is JSON"},
            "texts": {"type": "string", "description": "a JSON list, or one text per field"},
            "is_tokenized": {"type": "string", "enum": ["true", "false"]},
        },
    },
    "EncodeResponse": {
        "type": "object",
        "required": ["id", "result", "status"],
        "properties": {
            "id": ANY_JSON,
            "result": {
                "type": "array",
                "description": "one vector per text (one per token under pooling NONE)",
                "items": {"type": "array"},
            },
            "status": {"type": "integer", "enum": [200]},
        },
    },
    "EmbeddingsRequest": {
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": {"oneOf": [TEXT, {"type": "array", "minItems": 1, "items": TEXT}]},
            "model": {"type": "string", "description": "echoed; defaults to the served model"},
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1, "description": "only the model's"},
            "user": {"type": "string", "description": "ignored"},
        },
    },
    "EmbeddingsResponse": {
        "type": "object",
        "required": ["object", "data", "model", "usage"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["object", "index", "embedding"],
                    "properties": {
                        "object": {"type": "string", "enum": ["embedding"]},
                        "index": {"type": "integer", "minimum": 0},
                        "embedding": {
                            "oneOf": [
                                {"type": "array", "items": {"type": "number"}},
                                {"type": "string", "description": "base64 float32 LE"},
                            ]
                        },
                    },
                },
            },
            "model": {"type": "string"},
            "usage": {
                "type": "object",
                "required": ["prompt_tokens", "total_tokens"],
                "properties": {
                    "prompt_tokens": {"type": "integer", "minimum": 0},
                    "total_tokens": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "ready"],
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "ready": {"type": "boolean", "description": "every local worker has loaded"},
            "server_version": {"type": "string"},
            "workers_serving": {
                "type": "integer",
                "description": "workers registered and serving, local and remote",
            },
        },
    },
    "ClientStatus": {
        "type": "object",
        "required": ["max_concurrency", "clients"],
        "properties": {
            "max_concurrency": {"type": "integer"},
            "clients": {"type": "array", "items": {"type": "object"}},
        },
    },
}


def _get(summary: str, ok: dict, *errors: tuple[str, dict]) -> dict:
    return {"get": {"summary": summary, "responses": {"200": ok, **dict(errors)}}}


def _post(summary: str, request: dict, ok: dict, errors: dict | None = None) -> dict:
    responses = {"200": ok, **(errors or {"400": REFUSED, "413": TOO_LARGE, "504": TIMEOUT})}
    return {"post": {"summary": summary, "requestBody": request, "responses": responses}}


def _json_body(schema: str) -> dict:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


TEI_EMBED = _post(
    "Embed texts (TEI's /embed): unit-length vectors unless normalize is false",
    _json_body("TeiEmbedRequest"),
    _json_answer("one vector per input", {"type": "array", "items": FLOATS}),
    TEI_ENCODING_ERRORS,
)


PATHS = {
    "/encode": _post(
        "Encode texts (the bert-as-service 1.10 HTTP API)",
        {
            "required": True,
            "content": {
                JSON: {"schema": _ref("EncodeRequest")},
                FORM: {"schema": _ref("EncodeForm")},
            },
        },
        _json_answer("one vector per text", _ref("EncodeResponse")),
    ),
    "/v1/embeddings": _post(
        "Embed texts (OpenAI's embeddings API): unit-length vectors",
        _json_body("EmbeddingsRequest"),
        _json_answer("one embedding per input", _ref("EmbeddingsResponse")),
        OPENAI_ERRORS,
    ),
    "/": TEI_EMBED,
    "/embed": TEI_EMBED,
    "/embed_all": _post(
        "Token embeddings (TEI's /embed_all), on a server with -pooling_strategy NONE",
        _json_body("TeiEmbedAllRequest"),
        _json_answer(
            "the vectors of each input's tokens",
            {"type": "array", "items": {"type": "array", "items": FLOATS}},
        ),
        TEI_ENCODING_ERRORS,
    ),
    "/tokenize": _post(
        "The server's tokenization (TEI's /tokenize), uncut",
        _json_body("TeiTokenizeRequest"),
        _json_answer(
            "the tokens of each input",
            {"type": "array", "items": {"type": "array", "items": _ref("TeiToken")}},
        ),
        TEI_ERRORS,
    ),
    "/info": _get(
        "The served model and limits (TEI's /info)", _json_answer("the facts", _ref("TeiInfo"))
    ),
    "/status/server": _get(
        "The server's SHOW_STATUS: its arguments, versions and statistics",
        _json_answer("the status", {"type": "object"}),
        ("504", TIMEOUT),
    ),
    "/status/client": _get(
        "The status of the proxy's pool of clients",
        _json_answer("the pool", _ref("ClientStatus")),
    ),
    "/health": _get(
        "200 when the server answers over ZeroMQ within a short time",
        _json_answer("the server answers", _ref("Health")),
        ("503", _error("the server does not answer")),
    ),
    "/metrics": _get(
        "Prometheus metrics",
        {"description": "text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
    ),
    "/openapi.json": _get("This description", _json_answer("OpenAPI 3", {"type": "object"})),
    "/dashboard": _get(
        "The dashboard page",
        {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}},
        ("404", _error("the dashboard is not installed")),
    ),
    "/dashboard/{file}": {
        "parameters": [
            {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        **_get(
            "A file of the dashboard (script, style sheet)",
            {"description": "the file", "content": {"*/*": {}}},
            ("404", _error("no such file")),
        ),
    },
}


def build_spec(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "bert-as-service HTTP proxy",
            "version": version,
            "description": "BERT sentence encodings over HTTP: the 1.10 /encode API, an "
            "OpenAI-compatible /v1/embeddings and Hugging Face TEI's /embed, /embed_all, "
            "/tokenize and /info, forwarded to the server over ZeroMQ.",
        },
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }
