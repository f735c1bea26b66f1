"""Tutorial: broadcasting results to several clients that share one identity.

The server publishes each result to the identity of the client that asked. Clones built
with `BertClient(identity=bc.identity)` subscribe to the same identity, so every clone
receives every result of `bc` through `listen()`, e.g. to train several models in
separate threads or processes while encoding only once.

    python example/multicast.py [--num_clones 2] [--port P --port_out Q]
"""

from __future__ import annotations

import itertools
import sys
import threading

from helpers import Endpoint, example_parser, server_for

TEXTS = ["First do it", "then do it right", "then do it better"]
NUM_REQUESTS = 3


def client_clone(
    server: Endpoint, identity: bytes, index: int, ready: threading.Event, received: list[str]
) -> None:
    """A clone: same identity, its own sockets (made in its own thread), listening."""
    with server.client(identity=identity) as clone:
        ready.set()
        for vectors in itertools.islice(clone.listen(), NUM_REQUESTS):
            line = f"clone-client-{index}: received {vectors.shape[0]} x {vectors.shape[1]}"
            received.append(line)
            print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--num_clones", type=int, default=2)
    options = parser.parse_args(argv)
    with server_for(options) as server, server.client() as bc:
        received: list[str] = []
        threads = []
        for index in range(options.num_clones):
            ready = threading.Event()
            thread = threading.Thread(
                target=client_clone, args=(server, bc.identity, index, ready, received)
            )
            thread.start()
            ready.wait(60)  # the clone has subscribed once its handshake is done
            threads.append(thread)
        for _ in range(NUM_REQUESTS):
            vectors = bc.encode(TEXTS)
            print(f"bc (the sender): received {vectors.shape[0]} x {vectors.shape[1]}", flush=True)
        for thread in threads:
            thread.join(60)
        expected = options.num_clones * NUM_REQUESTS
        print(f"clones received {len(received)} results (expected {expected})")
    return 0 if len(received) == expected else 1


if __name__ == "__main__":
    sys.exit(main())
