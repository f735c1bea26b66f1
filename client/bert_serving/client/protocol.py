"""Frames of the bert-as-service 1.10 wire protocol (docs/design/protocol.md), no sockets."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple, Sequence

import numpy as np

from .errors import BertServerError
from .normalization import unit_length

SHOW_CONFIG = b"SHOW_CONFIG"
SHOW_STATUS = b"SHOW_STATUS"
CHUNK_BYTES = 1 << 20  # a payload is checked a MiB at a time (cache-sized temporaries)
FIRST_PRINTABLE = 0x20  # JSON escapes every character below it
CONTROL_CHARACTER = re.compile(rb"[\x00-\x1f]")
SMALL_PAYLOAD_BYTES = 1 << 16


class Reply(NamedTuple):
    """One answer published by the server, not yet decoded into an array."""

    request_id: int
    header: dict
    array_bytes: bytes | None  # None for the 3-frame config/status answers

    @property
    def is_encoding(self) -> bool:
        return self.array_bytes is not None


def request_frames(identity: bytes, payload: bytes, request_id: int, num_texts: int) -> list[bytes]:
    """The 4 frames of every request: identity, payload, request id, number of texts."""
    return [identity, payload, str(request_id).encode("ascii"), str(num_texts).encode("ascii")]


def texts_payload(texts: Sequence[Any]) -> bytes:
    """Compact UTF-8 JSON of the texts (raw strings or token lists), byte for byte what
    ``json.dumps(texts, ensure_ascii=False, separators=(",", ":"))`` encodes.

    Strings that need no escape (no quote, backslash or control character: nearly all
    text) are written as their UTF-8 bytes between quotes, at memory speed; json.dumps
    scans a 100 MB text character by character (half a second) and the encode after it
    copies it once more."""
    if all(isinstance(text, str) for text in texts):
        payload = _plain_strings_payload(texts)
        if payload is not None:
            return payload
    return json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _plain_strings_payload(texts: Sequence[str]) -> bytes | None:
    """``["a","b"]`` joined from the texts' UTF-8; None if some text needs an escape."""
    encoded = [text.encode("utf-8") for text in texts]
    if not encoded or any(b'"' in chunk or b"\\" in chunk for chunk in encoded):
        return None
    pieces = [b'","'] * (2 * len(encoded) - 1)
    pieces[0::2] = encoded
    payload = b"".join([b'["', *pieces, b'"]'])  # one copy of the texts' bytes
    return None if _has_control_character(payload) else payload


def _has_control_character(data: bytes) -> bool:
    """A regular expression for the usual short payload (numpy's per-call cost is more
    than the scan), numpy's vectorised minimum for large ones (the expression is slower
    per byte)."""
    if len(data) < SMALL_PAYLOAD_BYTES:
        return CONTROL_CHARACTER.search(data) is not None
    array = np.frombuffer(data, np.uint8)
    return any(
        array[start : start + CHUNK_BYTES].min() < FIRST_PRINTABLE
        for start in range(0, array.size, CHUNK_BYTES)
    )


def parse_reply(frames: Sequence[bytes]) -> Reply:
    """Split a published message into request id, JSON header and (for encodings) array bytes."""
    if len(frames) not in (3, 4):
        raise ValueError(f"unexpected answer from the server: {len(frames)} frames, not 3 or 4")
    header = json.loads(frames[1].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"unexpected answer from the server: frame 1 is not an object: {header!r}")
    array_bytes = bytes(frames[2]) if len(frames) == 4 else None
    return Reply(int(frames[-1]), header, array_bytes)


def decode_encoding(reply: Reply, normalize: bool = False) -> tuple[np.ndarray, Any]:
    """The array (a read-only view of the received bytes, or with `normalize` a new array of
    unit-length vectors) and the tokens of an encoding.

    Raises BertServerError when the server answered with `{"error": ..., "status": ...}`.
    """
    header = reply.header
    if "error" in header:
        raise BertServerError(str(header["error"]), reply.request_id, header.get("status"))
    array = np.frombuffer(reply.array_bytes, dtype=np.dtype(header["dtype"]))
    array = array.reshape(header["shape"])
    return (unit_length(array) if normalize else array), header.get("tokens", "")
