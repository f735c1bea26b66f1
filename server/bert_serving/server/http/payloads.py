"""Reading a request body as fields: a JSON object, or an HTML form as 1.10 also accepted."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from .errors import ApiError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


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
    """``json.loads`` without NaN and Infinity, which are not JSON and could not be echoed."""
    return json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
