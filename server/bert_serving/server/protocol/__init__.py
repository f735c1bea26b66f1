"""Everything that builds or reads a multipart message, so that no role can drift apart.

- ``wire``: the 1.10 client protocol (docs/design/protocol.md), requests in and answers out.
- ``messages``: the server's internal messages between ventilator, workers and sink, one
  typed class per kind.
"""

from .messages import (
    Done,
    Failure,
    JobAnnounced,
    Message,
    MessageError,
    Part,
    Published,
    Ready,
    Reply,
    Result,
    Stop,
    decode,
    pack_part_keys,
    unpack_part_keys,
)
from .wire import (
    COMMANDS,
    SHOW_CONFIG,
    SHOW_STATUS,
    TERMINATION,
    BadRequestError,
    Request,
    check_texts,
    command_frames,
    dumps,
    encoding_frames,
    error_frames,
    parse_request,
    reply_address,
)

__all__ = [
    "COMMANDS",
    "SHOW_CONFIG",
    "SHOW_STATUS",
    "TERMINATION",
    "BadRequestError",
    "Done",
    "Failure",
    "JobAnnounced",
    "Message",
    "MessageError",
    "Part",
    "Published",
    "Ready",
    "Reply",
    "Request",
    "Result",
    "Stop",
    "check_texts",
    "command_frames",
    "decode",
    "dumps",
    "encoding_frames",
    "error_frames",
    "pack_part_keys",
    "parse_request",
    "reply_address",
    "unpack_part_keys",
]
