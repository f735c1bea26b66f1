"""The exceptions a BertClient raises, so callers can tell the failure modes apart."""

from __future__ import annotations


class BertClientTimeoutError(TimeoutError):
    """The server did not answer in time (raised instead of waiting forever)."""


class VersionMismatchError(ValueError):
    """Client and server have different major versions and may not understand each other."""


class BertServerError(RuntimeError):
    """The server answered a request with an error instead of an encoding."""

    def __init__(self, message: str, request_id: int, status: int | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.status = status
