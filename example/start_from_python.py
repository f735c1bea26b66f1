"""Tutorial: start (and stop) a BertServer from Python instead of the shell.

`get_args_parser()` takes the arguments of `bert-serving-start`; `BertServer(args)` is a
thread: `start()` it, wait until its workers are ready, encode, then `close()` it (or use
it as a context manager, which does all of that). `BertServer.shutdown` stops a server
from anywhere, like `bert-serving-terminate`.

    python example/start_from_python.py [--model_dir DIR]
"""

from __future__ import annotations

import sys
import time

from helpers import example_parser

from bert_serving.client import BertClient
from bert_serving.server import BertServer
from bert_serving.server.helper import get_args_parser, get_shutdown_parser
from bert_serving.server.network import free_ports


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    options = parser.parse_args(argv)
    port, port_out = free_ports(2)
    argv = [
        "-port",
        str(port),
        "-port_out",
        str(port_out),
        "-max_seq_len",
        "NONE",
        "-mask_cls_sep",
        "-cpu",
    ]
    if options.model_dir:
        argv += ["-model_dir", options.model_dir]
    args = get_args_parser().parse_args(argv)
    print(
        f"args: port={args.port} port_out={args.port_out} max_seq_len={args.max_seq_len} "
        f"mask_cls_sep={args.mask_cls_sep} cpu={args.cpu}"
    )

    started = time.monotonic()
    server = BertServer(args)
    server.start()
    server.wait_until_ready(180)
    print(f"server ready after {time.monotonic() - started:.1f} s")
    with BertClient(port=port, port_out=port_out, timeout=60_000) as bc:
        vectors = bc.encode(["started from Python", "max_seq_len NONE: no text is cut"])
        print(f"encoded: {vectors.shape}, server max_seq_len={bc.server_config['max_seq_len']}")

    shutdown_args = get_shutdown_parser().parse_args(["-port", str(port), "-timeout", "30000"])
    stopped = BertServer.shutdown(shutdown_args)
    server.join(30)
    print(f"shut down: {stopped}, server thread alive: {server.is_alive()}")
    return 0 if stopped and not server.is_alive() else 1


if __name__ == "__main__":
    sys.exit(main())
