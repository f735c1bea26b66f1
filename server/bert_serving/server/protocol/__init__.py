"""Everything that builds or reads a multipart message, so that no role can drift apart.

- ``wire``: the 1.10 client protocol (docs/design/protocol.md), requests in and answers out.
- ``messages``: the server's internal messages between ventilator, workers and sink, one
  typed class per kind.
- ``plain_json`` and ``utf8_texts``: texts read from a client's JSON without json.loads
  when it allows, and handed to workers as UTF-8 bytes and offsets.
"""

from .messages import (
    Failure,
    Goodbye,
    Heartbeat,
    Hello,
    JobAnnounced,
    Message,
    MessageError,
    Part,
    PartKey,
    Published,
    Ready,
    Refused,
    Reply,
    Result,
    Stop,
    Welcome,
    decode,
    pack_part_keys,
    receive,
    receive_request,
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
    "Failure",
    "Goodbye",
    "Heartbeat",
    "Hello",
    "JobAnnounced",
    "Message",
    "MessageError",
    "Part",
    "PartKey",
    "Published",
    "Ready",
    "Refused",
    "Reply",
    "Request",
    "Result",
    "Stop",
    "Welcome",
    "check_texts",
    "command_frames",
    "decode",
    "dumps",
    "encoding_frames",
    "error_frames",
    "pack_part_keys",
    "parse_request",
    "receive",
    "receive_request",
    "reply_address",
    "unpack_part_keys",
]
