"""The 1.10 client protocol (docs/design/protocol.md): requests in, answers out.

A client pushes ``[identity, payload, request id, count]`` and reads ``[identity, JSON
header, array bytes, request id]`` from its subscription. The client package has its own
copy of the client side of these rules (it must not depend on the server).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, List, Union

import numpy as np

from .plain_json import plain_string_spans
from .utf8_texts import decode_spans

SHOW_CONFIG = b"SHOW_CONFIG"
SHOW_STATUS = b"SHOW_STATUS"
TERMINATION = b"TERMINATION"
COMMANDS = (SHOW_CONFIG, SHOW_STATUS, TERMINATION)

Texts = Union[List[str], List[List[str]]]


class BadRequestError(ValueError):
    """A client request the server refuses; the message goes back to that client."""


@dataclass(frozen=True)
class Request:
    """One parsed client request: a command, or a batch of texts."""

    client: bytes
    request_id: int
    command: bytes | None = None
    texts: Texts | None = None
    is_tokenized: bool = False
    # where each text's UTF-8 bytes lie in the payload, when it was read without json.loads
    # (``plain_json``): the worker then gets those very bytes (compared by identity only)
    spans: np.ndarray | None = field(default=None, compare=False)


_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once:
# json.dumps builds an encoder per call for any but its default options


def dumps(obj: Any) -> bytes:
    return _COMPACT_JSON.encode(obj).encode("utf-8")


def reply_address(frames: list[bytes]) -> tuple[bytes, bytes] | None:
    """The identity and request id an answer would go to, if the message has both."""
    if len(frames) >= 3 and frames[0] and frames[2].isdigit():
        return frames[0], frames[2]
    return None


def parse_request(frames: list) -> Request:
    """Parse and check the 4 request frames; raise BadRequestError saying what is wrong.

    Frames are bytes, except that the payload (frame 1) may be any buffer: a large one is
    read where ZeroMQ received it, without a copy. BadRequestError is answered to the
    identity in frame 0 on the request id in frame 2. A message without both (a readable
    identity and a numeric id) raises plain ValueError: there is nobody to answer.
    """
    if reply_address(frames) is None:
        raise ValueError(
            f"no identity and numeric request id to answer in a {len(frames)}-frame message"
        )
    if len(frames) != 4:
        raise BadRequestError(
            f"expected 4 frames (identity, payload, request id, count), got {len(frames)}"
        )
    client, payload, raw_id, raw_count = frames
    request_id = int(raw_id)
    if payload in COMMANDS:
        return Request(client, request_id, command=payload)
    if not raw_count.isdigit():
        raise BadRequestError(f"the text count frame must be ASCII digits, got {raw_count[:20]!r}")
    spans = plain_string_spans(payload)
    texts = _texts_of(payload, spans)
    is_tokenized = check_texts(texts)
    if int(raw_count) != len(texts):
        raise BadRequestError(
            f"the count frame says {int(raw_count)} texts, the payload has {len(texts)}"
        )
    return Request(client, request_id, texts=texts, is_tokenized=is_tokenized, spans=spans)


def _texts_of(payload: Any, spans: np.ndarray | None) -> Any:
    """The payload's JSON value: cut out at ``spans`` when there are, else json.loads."""
    try:
        if spans is not None:
            return decode_spans(payload, spans)
        return json.loads(str(payload, "utf-8"))
    except UnicodeDecodeError:
        raise BadRequestError("the payload is not UTF-8") from None
    except RecursionError:
        raise BadRequestError("the payload's JSON is nested too deeply") from None
    except ValueError:
        raise BadRequestError(
            f"the payload is neither a command ({', '.join(c.decode() for c in COMMANDS)}) nor JSON"
        ) from None


def check_texts(texts: Any) -> bool:
    """Refuse anything but a non-empty list of non-empty strings or of non-empty token lists;
    return whether the input is tokenized."""
    if not isinstance(texts, list) or not texts:
        raise BadRequestError("texts must be a non-empty list of strings (or of token lists)")
    is_tokenized = isinstance(texts[0], list)
    for index, text in enumerate(texts):
        if is_tokenized:
            if not isinstance(text, list) or not text:
                raise BadRequestError(
                    f"texts[{index}] must be a non-empty list of tokens, got {_preview(text)}"
                )
            for position, token in enumerate(text):
                if not isinstance(token, str) or _is_blank(token):
                    raise BadRequestError(
                        f"texts[{index}][{position}] must be a non-empty string, "
                        f"got {_preview(token)}"
                    )
                _check_encodable(f"texts[{index}][{position}]", token)
        elif not isinstance(text, str) or _is_blank(text):
            raise BadRequestError(
                f"texts[{index}] must be a non-empty string, got {_preview(text)}"
            )
        else:
            _check_encodable(f"texts[{index}]", text)
    return is_tokenized


def _is_blank(text: str) -> bool:
    """Empty or only whitespace; unlike ``not text.strip()``, copies nothing (a giant text
    is usually answered at its first character)."""
    return not text or text.isspace()


def _check_encodable(where: str, text: str) -> None:
    """JSON may carry a lone surrogate (an escaped \\ud800): no Unicode text, refuse it.

    The client package checks the same before sending (its own copy: the two packages
    share no code); the server cannot trust that every client does. An ASCII text (known
    at once) has none, and is not encoded just to find out."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise BadRequestError(
            f"{where} holds a lone surrogate at position {err.start}: not valid Unicode"
        ) from None


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def command_frames(command: bytes, identity: bytes = b"0", request_id: int = 0) -> list[bytes]:
    """A command request (SHOW_CONFIG, SHOW_STATUS, TERMINATION) as a 1.10 client sends it."""
    return [identity, command, str(request_id).encode(), b"0"]


def array_header(array: np.ndarray, tokens: Any) -> bytes:
    """The JSON that describes an array frame: its dtype, shape and the texts' tokens."""
    return dumps({"dtype": _dtype_name(array.dtype), "shape": list(array.shape), "tokens": tokens})


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype: np.dtype) -> str:
    """``str(dtype)``, which numpy computes anew (several microseconds) on every call."""
    return str(dtype)


def encoding_frames(client: bytes, request_id: int, array: np.ndarray, tokens: Any) -> list:
    """The 4-frame answer to an encode request, as a 1.10 client reads it."""
    data = np.ascontiguousarray(array).data
    return [client, array_header(array, tokens), data, str(request_id).encode()]


def error_frames(client: bytes, request_id: int, message: str, status: int = 400) -> list[bytes]:
    """An error answer: 4 frames like an encoding, so a client waiting for its request id gets
    it, with ``error`` in the JSON and an empty array frame."""
    return [client, dumps({"error": message, "status": status}), b"", str(request_id).encode()]
