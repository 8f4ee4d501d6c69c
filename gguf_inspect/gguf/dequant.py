"""Dequantize tensor rows to float32 in bounded chunks, with gguf-py's own dequantizers.

Shared by every report that looks at weight values (diff --values, embed, validate --data).
Imports numpy and gguf: never import this from the header-only path.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import gguf
import numpy as np

from gguf_inspect.core.constants import GGML_TYPES
from gguf_inspect.core.errors import FormatError
from gguf_inspect.core.model import TensorInfo
from gguf_inspect.gguf.tensor_data import read_tensor_bytes
from gguf_inspect.gguf.source import ByteSource

DEFAULT_CHUNK_BYTES = 16 << 20  # dequantized float32 bytes per chunk
# Sampled rows (read_row_set): rows this close are read together, skipped rows included (one
# read instead of two: a system call locally, a round trip remotely), within this many bytes.
MAX_GAP_BYTES = 256 << 10
MAX_READ_BYTES = 8 << 20
DEQUANTIZE_BATCH_VALUES = 1 << 18  # values per gguf.quants.dequantize call


# Byte offsets of the f16 scales (d, and dmin or m) inside one block, per ggml type id, as laid
# out in ggml/src/ggml-common.h (block_q4_0 ... block_q6_K). Every value of such a block is its
# scales times small integers (at most 65504 x 63 x 15 in magnitude), so a block holds NaN or
# Inf only when a scale does: finite scales prove a block finite without dequantizing it.
SCALE_OFFSETS: dict[int, tuple[int, ...]] = {
    2: (0,),  # Q4_0: d, qs[16]
    3: (0, 2),  # Q4_1: d, m, qs[16]
    6: (0,),  # Q5_0: d, qh[4], qs[16]
    7: (0, 2),  # Q5_1: d, m, qh[4], qs[16]
    8: (0,),  # Q8_0: d, qs[32]
    10: (80, 82),  # Q2_K: scales[16], qs[64], d, dmin
    11: (108,),  # Q3_K: hmask[32], qs[64], scales[12], d
    12: (0, 2),  # Q4_K: d, dmin, scales[12], qs[128]
    13: (0, 2),  # Q5_K: d, dmin, scales[12], qh[32], qs[128]
    14: (208,),  # Q6_K: ql[128], qh[64], scales[16], d
}


def scales_finite(raw: np.ndarray, tensor: TensorInfo, byte_order: str = "little") -> bool | None:
    """Whether every block scale in ``raw`` (whole rows of blocks, uint8) is finite; None when
    the type's scales are not in ``SCALE_OFFSETS`` (or the file is big-endian): then only
    dequantizing tells."""
    offsets = SCALE_OFFSETS.get(tensor.type_id)
    if offsets is None or byte_order != "little":
        return None
    type_size = GGML_TYPES[tensor.type_id].type_size
    blocks = raw.reshape(-1, type_size)
    for offset in offsets:
        exponents = blocks[:, offset + 1] & 0x7C  # f16 bits 10-14 (little-endian high byte)
        if (exponents == 0x7C).any():  # all ones: Inf or NaN
            return False
    return True


def dequantize_raw(raw: np.ndarray, tensor: TensorInfo, byte_order: str = "little",
                   ) -> np.ndarray:
    """Raw rows (uint8, shape (n_rows, row bytes)) as float32 of shape (n_rows, ne[0])."""
    return _dequantize(raw, tensor, byte_order)


def tensor_row_count(tensor: TensorInfo) -> int:
    """Rows of a tensor seen as a matrix of ne[0]-long rows (all higher dims folded)."""
    return tensor.n_elements // tensor.row_length


def row_byte_size(tensor: TensorInfo) -> int:
    ggml_type = GGML_TYPES[tensor.type_id]
    return tensor.row_length // ggml_type.block_size * ggml_type.type_size


def can_dequantize(tensor: TensorInfo) -> bool:
    """True when gguf-py has a dequantizer for this tensor's type."""
    try:
        qtype = gguf.GGMLQuantizationType(tensor.type_id)
    except ValueError:
        return False
    return qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16) or (
        qtype in gguf.quants._type_traits)  # gguf-py keeps its dequantizer table private


def _check_readable(source: ByteSource, tensor: TensorInfo) -> None:
    if tensor.type_id not in GGML_TYPES or not can_dequantize(tensor):
        # The type is a header field: point at the tensor's header entry in its own file.
        raise FormatError(f"cannot dequantize type {tensor.type_name}", path=source.name,
                          offset=tensor.file_info_offset, field=tensor.name)


def _quiet_nans(values: np.ndarray) -> np.ndarray:
    """Signalling NaNs (exponent all ones, top mantissa bit clear) made quiet, in place.

    Still NaN, so no figure changes; but every later cast or sum of a signalling NaN raises the
    invalid-operation flag, which numpy prints as a RuntimeWarning with a source line."""
    bits = values.view(np.uint32)
    signalling = ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0) & (
        (bits & 0x00400000) == 0)
    if signalling.any():
        bits[signalling] |= 0x00400000
    return values


def _dequantize(data: np.ndarray, tensor: TensorInfo, byte_order: str) -> np.ndarray:
    """Raw rows, a uint8 array of shape (n_rows, row bytes), as float32 (n_rows, ne[0])."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _quiet_nans(_dequantize_raw(data, tensor, byte_order))


def _dequantize_raw(data: np.ndarray, tensor: TensorInfo, byte_order: str) -> np.ndarray:
    n_rows = data.shape[0]
    qtype = gguf.GGMLQuantizationType(tensor.type_id)
    if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        little = "<" if byte_order == "little" else ">"
        dtype = np.dtype(little + ("f4" if qtype == gguf.GGMLQuantizationType.F32 else "f2"))
        return data.view(dtype).astype(np.float32).reshape(n_rows, tensor.row_length)
    # gguf-py's own block dequantizer, called on large slices of whole blocks: its public
    # dequantize() splits the input into groups of 16 rows, one numpy pass per group, which on
    # a 640-wide embedding is thousands of tiny calls. Its temporaries are several times the
    # output: in 1 MiB batches they stay in cache and are reused by the allocator.
    traits = gguf.quants._type_traits[qtype]  # gguf-py keeps its dequantizer table private
    traits.init_grid()
    rows_per_batch = max(1, DEQUANTIZE_BATCH_VALUES // tensor.row_length)
    values = np.empty((n_rows, tensor.row_length), dtype=np.float32)
    for start in range(0, n_rows, rows_per_batch):
        batch = data[start:start + rows_per_batch]
        values[start:start + batch.shape[0]] = traits.dequantize_rows(batch)
    return values


def read_rows(source: ByteSource, tensor: TensorInfo, first_row: int, n_rows: int,
              byte_order: str = "little") -> np.ndarray:
    """Rows ``[first_row, first_row + n_rows)`` as a float32 array of shape (n_rows, ne[0])."""
    _check_readable(source, tensor)
    row_size = row_byte_size(tensor)
    raw = read_tensor_bytes(source, tensor, first_row * row_size, n_rows * row_size)
    return _dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(n_rows, row_size), tensor,
                       byte_order)


def read_windows(rows: Sequence[int], row_size: int, max_gap_bytes: int = MAX_GAP_BYTES,
                 max_read_bytes: int = MAX_READ_BYTES) -> list[tuple[int, int]]:
    """Group sorted row numbers into reads: ``(start, stop)`` slices of ``rows``.

    Rows go into one read while the rows skipped between two of them hold at most
    ``max_gap_bytes`` and the read spans at most ``max_read_bytes`` (a single row may be more).
    """
    windows = []
    start = 0
    for index in range(1, len(rows)):
        gap = (rows[index] - rows[index - 1] - 1) * row_size
        span = (rows[index] - rows[start] + 1) * row_size
        if gap > max_gap_bytes or span > max_read_bytes:
            windows.append((start, index))
            start = index
    if len(rows):
        windows.append((start, len(rows)))
    return windows


def read_row_set(source: ByteSource, tensor: TensorInfo, rows: np.ndarray,
                 byte_order: str = "little", max_gap_bytes: int = MAX_GAP_BYTES,
                 max_read_bytes: int = MAX_READ_BYTES) -> np.ndarray:
    """The given rows (sorted, distinct row numbers) as float32 of shape (len(rows), ne[0]).

    Sampled rows are scattered: reading and dequantizing each alone costs a read and a gguf-py
    call per row (about 90 us). Here nearby rows share one read (see ``read_windows``; memory
    per read stays within ``max_read_bytes``), the wanted rows are picked out of it, and they
    are dequantized together, a few gguf-py calls in all. Dequantization works block by block
    inside a row, so the values are exactly those of reading each row alone. The caller bounds
    ``len(rows)``.
    """
    _check_readable(source, tensor)
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows) and bool(
            np.all(np.diff(rows) == 1)):  # consecutive rows (every row compared): one read
        return read_rows(source, tensor, int(rows[0]), len(rows), byte_order)
    row_numbers = [int(row) for row in rows]
    if any(later <= earlier for earlier, later in zip(row_numbers, row_numbers[1:])):
        raise ValueError("rows must be sorted and distinct")
    row_size = row_byte_size(tensor)
    raw = np.empty((len(row_numbers), row_size), dtype=np.uint8)
    for start, stop in read_windows(row_numbers, row_size, max_gap_bytes, max_read_bytes):
        first = row_numbers[start]
        span = row_numbers[stop - 1] - first + 1
        window = np.frombuffer(read_tensor_bytes(source, tensor, first * row_size,
                                                 span * row_size), dtype=np.uint8)
        picked = np.asarray(row_numbers[start:stop], dtype=np.int64) - first
        raw[start:stop] = window.reshape(span, row_size)[picked]
    return _dequantize(raw, tensor, byte_order)


def iter_row_chunks(source: ByteSource, tensor: TensorInfo, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                    byte_order: str = "little") -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, rows)`` chunks covering the whole tensor; memory stays bounded."""
    total_rows = tensor_row_count(tensor)
    rows_per_chunk = max(1, chunk_bytes // (4 * tensor.row_length))
    for first_row in range(0, total_rows, rows_per_chunk):
        n_rows = min(rows_per_chunk, total_rows - first_row)
        yield first_row, read_rows(source, tensor, first_row, n_rows, byte_order)
