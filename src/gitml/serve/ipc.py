"""Bounds of an Arrow IPC stream, read from its message headers before any buffer is read.

A compressed stream (zstd or lz4 buffers) can expand a thousandfold: a 25 kB body
decompressed to 800 MB before the row limit was checked. Each message's header (a small
flatbuffer) gives its row count and the place of every buffer; a compressed buffer starts
with its uncompressed length (8 bytes, little-endian). So rows and the decompressed size of
the whole stream are known from a few bytes per buffer, and a stream over either limit is
refused before pyarrow decompresses anything.

Layouts from Arrow's format/Message.fbs (fields by position in each table):
Message {version, header_type, header, bodyLength, custom_metadata};
RecordBatch {length, nodes, buffers: [Buffer {offset: long, length: long}], compression};
DictionaryBatch {id, data: RecordBatch, isDelta}.
"""

from __future__ import annotations

import struct
from typing import Any

RECORD_BATCH, DICTIONARY_BATCH = 3, 2  # MessageHeader union tags
_i32, _u32, _u16 = struct.Struct("<i").unpack_from, struct.Struct("<I").unpack_from, struct.Struct("<H").unpack_from
_i64, _u8, _buffer = struct.Struct("<q").unpack_from, struct.Struct("<B").unpack_from, struct.Struct("<qq").unpack_from
Table = tuple[int, int, int]  # a flatbuffer table: its position, its vtable's position, the vtable's size


class Malformed(ValueError):
    """A message header that does not parse as the Arrow format says."""


def stream_bounds(body: bytes, max_rows: int, max_bytes: int) -> tuple[int, int, int]:
    """(rows, largest dictionary, decompressed bytes) of the stream in ``body``, stopping early.

    Reads message headers only, and stops as soon as the rows pass ``max_rows`` (or one
    dictionary holds more values than that) or the buffers would decompress to more than
    ``max_bytes``: the counts then returned are over a limit, and the caller refuses the
    body. Raises :class:`Malformed` for a stream whose framing or headers do not parse.
    The framing is walked here, not by pyarrow's MessageReader (that alone took longer),
    with every offset checked: about 25 struct reads for a one-batch stream.
    """
    try:
        return _bounds(memoryview(body), max_rows, max_bytes)
    except struct.error as exc:
        raise Malformed(str(exc)) from None


def _bounds(data: memoryview, max_rows: int, max_bytes: int) -> tuple[int, int, int]:
    rows = largest = size = 0
    position, end = 0, len(data)
    while position + 4 <= end:
        (length,) = _i32(data, position)
        position += 4
        if length == -1:  # the continuation marker; the length follows (streams since Arrow 0.15)
            if position + 4 > end:
                break
            (length,) = _i32(data, position)
            position += 4
        if length == 0:  # end of stream
            break
        if length < 0 or position + length > end:
            raise Malformed("a message header outside the body")
        meta, body = data[position:position + length], position + length  # flatbuffer offsets stay in meta
        message = _table(meta, _u32(meta, 0)[0], length)
        body_length = _scalar(meta, message, 3, _i64, 8, length)
        if body_length < 0 or body + body_length > end:
            raise Malformed("a message body outside the stream")
        tag = _scalar(meta, message, 1, _u8, 1, length)
        if tag in (RECORD_BATCH, DICTIONARY_BATCH):
            batch = _child(meta, message, 2, length)
            if batch is not None and tag == DICTIONARY_BATCH:
                batch = _child(meta, batch, 1, length)
            if batch is None:
                raise Malformed("a batch message without its header")
            count = _scalar(meta, batch, 0, _i64, 8, length)
            if count < 0:
                raise Malformed("a negative row count")
            if tag == RECORD_BATCH:
                rows += count
            else:
                largest = max(largest, count)
            if _field(meta, batch, 3, 4, length):  # compressed buffers: their own lengths say
                size += _uncompressed(meta, batch, data[body:body + body_length])
            else:  # the buffers are the body
                size += body_length
            if rows > max_rows or largest > max_rows or size > max_bytes:
                break
        position = body + body_length
    return rows, largest, size


def _uncompressed(meta: memoryview, batch: Table, body: memoryview) -> int:
    """The batch's buffers once decompressed: each starts with its uncompressed length."""
    where = _field(meta, batch, 2, 4, len(meta))
    if not where:
        return 0
    start = where + _u32(meta, where)[0]
    if start + 4 > len(meta):
        raise Malformed("a vector outside the message header")
    (count,) = _u32(meta, start)
    if start + 4 + 16 * count > len(meta):
        raise Malformed("a vector outside the message header")
    total = 0
    for item in range(start + 4, start + 4 + 16 * count, 16):
        offset, length = _buffer(meta, item)
        if length == 0:
            continue
        if offset < 0 or length < 8 or offset + 8 > len(body):
            raise Malformed("a compressed buffer outside the message body")
        (unpacked,) = _i64(body, offset)
        if unpacked < -1:
            raise Malformed("a negative uncompressed length")
        total += length - 8 if unpacked == -1 else unpacked  # -1: stored as it is
    return total


def _table(data: memoryview, position: int, end: int) -> Table:
    if not 0 <= position <= end - 4:
        raise Malformed("a table outside the message header")
    vtable = position - _i32(data, position)[0]
    if not 0 <= vtable <= end - 4:
        raise Malformed("a vtable outside the message header")
    return position, vtable, _u16(data, vtable)[0]


def _field(data: memoryview, table: Table, index: int, size: int, end: int) -> int:
    """Where field ``index`` (``size`` bytes) of ``table`` is; 0 when it is absent."""
    position, vtable, vtable_size = table
    slot = 4 + 2 * index
    if slot + 2 > vtable_size or vtable + slot + 2 > end:
        return 0
    (offset,) = _u16(data, vtable + slot)
    if not offset:
        return 0
    if position + offset + size > end:
        raise Malformed("a field outside the message header")
    return position + offset


def _scalar(data: memoryview, table: Table, index: int, read: Any, size: int, end: int) -> int:
    where = _field(data, table, index, size, end)
    return int(read(data, where)[0]) if where else 0


def _child(data: memoryview, table: Table, index: int, end: int) -> Table | None:
    where = _field(data, table, index, 4, end)
    return _table(data, where + _u32(data, where)[0], end) if where else None
