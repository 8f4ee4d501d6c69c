"""Listings: the header's metadata entries and tensor infos, filtered and ready to render."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from gguf_inspect.core.constants import VALUE_TYPE_ARRAY, VALUE_TYPES
from gguf_inspect.core.model import ArrayValue, GGUFFile, TensorInfo
from gguf_inspect.gguf.open import Model
from gguf_inspect.gguf.reader import read_array


@dataclass(frozen=True)
class MetadataItem:
    """One key: its type name, and either a scalar value or (some of) an array's items."""

    key: str
    type_name: str  # "uint32", "string", "array[string]"
    value: Any  # the scalar; for arrays the items shown (a tuple)
    count: int | None  # array length; None for scalars
    complete: bool  # False when an array is abbreviated


def _type_name(value_type: int, value: Any) -> str:
    if value_type == VALUE_TYPE_ARRAY and isinstance(value, ArrayValue):
        return f"array[{value.item_type_name}]"
    return VALUE_TYPES.get(value_type, ("?", None))[0]


def list_metadata(model: Model, full: bool = False) -> tuple[MetadataItem, ...]:
    """Every key in file order; arrays abbreviated to their preview unless ``full`` (which reads
    every item from the model's source)."""
    items = []
    for entry in model.file.metadata.values():
        value = entry.value
        if isinstance(value, ArrayValue):
            if full:
                shown = tuple(read_array(model.source, value, model.file.byte_order))
            else:
                shown = value.items if value.items is not None else value.preview
            items.append(MetadataItem(entry.key, _type_name(entry.value_type, value), tuple(shown),
                                      value.count, len(shown) >= value.count))
        else:
            items.append(MetadataItem(entry.key, _type_name(entry.value_type, value), value, None,
                                      True))
    return tuple(items)


def list_tensors(gguf: GGUFFile, pattern: str | None = None) -> tuple[TensorInfo, ...]:
    """Tensor infos in file order; ``pattern`` is a glob (``blk.0.*``) or a plain substring."""
    if not pattern:
        return gguf.tensors
    if any(char in pattern for char in "*?["):
        return tuple(t for t in gguf.tensors if fnmatch.fnmatchcase(t.name, pattern))
    return tuple(t for t in gguf.tensors if pattern in t.name)
