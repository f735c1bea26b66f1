"""``bert-serving-start``: check the arguments, show them, run the server until stopped."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from bert_serving.server import __version__
from bert_serving.server.args import ArgumentError, get_args_parser
from bert_serving.server.cli.signals import TerminatedError, sigterm_raises
from bert_serving.server.cli.table import format_args_table

PROG = "bert-serving-start"
# How often the main thread checks that the server still runs.
JOIN_POLL_SECONDS = 0.5


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server; return the exit status (argparse itself exits 2 on bad syntax)."""
    args = get_args_parser().parse_args(argv)

    from bert_serving.server import BertServer, ServerStartError
    from bert_serving.server.model import ModelError

    try:  # BertServer checks the arguments (once) and logs what has no effect
        server = BertServer(args)
    except ArgumentError as error:  # arguments that cannot work, or the model cannot honour
        return refuse(PROG, error)
    except (ModelError, ServerStartError) as error:  # a broken model, a port in use
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    print(format_args_table(args, f"{PROG} {__version__} arguments"), file=sys.stderr, flush=True)
    with sigterm_raises():
        try:
            server.start()
            # sleep, not join(): a signal that interrupts Thread.join can leave the thread
            # looking finished, and the server would then be left to die mid-drain
            while server.is_alive():
                time.sleep(JOIN_POLL_SECONDS)
        except (KeyboardInterrupt, TerminatedError):
            server.close()
    return 1 if server.error else 0


def refuse(prog: str, error: ArgumentError) -> int:
    """Print every problem the error lists, then give argparse's exit status for bad usage."""
    problems = str(error).splitlines()
    if len(problems) == 1:
        print(f"{prog}: error: {problems[0]}", file=sys.stderr)
    else:
        print(f"{prog}: error: {len(problems)} problems with the arguments:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
