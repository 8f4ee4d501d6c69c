"""The result model: frozen dataclasses that every layer above the reader shares.

Nothing here reads bytes or formats text. The reader fills ``GGUFFile``; reports turn it into
report objects; renderers turn report objects into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from gguf_inspect.core.constants import GGML_TYPES, ggml_type_name

Scalar = Union[int, float, bool, str]


@dataclass(frozen=True)
class ArrayValue:
    """A metadata array, kept lazy: element type, count and where its bytes start.

    Numeric arrays up to ``reader.EAGER_ARRAY_LIMIT`` items (per-layer head counts and the like)
    are decoded at read time into ``items``; larger and string arrays carry only ``preview``
    (their first few items) and are decoded on demand with ``reader.read_array``.
    """

    item_type: int
    count: int
    offset: int  # absolute byte offset of the first element
    end: int  # absolute byte offset just past the last element
    preview: tuple[Any, ...] = ()
    items: tuple[Any, ...] | None = None

    @property
    def item_type_name(self) -> str:
        from gguf_inspect.core.constants import VALUE_TYPES

        return VALUE_TYPES[self.item_type][0] if self.item_type in VALUE_TYPES else "?"


MetadataValue = Union[Scalar, ArrayValue]


@dataclass(frozen=True)
class MetadataEntry:
    """One key/value pair of the header, with the value type id and the key's byte offset."""

    key: str
    value_type: int
    value: MetadataValue
    offset: int


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's header entry. ``ne`` is ggml's order: ne[0] is the row length."""

    name: str
    ne: tuple[int, ...]
    type_id: int
    offset: int  # absolute data offset (split model: in all shards laid end to end)
    n_bytes: int
    info_offset: int  # where this entry sits in the header (split model: end to end, as offset)
    shard: int = 0  # which file of a split model holds it (0-based; 0 when not split)
    # Where that file's bytes begin when the shards are laid end to end (0 when not split):
    # subtracting it turns the merged offsets back into offsets inside the file itself.
    shard_start: int = 0

    @property
    def type_name(self) -> str:
        return ggml_type_name(self.type_id)

    @property
    def known_type(self) -> bool:
        return self.type_id in GGML_TYPES

    def dim(self, axis: int) -> int:
        """ne[axis] as ggml sees it: dimensions past n_dims are 1 (a 0-dim tensor is 1 x 1)."""
        return self.ne[axis] if axis < len(self.ne) else 1

    @property
    def row_length(self) -> int:
        """ne[0], the number of values in one row (1 for a 0-dim tensor)."""
        return self.dim(0)

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.ne:
            count *= dim
        return count

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.n_bytes / self.n_elements if self.n_elements else 0.0

    @property
    def file_offset(self) -> int:
        """Absolute offset of the data in the file that holds it (what gguf-py reports there)."""
        return self.offset - self.shard_start

    @property
    def file_info_offset(self) -> int:
        """Where this entry sits in the header of the file that holds it."""
        return self.info_offset - self.shard_start


@dataclass(frozen=True)
class GGUFFile:
    """Everything in a GGUF header: file facts, metadata in file order, tensor infos in file order."""

    path: str
    version: int
    byte_order: str  # "little" or "big"
    file_size: int
    alignment: int
    data_offset: int
    metadata: dict[str, MetadataEntry]
    tensors: tuple[TensorInfo, ...]
    tensor_index: dict[str, TensorInfo] = field(repr=False, compare=False, default_factory=dict)
    # A split model's files, in shard order; empty for a single file (see ``files``).
    shards: tuple[ShardFile, ...] = field(repr=False, compare=False, default=())

    @property
    def n_tensors(self) -> int:
        return len(self.tensors)

    @property
    def n_kv(self) -> int:
        return len(self.metadata)

    def value(self, key: str, default: Any = None) -> Any:
        """A metadata value (arrays come back as ``ArrayValue``), or ``default`` when absent."""
        entry = self.metadata.get(key)
        return default if entry is None else entry.value

    def tensor(self, name: str) -> TensorInfo | None:
        return self.tensor_index.get(name)

    @property
    def files(self) -> tuple[ShardFile, ...]:
        """Every file the model is made of: the shards of a split model, else this file alone."""
        return self.shards or (ShardFile(header=self, start=0),)

    def file_of(self, tensor: TensorInfo) -> GGUFFile:
        """The header of the file that holds ``tensor`` (its path, size, data offset)."""
        return self.shards[tensor.shard].header if self.shards else self

    @property
    def architecture(self) -> str | None:
        arch = self.value("general.architecture")
        return arch if isinstance(arch, str) else None

    def arch_value(self, suffix: str, default: Any = None) -> Any:
        """``{arch}.{suffix}``, e.g. ``arch_value("embedding_length")``."""
        arch = self.architecture
        return default if arch is None else self.value(f"{arch}.{suffix}", default)


@dataclass(frozen=True)
class ShardFile:
    """One file of a model as that file's own header reads it (offsets inside the file), and
    where its bytes begin when a split model's shards are laid end to end."""

    header: GGUFFile
    start: int
