"""Checks run on the client before anything is sent, so mistakes fail early and clearly."""

from __future__ import annotations

import re
import reprlib
import warnings
from typing import Any

from .errors import VersionMismatchError

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


def check_texts(texts: Any, is_tokenized: bool) -> None:
    """Raise TypeError/ValueError naming the first bad element of `texts`."""
    wanted = "lists of str (tokens)" if is_tokenized else "str"
    if not isinstance(texts, list):
        raise TypeError(
            f"texts must be a list of {wanted}, got {type(texts).__name__}: {_short.repr(texts)}"
        )
    if not texts:
        raise ValueError(f"texts is an empty list: pass at least one element ({wanted})")
    check_one = _check_token_list if is_tokenized else _check_sentence
    for index, item in enumerate(texts):
        check_one(index, item)


# _check_sentence and _check_token_list mirror each other: one per kind of input
def _check_sentence(index: int, item: Any) -> None:
    if isinstance(item, list):
        raise TypeError(
            f"texts[{index}] is a list {_short.repr(item)}: "
            "pass is_tokenized=True to send texts that are already tokenized"
        )
    if not isinstance(item, str):
        raise TypeError(
            f"texts[{index}] must be a str, got {type(item).__name__}: {_short.repr(item)}"
        )
    if not item.strip():
        raise ValueError(
            f"texts[{index}] is empty or only whitespace ({item!r}): "
            "there is nothing to encode, remove it or replace it with real text"
        )
    _check_encodable(f"texts[{index}]", item)


def _check_encodable(where: str, text: str) -> None:
    """A lone surrogate (e.g. from a broken decode) is no Unicode text and cannot be sent.
    An ASCII text has none (Python knows at once): a giant one is not encoded to find out."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"{where} holds a lone surrogate {text[err.start]!r} at position {err.start}: "
            "not valid Unicode, fix how the text was decoded"
        ) from None


def _check_token_list(index: int, item: Any) -> None:
    if isinstance(item, str):
        raise TypeError(
            f"texts[{index}] is a str {_short.repr(item)} but is_tokenized=True expects a list "
            "of tokens for each text: tokenize it, or pass is_tokenized=False"
        )
    if not isinstance(item, list):
        raise TypeError(
            f"texts[{index}] must be a list of str tokens, got {type(item).__name__}: "
            f"{_short.repr(item)}"
        )
    if not item:
        raise ValueError(f"texts[{index}] is an empty list of tokens: there is nothing to encode")
    for position, token in enumerate(item):
        if not isinstance(token, str):
            raise TypeError(
                f"texts[{index}][{position}] must be a str token, got {type(token).__name__}: "
                f"{_short.repr(token)}"
            )
        if not token.strip():
            raise ValueError(
                f"texts[{index}][{position}] is an empty or whitespace token: {token!r}"
            )
        _check_encodable(f"texts[{index}][{position}]", token)


def warn_if_too_long(texts: list, is_tokenized: bool, max_seq_len: Any, stacklevel: int) -> None:
    """Warn once when some text has more (whitespace) tokens than the server keeps."""
    if not isinstance(max_seq_len, int) or isinstance(max_seq_len, bool):
        return  # null: the server sizes each batch to its longest text
    # at most max_seq_len + 1 words are split off: a 100 MB text costs no more than a short one
    longest = max(
        len(text) if is_tokenized else len(text.split(None, max_seq_len)) for text in texts
    )
    if longest > max_seq_len:
        warnings.warn(
            f"some texts have more tokens than the server's max_seq_len ({max_seq_len}): "
            f"sequences longer than max_seq_len ({max_seq_len}) will be "
            "truncated by the server. Start the server with a larger -max_seq_len (or NONE) "
            "to keep them whole, or pass check_length=False to silence this warning.",
            stacklevel=stacklevel + 1,
        )


def server_sends_tokens(config: dict | None, warn: bool, stacklevel: int) -> bool:
    """False when the server's config says tokens are not sent (then warns, if `warn`)."""
    if config is None or config.get("show_tokens_to_client"):
        return True
    if warn:
        warnings.warn(
            "show_tokens=True but the server was not started with -show_tokens_to_client, "
            "so only the embedding is returned",
            stacklevel=stacklevel + 1,
        )
    return False


def check_server_version(client_version: str, server_version: Any) -> None:
    """Refuse a server whose major version differs from the client's."""
    if _major(client_version) == _major(server_version):
        return
    raise VersionMismatchError(
        f"the client is version {client_version} but the server is version "
        f"{server_version or 'unknown'}: different major versions may not understand each "
        "other. The wire protocol of 1.10 is kept, so use BertClient(check_version=False) "
        "to talk to a 1.10 server anyway."
    )


def _major(version: Any) -> int | None:
    match = re.match(r"\s*v?(\d+)", str(version)) if version is not None else None
    return int(match.group(1)) if match else None
