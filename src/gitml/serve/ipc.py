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

RECORD_BATCH, DICTIONARY_BATCH = 3, 2  # MessageHeader union tags


class Malformed(ValueError):
    """A message header that does not parse as the Arrow format says."""


def stream_bounds(body: bytes, max_rows: int, max_bytes: int) -> tuple[int, int, int]:
    """(rows, largest dictionary, decompressed bytes) of the stream in ``body``, stopping early.

    Reads message headers only, and stops as soon as the rows pass ``max_rows`` (or one
    dictionary holds more values than that) or the buffers would decompress to more than
    ``max_bytes``: the counts then returned are over a limit, and the caller refuses the
    body. Raises :class:`Malformed` for a stream whose framing or headers do not parse.
    The framing is walked here, not by pyarrow's MessageReader: that took 3x as long.
    """
    try:
        return _bounds(memoryview(body), max_rows, max_bytes)
    except struct.error as exc:
        raise Malformed(str(exc)) from None


def _bounds(data: memoryview, max_rows: int, max_bytes: int) -> tuple[int, int, int]:
    rows = largest = size = 0
    position, end = 0, len(data)
    while position + 4 <= end:
        (length,) = struct.unpack_from("<i", data, position)
        position += 4
        if length == -1:  # the continuation marker; the length follows (streams since Arrow 0.15)
            if position + 4 > end:
                break
            (length,) = struct.unpack_from("<i", data, position)
            position += 4
        if length == 0:  # end of stream
            break
        if length < 0 or position + length > end:
            raise Malformed("a message header outside the body")
        metadata = data[position:position + length]
        position += length
        message = _Table(metadata, _u32(metadata, 0))
        body_length = message.scalar(3, "<q", 0)
        if body_length < 0 or position + body_length > end:
            raise Malformed("a message body outside the stream")
        tag = message.scalar(1, "<B", 0)
        if tag in (RECORD_BATCH, DICTIONARY_BATCH):
            header = message.table(2)
            if header is not None and tag == DICTIONARY_BATCH:
                header = header.table(1)
            if header is None:
                raise Malformed("a batch message without its header")
            length = header.scalar(0, "<q", 0)
            if length < 0:
                raise Malformed("a negative row count")
            if tag == RECORD_BATCH:
                rows += length
            else:
                largest = max(largest, length)
            size += _body_size(header, data[position:position + body_length])
            if rows > max_rows or largest > max_rows or size > max_bytes:
                break
        position += body_length
    return rows, largest, size


def _body_size(batch: _Table, data: memoryview) -> int:
    """Bytes the batch's buffers take once read: the body itself, or the sum of the
    uncompressed lengths when its buffers are compressed."""
    if batch.table(3) is None:  # no compression: the buffers are the body
        return len(data)
    total = 0
    start, count = batch.vector(2, 16)
    for i in range(count):
        offset, length = struct.unpack_from("<qq", batch.buf, start + 16 * i)
        if length == 0:
            continue
        if offset < 0 or length < 8 or offset + 8 > len(data):
            raise Malformed("a compressed buffer outside the message body")
        (uncompressed,) = struct.unpack_from("<q", data, offset)
        if uncompressed < -1:
            raise Malformed("a negative uncompressed length")
        total += length - 8 if uncompressed == -1 else uncompressed  # -1: stored as it is
    return total


def _u32(buf: memoryview, position: int) -> int:
    if not 0 <= position <= len(buf) - 4:
        raise Malformed("an offset outside the message header")
    return int(struct.unpack_from("<I", buf, position)[0])


class _Table:
    """A flatbuffer table: fields found through its vtable, every offset bounds-checked."""

    def __init__(self, buf: memoryview, position: int):
        if not 0 <= position <= len(buf) - 4:
            raise Malformed("a table outside the message header")
        vtable = position - struct.unpack_from("<i", buf, position)[0]
        if not 0 <= vtable <= len(buf) - 4:
            raise Malformed("a vtable outside the message header")
        self.buf, self.position, self.vtable = buf, position, vtable
        self.vtable_size = struct.unpack_from("<H", buf, vtable)[0]

    def _field(self, index: int) -> int:
        slot = 4 + 2 * index
        if slot + 2 > self.vtable_size or self.vtable + slot + 2 > len(self.buf):
            return 0
        return int(struct.unpack_from("<H", self.buf, self.vtable + slot)[0])

    def scalar(self, index: int, fmt: str, default: int) -> int:
        offset = self._field(index)
        where = self.position + offset
        if not offset:
            return default
        if where + struct.calcsize(fmt) > len(self.buf):
            raise Malformed("a field outside the message header")
        return int(struct.unpack_from(fmt, self.buf, where)[0])

    def table(self, index: int) -> _Table | None:
        offset = self._field(index)
        if not offset:
            return None
        where = self.position + offset
        return _Table(self.buf, where + _u32(self.buf, where))

    def vector(self, index: int, item_size: int) -> tuple[int, int]:
        """(position of the first item, item count) of a vector of structs; (0, 0) if absent."""
        offset = self._field(index)
        if not offset:
            return 0, 0
        where = self.position + offset
        start = where + _u32(self.buf, where)
        count = _u32(self.buf, start)
        if start + 4 + count * item_size > len(self.buf):
            raise Malformed("a vector outside the message header")
        return start + 4, count
