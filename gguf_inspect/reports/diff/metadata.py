"""The metadata layer of a diff: keys added, removed and changed. Small arrays are compared item
by item; large ones (the tokenizer) by item type, count and a SHA-256 of their items' bytes,
read straight from the file in bounded chunks (``gguf.array_bytes``), never decoded."""

from __future__ import annotations

import hashlib

from gguf_inspect.core.constants import VALUE_TYPES
from gguf_inspect.core.model import ArrayValue, MetadataEntry
from gguf_inspect.gguf.array_bytes import array_le_bytes
from gguf_inspect.gguf.open import Model, same_file
from gguf_inspect.gguf.reader import read_array
from gguf_inspect.reports.diff.report import ArrayDigest, MetadataChange, MetadataSide
from gguf_inspect.reports.diff.structure import union_names

SMALL_ARRAY_ITEMS = 16  # arrays up to this long are compared and shown item by item


def array_digest(model: Model, array: ArrayValue) -> ArrayDigest:
    """Item type, count and SHA-256 of a metadata array's items, read in bounded chunks.

    The hash covers the items in GGUF's little-endian encoding (numbers as their little-endian
    bytes, strings as an 8-byte little-endian length and the UTF-8 bytes): for a little-endian
    file, exactly the array's bytes on disk, hashed without decoding an item; the same items
    give the same digest whatever the file's byte order.
    """
    digest = hashlib.sha256()
    for chunk in array_le_bytes(model.source, array, model.file.byte_order):
        digest.update(chunk)
    return ArrayDigest(item_type=array.item_type_name, count=array.count,
                       sha256=digest.hexdigest())


# Digests already taken, by array position: a file diffed with itself hashes each array once.
DigestCache = dict[tuple[int, int], ArrayDigest]


def _metadata_side(entry: MetadataEntry, model: Model, cache: DigestCache) -> MetadataSide:
    value = entry.value
    if not isinstance(value, ArrayValue):
        return MetadataSide(VALUE_TYPES.get(entry.value_type, ("?", None))[0], value)
    type_name = f"array[{value.item_type_name}]"
    if value.count <= SMALL_ARRAY_ITEMS:
        return MetadataSide(type_name, tuple(read_array(model.source, value,
                                                        model.file.byte_order)))
    key = (value.offset, value.end)
    if key not in cache:
        cache[key] = array_digest(model, value)
    return MetadataSide(type_name, cache[key])


def _same_value(a: MetadataSide, b: MetadataSide) -> bool:
    # repr, not ==: NaN equals itself, and 1 (uint32) is not True (bool) even in Python.
    return a.type_name == b.type_name and repr(a.value) == repr(b.value)


def metadata_diff(a: Model, b: Model) -> tuple[MetadataChange, ...]:
    """Every key of either file (A's order, then B's new keys), each marked with its change."""
    changes = []
    cache_a: DigestCache = {}
    cache_b = cache_a if same_file(a, b) else {}
    for key in union_names(list(a.file.metadata), list(b.file.metadata)):
        entry_a, entry_b = a.file.metadata.get(key), b.file.metadata.get(key)
        side_a = _metadata_side(entry_a, a, cache_a) if entry_a else None
        side_b = _metadata_side(entry_b, b, cache_b) if entry_b else None
        if side_a is None:
            change = "added"
        elif side_b is None:
            change = "removed"
        else:
            change = "same" if _same_value(side_a, side_b) else "changed"
        changes.append(MetadataChange(key=key, change=change, a=side_a, b=side_b))
    return tuple(changes)
