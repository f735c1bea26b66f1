"""Reading a request body as fields: a JSON object, or an HTML form as 1.10 also accepted.

Only JSON that any parser reads the same way gets through: no NaN or Infinity, no number
too large for a float, no key twice, and no nesting deeper than ``MAX_JSON_DEPTH`` (Python's
parser would hit its recursion limit, and an echoed ``id`` must serialise again).
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request

from .errors import ApiError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_JSON_DEPTH = 64
CONTAINERS = (list, dict)


def is_form() -> bool:
    return request.mimetype in FORM_TYPES


def json_object() -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says (curl users forget it)."""
    body = request.get_data(cache=True)  # raises 413 past -http_max_body
    if not body.strip():
        raise ApiError(400, "the request body is empty: send a JSON object")
    try:
        value = strict_json(body)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError alike
        raise ApiError(400, f"malformed JSON in the request body: {err}") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(value).__name__}")
    return value


def form_values(name: str) -> list[str]:
    """Every value of a form field, in order (fields may repeat)."""
    return request.form.getlist(name)


def strict_json(text: str | bytes) -> Any:
    """``json.loads`` of plain JSON only (see the module's docstring); ValueError otherwise."""
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if nesting_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def nesting_depth(value: Any) -> int:
    """How many arrays and objects deep ``value`` goes (0 for a string or number), without
    recursion; it stops counting a little past ``MAX_JSON_DEPTH``."""
    if not isinstance(value, (list, dict)):
        return 0
    deepest, level = 0, [(value, 1)]
    while level and deepest <= MAX_JSON_DEPTH:
        item, depth = level.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        level.extend((child, depth + 1) for child in children if isinstance(child, CONTAINERS))
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text:.40} is too large for a float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {twice!r:.60} appears twice in one object")
    return fields
