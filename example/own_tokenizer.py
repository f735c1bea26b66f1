"""Tutorial: send your own tokens with `is_tokenized=True`, see the server's with `show_tokens`.

The server looks each given token up as it is (no lower-casing, no splitting): a token
that is not in the vocabulary becomes `[UNK]`. `show_tokens=True` (with a server started
with -show_tokens_to_client) returns what the model was actually fed, so you can check.

    python example/own_tokenizer.py [--port P --port_out Q]   # server: see SERVER_ARGS
"""

from __future__ import annotations

import sys

import numpy as np
from helpers import example_parser, require_config, server_for

SERVER_ARGS = ("-pooling_strategy", "NONE", "-show_tokens_to_client", "-max_seq_len", "25")
TEXTS = ["hello world!", "thisis it"]


def whitespace_tokenizer(text: str) -> list[str]:
    """A naive tokenizer: split on spaces and keep punctuation glued to its word."""
    return text.split()


def main(argv: list[str] | None = None) -> int:
    options = example_parser(__doc__.splitlines()[0]).parse_args(argv)
    with server_for(options, *SERVER_ARGS) as server, server.client() as bc:
        require_config(bc, pooling_strategy="NONE", show_tokens_to_client=True)
        vecs, server_tokens = bc.encode(TEXTS, show_tokens=True)
        print("the server's own tokenizer:")
        for text, tokens in zip(TEXTS, server_tokens):
            print(f"  {text!r:>16} -> {tokens}")

        mine = [whitespace_tokenizer(text) for text in TEXTS]
        vecs, fed = bc.encode(mine, is_tokenized=True, show_tokens=True)
        print("your tokens (is_tokenized=True):")
        for tokens, seen, rows in zip(mine, fed, vecs):
            nonzero = int(np.count_nonzero(np.abs(rows).sum(axis=1)))
            print(f"  {tokens!s:>20} -> {seen}; {nonzero} non-zero rows of {len(rows)}")
        unknown = [
            t for given, seen in zip(mine, fed) for t, s in zip(given, seen[1:-1]) if s == "[UNK]"
        ]
        print(f"not in the vocabulary, fed as [UNK]: {unknown}")
        print(f"vecs.shape = {vecs.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
