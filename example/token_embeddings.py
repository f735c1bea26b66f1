"""Tutorial: ELMo-like contextual word embeddings with -pooling_strategy NONE.

With no pooling the server returns one vector per token, `[max_seq_len, hidden]` per
text: row 0 is `[CLS]`, then the word pieces, then `[SEP]`, then zero rows of padding.
The same word gets a different vector in a different context.

    python example/token_embeddings.py [--port P --port_out Q]   # server: see SERVER_ARGS
"""

from __future__ import annotations

import sys

import numpy as np
from helpers import example_parser, require_config, server_for

SERVER_ARGS = ("-pooling_strategy", "NONE", "-show_tokens_to_client", "-max_seq_len", "25")
TEXTS = ["hey you", "whats up?", "the river bank was flooded", "the bank raised its rates"]


def main(argv: list[str] | None = None) -> int:
    options = example_parser(__doc__.splitlines()[0]).parse_args(argv)
    with server_for(options, *SERVER_ARGS) as server, server.client() as bc:
        require_config(bc, pooling_strategy="NONE", show_tokens_to_client=True)
        vec, tokens = bc.encode(TEXTS, show_tokens=True)
        print(f"vec.shape = {vec.shape}  (texts, max_seq_len, hidden)")
        for index, (text, rows, pieces) in enumerate(zip(TEXTS[:2], vec, tokens)):
            print(f"{text!r}: tokens {pieces}")
            for position, token in enumerate(pieces):
                print(f"  vec[{index}][{position}] {token:>7}: {np.round(rows[position][:3], 3)}")
            padding = rows[len(pieces) :]
            print(
                f"  rows {len(pieces)}..{len(rows) - 1} are padding, all zero: "
                f"{bool(np.all(padding == 0))}"
            )
        river, money = (vec[i][toks.index("bank")] for i, toks in ((2, tokens[2]), (3, tokens[3])))
        cosine = float(river @ money / (np.linalg.norm(river) * np.linalg.norm(money)))
        print(
            f"'bank' by a river vs 'bank' raising rates: cosine {cosine:.3f} "
            "(the same word, two contexts, two vectors)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
