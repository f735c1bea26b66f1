"""``bert-serving-worker``: workers on this host for a front on another one.

    bert-serving-start -port_worker 5557 -num_worker 0          # the front, on host A
    bert-serving-worker -ip A -port_worker 5557 -num_worker 2   # two workers, on host B

Ctrl-C or SIGTERM stops the workers cleanly (each tells the front, which re-runs its parts
elsewhere at once). Exit status: 0 after a clean stop, 1 when the front refused the
workers or they could not start, 2 for arguments that cannot work.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bert_serving.server import __version__
from bert_serving.server.args import ArgumentError, get_worker_parser
from bert_serving.server.cli.signals import TerminatedError, sigterm_raises
from bert_serving.server.cli.start import refuse
from bert_serving.server.cli.table import format_args_table

PROG = "bert-serving-worker"


# the same life as bert-serving-start's main (check, print the table, run until a signal);
# what is shared (refuse, the SIGTERM helper) is shared, the rest names different things
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
    with sigterm_raises():
        try:
            pool.start()
            pool.wait()
        except (KeyboardInterrupt, TerminatedError):
            pool.close()
        except (WorkerRefusedError, RuntimeError) as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            pool.close()
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
