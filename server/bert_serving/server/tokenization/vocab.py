"""Reading a BERT vocabulary file: one token per line, the line number is its id."""

from __future__ import annotations

from pathlib import Path

REQUIRED_TOKENS = ("[UNK]", "[CLS]", "[SEP]")


class VocabError(ValueError):
    """The vocabulary file is missing, empty or lacks a token the server relies on."""


def load_vocab(path: str | Path) -> dict[str, int]:
    """Map each stripped line to its 0-based line number; a later duplicate wins (as Google's)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VocabError(f"vocabulary file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise VocabError(f"cannot read vocabulary file {path}: {error}") from error
    # only "\n" ends a line (not the other separators of str.splitlines), as in Google's reader
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    vocab = {line.strip(): index for index, line in enumerate(lines)}
    if not vocab:
        raise VocabError(f"vocabulary file {path} is empty")
    missing = [token for token in REQUIRED_TOKENS if token not in vocab]
    if missing:
        raise VocabError(f"vocabulary file {path} lacks {', '.join(missing)}")
    return vocab
