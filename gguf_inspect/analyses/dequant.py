"""Dequantize tensor rows to float32 in bounded chunks, with gguf-py's own dequantizers.

Shared by every analysis that looks at weight values (diff --values, embed, validate --data).
Imports numpy and gguf: never import this from the header-only path.
"""

from __future__ import annotations

from typing import Iterator

import gguf
import numpy as np

from gguf_inspect.constants import GGML_TYPES
from gguf_inspect.errors import FormatError
from gguf_inspect.model import TensorInfo
from gguf_inspect.reader import read_tensor_bytes
from gguf_inspect.source import ByteSource

DEFAULT_CHUNK_BYTES = 16 << 20  # dequantized float32 bytes per chunk


def tensor_row_count(tensor: TensorInfo) -> int:
    """Rows of a tensor seen as a matrix of ne[0]-long rows (all higher dims folded)."""
    return tensor.n_elements // tensor.ne[0]


def row_byte_size(tensor: TensorInfo) -> int:
    ggml_type = GGML_TYPES[tensor.type_id]
    return tensor.ne[0] // ggml_type.block_size * ggml_type.type_size


def can_dequantize(tensor: TensorInfo) -> bool:
    """True when gguf-py has a dequantizer for this tensor's type."""
    try:
        qtype = gguf.GGMLQuantizationType(tensor.type_id)
    except ValueError:
        return False
    return qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16) or (
        qtype in gguf.quants._type_traits)  # gguf-py keeps its dequantizer table private


def read_rows(source: ByteSource, tensor: TensorInfo, first_row: int, n_rows: int,
              byte_order: str = "little") -> np.ndarray:
    """Rows ``[first_row, first_row + n_rows)`` as a float32 array of shape (n_rows, ne[0])."""
    if tensor.type_id not in GGML_TYPES or not can_dequantize(tensor):
        raise FormatError(f"cannot dequantize type {tensor.type_name}", path=source.name,
                          offset=tensor.offset, field=tensor.name)
    row_size = row_byte_size(tensor)
    raw = read_tensor_bytes(source, tensor, first_row * row_size, n_rows * row_size)
    data = np.frombuffer(raw, dtype=np.uint8).reshape(n_rows, row_size)
    qtype = gguf.GGMLQuantizationType(tensor.type_id)
    if byte_order == "big" and qtype in (gguf.GGMLQuantizationType.F32,
                                         gguf.GGMLQuantizationType.F16):
        dtype = np.dtype(">f4") if qtype == gguf.GGMLQuantizationType.F32 else np.dtype(">f2")
        return data.view(dtype).astype(np.float32).reshape(n_rows, tensor.ne[0])
    values = gguf.quants.dequantize(data, qtype)
    return np.asarray(values, dtype=np.float32).reshape(n_rows, tensor.ne[0])


def iter_row_chunks(source: ByteSource, tensor: TensorInfo, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                    byte_order: str = "little") -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, rows)`` chunks covering the whole tensor; memory stays bounded."""
    total_rows = tensor_row_count(tensor)
    rows_per_chunk = max(1, chunk_bytes // (4 * tensor.ne[0]))
    for first_row in range(0, total_rows, rows_per_chunk):
        n_rows = min(rows_per_chunk, total_rows - first_row)
        yield first_row, read_rows(source, tensor, first_row, n_rows, byte_order)
