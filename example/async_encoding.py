"""Tutorial: asynchronous encoding with `encode_async`.

A background thread sends batches from a generator as fast as the generator yields
them, while the caller receives the results as they come: sending never waits for
encoding. Each result is a `Response(id, embedding, tokens)`.

    python example/async_encoding.py [--num_batch 10] [--port P --port_out Q]
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Iterator

from helpers import example_parser, server_for

LINES = [
    "an endless stream of text",
    "generated faster than it can be encoded",
    "is sent in the background",
    "and the encodings are fetched as they arrive",
]


def text_gen(batch_size: int) -> Iterator[list[str]]:
    """An endless data stream, yielding a batch of text lines at a time."""
    lines = itertools.cycle(LINES)
    while True:
        yield [next(lines) for _ in range(batch_size)]


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--num_batch", type=int, default=10, help="batches to send")
    parser.add_argument("--batch_size", type=int, default=32)
    options = parser.parse_args(argv)
    with server_for(options) as server, server.client() as bc:
        started = time.monotonic()
        received = 0
        for response in bc.encode_async(
            text_gen(options.batch_size), max_num_batch=options.num_batch
        ):
            received += 1
            rows, dim = response.embedding.shape
            print(f"request {response.id}: received {rows} x {dim}")
        elapsed = time.monotonic() - started
        print(f"{received} batches ({received * options.batch_size} texts) in {elapsed:.2f} s")
    return 0 if received == options.num_batch else 1


if __name__ == "__main__":
    sys.exit(main())
