"""Starting the server's child processes.

Children are spawned, not forked: TensorFlow's threads do not survive a fork. A spawned
child normally re-runs the parent's ``__main__`` script first, which would start a second
server from any script without an ``if __name__ == "__main__"`` guard (such as the seed's
"Starting BertServer from Python"). The children only run functions of this package, so the
main script is hidden from ``multiprocessing`` while a child starts.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Callable

_MISSING = object()
_start_lock = threading.Lock()


@contextmanager
def _main_script_hidden():
    main = sys.modules["__main__"]
    saved = {name: getattr(main, name, _MISSING) for name in ("__file__", "__spec__")}
    with _start_lock:
        try:
            main.__spec__ = None
            if saved["__file__"] is not _MISSING:
                del main.__file__
            yield
        finally:
            for name, value in saved.items():
                if value is not _MISSING:
                    setattr(main, name, value)


def shared_slot(size: int = 1024):
    """Bytes a child writes and its parent reads, even after the child died: unlike a
    message, a write to shared memory cannot be lost in a socket buffer."""
    return multiprocessing.get_context("spawn").Array("c", size, lock=False)


def spawn(target: Callable, args: tuple, name: str) -> tuple[multiprocessing.Process, Connection]:
    """Start ``target(*args, startup)`` in a fresh interpreter; ``startup`` is the sending end
    of a pipe on which the child reports ``("ready", ...)`` or ``("error", message)``."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, name=name, daemon=True, args=(*args, sender))
    with _main_script_hidden():
        process.start()
    sender.close()
    return process, receiver
