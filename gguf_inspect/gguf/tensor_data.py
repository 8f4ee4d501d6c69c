"""Tensor data after the header: the raw bytes of one tensor (or a slice of it), read from the
file that holds it, with a truncation named at the byte inside that file.

Apart from ``reader.py`` (the header) because only the commands that look at values read here;
the header-only path never does.
"""

from __future__ import annotations

from gguf_inspect.core.errors import TruncatedError
from gguf_inspect.core.model import TensorInfo
from gguf_inspect.gguf.source import ByteSource


def _file_name(source: ByteSource, tensor: TensorInfo) -> str:
    """The file that holds ``tensor``: its shard's own name when the source is a split model."""
    shard_names = getattr(source, "shard_names", None)
    if shard_names and tensor.shard < len(shard_names):
        return str(shard_names[tensor.shard])
    return source.name


def read_tensor_bytes(source: ByteSource, tensor: TensorInfo, start: int = 0,
                      length: int | None = None) -> bytes:
    """Raw bytes of a tensor's data (a slice of it with ``start`` / ``length``)."""
    length = tensor.n_bytes - start if length is None else length
    data = source.read_at(tensor.offset + start, length)
    if len(data) < length:
        # Named as the file that holds the tensor and the byte inside it, as for a single file.
        raise TruncatedError("file ends inside tensor data", path=_file_name(source, tensor),
                             offset=tensor.file_offset + start + len(data), field=tensor.name)
    return data
