"""The ventilator: the front's loop (``Ventilator``) and its scheduling (``Scheduler``)."""

from .loop import Ventilator
from .scheduler import Scheduler, split_request

__all__ = ["Scheduler", "Ventilator", "split_request"]
