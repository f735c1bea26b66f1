"""The server's internal messages: one frozen dataclass per kind, fields by name.

Every message travels as ``[KIND, packed, buffer, ...]``: its small fields (``bytes`` as they
are, ``int`` as ASCII digits, ``bool`` as ``1``/``0``, ``str`` as UTF-8) share one frame,
length-prefixed in the order the class declares them, and each ``Buffer`` field (texts,
vectors: anything that may be large) has a frame of its own, sent and received without a
copy. One frame per small field cost a one-sentence request about 50 more frames across
the pipeline, each a few microseconds in ZeroMQ and pyzmq on every hop.

The session's own messages (``Hello``, ``Welcome``, ``Refused``, ``Goodbye``) keep one frame
per field in every revision, so that a front and a worker of different releases can still
read each other's registration and say why they cannot work together.

Adding a field to a class changes both ``to_frames`` and ``from_frames``, so no role ever
counts frame indices. ``decode`` reads any kind; a message that does not fit its class
raises ``MessageError``.

Who sends what:

================ ===================== =================================================
kind             from -> to            meaning
================ ===================== =================================================
``Hello``        worker -> ventilator  register: who I am, what vectors I compute
``Welcome``      ventilator -> worker  registered: heartbeat period, what to send back
``Refused``      ventilator -> worker  not registered, and why (other vectors)
``Ready``        worker -> ventilator  I can hold ``credit`` parts
``Part``         ventilator -> worker  encode these texts (a slice of one request)
``Result``       worker -> ventilator  the vectors of one part (and one more credit);
                 -> sink               the ventilator forwards it
``Failure``      worker, ventilator    answer a request with an error
                 -> sink
``Heartbeat``    both ways             still here (every third of ``-worker_timeout``)
``Goodbye``      ventilator -> worker  this front closes, or does not know you: register
                                       again (with this front or the next one)
``JobAnnounced`` ventilator -> sink    a request was split into ``num_parts`` parts
``Reply``        ventilator -> sink    publish a config or status answer
``Published``    sink -> ventilator    the answer of a job went out (or was given up on)
``Stop``         ventilator -> local   shut down
                 workers and sink
================ ===================== =================================================
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, fields
from typing import Any, Callable, ClassVar, NamedTuple

import numpy as np

from .utf8_texts import decode_spans, spans_from_bytes
from .wire import array_header

# the revision of these messages' frames: a front and a worker of different revisions cannot
# read each other's parts, so the front refuses such a worker at registration (the worker's
# fingerprint carries it; before it did, a worker had no such key: revision 1; 3 packs the
# small fields into one frame)
INTERNAL_PROTOCOL = 3

Buffer = bytes  # a field that may be large: a frame of its own, never copied into another

PartKey = tuple[bytes, int]  # (job, part index): a part, across the whole pipeline


class MessageError(ValueError):
    """An internal message that does not fit its kind (a bug, or a foreign peer)."""


def _to_bytes(frame: Any) -> bytes:
    """Frames arrive as bytes, or as zmq.Frame / memoryview when received without copy."""
    return frame if isinstance(frame, bytes) else bytes(_buffer(frame))


def _buffer(frame: Any) -> memoryview:
    """A frame's bytes without a copy, whatever it arrived as."""
    return memoryview(getattr(frame, "buffer", frame))


_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "bytes": lambda value: value,  # may be a buffer, sent without a copy
    "int": lambda value: str(value).encode(),
    "float": lambda value: repr(float(value)).encode(),
    "bool": lambda value: b"1" if value else b"0",
    "str": lambda value: value.encode("utf-8"),
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "bytes": lambda frame: frame,  # as received: bytes, or a zmq.Frame left in its buffer
    "int": lambda frame: int(_to_bytes(frame)),
    "float": lambda frame: float(_to_bytes(frame)),
    "bool": lambda frame: _to_bytes(frame) == b"1",
    "str": lambda frame: _to_bytes(frame).decode("utf-8"),
}
_ENCODERS["Buffer"], _DECODERS["Buffer"] = _ENCODERS["bytes"], _DECODERS["bytes"]
_KINDS: dict[bytes, type[Message]] = {}


class _Layout(NamedTuple):
    """Where a class's fields travel: ``packed`` share one frame, each of ``framed`` has its
    own; ``names`` lists them as they travel, (*packed, *framed)."""

    packed: tuple[tuple[str, str], ...]  # (name, type)
    framed: tuple[tuple[str, str], ...]
    lengths: struct.Struct  # the packed frame's little-endian uint32 length of each field
    names: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        return 1 + bool(self.packed) + len(self.framed)


def _layout_of(cls: type) -> _Layout:
    declared = [(f.name, f.type) for f in fields(cls)]
    packed = tuple(item for item in declared if cls.PACKED and item[1] != "Buffer")
    framed = tuple(item for item in declared if item not in packed)
    names = tuple(name for name, _ in (*packed, *framed))
    return _Layout(packed, framed, struct.Struct(f"<{len(packed)}I"), names)


@dataclass(frozen=True)
class Message:
    """Base of every internal message; subclasses set ``KIND`` and declare their fields."""

    KIND: ClassVar[bytes] = b""
    PACKED: ClassVar[bool] = True  # False: one frame per field (the session's messages)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.KIND in _KINDS:
            raise TypeError(f"two message classes of kind {cls.KIND!r}")
        _KINDS[cls.KIND] = cls

    @classmethod
    def _layout(cls) -> _Layout:
        """Read from the dataclass fields once per class (the decorator adds them after
        ``__init_subclass__``, so not there)."""
        layout = cls.__dict__.get("_cached_layout")
        if layout is None:
            layout = _layout_of(cls)
            cls._cached_layout = layout
        return layout

    def to_frames(self) -> list:
        layout = self._layout()
        frames = [self.KIND]
        if layout.packed:
            values = [_ENCODERS[kind](getattr(self, name)) for name, kind in layout.packed]
            frames.append(layout.lengths.pack(*map(len, values)) + b"".join(values))
        return frames + [_ENCODERS[kind](getattr(self, name)) for name, kind in layout.framed]

    @classmethod
    def from_frames(cls, frames: list) -> Message:
        layout = cls._layout()
        if len(frames) != layout.num_frames or _to_bytes(frames[0]) != cls.KIND:
            raise MessageError(
                f"a {cls.KIND.decode()} message has {layout.num_frames} frames starting with "
                f"{cls.KIND!r}, got {len(frames)} starting with {_to_bytes(frames[0])[:20]!r}"
            )
        own_frames = frames[1 + bool(layout.packed) :]
        try:
            values = _unpack(layout, frames[1]) if layout.packed else []
            values += [
                _DECODERS[kind](frame) for (_, kind), frame in zip(layout.framed, own_frames)
            ]
        except (ValueError, UnicodeDecodeError, struct.error) as err:
            raise MessageError(f"a malformed {cls.KIND.decode()} message: {err}") from None
        return cls(**dict(zip(layout.names, values)))


def _unpack(layout: _Layout, frame: Any) -> list:
    """The packed fields' values; ValueError (or struct.error) if the frame does not hold
    exactly them."""
    data = _to_bytes(frame)
    lengths = layout.lengths.unpack_from(data)
    start = layout.lengths.size
    if start + sum(lengths) != len(data):
        raise ValueError(f"its fields take {start + sum(lengths)} bytes, the frame has {len(data)}")
    values = []
    for (_, kind), length in zip(layout.packed, lengths):
        values.append(_DECODERS[kind](data[start : start + length]))
        start += length
    return values


SMALL_FRAME = 1 << 16  # frames below this are copied to bytes; larger ones (vectors) are not


def receive(socket, flags: int = 0) -> list:
    """A multipart message with its large frames left in ZeroMQ's buffers (zmq.Frame, read
    through the buffer protocol) and the small ones as bytes: vectors are not copied."""
    raw = socket.recv_multipart(flags, copy=False)
    return [frame.bytes if len(frame) < SMALL_FRAME else frame for frame in raw]


def receive_request(socket, flags: int = 0) -> list:
    """A client's request as ``receive`` gives it, except that only its payload (frame 1)
    may stay in ZeroMQ's buffer: identities, ids and counts are compared and parsed as
    bytes, however large a client made them."""
    return [
        frame if index == 1 else _to_bytes(frame)
        for index, frame in enumerate(receive(socket, flags))
    ]


def decode(frames: list) -> Message:
    """Read a message of any kind."""
    kind = _to_bytes(frames[0]) if frames else b""
    if kind not in _KINDS:
        raise MessageError(f"unknown internal message kind {kind[:20]!r}")
    return _KINDS[kind].from_frames(frames)


# The classes below look alike on purpose: each only declares its kind and fields; the
# encoding lives once, in Message.
@dataclass(frozen=True)
class Part(Message):
    """One slice of a request, at most ``-max_batch_size`` texts.

    ``job`` is the server's own number for the request: clients choose their request ids
    (and a restarted client with a fixed identity counts from 1 again), so the pipeline
    keys everything on ``job`` and keeps the client's id only to address the answer.
    A ``suspect`` part was being encoded when a worker died: it is encoded alone, so that
    only the guilty request is blamed if it happens again.
    """

    KIND: ClassVar[bytes] = b"PART"
    job: bytes
    client: bytes
    request_id: bytes
    index: int
    is_tokenized: bool
    priority: bool
    suspect: bool
    rows: bytes  # int32 positions of its texts in the request; empty: all, in order
    payload: Buffer  # raw texts: their UTF-8 bytes, each at its span; token lists: JSON
    spans: Buffer = b""  # raw texts: (start, end) byte offsets in payload (``utf8_texts``)
    num_texts: int = 0

    @property
    def key(self) -> PartKey:
        return self.job, self.index

    def texts(self) -> list:
        """The part's texts (raw strings, or token lists); MessageError if they do not
        decode (a bug, or a foreign peer)."""
        try:
            if self.is_tokenized:
                return json.loads(_to_bytes(self.payload))
            payload = _buffer(self.payload)
            return decode_spans(payload, spans_from_bytes(_buffer(self.spans)))
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            raise MessageError(f"a part whose texts do not decode: {err}") from None


@dataclass(frozen=True)
class Ready(Message):
    KIND: ClassVar[bytes] = b"READY"
    credit: int


@dataclass(frozen=True)
class Hello(Message):
    """A worker's registration. ``fingerprint`` (JSON) names the model files and every
    setting that changes vectors; the front refuses a worker whose fingerprint, or whose
    resolved ``compute_dtype``, differs from its own, so no client gets other vectors."""

    KIND: ClassVar[bytes] = b"HELLO"
    PACKED: ClassVar[bool] = False
    name: str  # host:pid/index, stable across the worker's reconnections
    host: str
    device: str  # "CPU" or "GPU n"
    remote: bool
    fingerprint: str
    compute_dtype: str
    seconds_per_token: float  # measured at warm-up: how fast it is, for the hang bound


@dataclass(frozen=True)
class Welcome(Message):
    KIND: ClassVar[bytes] = b"WELCOME"
    PACKED: ClassVar[bool] = False
    heartbeat_ms: int  # how often both sides beat; silence for 3 periods means lost
    show_tokens: bool  # send each text's tokens back (-show_tokens_to_client)


@dataclass(frozen=True)
class Refused(Message):
    KIND: ClassVar[bytes] = b"REFUSED"
    PACKED: ClassVar[bool] = False
    reason: str


@dataclass(frozen=True)
class Heartbeat(Message):
    KIND: ClassVar[bytes] = b"HEARTBEAT"


@dataclass(frozen=True)
class Goodbye(Message):
    KIND: ClassVar[bytes] = b"GOODBYE"
    PACKED: ClassVar[bool] = False
    reason: str


@dataclass(frozen=True)
class Result(Message):
    """The vectors (and, under -show_tokens_to_client, the tokens) of one part."""

    KIND: ClassVar[bytes] = b"RESULT"
    job: bytes
    client: bytes
    request_id: bytes
    index: int
    rows: bytes
    header: bytes  # JSON: dtype, shape, tokens
    data: Buffer  # the array's bytes

    @classmethod
    def of(cls, part: Part, array: np.ndarray, tokens: Any) -> Result:
        """The answer to ``part``; the array is sent without a copy."""
        data = np.ascontiguousarray(array).data
        header = array_header(array, tokens)
        return cls(part.job, part.client, part.request_id, part.index, part.rows, header, data)

    @property
    def key(self) -> PartKey:
        return self.job, self.index

    def array(self) -> tuple[np.ndarray, Any]:
        info = json.loads(self.header)
        array = np.frombuffer(self.data, dtype=info["dtype"]).reshape(info["shape"])
        return array, info["tokens"]


@dataclass(frozen=True)
class Failure(Message):
    """An error answer; ``job`` is empty when the request was refused before it was one.
    From a worker, ``index`` names the part that failed (it returns that part's credit)."""

    KIND: ClassVar[bytes] = b"ERROR"
    job: bytes
    client: bytes
    request_id: bytes
    message: str
    index: int = 0

    @property
    def key(self) -> PartKey:
        return self.job, self.index


@dataclass(frozen=True)
class JobAnnounced(Message):
    KIND: ClassVar[bytes] = b"JOB"
    job: bytes
    client: bytes
    request_id: bytes
    num_parts: int


@dataclass(frozen=True)
class Reply(Message):
    """A config or status answer to publish as it is (no job: nothing to re-run)."""

    KIND: ClassVar[bytes] = b"REPLY"
    client: bytes
    request_id: bytes
    body: bytes


@dataclass(frozen=True)
class Published(Message):
    KIND: ClassVar[bytes] = b"PUBLISHED"
    job: bytes


@dataclass(frozen=True)
class Stop(Message):
    KIND: ClassVar[bytes] = b"STOP"


def pack_part_keys(keys: list[PartKey]) -> bytes:
    """What a worker's shared slot holds while it encodes parts: their keys, in ASCII (the
    supervisor reads it after the worker died, to know which parts to blame)."""
    return b";".join(job + b" " + str(index).encode() for job, index in keys)


def unpack_part_keys(value: bytes) -> list[PartKey]:
    """The keys of the parts a worker was encoding; empty if it was idle."""
    keys = []
    for item in value.split(b";"):
        if item:
            job, index = item.split(b" ")
            keys.append((job, int(index)))
    return keys
