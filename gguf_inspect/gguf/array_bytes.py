"""A metadata array's items as little-endian bytes, streamed straight from the file in bounded
chunks: what a diff hashes to compare two long arrays (a 262k-token vocabulary) without decoding
a single item.

The encoding is GGUF's own little-endian one: each number as its little-endian bytes, each
string as its 8-byte little-endian length followed by its UTF-8 bytes (``gguf_type_size`` and
``gguf_reader::read`` in llama.cpp's ggml/src/gguf.cpp). For a little-endian file that is the
array's bytes on disk, read as they are; a big-endian file's items are swapped to it, so the same
items give the same bytes whatever the byte order.
"""

from __future__ import annotations

import struct
from typing import Iterator

from gguf_inspect.core.constants import VALUE_TYPE_ARRAY, VALUE_TYPE_STRING, VALUE_TYPES
from gguf_inspect.core.errors import FormatError, TruncatedError
from gguf_inspect.core.model import ArrayValue
from gguf_inspect.gguf.cursor import Cursor
from gguf_inspect.gguf.source import ByteSource

ARRAY_CHUNK_BYTES = 8 << 20  # bytes read at a time


def _read(source: ByteSource, offset: int, length: int) -> bytes:
    data = source.read_at(offset, length)
    if len(data) < length:
        raise TruncatedError("file ends inside array data", path=source.name,
                             offset=offset + len(data), field="array")
    return data


def _raw_chunks(source: ByteSource, start: int, end: int, chunk_bytes: int) -> Iterator[bytes]:
    for offset in range(start, end, chunk_bytes):
        yield _read(source, offset, min(chunk_bytes, end - offset))


def _swapped_numbers(source: ByteSource, array: ArrayValue, chunk_bytes: int,
                     ) -> Iterator[bytes]:
    """A big-endian numeric array, each item's bytes reversed (whole items per chunk)."""
    import numpy as np

    item_size = struct.calcsize(VALUE_TYPES[array.item_type][1])
    step = max(item_size, chunk_bytes // item_size * item_size)
    for raw in _raw_chunks(source, array.offset, array.end, step):
        yield np.frombuffer(raw, dtype=np.uint8).reshape(-1, item_size)[:, ::-1].tobytes()


def _swapped_strings(source: ByteSource, array: ArrayValue, chunk_bytes: int,
                     ) -> Iterator[bytes]:
    """A big-endian string array re-encoded with little-endian lengths, in bounded batches."""
    cursor = Cursor(source, ">")
    cursor.position = cursor.buffer_start = array.offset
    batch: list[bytes] = []
    size = 0
    for _, raw in cursor.raw_strings(array.count, "array"):
        batch += (struct.pack("<Q", len(raw)), raw)
        size += 8 + len(raw)
        if size >= chunk_bytes:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


def array_le_bytes(source: ByteSource, array: ArrayValue, byte_order: str = "little",
                   chunk_bytes: int = ARRAY_CHUNK_BYTES) -> Iterator[bytes]:
    """The array's items in GGUF's little-endian encoding, a chunk at a time (see the module
    docstring); their concatenation depends only on the items, not on the file's byte order."""
    if array.item_type == VALUE_TYPE_ARRAY:
        raise FormatError("nested arrays are not hashed", offset=array.offset, field="array")
    if byte_order == "little" or array.item_type not in VALUE_TYPES:
        yield from _raw_chunks(source, array.offset, array.end, chunk_bytes)
    elif array.item_type == VALUE_TYPE_STRING:
        yield from _swapped_strings(source, array, chunk_bytes)
    else:
        yield from _swapped_numbers(source, array, chunk_bytes)
