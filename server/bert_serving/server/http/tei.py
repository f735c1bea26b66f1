"""Hugging Face text-embeddings-inference (TEI) routes: ``/embed``, ``/embed_all``,
``/tokenize``, ``/info`` and ``POST /``, with TEI's request and answer shapes.

TEI reads its bodies strictly (serde): a field of the wrong type, a JSON syntax error and
an input too long without ``truncate`` are all 422 ``Validation``; an empty ``inputs`` list
is 400 ``Empty``; more inputs than ``max_client_batch_size`` is 413. This module follows
that, so TEI's clients (``huggingface_hub``'s ``InferenceClient``) read the errors as
they read TEI's.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import __version__
from ..model.strategy import PoolingStrategy
from ..tokenization.wordpiece import CLS_TOKEN, SEP_TOKEN
from .errors import ApiError
from .openai import check_dimensions
from .payloads import json_object
from .settings import ProxySettings
from .texts import require_unicode
from .tokens import UNLIMITED, TokenCounter

MAX_CLIENT_BATCH_SIZE = 4096  # the client's chunk size: larger lists are one chunk each
TRUNCATION_DIRECTIONS = {"right": False, "left": True}  # TEI accepts either case
# TEI's names for the pooling it reports in /info (others keep this server's names)
TEI_POOLING = {PoolingStrategy.REDUCE_MEAN: "mean", PoolingStrategy.CLS_TOKEN: "cls"}


class TeiRequest(NamedTuple):
    """An /embed or /embed_all request, checked."""

    texts: list[str]
    normalize: bool
    truncate: bool | None  # None: the server's default (it truncates, auto_truncate)
    left: bool  # truncation_direction "left": keep the end of a text that is too long
    dimensions: int | None


class Inputs(NamedTuple):
    """What goes to the server for a TeiRequest: texts, or word pieces for left truncation,
    and how many tokens of each the model is fed (the rows of its token embeddings)."""

    texts: list
    is_tokenized: bool
    lengths: np.ndarray


def fields() -> dict[str, Any]:
    """The body as a JSON object; every mistake in it is TEI's 422 ``Validation``."""
    try:
        return json_object()
    except ApiError as err:
        raise ApiError(422, err.message) from None


def parse_embed_request(body: dict[str, Any], normalize_field: bool) -> TeiRequest:
    """``{"inputs", "normalize"?, "truncate"?, "truncation_direction"?, ...}``.

    ``prompt_name`` must be null (this server has no prompts); ``dimensions`` may only be
    null or the model's size, checked with the answer.
    """
    texts = input_texts(body)
    normalize = _optional(body, "normalize", bool, True) if normalize_field else False
    truncate = _optional(body, "truncate", bool, None)
    direction = _optional(body, "truncation_direction", str, "right")
    if direction.lower() not in TRUNCATION_DIRECTIONS:
        raise ApiError(
            422, f'"truncation_direction" must be "left" or "right", not {direction!r:.40}'
        )
    if body.get("prompt_name") is not None:
        raise ApiError(422, '"prompt_name": this server has no prompts; leave it out or null')
    left = TRUNCATION_DIRECTIONS[direction.lower()]
    return TeiRequest(texts, normalize, truncate, left, _optional(body, "dimensions", int, None))


def input_texts(body: dict[str, Any], allow_blank: bool = False) -> list[str]:
    """``inputs``: a string or a list of strings (not token ids), within the batch limit."""
    if "inputs" not in body:
        raise ApiError(422, 'the field "inputs" is missing: a string or a list of strings')
    value = body["inputs"]
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise ApiError(422, f'"inputs" must be a string or a list of strings, got {value!r:.60}')
    if not texts:
        raise ApiError(400, "`inputs` cannot be empty")
    if len(texts) > MAX_CLIENT_BATCH_SIZE:
        raise ApiError(
            413, f"batch size {len(texts)} > maximum allowed batch size {MAX_CLIENT_BATCH_SIZE}"
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ApiError(422, f"inputs[{index}] must be a string (token ids are not accepted)")
        if not allow_blank and not text.strip():
            raise ApiError(422, f"inputs[{index}] is empty or only whitespace: nothing to embed")
        require_unicode(text, f"inputs[{index}]", 422)
    return texts


def server_inputs(request: TeiRequest, tokens: TokenCounter) -> Inputs:
    """The texts as the server gets them, after TEI's length rules.

    The server cuts long texts on the right, as TEI's ``truncate``. Without ``truncate``
    a long text is refused, as TEI does; with ``truncation_direction: left`` the proxy
    keeps the last word pieces itself and sends them as tokenized input.
    """
    capped = tokens.lengths(request.texts, limit=tokens.max_len + 1)
    too_long = np.flatnonzero(capped > tokens.max_len)
    as_texts = Inputs(request.texts, False, np.minimum(capped, tokens.max_len))
    if not len(too_long):
        return as_texts
    if request.truncate is False:
        index = int(too_long[0])
        (given,) = tokens.lengths([request.texts[index]], limit=UNLIMITED)
        raise ApiError(
            422,
            f"Input validation error: `inputs` must have less than {tokens.max_len} tokens. "
            f'Given: {given} (inputs[{index}]); send "truncate": true to cut it',
        )
    if not request.left:
        return as_texts
    tails = tokens.tails(request.texts)
    for index, pieces in enumerate(tails):
        if not pieces:
            raise ApiError(
                422,
                f"inputs[{index}] has no word pieces, which left truncation cannot send; "
                'use "truncation_direction": "right"',
            )
    return Inputs(tails, True, np.array([len(t) for t in tails]) + tokens.num_special_tokens)


def checked_dimensions(request: TeiRequest, vectors: np.ndarray) -> None:
    check_dimensions(request.dimensions, vectors.shape[-1], 422)


def token_vectors(vectors: np.ndarray, lengths: np.ndarray) -> list[list[list[float]]]:
    """/embed_all: each text's vectors of its real tokens, without the padding rows."""
    return [vectors[row, :length].tolist() for row, length in enumerate(lengths)]


def parse_tokenize_request(body: dict[str, Any]) -> tuple[list[str], bool]:
    """``{"inputs", "add_special_tokens"?: true}``: texts and whether [CLS]/[SEP] are added."""
    texts = input_texts(body, allow_blank=True)
    if body.get("prompt_name") is not None:
        raise ApiError(422, '"prompt_name": this server has no prompts; leave it out or null')
    return texts, _optional(body, "add_special_tokens", bool, True)


def tokenized(texts: list[str], add_special_tokens: bool, tokens: TokenCounter) -> list:
    """TEI's ``[[{"id", "text", "special", "start", "stop"}]]``, uncut (as TEI's /tokenize).

    ``start`` and ``stop`` (character offsets) are null: the tokenizer does not keep them.
    """
    rows = [tokens.features([text], add_special_tokens, UNLIMITED) for text in texts]
    return [
        [
            {"id": int(token_id), "text": text, "special": text in (CLS_TOKEN, SEP_TOKEN)}
            | {"start": None, "stop": None}
            for token_id, text in zip(row.input_ids[0], row.tokens[0])
        ]
        for row in rows  # one at a time: a batch's arrays are as wide as its longest text
    ]


def info(settings: ProxySettings, tokens: TokenCounter) -> dict[str, Any]:
    """TEI's ``/info``: what a client needs to know to size and send its requests."""
    pooling = PoolingStrategy.parse(settings.encoder.pooling_strategy)
    return {
        "model_id": settings.served_model,
        "model_sha": None,
        "model_dtype": "float16" if settings.encoder.fp16 else "float32",
        "model_type": {"embedding": {"pooling": TEI_POOLING.get(pooling, str(pooling).lower())}},
        "max_concurrent_requests": settings.threads,
        "max_input_length": tokens.max_len,
        "max_batch_tokens": settings.max_batch_size * tokens.max_len,
        "max_batch_requests": None,
        "max_client_batch_size": MAX_CLIENT_BATCH_SIZE,
        "auto_truncate": True,
        "tokenization_workers": 1,
        "version": __version__,
        "sha": None,
        "docker_label": None,
    }


def _optional(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """Field ``name`` of type ``kind``, or ``default`` when absent or null."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(422, f'"{name}" must be {_KIND_NAMES[kind]}, got {value!r:.60}')
    return value


_KIND_NAMES = {bool: "true or false", str: "a string", int: "an integer"}
