"""``POST /v1/embeddings`` in the shape of OpenAI's embeddings API, so its clients work as is.

Base64 embeddings are the little-endian float32 bytes of the vector, as OpenAI sends them
(its Python client asks for base64 by default and decodes it itself).
"""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

import numpy as np

from .errors import ApiError
from .payloads import json_object
from .texts import require_unicode

ENCODING_FORMATS = ("float", "base64")


class EmbeddingsRequest(NamedTuple):
    texts: list[str]
    model: str
    encoding_format: str
    dimensions: int | None


def parse_embeddings_request(served_model: str) -> EmbeddingsRequest:
    """Read and check the body; ``model`` defaults to the served model's name."""
    fields = json_object()
    if "input" not in fields:
        raise ApiError(
            400, 'the field "input" is missing: a string or a list of strings', param="input"
        )
    model = fields.get("model", served_model)
    if not isinstance(model, str):
        raise ApiError(400, f'"model" must be a string, got {type(model).__name__}', param="model")
    encoding_format = fields.get("encoding_format", "float")
    if encoding_format not in ENCODING_FORMATS:
        raise ApiError(
            400,
            f'"encoding_format" must be "float" or "base64", got {encoding_format!r}',
            param="encoding_format",
        )
    dimensions = fields.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        raise ApiError(
            400, f'"dimensions" must be a positive integer, got {dimensions!r}', param="dimensions"
        )
    if not isinstance(fields.get("user", ""), str):
        raise ApiError(400, '"user" must be a string', param="user")
    return EmbeddingsRequest(_input_texts(fields["input"]), model, encoding_format, dimensions)


def embeddings_answer(
    request: EmbeddingsRequest, vectors: np.ndarray, prompt_tokens: int
) -> dict[str, Any]:
    """The response body; refuses a ``dimensions`` the model cannot give."""
    check_dimensions(request.dimensions, vectors.shape[1], 400)
    data = [
        {"object": "embedding", "index": index, "embedding": _encoded(vector, request)}
        for index, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def check_dimensions(requested: int | None, size: int, status: int) -> None:
    """Refuse a ``dimensions`` (OpenAI's and TEI's field) other than the model's size."""
    if requested is not None and requested != size:
        raise ApiError(
            status,
            f'"dimensions" is {requested} but this model\'s embeddings have {size} '
            "dimensions and cannot be shortened; omit it or pass that value",
            param="dimensions",
        )


def _input_texts(value: Any) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise ApiError(
            400, f'"input" must be a string or a list of strings, got {value!r:.60}', param="input"
        )
    if not texts:
        raise ApiError(400, '"input" is an empty list: pass at least one string', param="input")
    for index, text in enumerate(texts):
        where = "input" if isinstance(value, str) else f"input[{index}]"
        if isinstance(text, (int, list)) and not isinstance(text, bool):
            raise ApiError(
                400, "token arrays are not supported: send the texts as strings", param="input"
            )
        if not isinstance(text, str):
            raise ApiError(
                400, f"{where} must be a string, got {type(text).__name__}", param="input"
            )
        if not text.strip():
            raise ApiError(
                400,
                f"{where} is empty or only whitespace: there is nothing to embed",
                param="input",
            )
        require_unicode(text, where)
    return texts


def _encoded(vector: np.ndarray, request: EmbeddingsRequest) -> list[float] | str:
    little_endian = vector.astype("<f4")
    if request.encoding_format == "base64":
        return base64.b64encode(little_endian.tobytes()).decode("ascii")
    return little_endian.tolist()
