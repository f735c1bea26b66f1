"""Checking texts before they reach the server, so a mistake is a 400 and not a server error."""

from __future__ import annotations

from typing import Any

from bert_serving.client.checks import check_texts

from .errors import ApiError


def checked_texts(texts: Any, is_tokenized: bool) -> list:
    """Return ``texts`` if the server can encode them; raise a 400 (the client's messages)."""
    try:
        check_texts(texts, is_tokenized)
    except (TypeError, ValueError) as err:
        raise ApiError(400, str(err)) from None
    for index, text in enumerate(texts):
        for item in text if is_tokenized else [text]:
            require_unicode(item, f"texts[{index}]")
    return texts


def require_unicode(text: str, where: str, status: int = 400) -> None:
    """JSON may carry lone surrogates (``"\\ud800"``), which no tokenizer can read."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        message = f"{where} is not valid Unicode (it has a lone surrogate)"
        raise ApiError(status, message) from None
