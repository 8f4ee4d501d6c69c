"""Each field of the GGUF header named and placed when the file ends in it or holds a value out
of range (issue 21: reader.py's mutants of ``_read_header`` and ``_read_array``).

Offsets follow the GGUF layout (docs/gguf.md of ggml): magic 0-4, version u32 4-8, tensor count
u64 8-16, metadata kv count u64 16-24, then each key (u64 length + bytes), its u32 value type,
and for an array its u32 item type and u64 count. Counts are unsigned 64-bit (gguf.md), so
2^64-1 is a count far past the file, never -1.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gguf_inspect.core.errors import FormatError, GGUFError, TruncatedError
from gguf_inspect.gguf.open import read_gguf

U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1
# one key "test.arr": an array of two uint32 (item type 4)
FULL = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 8) + b"test.arr"
        + struct.pack("<I", 9) + struct.pack("<IQ", 4, 2) + struct.pack("<II", 1, 2))


def _error(tmp_path: Path, data: bytes) -> GGUFError:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFError) as caught:
        read_gguf(path)
    return caught.value


@pytest.mark.parametrize(("cut", "offset", "field", "size"), [
    (2, 0, "magic", 4), (6, 4, "version", 4), (12, 8, "tensor count", 8),
    (20, 16, "metadata kv count", 8),
    (46, 44, "test.arr item type", 4), (50, 48, "test.arr count", 8),
])
def test_a_file_cut_inside_a_field_names_that_field(tmp_path: Path, cut: int, offset: int,
                                                    field: str, size: int) -> None:
    error = _error(tmp_path, FULL[:cut])
    assert isinstance(error, TruncatedError)
    assert (error.offset, error.field) == (offset, field)
    assert error.message == f"file ends before {size} byte(s) of {field}"


@pytest.mark.parametrize(("counts", "offset", "field", "what"), [
    ((U64_MAX, 0), 8, "tensor count", "tensor count"),
    ((0, U64_MAX), 16, "metadata kv count", "metadata count"),
])
def test_a_count_of_two_to_the_64_minus_one_is_refused_not_read_as_minus_one(
        tmp_path: Path, counts: tuple[int, int], offset: int, field: str, what: str) -> None:
    error = _error(tmp_path, b"GGUF" + struct.pack("<IQQ", 3, *counts))
    assert isinstance(error, FormatError) and (error.offset, error.field) == (offset, field)
    assert error.message == f"{what} {U64_MAX} exceeds what the 0 remaining byte(s) can hold"


def test_an_array_count_of_two_to_the_64_minus_one_is_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, FULL[:48] + struct.pack("<Q", U64_MAX))
    assert isinstance(error, TruncatedError) and error.offset == 48
    assert error.message == f"array count {U64_MAX} needs more than the 0 byte(s) left"


def test_an_array_item_type_is_unsigned(tmp_path: Path) -> None:
    error = _error(tmp_path, FULL[:44] + struct.pack("<IQ", U32_MAX, 2))
    assert (error.offset, error.field) == (44, "test.arr item type")
    assert error.message == f"unknown metadata value type {U32_MAX}"


def test_a_version_is_unsigned(tmp_path: Path) -> None:
    error = _error(tmp_path, b"GGUF" + struct.pack("<IQQ", U32_MAX, 0, 0))
    assert (error.offset, error.field) == (4, "version")
    assert error.message == f"unsupported GGUF version {U32_MAX} (supported: 2, 3)"


@pytest.mark.parametrize(("counts", "field", "what"), [
    ((2, 0), "tensor count", "tensor count"), ((0, 2), "metadata kv count", "metadata count")])
def test_a_small_count_that_the_bytes_left_cannot_hold_is_refused_at_once(
        tmp_path: Path, counts: tuple[int, int], field: str, what: str) -> None:
    """A KV entry is at least a u64 key length, a u32 type and a 1-byte value; a tensor info at
    least a u64 name length, u32 n_dims, u32 type and u64 offset: two of either need more than
    10 bytes, so the count is refused before anything is read."""
    error = _error(tmp_path, b"GGUF" + struct.pack("<IQQ", 3, *counts) + bytes(10))
    assert isinstance(error, FormatError) and error.field == field
    assert error.message == f"{what} 2 exceeds what the 10 remaining byte(s) can hold"


def _one_key(key: str, value_type: int, value: bytes) -> bytes:
    return (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key.encode()
            + struct.pack("<I", value_type) + value)


def test_a_bool_byte_is_unsigned_and_named(tmp_path: Path) -> None:
    """gguf.md: a bool is one byte, 0 or 1; 0xFF is 255, not -1. The value sits after the
    24-byte head, the 8+9-byte key and the 4-byte type: offset 45."""
    error = _error(tmp_path, _one_key("test.flag", 7, bytes([255])))
    assert isinstance(error, FormatError) and (error.offset, error.field) == (45, "test.flag")
    assert error.message == "bool value 255 is neither 0 nor 1"


@pytest.mark.parametrize(("value_type", "value", "size"), [(4, b"\x01\x02", 4), (7, b"", 1)])
def test_a_file_cut_inside_a_scalar_names_its_key(tmp_path: Path, value_type: int, value: bytes,
                                                  size: int) -> None:
    error = _error(tmp_path, _one_key("test.k", value_type, value))
    assert isinstance(error, TruncatedError) and (error.offset, error.field) == (42, "test.k")
    assert error.message == f"file ends before {size} byte(s) of test.k"


def _three_tensor_file(path: Path) -> list[tuple[int, int, int]]:
    """a, b, c: float32 tensors of 128, 256 and 64 bytes; returns gguf-py's (info offset, data
    start, data end) of each."""
    import gguf
    import numpy as np
    from tests.conftest import write_gguf
    writer = gguf.GGUFWriter(str(path), "llama")
    for name, count in (("a", 32), ("b", 64), ("c", 16)):
        writer.add_tensor(name, np.ones(count, dtype=np.float32))
    write_gguf(writer)
    return [(int(t.field.offset), int(t.data_offset), int(t.data_offset) + int(t.n_bytes))
            for t in gguf.GGUFReader(str(path)).tensors]


@pytest.mark.parametrize(("past", "suffix"), [(2, " (and 1 more of the 3 tensors)"), (1, "")])
def test_a_cut_file_names_the_first_tensor_past_its_end(tmp_path: Path, past: int,
                                                        suffix: str) -> None:
    """One problem for all the tensors the cut leaves short: the first of them (its data range
    and its info entry), how many more, and the size the header implies (gguf-py's offsets)."""
    full = tmp_path / "full.gguf"
    spans = _three_tensor_file(full)
    info_offset, start, end = spans[3 - past]
    cut = start + 10
    error = _error(tmp_path, full.read_bytes()[:cut])
    assert isinstance(error, FormatError) and error.offset == info_offset
    assert error.field == f"{'abc'[3 - past]} offset"
    assert error.message == (f"truncated: {cut:,} of {spans[-1][2]:,} bytes (the size the header "
                             f"implies): tensor data [{start}, {end}){suffix} runs past the end "
                             "of the file")


def test_the_first_tensor_past_the_end_is_the_first_in_the_file_not_in_the_header(
        tmp_path: Path) -> None:
    """Tensor infos may list data out of order (gguf.md: offsets are per tensor): x's data
    follows y's, so a cut inside y names y, the second entry of the header."""
    infos = b""
    info_offsets = []
    head = b"GGUF" + struct.pack("<IQQ", 3, 2, 0)
    for name, relative in ((b"x", 64), (b"y", 0)):  # 16 float32 each (type 0), 64 bytes
        info_offsets.append(len(head) + len(infos))
        infos += struct.pack("<Q", 1) + name + struct.pack("<IQIQ", 1, 16, 0, relative)
    header = head + infos
    data_offset = (len(header) + 31) // 32 * 32  # general.alignment defaults to 32
    cut = data_offset + 10
    error = _error(tmp_path, (header + bytes(data_offset - len(header) + 128))[:cut])
    assert (error.offset, error.field) == (info_offsets[1], "y offset")
    assert f"tensor data [{data_offset}, {data_offset + 64}) (and 1 more of the 2" in error.message


def _one_tensor_header() -> tuple[bytes, int]:
    """One float32 tensor "x" of 16 items at relative offset 0; the header and data_offset."""
    header = (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 1) + b"x"
              + struct.pack("<IQIQ", 1, 16, 0, 0))
    return header, (len(header) + 31) // 32 * 32


def test_a_file_cut_in_the_padding_before_the_data_is_refused_there(tmp_path: Path) -> None:
    header, data_offset = _one_tensor_header()
    error = _error(tmp_path, header + bytes(3))
    assert isinstance(error, TruncatedError) and error.field == "data section"
    assert error.offset == len(header) and str(tmp_path / "bad.gguf") == error.path
    assert error.message.startswith(f"truncated: {len(header) + 3:,} of at least "
                                    f"{data_offset:,} bytes (the size the header implies)")


def test_a_file_cut_exactly_where_the_data_starts_names_the_tensor(tmp_path: Path) -> None:
    """The data section starts inside the file (empty): the problem is the tensor's data."""
    header, data_offset = _one_tensor_header()
    error = _error(tmp_path, header + bytes(data_offset - len(header)))
    assert error.field == "x offset"
    assert error.message.startswith(f"truncated: {data_offset:,} of {data_offset + 64:,} bytes")


def _string_array_file(path: Path) -> Path:
    """One key "test.s": an array of strings ["ok", b"\\xff!"]: the bad byte is the first of the
    second item, at 24 + 8+6 (key) + 4 (type) + 4+8 (item type, count) + 8+2 (item 0) + 8."""
    items = struct.pack("<Q", 2) + b"ok" + struct.pack("<Q", 2) + b"\xff!"
    path.write_bytes(_one_key("test.s", 9, struct.pack("<IQ", 8, 2) + items))
    return path


@pytest.mark.parametrize("shift", [0, 100])
def test_invalid_strings_offsets_count_inside_the_file_that_holds_the_array(
        tmp_path: Path, shift: int) -> None:
    """``start`` is where the file begins in the source (a split model's shard)."""
    from gguf_inspect.gguf.reader import invalid_strings
    from gguf_inspect.gguf.source import LocalFileSource
    plain = _string_array_file(tmp_path / "plain.gguf")
    array = read_gguf(plain).metadata["test.s"].value
    shifted = tmp_path / "shifted.bin"
    shifted.write_bytes(bytes(shift) + plain.read_bytes())
    source = LocalFileSource(str(shifted))
    try:
        (error,) = invalid_strings(source, array, "test.s", start=shift)
    finally:
        source.close()
    assert (error.offset, error.field) == (24 + 14 + 4 + 12 + 10 + 8, "test.s[1]")


def test_iter_array_reads_little_endian_by_default_and_refuses_nested_arrays(
        tmp_path: Path) -> None:
    from gguf_inspect.core.model import ArrayValue
    from gguf_inspect.gguf.reader import iter_array
    from gguf_inspect.gguf.source import LocalFileSource
    path = tmp_path / "arr.gguf"
    path.write_bytes(FULL)
    array = read_gguf(path).metadata["test.arr"].value
    source = LocalFileSource(str(path))
    try:
        assert list(iter_array(source, array)) == [1, 2]
        nested = ArrayValue(item_type=9, count=1, offset=56, end=64)
        with pytest.raises(FormatError) as caught:
            list(iter_array(source, nested))
    finally:
        source.close()
    assert (caught.value.message, caught.value.offset, caught.value.field) == (
        "nested arrays are not decoded", 56, "array")


def test_an_array_of_arrays_is_refused_at_its_value_type(tmp_path: Path) -> None:
    """gguf_init_from_file_impl (ggml/src/gguf.cpp) takes one array level; the refusal points
    at the value type (24 + 8+9 for the key = 41)."""
    nested = struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 1) + struct.pack("<I", 7)
    error = _error(tmp_path, _one_key("test.nest", 9, nested))
    assert (error.message, error.offset, error.field) == (
        "array of arrays: llama.cpp refuses nested arrays", 41, "test.nest")


def test_a_tensor_with_more_than_four_dimensions_is_refused_at_n_dims(tmp_path: Path) -> None:
    """GGML_MAX_DIMS is 4 (ggml.h); n_dims follows the 8+1-byte name: offset 24 + 9 = 33."""
    data = (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 1) + b"x"
            + struct.pack("<I", 5) + bytes(60))
    error = _error(tmp_path, data)
    assert (error.message, error.offset, error.field) == ("n_dims 5 exceeds 4", 33, "x n_dims")


def test_a_file_cut_inside_n_dims_names_it(tmp_path: Path) -> None:
    """A 20-byte name, so that the bytes left pass the tensor-count bound (24 per tensor)."""
    name = b"t" * 20
    data = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 20) + name + b"\x01\x00"
    error = _error(tmp_path, data)
    assert isinstance(error, TruncatedError)
    assert (error.offset, error.field) == (24 + 8 + 20, f"{name.decode()} n_dims")


def test_an_unknown_type_is_sized_by_the_gap_to_the_next_tensor_data(tmp_path: Path) -> None:
    """Type 99 is no ggml type: its bytes are those up to the next tensor's data in the file (in
    data order, not header order), or up to the end of the file; z and w share an offset, so z
    has 0 bytes."""
    head = b"GGUF" + struct.pack("<IQQ", 3, 4, 0)
    infos = b"".join(struct.pack("<Q", 1) + name + struct.pack("<IQIQ", 1, 8, 99, relative)
                     for name, relative in ((b"x", 64), (b"y", 0), (b"z", 32), (b"w", 32)))
    header = head + infos
    data_offset = (len(header) + 31) // 32 * 32
    path = tmp_path / "unknown.gguf"
    path.write_bytes(header + bytes(data_offset - len(header) + 100))
    sizes = {tensor.name: tensor.n_bytes for tensor in read_gguf(path).tensors}
    assert sizes == {"x": 100 - 64, "y": 32, "z": 0, "w": 64 - 32}


def _one_tensor(ne: tuple[int, ...], type_id: int) -> bytes:
    header = (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 1) + b"x"
              + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
              + struct.pack("<IQ", type_id, 0))
    return header + bytes((len(header) + 31) // 32 * 32 - len(header) + 200)


@pytest.mark.parametrize(("ne", "type_id", "message"), [
    # q8_0 (type 8): blocks of 32 values (ggml.c type_traits); a 0-dim tensor's row is 1 value
    ((16,), 8, "row length 16 is not a multiple of the q8_0 block size 32"),
    ((), 8, "row length 1 is not a multiple of the q8_0 block size 32"),
    # ggml's ne are int64: 2^31 * 2^32 = 2^63 elements is one too many
    ((1 << 31, 1 << 32), 0, f"element count {1 << 63} overflows int64"),
])
def test_a_known_type_shape_llama_cpp_refuses_is_refused_at_its_entry(
        tmp_path: Path, ne: tuple[int, ...], type_id: int, message: str) -> None:
    error = _error(tmp_path, _one_tensor(ne, type_id))
    assert (error.message, error.offset, error.field) == (message, 24, "x")


def test_a_known_type_size_is_whole_blocks_in_bytes(tmp_path: Path) -> None:
    """64 q8_0 values are 2 blocks of 34 bytes (ggml_row_size)."""
    path = tmp_path / "ok.gguf"
    path.write_bytes(_one_tensor((64,), 8))
    (tensor,) = read_gguf(path).tensors
    assert tensor.n_bytes == 68 and type(tensor.n_bytes) is int
    ok = tmp_path / "edge.gguf"
    ok.write_bytes(_one_tensor((1 << 31, (1 << 32) - 1), 0)[:200])  # 2^63 - 2^31: in range
    assert "overflows" not in _error(tmp_path, ok.read_bytes()).message


# ---- issue 21, reader.py's surviving mutants: each bound at its edge, each field named --------

def _read(data: bytes, path: str | None = None, problems: list | None = None) -> object:
    """``data`` read through the reader (``path``: a READ_PATHS key, or None for the default)."""
    from gguf_inspect.gguf.reader import read_gguf_source
    from tests.conftest import READ_PATHS, BytesSource
    return read_gguf_source(BytesSource(data, READ_PATHS[path or "fast"], name="mem.gguf"),
                            problems)


def _read_error(data: bytes, path: str | None = None) -> GGUFError:
    with pytest.raises(GGUFError) as caught:
        _read(data, path)
    return caught.value


def _nested(depth: int) -> bytes:
    """A value of ``depth`` arrays one inside the other (count 1 each), the innermost an empty
    uint32 array: 12 bytes a level (u32 item type, u64 count)."""
    return struct.pack("<IQ", 9, 1) * (depth - 1) + struct.pack("<IQ", 4, 0)


def test_arrays_nested_eight_deep_are_read_then_refused_as_nested() -> None:
    """MAX_ARRAY_DEPTH is 8: eight levels are read to their end (the file's), and only the
    llama.cpp rule refuses them, at the value type (24 + 8+9 for the key = 41)."""
    problems: list = []
    data = _one_key("test.nest", 9, _nested(8))
    array = _read(data, problems=problems).metadata["test.nest"].value
    assert (array.item_type, array.count, array.end) == (9, 1, len(data))
    assert [(p.message, p.offset, p.field) for p in problems] == [
        ("array of arrays: llama.cpp refuses nested arrays", 41, "test.nest")]


def test_arrays_nested_nine_deep_are_refused_at_the_ninth_level() -> None:
    """The ninth level's item type follows the value type (41) by 4 + 8 * 12 bytes."""
    error = _read_error(_one_key("test.nest", 9, _nested(9)))
    assert (error.message, error.offset, error.field) == (
        "arrays nested more than 8 deep", 41 + 4 + 8 * 12, "test.nest" + "[0]" * 8)


def test_an_array_of_empty_strings_that_ends_the_file_is_read() -> None:
    """An empty string is its 8-byte length alone (gguf.md): three of them fill 24 bytes."""
    data = _one_key("test.s", 9, struct.pack("<IQ", 8, 3) + bytes(24))
    array = _read(data).metadata["test.s"].value
    assert (array.count, array.preview, array.end) == (3, ("", "", ""), len(data))


@pytest.mark.parametrize(("count", "message"), [
    (2, "array of arrays: llama.cpp refuses nested arrays"),
    (3, "array count 3 needs more than the 24 byte(s) left"),
], ids=["fits", "too-many"])
def test_an_array_of_arrays_count_is_checked_at_twelve_bytes_an_item(count: int,
                                                                     message: str) -> None:
    """An empty inner array is its u32 item type and u64 count: 12 bytes. Two fill the 24 bytes
    left and are read (then refused as nested, at the value type, 41); three cannot fit and
    are refused at the count (41 + 4 + 4)."""
    data = _one_key("test.nest", 9, struct.pack("<IQ", 9, count) + struct.pack("<IQ", 4, 0) * 2)
    error = _read_error(data)
    assert (error.message, error.offset) == (message, 41 if count == 2 else 49)


def test_the_smallest_gguf_file_is_read(tmp_path: Path) -> None:
    """24 bytes: magic, version 3, no tensors, no keys; gguf-py reads it too."""
    import gguf
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    read = _read(data)
    assert (read.version, read.metadata, read.tensors) == (3, {}, ())
    (tmp_path / "min.gguf").write_bytes(data)
    oracle = gguf.GGUFReader(tmp_path / "min.gguf")
    assert len(oracle.tensors) == 0
    assert not [name for name in oracle.fields if not name.startswith("GGUF.")]


def test_a_smallest_tensor_info_that_ends_the_file_passes_the_count_bound() -> None:
    """An empty name, n_dims 0, type and offset: 24 bytes, exactly what is left. The count is
    accepted; the file then ends before its data section (at 48, aligned up to 64)."""
    data = (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<QI", 0, 0)
            + struct.pack("<IQ", 0, 0))
    error = _read_error(data)
    assert isinstance(error, TruncatedError) and (error.offset, error.field) == (48, "data section")
    assert error.message.startswith("truncated: 48 of at least 64 bytes")


def test_a_version_whose_low_half_is_zero_is_read_big_endian(tmp_path: Path) -> None:
    """Bytes 00 00 00 80: little-endian 2^31, low 16 bits zero, so the file is big-endian
    (gguf-py's rule) and its version is 128, which gguf-py names too."""
    import gguf
    data = b"GGUF" + bytes([0, 0, 0, 0x80]) + bytes(16)
    error = _read_error(data)
    assert (error.message, error.offset, error.field) == (
        "unsupported GGUF version 128 (supported: 2, 3)", 4, "version")
    (tmp_path / "v128.gguf").write_bytes(data)
    with pytest.raises(ValueError, match="version 128 "):
        gguf.GGUFReader(tmp_path / "v128.gguf")


@pytest.mark.parametrize(("value_type", "tail", "message"), [
    (None, b"\x08\x00", "file ends before 4 byte(s) of test.k value type"),
    (U32_MAX, bytes(8), f"unknown metadata value type {U32_MAX}"),
], ids=["cut", "u32-max"])
@pytest.mark.parametrize("path", ["fast", "careful"])
def test_a_value_type_is_unsigned_and_named(path: str, value_type: int | None, tail: bytes,
                                            message: str) -> None:
    """The value type follows the 24-byte head and the 8+6-byte key: offset 38."""
    head = _one_key("test.k", 0, b"")[:-4]
    data = head + (tail if value_type is None else struct.pack("<I", value_type) + tail)
    error = _read_error(data, path)
    assert (error.message, error.offset, error.field) == (message, 38, "test.k value type")


@pytest.mark.parametrize(("counts", "field"), [((0, 1), "kv[0].key"), ((1, 0), "tensor[0].name")],
                         ids=["key", "tensor-name"])
@pytest.mark.parametrize("path", ["fast", "careful"])
def test_a_name_length_of_two_to_the_63_is_a_length_past_the_end(
        path: str, counts: tuple[int, int], field: str) -> None:
    """A key or tensor name length is a u64 (gguf.md): 2^63 is far past the 32 bytes left."""
    data = b"GGUF" + struct.pack("<IQQ", 3, *counts) + struct.pack("<Q", 1 << 63) + bytes(32)
    error = _read_error(data, path)
    assert isinstance(error, TruncatedError) and (error.offset, error.field) == (24, field)
    assert error.message == f"string length {1 << 63} exceeds the 32 byte(s) left"


def _entries(*entries: tuple[str, int]) -> bytes:
    """A file of uint8 keys (8-byte length, key, u32 type 0, 1-byte value)."""
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(entries))
    for key, value in entries:
        data += struct.pack("<Q", len(key)) + key.encode() + struct.pack("<IB", 0, value)
    return data


@pytest.mark.parametrize("path", ["fast", "careful"])
def test_a_duplicate_huge_key_is_named_by_its_position(path: str) -> None:
    """The second 200-byte key starts after the first entry: 24 + 8+200+4+1 = 237."""
    error = _read_error(_entries(("k" * 200, 1), ("k" * 200, 2)), path)
    assert (error.message, error.offset, error.field) == (
        "duplicate metadata key 'kv[1]'", 237, "kv[1]")


def test_collected_problems_let_the_rest_be_read_and_name_the_file() -> None:
    """With a problems list, a duplicate key is listed (path attached) and reading goes on:
    the first "a" wins and "b" after it is read. The second "a" starts at 24 + 14 = 38."""
    problems: list = []
    read = _read(_entries(("a", 1), ("a", 2), ("b", 3)), problems=problems)
    assert {key: entry.value for key, entry in read.metadata.items()} == {"a": 1, "b": 3}
    assert [(p.message, p.offset, p.field, p.path) for p in problems] == [
        ("duplicate metadata key 'a'", 38, "a", "mem.gguf")]


@pytest.mark.parametrize(("count", "decoded"), [(1024, True), (1025, False)])
def test_numeric_arrays_up_to_1024_items_are_decoded_at_once(count: int, decoded: bool) -> None:
    """EAGER_ARRAY_LIMIT: an array of at most 1024 numbers (per-layer values) is decoded with
    the header; a longer one keeps its first 8 items as a preview and is read on demand."""
    values = list(range(count))
    data = _one_key("test.n", 9, struct.pack(f"<IQ{count}I", 4, count, *values))
    array = _read(data).metadata["test.n"].value
    assert array.items == (tuple(values) if decoded else None)
    assert array.preview == tuple(values[:8])
