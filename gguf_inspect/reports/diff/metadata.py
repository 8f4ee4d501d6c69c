"""The metadata layer of a diff: keys added, removed and changed. Small arrays are compared item
by item; large ones (the tokenizer) by item type, count and a SHA-256 of their items, streamed
with ``reader.iter_array`` in bounded memory."""

from __future__ import annotations

import hashlib

from gguf_inspect.core.constants import VALUE_TYPES
from gguf_inspect.core.model import ArrayValue, MetadataEntry
from gguf_inspect.gguf.open import Model
from gguf_inspect.gguf.reader import iter_array, read_array
from gguf_inspect.reports.diff.report import ArrayDigest, MetadataChange, MetadataSide
from gguf_inspect.reports.diff.structure import union_names

SMALL_ARRAY_ITEMS = 16  # arrays up to this long are compared and shown item by item
HASH_BATCH_ITEMS = 4096  # array items hashed per update: bounded memory, few hash calls


def array_digest(model: Model, array: ArrayValue) -> ArrayDigest:
    """Item type, count and SHA-256 of a metadata array's items, streamed in bounded memory.

    The hash covers each item's ``repr`` joined by newlines (``repr`` escapes newlines inside
    strings, so the encoding is unambiguous), which makes it independent of the file's byte
    order and of how the array is laid out on disk.
    """
    digest = hashlib.sha256()
    batch: list[str] = []
    for item in iter_array(model.source, array, model.file.byte_order):
        batch.append(repr(item))
        if len(batch) == HASH_BATCH_ITEMS:
            digest.update(("\n".join(batch) + "\n").encode("utf-8", "backslashreplace"))
            batch.clear()
    if batch:
        digest.update(("\n".join(batch) + "\n").encode("utf-8", "backslashreplace"))
    return ArrayDigest(item_type=array.item_type_name, count=array.count,
                       sha256=digest.hexdigest())


def _metadata_side(entry: MetadataEntry, model: Model) -> MetadataSide:
    value = entry.value
    if not isinstance(value, ArrayValue):
        return MetadataSide(VALUE_TYPES.get(entry.value_type, ("?", None))[0], value)
    type_name = f"array[{value.item_type_name}]"
    if value.count <= SMALL_ARRAY_ITEMS:
        return MetadataSide(type_name, tuple(read_array(model.source, value,
                                                        model.file.byte_order)))
    return MetadataSide(type_name, array_digest(model, value))


def _same_value(a: MetadataSide, b: MetadataSide) -> bool:
    # repr, not ==: NaN equals itself, and 1 (uint32) is not True (bool) even in Python.
    return a.type_name == b.type_name and repr(a.value) == repr(b.value)


def metadata_diff(a: Model, b: Model) -> tuple[MetadataChange, ...]:
    """Every key of either file (A's order, then B's new keys), each marked with its change."""
    changes = []
    for key in union_names(list(a.file.metadata), list(b.file.metadata)):
        entry_a, entry_b = a.file.metadata.get(key), b.file.metadata.get(key)
        side_a = _metadata_side(entry_a, a) if entry_a else None
        side_b = _metadata_side(entry_b, b) if entry_b else None
        if side_a is None:
            change = "added"
        elif side_b is None:
            change = "removed"
        else:
            change = "same" if _same_value(side_a, side_b) else "changed"
        changes.append(MetadataChange(key=key, change=change, a=side_a, b=side_b))
    return tuple(changes)
