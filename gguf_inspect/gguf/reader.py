"""The GGUF header reader: the only code in the project that turns bytes into values.

It reads the header lazily and boundedly: metadata scalars are decoded, arrays are skipped by
scanning lengths (numeric arrays by arithmetic) and decoded only on demand, and every count or
length is checked against the bytes that are really left before anything is allocated.
By default the first problem raises; ``validate`` passes a ``problems`` list instead, and every
problem after which parsing can still go on (bad UTF-8, duplicates, bad shapes, misplaced tensor
data, a bad alignment) is collected there; problems that leave the rest of the header
unreadable (truncation, unknown value types, bad counts, n_dims > 4) still raise, and so does
the hundredth problem, so a garbage file cannot produce an endless list. String arrays are
only previewed while parsing (their other items are skipped by length); ``invalid_strings``
looks at every item for ``validate``.
Why not gguf-py's GGUFReader: it materializes every array (seconds and hundreds of MiB on a
262k-token vocabulary); gguf-py stays the independent oracle in the tests.
"""

from __future__ import annotations

import struct
from typing import Any, Iterator, NamedTuple

from gguf_inspect.core.constants import (
    DEFAULT_ALIGNMENT,
    GGML_TYPES,
    GGUF_MAGIC,
    MAX_DIMS,
    SUPPORTED_VERSIONS,
    VALUE_TYPE_ARRAY,
    VALUE_TYPE_STRING,
    VALUE_TYPES,
)
from gguf_inspect.core.errors import FormatError, GGUFError, TruncatedError
from gguf_inspect.core.model import ArrayValue, GGUFFile, MetadataEntry, TensorInfo
from gguf_inspect.gguf.cursor import MAX_LABEL, Cursor, Problems, display_label
from gguf_inspect.gguf.source import ByteSource

PREVIEW_ITEMS = 8
EAGER_ARRAY_LIMIT = 1024  # numeric arrays this short (per-layer values) are decoded at once
MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8  # name length, n_dims, type, offset
MIN_KV_BYTES = 8 + 4 + 1  # key length, value type, smallest value
# Arrays of arrays: gguf-py writes them and llama.cpp refuses them; the bound keeps a hostile
# file (12 bytes per level) from running Python out of stack.
MAX_ARRAY_DEPTH = 8


def _value_format(value_type: int, field: str, offset: int) -> str | None:
    if value_type not in VALUE_TYPES:
        raise FormatError(f"unknown metadata value type {value_type}", offset=offset, field=field)
    return VALUE_TYPES[value_type][1]


def _read_scalar(cursor: Cursor, value_type: int, field: str) -> Any:
    fmt = _value_format(value_type, field, cursor.position)
    if value_type == VALUE_TYPE_STRING:
        return cursor.string(field)
    if value_type == 7:
        raw = cursor.unpack("B", field)
        if raw > 1:
            cursor.problems.report(FormatError(f"bool value {raw} is neither 0 nor 1",
                                               offset=cursor.position - 1, field=field))
        return bool(raw)
    return cursor.unpack(fmt, field)


def _item_min_size(item_type: int) -> int:
    if item_type == VALUE_TYPE_STRING:
        return 8
    if item_type == VALUE_TYPE_ARRAY:
        return 4 + 8
    return struct.calcsize("<" + VALUE_TYPES[item_type][1])


def _read_array(cursor: Cursor, field: str, depth: int = 1) -> ArrayValue:
    type_offset = cursor.position
    if depth > MAX_ARRAY_DEPTH:
        raise FormatError(f"arrays nested more than {MAX_ARRAY_DEPTH} deep", offset=type_offset,
                          field=field)
    item_type = cursor.unpack("I", field + " item type")
    _value_format(item_type, field + " item type", type_offset)
    count_offset = cursor.position
    count = cursor.unpack("Q", field + " count")
    if count * _item_min_size(item_type) > cursor.remaining():
        raise TruncatedError(
            f"array count {count} needs more than the {cursor.remaining()} byte(s) left",
            offset=count_offset, field=field)
    start = cursor.position
    preview: list[Any] = []
    items: tuple[Any, ...] | None = None
    if item_type == VALUE_TYPE_STRING:
        for index in range(min(count, PREVIEW_ITEMS)):
            preview.append(cursor.string(f"{field}[{index}]", strict=False))
        cursor.skip_strings(count - len(preview), field, first=len(preview))
    elif item_type == VALUE_TYPE_ARRAY:
        for index in range(count):
            _read_array(cursor, f"{field}[{index}]", depth + 1)
    else:
        item_size = _item_min_size(item_type)
        if count <= EAGER_ARRAY_LIMIT:
            raw = cursor.take(count * item_size, field)
            items = _decode_numeric(raw, item_type, count, cursor.order)
            preview = list(items[:PREVIEW_ITEMS])
        else:
            raw = cursor.take(PREVIEW_ITEMS * item_size, field)
            preview = list(_decode_numeric(raw, item_type, PREVIEW_ITEMS, cursor.order))
            cursor.skip((count - PREVIEW_ITEMS) * item_size, field)
    return ArrayValue(item_type=item_type, count=count, offset=start, end=cursor.position,
                      preview=tuple(preview), items=items)


def _decode_numeric(raw: bytes, item_type: int, count: int, order: str) -> tuple[Any, ...]:
    fmt = VALUE_TYPES[item_type][1]
    values = struct.unpack(f"{order}{count}{fmt}", raw)
    return values


def _read_header(cursor: Cursor) -> tuple[int, str, int, int]:
    magic = cursor.take(4, "magic")
    if magic != GGUF_MAGIC:
        raise FormatError(f"not a GGUF file (magic {magic!r})", offset=0, field="magic")
    version = cursor.unpack("I", "version")
    byte_order = "little"
    if version & 0xFFFF == 0 and version != 0:
        # A big-endian file: its version reads byte-swapped (gguf-py detects it the same way).
        version = struct.unpack(">I", struct.pack("<I", version))[0]
        byte_order = "big"
        cursor.order = ">"
        cursor._formats.clear()
    if version not in SUPPORTED_VERSIONS:
        raise FormatError(f"unsupported GGUF version {version} (supported: 2, 3)",
                          offset=4, field="version")
    n_tensors = cursor.unpack("Q", "tensor count")
    n_kv = cursor.unpack("Q", "metadata kv count")
    if n_kv * MIN_KV_BYTES > cursor.remaining():
        raise FormatError(f"metadata count {n_kv} exceeds what the {cursor.remaining()} "
                          "remaining byte(s) can hold", offset=16, field="metadata kv count")
    if n_tensors * MIN_TENSOR_INFO_BYTES > cursor.remaining():
        raise FormatError(f"tensor count {n_tensors} exceeds what the {cursor.remaining()} "
                          "remaining byte(s) can hold", offset=8, field="tensor count")
    return version, byte_order, n_tensors, n_kv


# Scalar value types decoded straight from the buffer on the fast path (bool is checked for
# 0/1 and goes the careful way).
_FAST_SCALARS = {value_type: fmt for value_type, (_, fmt) in VALUE_TYPES.items()
                 if fmt is not None and value_type != 7}


class _Layout:
    """Compiled structs of one byte order for the fast paths."""

    def __init__(self, order: str) -> None:
        self.u64 = struct.Struct(order + "Q").unpack_from
        self.u32 = struct.Struct(order + "I").unpack_from
        self.scalars = {value_type: struct.Struct(order + fmt)
                        for value_type, fmt in _FAST_SCALARS.items()}
        self.shapes = [struct.Struct(f"{order}{n_dims}Q").unpack_from
                       for n_dims in range(MAX_DIMS + 1)]
        self.type_and_offset = struct.Struct(order + "IQ").unpack_from


def _buffered_name(cursor: Cursor, layout: _Layout) -> tuple[bytes, int, int] | None:
    """Where the entry at the cursor starts: (buffer, its start in the buffer, the end of its
    length-prefixed name), when the name and the 4 bytes after it are whole in the buffer;
    None otherwise. The first step of both fast paths (a KV key, a tensor name)."""
    buffer, local = cursor.buffer, cursor.position - cursor.buffer_start
    if local < 0 or local + 12 > len(buffer):
        return None
    name_end = local + 8 + layout.u64(buffer, local)[0]
    if name_end + 4 > len(buffer):
        return None
    return buffer, local, name_end


def _fast_entry(cursor: Cursor, layout: _Layout) -> tuple[str, int, Any] | None:
    """One KV entry with a numeric or string value, decoded straight from the read-ahead
    buffer; None when it is anything else (an array, a bool, bad UTF-8, not whole in the
    buffer), which the careful path then reads with its checks and messages.

    Why: a header of 10^6 keys spent most of its time building field labels for messages that
    are never shown. Nothing moves until the whole entry is known to be good."""
    found = _buffered_name(cursor, layout)
    if found is None:
        return None
    buffer, local, key_end = found
    size = len(buffer)
    value_type = layout.u32(buffer, key_end)[0]
    value_at = key_end + 4
    scalar = layout.scalars.get(value_type)
    try:
        if scalar is not None:
            end = value_at + scalar.size
            if end > size:
                return None
            value: Any = scalar.unpack_from(buffer, value_at)[0]
        elif value_type == VALUE_TYPE_STRING and value_at + 8 <= size:
            end = value_at + 8 + layout.u64(buffer, value_at)[0]
            if end > size:
                return None
            value = buffer[value_at + 8:end].decode("utf-8")
        else:
            return None
        key = buffer[local + 8:key_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    cursor.position = cursor.buffer_start + end
    return key, value_type, value


def _careful_entry(cursor: Cursor, index: int) -> tuple[str, int, Any]:
    """One KV entry read field by field, each problem named and placed."""
    key = cursor.string(f"kv[{index}].key")
    label = display_label(key, f"kv[{index}]")
    type_offset = cursor.position
    value_type = cursor.unpack("I", f"{label} value type")
    _value_format(value_type, f"{label} value type", type_offset)
    if value_type == VALUE_TYPE_ARRAY:
        value: Any = _read_array(cursor, label)
        if value.item_type == VALUE_TYPE_ARRAY:
            # llama.cpp's gguf_init_from_file_impl (ggml/src/gguf.cpp) takes one array level
            # and fails on an array item type: "key '%s' has invalid GGUF type 9". Refused
            # the same way here, by every command (validate lists it among the others).
            cursor.problems.report(FormatError(
                "array of arrays: llama.cpp refuses nested arrays", offset=type_offset,
                field=label))
    else:
        value = _read_scalar(cursor, value_type, label)
    return key, value_type, value


def _read_metadata(cursor: Cursor, n_kv: int) -> dict[str, MetadataEntry]:
    metadata: dict[str, MetadataEntry] = {}
    layout = _Layout(cursor.order)
    for index in range(n_kv):
        offset = cursor.position
        key, value_type, value = (_fast_entry(cursor, layout)
                                  or _careful_entry(cursor, index))
        if key in metadata:  # the first one wins, as in gguf-py
            label = display_label(key, f"kv[{index}]")
            cursor.problems.report(
                FormatError(f"duplicate metadata key {label!r}", offset=offset, field=label))
            continue
        metadata[key] = MetadataEntry(key=key, value_type=value_type, value=value, offset=offset)
    return metadata


def _alignment(metadata: dict[str, MetadataEntry], problems: Problems) -> int:
    entry = metadata.get("general.alignment")
    if entry is None:
        return DEFAULT_ALIGNMENT
    value = entry.value
    if entry.value_type != 4 or not isinstance(value, int) or value == 0 or value & (value - 1):
        shown = value if isinstance(value, int) else f"a {VALUE_TYPES[entry.value_type][0]}"
        problems.report(FormatError(
            f"general.alignment must be a power-of-two uint32, got {shown}",
            offset=entry.offset, field="general.alignment"))
        return DEFAULT_ALIGNMENT  # only reached when collecting: go on with the default
    return value


class _RawTensor(NamedTuple):
    """A tensor info as the header states it, before sizes and placement are checked."""

    name: str
    ne: tuple[int, ...]
    type_id: int
    relative: int  # data offset relative to the start of the data section
    info_offset: int
    label: str  # how messages name it (see _label)


def _fast_tensor_info(cursor: Cursor, layout: _Layout,
                      ) -> tuple[str, tuple[int, ...], int, int] | None:
    """One tensor info (name, ne, type, relative offset) straight from the buffer when it is
    whole there and has nothing to report (UTF-8 name, n_dims <= 4, every ne a positive int64);
    None sends it the careful way."""
    found = _buffered_name(cursor, layout)
    if found is None:
        return None
    buffer, local, name_end = found
    size = len(buffer)
    n_dims = layout.u32(buffer, name_end)[0]
    end = name_end + 4 + 8 * n_dims + 12
    if n_dims > MAX_DIMS or end > size:
        return None
    ne = layout.shapes[n_dims](buffer, name_end + 4)
    if ne and not (min(ne) > 0 and max(ne) < 1 << 63):
        return None
    try:
        name = buffer[local + 8:name_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    type_id, relative = layout.type_and_offset(buffer, end - 12)
    cursor.position = cursor.buffer_start + end
    return name, ne, type_id, relative


def _read_tensor_infos(cursor: Cursor, n_tensors: int) -> list[_RawTensor]:
    infos = []
    names: set[str] = set()
    report = cursor.problems.report
    layout = _Layout(cursor.order)
    for index in range(n_tensors):
        offset = cursor.position
        fast = _fast_tensor_info(cursor, layout)
        if fast is not None:
            name, ne, type_id, relative = fast
            label = name if len(name) <= MAX_LABEL else f"tensor[{index}]"  # display_label
            if name in names:
                report(FormatError(f"duplicate tensor name {label!r}", offset=offset,
                                   field=label))
            names.add(name)
            infos.append(_RawTensor(name, ne, type_id, relative, offset, label))
            continue
        name = cursor.string(f"tensor[{index}].name")
        label = display_label(name, f"tensor[{index}]")
        if name in names:
            report(FormatError(f"duplicate tensor name {label!r}", offset=offset, field=label))
        names.add(name)
        dims_offset = cursor.position
        n_dims = cursor.unpack("I", f"{label} n_dims")
        if n_dims > MAX_DIMS:  # the rest of the entry cannot be trusted: never read on
            raise FormatError(f"n_dims {n_dims} exceeds {MAX_DIMS}", offset=dims_offset,
                              field=f"{label} n_dims")
        ne = tuple(cursor.unpack("Q", f"{label} ne[{axis}]") for axis in range(n_dims))
        for axis, dim in enumerate(ne):
            if dim == 0 or dim >= 1 << 63:
                report(FormatError(f"dimension ne[{axis}] = {dim} is not a positive int64",
                                   offset=dims_offset + 4 + 8 * axis, field=f"{label} ne[{axis}]"))
        type_id = cursor.unpack("I", f"{label} type")
        relative = cursor.unpack("Q", f"{label} offset")
        infos.append(_RawTensor(name, ne, type_id, relative, offset, label))
    return infos


def _known_type_bytes(info: _RawTensor, problems: Problems) -> int:
    ggml_type = GGML_TYPES[info.type_id]
    row_length = info.ne[0] if info.ne else 1
    if row_length % ggml_type.block_size:
        problems.report(FormatError(
            f"row length {row_length} is not a multiple of the {ggml_type.name} block size "
            f"{ggml_type.block_size}", offset=info.info_offset, field=info.label))
    count = 1
    for dim in info.ne:
        count *= dim
    if count >= 1 << 63:
        problems.report(FormatError(f"element count {count} overflows int64",
                                    offset=info.info_offset, field=info.label))
    return count // ggml_type.block_size * ggml_type.type_size


def _tensor_sizes(raw_infos: list[_RawTensor], data_offset: int, file_size: int,
                  problems: Problems) -> list[int]:
    """Bytes of each tensor: from its type and shape, or for an unknown type, from the gap to
    the next tensor's data (or the end of the file) so that an unknown type never crashes."""
    order = sorted(range(len(raw_infos)), key=lambda index: raw_infos[index].relative)
    gap_end = [file_size] * len(raw_infos)
    for position, index in enumerate(order[:-1]):
        gap_end[index] = data_offset + raw_infos[order[position + 1]].relative
    sizes = []
    for index, info in enumerate(raw_infos):
        if info.type_id in GGML_TYPES:
            sizes.append(_known_type_bytes(info, problems))
        else:
            sizes.append(max(0, gap_end[index] - data_offset - info.relative))
    return sizes


def _report_truncation(raw_infos: list[_RawTensor], sizes: list[int], data_offset: int,
                       file_size: int, problems: Problems) -> None:
    """One problem for all tensor data past the end of the file, however many tensors: a cut
    download leaves hundreds, and what matters is the one line with both sizes. It names the
    first tensor the cut falls in (its offset and field point at that tensor's entry)."""
    ends = [data_offset + info.relative + n_bytes for info, n_bytes in zip(raw_infos, sizes)]
    past = [index for index, end in enumerate(ends) if end > file_size]
    if not past:
        return
    first = min(past, key=lambda index: raw_infos[index].relative)
    info, start = raw_infos[first], data_offset + raw_infos[first].relative
    others = (f" (and {len(past) - 1} more of the {len(raw_infos)} tensors)" if len(past) > 1
              else "")
    problems.report(FormatError(
        f"truncated: {file_size:,} of {max(ends):,} bytes (the size the header implies): "
        f"tensor data [{start}, {ends[first]}){others} runs past the end of the file",
        offset=info.info_offset, field=f"{info.label} offset"))


def _place_tensors(raw_infos: list[_RawTensor], data_offset: int, alignment: int,
                   file_size: int, problems: Problems) -> tuple[TensorInfo, ...]:
    """Turn raw infos into TensorInfo: sizes, alignment, bounds and overlap checks."""
    sizes = _tensor_sizes(raw_infos, data_offset, file_size, problems)
    for info in raw_infos:
        if info.relative % alignment:
            problems.report(FormatError(
                f"data offset {info.relative} is not a multiple of the alignment {alignment}",
                offset=info.info_offset, field=f"{info.label} offset"))
    _report_truncation(raw_infos, sizes, data_offset, file_size, problems)
    previous_end, previous_label = 0, ""
    for index in sorted(range(len(raw_infos)), key=lambda index: raw_infos[index].relative):
        info = raw_infos[index]
        if info.relative < previous_end:
            problems.report(FormatError(f"tensor data overlaps {previous_label!r}",
                                        offset=info.info_offset, field=f"{info.label} offset"))
        if info.relative + sizes[index] >= previous_end:
            previous_end, previous_label = info.relative + sizes[index], info.label
    return tuple(
        TensorInfo(name=info.name, ne=info.ne, type_id=info.type_id,
                   offset=data_offset + info.relative, n_bytes=n_bytes,
                   info_offset=info.info_offset)
        for info, n_bytes in zip(raw_infos, sizes))


def read_gguf_source(source: ByteSource, problems: list[GGUFError] | None = None) -> GGUFFile:
    """Parse the header of an open byte source (the source stays open for ``read_array``).

    With ``problems`` (a list), recoverable problems are appended there, path attached, and
    parsing goes on; a problem that leaves the rest unreadable still raises. Without it, the
    first problem raises. One file only: ``open.read_header`` sends a split model's source to
    its own ``read_model``, which calls this once per shard.
    """
    collector = Problems(problems)
    cursor = Cursor(source, problems=collector)
    try:
        version, byte_order, n_tensors, n_kv = _read_header(cursor)
        metadata = _read_metadata(cursor, n_kv)
        alignment = _alignment(metadata, collector)
        raw_infos = _read_tensor_infos(cursor, n_tensors)
        data_offset = -(-cursor.position // alignment) * alignment
        if raw_infos and data_offset > source.size:
            raise TruncatedError(f"truncated: {source.size:,} of at least {data_offset:,} bytes "
                                 "(the size the header implies): file ends before the tensor "
                                 "data", offset=cursor.position, field="data section")
        tensors = _place_tensors(raw_infos, data_offset, alignment, source.size, collector)
    except GGUFError as error:
        raise error.with_path(source.name)
    finally:
        for problem in problems or ():
            problem.with_path(source.name)
    tensor_index: dict[str, TensorInfo] = {}
    for tensor in tensors:
        tensor_index.setdefault(tensor.name, tensor)  # the first of duplicate names wins
    return GGUFFile(path=source.name, version=version, byte_order=byte_order,
                    file_size=source.size, alignment=alignment, data_offset=data_offset,
                    metadata=metadata, tensors=tensors, tensor_index=tensor_index)


def iter_array(source: ByteSource, array: ArrayValue, byte_order: str = "little",
               ) -> Iterator[Any]:
    """Decode a metadata array's items on demand, in order, in bounded memory."""
    cursor = Cursor(source, "<" if byte_order == "little" else ">")
    cursor.position = cursor.buffer_start = array.offset
    if array.item_type == VALUE_TYPE_STRING:
        yield from cursor.strings(array.count, "array")
    elif array.item_type == VALUE_TYPE_ARRAY:
        raise FormatError("nested arrays are not decoded", offset=array.offset, field="array")
    else:
        fmt = VALUE_TYPES[array.item_type][1]
        for index in range(array.count):
            yield cursor.unpack(fmt, f"array[{index}]")


def read_array(source: ByteSource, array: ArrayValue, byte_order: str = "little",
               limit: int | None = None) -> list[Any]:
    """The first ``limit`` items (all when None) of a metadata array."""
    if array.items is not None:
        return list(array.items[:limit])
    result = []
    for item in iter_array(source, array, byte_order):
        if limit is not None and len(result) >= limit:
            break
        result.append(item)
    return result


def invalid_strings(source: ByteSource, array: ArrayValue, field: str,
                    byte_order: str = "little", start: int = 0) -> Iterator[FormatError]:
    """A FormatError for every item of a string array that is not valid UTF-8, in item order.

    The header reader only previews string arrays (a 262k-token vocabulary stays unread on the
    header-only path); ``validate`` calls this to look at every item. ``start`` is where the file
    holding the array begins in ``source`` (a shard of a split model; 0 otherwise): the array's
    offsets count inside that file, and so do the offsets in the errors. Each error points at the
    first bad byte and names the item (``field[12]``).
    """
    if array.item_type != VALUE_TYPE_STRING:
        return
    cursor = Cursor(source, "<" if byte_order == "little" else ">")
    cursor.position = cursor.buffer_start = start + array.offset
    for index, (offset, raw) in enumerate(cursor.raw_strings(array.count, field)):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield FormatError(f"invalid UTF-8 in string ({error.reason})",
                              offset=offset - start + 8 + error.start, field=f"{field}[{index}]")
