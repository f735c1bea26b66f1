"""A worker: a process that encodes parts for a front (local, or remote over TCP).

- ``settings``: what it is given; ``process``: its entry point and model loading;
- ``session``: its registrations with fronts (the socket thread, heartbeats, reconnects);
- ``compute``: the thread that encodes; ``inbox``: the parts it holds.
"""

from .inbox import Inbox, SharedInbox, Task
from .process import EXIT_REFUSED, run_worker, start_worker
from .settings import FrontAddress, WorkerPlacement, WorkerSettings

__all__ = [
    "EXIT_REFUSED",
    "FrontAddress",
    "Inbox",
    "SharedInbox",
    "Task",
    "WorkerPlacement",
    "WorkerSettings",
    "run_worker",
    "start_worker",
]
