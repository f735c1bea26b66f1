"""Checking texts before they reach the server, so a mistake is a 400 that names it.

The client package runs the same checks before it sends (``bert_serving.client.checks``);
the two packages share no code, and the proxy must not depend on the client package.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError


def checked_texts(texts: Any, is_tokenized: bool) -> list:
    """Return ``texts`` if the server can encode them; raise a 400 naming the first bad one."""
    wanted = "lists of str tokens" if is_tokenized else "str"
    if not isinstance(texts, list):
        raise ApiError(400, f"texts must be a list of {wanted}, got {type(texts).__name__}")
    if not texts:
        raise ApiError(400, f"texts is an empty list: pass at least one element ({wanted})")
    for index, text in enumerate(texts):
        where = f"texts[{index}]"
        if is_tokenized:
            _check_tokens(where, text)
        elif isinstance(text, list):
            raise ApiError(400, f"{where} is a list: send is_tokenized true for token lists")
        else:
            _check_text(where, text)
    return texts


def _check_tokens(where: str, tokens: Any) -> None:
    if isinstance(tokens, str):
        raise ApiError(400, f"{where} is a str, but is_tokenized expects a list of tokens")
    if not isinstance(tokens, list) or not tokens:
        raise ApiError(400, f"{where} must be a non-empty list of str tokens")
    for position, token in enumerate(tokens):
        _check_text(f"{where}[{position}]", token)


def _check_text(where: str, text: Any) -> None:
    if not isinstance(text, str):
        raise ApiError(400, f"{where} must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ApiError(400, f"{where} is empty or only whitespace: there is nothing to encode")
    require_unicode(text, where)


def require_unicode(text: str, where: str, status: int = 400) -> None:
    """JSON may carry lone surrogates (``"\\ud800"``), which no tokenizer can read."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        message = f"{where} is not valid Unicode (it has a lone surrogate)"
        raise ApiError(status, message) from None
