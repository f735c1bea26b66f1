"""The names and shapes in a TensorFlow checkpoint's ``.index`` file, read without TensorFlow.

Checking a Google checkpoint needs only its variables' names and shapes, but TensorFlow's
reader costs an import of TensorFlow (about 6 s of CPU and some 500 MB): the front paid it
just to check the model, and so did every worker, even one that reads its OpenVINO model
as saved (forward_cache.py) and needs TensorFlow for nothing else. The index is small and
its format is fixed (TensorFlow's ``tensor_bundle``), so it is read here:

- the file is a sorted string table (LevelDB's layout): a 48-byte footer at the end gives
  the index block, whose entries point at the data blocks; each block holds entries whose
  keys share prefixes with the previous one, then its restart offsets; each block is
  followed by a one-byte compression type and a masked CRC-32C of the block and that byte,
  checked here as TensorFlow checks it (a flipped bit in a shape is refused, not read);
- the entry with the empty key is the ``BundleHeaderProto`` (the number of data shards,
  the byte order); every other key is a tensor name, and its value a ``BundleEntryProto``
  (dtype, shape, shard, offset and size of the bytes in that shard), in protobuf's wire
  format.

Whatever is not plainly that (a compressed block, a sliced variable, a big-endian
bundle, a shard too short for the bytes it should hold) raises ``ValueError``, and the
caller falls back to TensorFlow's own reader: this module never decides alone that a
checkpoint is bad. The arrays themselves are read by TensorFlow (only a worker that builds
the graph needs them).
"""

from __future__ import annotations

import struct
from pathlib import Path

FOOTER_LENGTH = 48
TABLE_MAGIC = 0xDB4775248B80FB57
BLOCK_TRAILER_LENGTH = 5  # compression type, masked crc32c
NO_COMPRESSION = 0
CRC_MASK_DELTA = 0xA282EAD8
CASTAGNOLI = 0x82F63B78  # CRC-32C's polynomial, bits reversed
HEADER_KEY = b""
LITTLE_ENDIAN = 0
# protobuf wire types: a varint, or so many bytes (a length varint first when None)
VARINT = 0
BYTES_OF_WIRE_TYPE = {1: 8, 2: None, 5: 4}
LENGTH_DELIMITED = 2


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ CASTAGNOLI if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC_TABLE = _crc_table()


def checkpoint_shapes(prefix: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of every tensor in the checkpoint ``prefix`` (``<prefix>.index``
    and its ``<prefix>.data-NNNNN-of-NNNNN`` shards); ValueError or OSError if the files
    are not plainly a readable checkpoint of that format."""
    table = Path(f"{prefix}.index").read_bytes()
    entries = dict(_table_entries(table))
    header = _fields(entries.pop(HEADER_KEY, b""))
    shards = _int(header, 1, 1)
    if _int(header, 2, LITTLE_ENDIAN) != LITTLE_ENDIAN:
        raise ValueError("a big-endian bundle")
    sizes = [
        Path(f"{prefix}.data-{shard:05d}-of-{shards:05d}").stat().st_size for shard in range(shards)
    ]
    shapes = {}
    for key, value in entries.items():
        entry = _fields(value)
        if 7 in entry:
            raise ValueError(f"{key!r} is a sliced (partitioned) variable")
        shard, offset, size = _int(entry, 3, 0), _int(entry, 4, 0), _int(entry, 5, 0)
        if shard >= shards or offset + size > sizes[shard]:
            raise ValueError(f"{key!r} lies beyond the end of data shard {shard}")
        shapes[key.decode()] = _shape(_message(entry, 2))
    return shapes


def _table_entries(table: bytes):
    """(key, value) of every entry of every data block, in order."""
    if len(table) < FOOTER_LENGTH:
        raise ValueError("shorter than a table's footer")
    footer = table[-FOOTER_LENGTH:]
    (magic,) = struct.unpack("<Q", footer[-8:])
    if magic != TABLE_MAGIC:
        raise ValueError("not a sorted string table (wrong magic number)")
    _metaindex, position = _block_handle(footer, 0)
    index, _ = _block_handle(footer, position)
    for _key, handle in _block_entries(_block(table, index)):
        data_handle, _ = _block_handle(handle, 0)
        yield from _block_entries(_block(table, data_handle))


def _block_handle(data: bytes, position: int) -> tuple[tuple[int, int], int]:
    offset, position = _varint(data, position)
    size, position = _varint(data, position)
    return (offset, size), position


def _block(table: bytes, handle: tuple[int, int]) -> bytes:
    offset, size = handle
    if offset + size + BLOCK_TRAILER_LENGTH > len(table):
        raise ValueError("a block runs past the end of the file")
    (stored,) = struct.unpack_from("<I", table, offset + size + 1)
    if stored != _masked_crc32c(table[offset : offset + size + 1]):
        raise ValueError("a block's checksum does not match it")
    if table[offset + size] != NO_COMPRESSION:
        raise ValueError("a compressed block")
    return table[offset : offset + size]


def _masked_crc32c(data: bytes) -> int:
    """CRC-32C of ``data``, masked as LevelDB's tables store it (rotated, plus a delta)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA) & 0xFFFFFFFF


def _block_entries(block: bytes):
    """Entries of one block: each key is the previous one's first ``shared`` bytes plus its
    own; the restart offsets at the end are only for seeking, not needed to read it all."""
    if len(block) < 4:
        raise ValueError("a block too short for its restart count")
    (restarts,) = struct.unpack("<I", block[-4:])
    end = len(block) - 4 * (restarts + 1)
    if end < 0:
        raise ValueError("a block too short for its restart offsets")
    key, position = b"", 0
    while position < end:
        shared, position = _varint(block, position)
        own, position = _varint(block, position)
        length, position = _varint(block, position)
        if shared > len(key) or position + own + length > end:
            raise ValueError("a malformed block entry")
        key = key[:shared] + block[position : position + own]
        position += own
        yield key, block[position : position + length]
        position += length


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("a truncated or overlong varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _fields(message: bytes) -> dict[int, list]:
    """A protobuf message as field number -> values (ints, or bytes of nested ones)."""
    fields: dict[int, list] = {}
    position = 0
    while position < len(message):
        tag, position = _varint(message, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == VARINT:
            value, position = _varint(message, position)
        elif wire_type in BYTES_OF_WIRE_TYPE:
            length = BYTES_OF_WIRE_TYPE[wire_type]
            if length is None:
                length, position = _varint(message, position)
            if position + length > len(message):
                raise ValueError("a truncated protobuf field")
            raw, position = message[position : position + length], position + length
            value = raw if wire_type == LENGTH_DELIMITED else int.from_bytes(raw, "little")
        else:
            raise ValueError(f"protobuf wire type {wire_type}")
        fields.setdefault(number, []).append(value)
    return fields


def _int(fields: dict[int, list], number: int, default: int) -> int:
    return _last(fields, number, int, default)


def _message(fields: dict[int, list], number: int) -> dict[int, list]:
    return _fields(_last(fields, number, bytes, b""))


def _last(fields: dict[int, list], number: int, kind: type, default):
    """The last value of a field (protobuf's rule for a repeated scalar), which must be of
    ``kind``: a number where a message belongs is a malformed file, not a crash."""
    values = fields.get(number)
    if not values:
        return default
    if not isinstance(values[-1], kind):
        raise ValueError(f"protobuf field {number} is not a {kind.__name__}")
    return values[-1]


def _shape(shape: dict[int, list]) -> tuple[int, ...]:
    """A TensorShapeProto: its dims (field 2), each a size (field 1); unknown rank refused."""
    if _int(shape, 3, 0):
        raise ValueError("a tensor of unknown rank")
    dims = shape.get(2, [])
    if not all(isinstance(dim, bytes) for dim in dims):
        raise ValueError("a shape's dimension is not a message")
    return tuple(_int(_fields(dim), 1, 0) for dim in dims)
