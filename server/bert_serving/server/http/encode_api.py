"""``POST /encode`` as 1.10 answered it: ``{"id", "texts", "is_tokenized"}`` in,
``{"id", "result", "status"}`` out, from a JSON body or an HTML form."""

from __future__ import annotations

from typing import Any, NamedTuple

from .errors import ApiError
from .payloads import form_values, is_form, json_object, strict_json
from .texts import checked_texts


class EncodeRequest(NamedTuple):
    id: Any  # any JSON value, echoed back as 1.10 did
    texts: list
    is_tokenized: bool


def parse_encode_request() -> EncodeRequest:
    fields = _form_fields() if is_form() else json_object()
    if "id" not in fields:
        raise ApiError(400, 'the field "id" is missing: any JSON value, echoed in the answer')
    if "texts" not in fields:
        raise ApiError(400, 'the field "texts" is missing: a list of strings to encode')
    is_tokenized = fields.get("is_tokenized", False)
    if not isinstance(is_tokenized, bool):
        raise ApiError(400, f'"is_tokenized" must be true or false, got {is_tokenized!r}')
    return EncodeRequest(fields["id"], checked_texts(fields["texts"], is_tokenized), is_tokenized)


def encode_answer(request_id: Any, vectors: list) -> dict:
    return {"id": request_id, "result": vectors, "status": 200}


def _form_fields() -> dict[str, Any]:
    """Form fields as JSON would give them: ``texts`` is one JSON list or repeated fields,
    ``id`` a JSON value if it parses as one (``123`` is a number) or else the string."""
    fields: dict[str, Any] = {}
    ids = form_values("id")
    if ids:
        fields["id"] = _json_or_text(ids[0])
    texts = form_values("texts")
    if texts:
        single = _json_or_text(texts[0]) if len(texts) == 1 else None
        fields["texts"] = single if isinstance(single, list) else texts
    flags = form_values("is_tokenized")
    if flags:
        fields["is_tokenized"] = {"true": True, "false": False}.get(flags[0].lower(), flags[0])
    return fields


def _json_or_text(value: str) -> Any:
    try:
        return strict_json(value)
    except ValueError:
        return value
