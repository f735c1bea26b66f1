"""``bert-serving-worker``: workers on this host for a front on another one.

    bert-serving-start -port_worker 5557 -num_worker 0          # the front, on host A
    bert-serving-worker -ip A -port_worker 5557 -num_worker 2   # two workers, on host B

Ctrl-C or SIGTERM stops the workers cleanly (each tells the front, which re-runs its parts
elsewhere at once). Exit status: 0 after a clean stop, 1 when the front refused the
workers or they could not start, 2 for arguments that cannot work.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from bert_serving.server import __version__
from bert_serving.server.args import ArgumentError, get_worker_parser
from bert_serving.server.cli.start import refuse
from bert_serving.server.cli.table import format_args_table

PROG = "bert-serving-worker"


class _TerminatedError(Exception):
    """Raised in the main thread by the SIGTERM handler, to stop like on Ctrl-C."""


def main(argv: Sequence[str] | None = None) -> int:
    args = get_worker_parser().parse_args(argv)

    from bert_serving.server.model import ModelError
    from bert_serving.server.worker.pool import WorkerPool, WorkerRefusedError

    try:
        pool = WorkerPool(args)
    except ArgumentError as error:
        return refuse(PROG, error)
    except ModelError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    print(format_args_table(args, f"{PROG} {__version__} arguments"), file=sys.stderr, flush=True)
    previous_handler = signal.signal(signal.SIGTERM, _raise_termination)
    try:
        pool.start()
        pool.wait()
    except (KeyboardInterrupt, _TerminatedError):
        pool.close()
    except (WorkerRefusedError, RuntimeError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        pool.close()
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    return 0


def _raise_termination(signum: int, frame: object) -> None:
    raise _TerminatedError(signal.Signals(signum).name)


if __name__ == "__main__":
    sys.exit(main())
