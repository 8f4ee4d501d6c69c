"""The reader's bounds, each at its edge (issue 21): expected offsets from the GGUF layout
(docs/gguf.md of ggml: magic, version, counts, then key = u64 length + bytes, u32 value type,
value) and tensor ends from gguf-py's own offsets."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import gguf
import pytest

from gguf_inspect.core.errors import FormatError, TruncatedError
from gguf_inspect.gguf.open import read_gguf
from tests.conftest import fixture_path

TYPE_UINT32, TYPE_BOOL, TYPE_ARRAY = 4, 7, 9


def header_with(key: str, value_type: int, value: bytes) -> tuple[bytes, int]:
    """A GGUF v3 file with no tensors and one key; returns it and the value's offset."""
    prefix = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
    prefix += struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", value_type)
    return prefix + value, len(prefix)


@pytest.mark.parametrize("raw", [0, 1])
def test_bool_zero_and_one_are_read(tmp_path: Path, raw: int) -> None:
    data, _ = header_with("test.flag", TYPE_BOOL, bytes([raw]))
    (tmp_path / "ok.gguf").write_bytes(data)
    assert read_gguf(tmp_path / "ok.gguf").metadata["test.flag"].value is bool(raw)


def test_bool_two_is_a_format_error_at_its_byte(tmp_path: Path) -> None:
    # gguf.md: a bool is one byte, 0 or 1 ("any other value is invalid")
    data, at = header_with("test.flag", TYPE_BOOL, bytes([2]))
    (tmp_path / "bad.gguf").write_bytes(data)
    with pytest.raises(FormatError) as caught:
        read_gguf(tmp_path / "bad.gguf")
    assert "bool value 2" in caught.value.message and caught.value.offset == at


def test_array_count_is_checked_against_its_item_size(tmp_path: Path) -> None:
    """100 uint32 items need 400 bytes; 100 bytes are left: refused at the count, before
    reading, even though the count alone is no larger than the bytes left."""
    count = 100
    data, at = header_with("test.numbers", TYPE_ARRAY,
                           struct.pack("<IQ", TYPE_UINT32, count) + bytes(count))
    (tmp_path / "short.gguf").write_bytes(data)
    with pytest.raises(TruncatedError) as caught:
        read_gguf(tmp_path / "short.gguf")
    assert caught.value.message.startswith(f"array count {count} needs more than the {count} ")
    assert caught.value.offset == at + 4  # the count follows the u32 item type


def _last_tensor_end(path: Path) -> int:
    reader = gguf.GGUFReader(path)
    return max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)


def test_a_tensor_ending_exactly_at_the_end_of_the_file_parses(tmp_path: Path) -> None:
    source = fixture_path("tiny-llama-untied-q8_0.gguf")
    cut = tmp_path / "exact.gguf"
    cut.write_bytes(source.read_bytes()[:_last_tensor_end(source)])
    assert len(read_gguf(cut).tensors) == len(gguf.GGUFReader(source).tensors)


def test_a_tensor_one_byte_past_the_end_is_refused(tmp_path: Path) -> None:
    source = fixture_path("tiny-llama-untied-q8_0.gguf")
    cut = tmp_path / "short.gguf"
    cut.write_bytes(source.read_bytes()[:_last_tensor_end(source) - 1])
    with pytest.raises(FormatError) as caught:
        read_gguf(cut)
    assert "runs past the end of the file" in caught.value.message


# ---- issue 21, reader.py's surviving mutants: alignment, tensor infos on both read paths -------

@pytest.mark.parametrize("alignment", [1, 64])
def test_a_power_of_two_uint32_alignment_places_the_data(tmp_path: Path, alignment: int) -> None:
    """gguf.cpp (gguf_init_from_file_impl) takes general.alignment when it is a uint32 power of
    two, 1 included; the data section and each tensor are placed as gguf-py places them."""
    import numpy as np
    from tests.conftest import write_gguf
    path = tmp_path / "aligned.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_custom_alignment(alignment)
    writer.add_tensor("a", np.ones(3, dtype=np.float32))
    writer.add_tensor("b", np.ones(5, dtype=np.float32))
    write_gguf(writer)
    read, oracle = read_gguf(path), gguf.GGUFReader(path)
    assert (read.alignment, read.data_offset) == (alignment, oracle.data_offset)
    assert [t.offset for t in read.tensors] == [int(t.data_offset) for t in oracle.tensors]


@pytest.mark.parametrize(("value_type", "value", "shown"), [
    (10, struct.pack("<Q", 32), "32"),  # a uint64 32: a power of two, but not a uint32
    (8, struct.pack("<Q", 2) + b"32", "a string"),
    (6, struct.pack("<f", 32.0), "a float32"),
], ids=["uint64", "string", "float32"])
def test_an_alignment_of_another_type_is_refused(tmp_path: Path, value_type: int, value: bytes,
                                                 shown: str) -> None:
    """gguf.cpp refuses a general.alignment whose type is not GGUF_TYPE_UINT32 ("alignment key
    has wrong type"); the refusal points at the entry (24, right after the head)."""
    data, _ = header_with("general.alignment", value_type, value)
    (tmp_path / "bad.gguf").write_bytes(data)
    with pytest.raises(FormatError) as caught:
        read_gguf(tmp_path / "bad.gguf")
    assert (caught.value.message, caught.value.offset, caught.value.field) == (
        f"general.alignment must be a power-of-two uint32, got {shown}", 24, "general.alignment")


def _tensors(*infos: tuple[bytes, tuple[int, ...], int, int], data: int = 256) -> bytes:
    """A file of tensor infos (name, ne, type, relative offset), padded to the default alignment
    32, then ``data`` bytes of tensor data."""
    header = b"GGUF" + struct.pack("<IQQ", 3, len(infos), 0)
    for name, ne, type_id, relative in infos:
        header += (struct.pack("<Q", len(name)) + name + struct.pack("<I", len(ne))
                   + struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", type_id, relative))
    return header + bytes(-len(header) % 32 + data)


def _error(data: bytes, path: str) -> FormatError:
    from gguf_inspect.gguf.reader import read_gguf_source
    from tests.conftest import READ_PATHS, BytesSource
    with pytest.raises(FormatError) as caught:
        read_gguf_source(BytesSource(data, READ_PATHS[path]))
    return caught.value


@pytest.mark.parametrize(("length", "label"), [(128, "n" * 128), (129, "tensor[0]")],
                         ids=["128", "129"])
@pytest.mark.parametrize("path", ["fast", "careful"])
def test_a_tensor_name_longer_than_128_is_named_by_position(path: str, length: int,
                                                            label: str) -> None:
    """MAX_LABEL is 128: a longer name is named ``tensor[0]``. A data offset of 4 is no multiple
    of the default alignment 32; the problem points at the info entry (24)."""
    error = _error(_tensors((b"n" * length, (16,), 0, 4)), path)
    assert (error.message, error.offset, error.field) == (
        "data offset 4 is not a multiple of the alignment 32", 24, f"{label} offset")


@pytest.mark.parametrize("path", ["fast", "careful"])
def test_a_duplicate_tensor_name_is_refused_at_its_second_entry(path: str) -> None:
    """Each info of "x" with one dimension is 8+1 + 4 + 8 + 4+8 = 33 bytes: the second at 57."""
    error = _error(_tensors((b"x", (16,), 0, 0), (b"x", (16,), 0, 64)), path)
    assert (error.message, error.offset, error.field) == ("duplicate tensor name 'x'", 57, "x")


@pytest.mark.parametrize("n_dims", [5, (1 << 32) - 1])
@pytest.mark.parametrize("path", ["fast", "careful"])
def test_n_dims_is_unsigned_and_bounded_by_four(path: str, n_dims: int) -> None:
    """GGML_MAX_DIMS is 4 (gguf.cpp refuses n_dims > GGML_MAX_DIMS); 2^32-1 is no -1. The
    bytes after it look like four dimensions of 1, a type and an offset. n_dims is at 33."""
    data = (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 1) + b"x"
            + struct.pack("<I4QIQ", n_dims, 1, 1, 1, 1, 0, 0) + bytes(64))
    error = _error(data, path)
    assert (error.message, error.offset, error.field) == (f"n_dims {n_dims} exceeds 4", 33,
                                                          "x n_dims")


@pytest.mark.parametrize("path", ["fast", "careful"])
def test_a_tensor_type_is_unsigned(path: str) -> None:
    """Type 2^32-1 is no ggml type (and no -1): it is kept as read and sized by the gap to the
    end of the file (the 256 data bytes)."""
    from gguf_inspect.gguf.reader import read_gguf_source
    from tests.conftest import READ_PATHS, BytesSource
    data = _tensors((b"x", (16,), (1 << 32) - 1, 0))
    (tensor,) = read_gguf_source(BytesSource(data, READ_PATHS[path])).tensors
    assert (tensor.type_id, tensor.n_bytes) == ((1 << 32) - 1, 256)


@pytest.mark.parametrize("path", ["fast", "careful"])
def test_a_data_offset_is_unsigned(path: str) -> None:
    """A relative offset of 2^64-32 (a multiple of 32) puts 16 float32 far past the end."""
    data = _tensors((b"x", (16,), 0, (1 << 64) - 32))
    start = 64 + (1 << 64) - 32  # data_offset: the 57-byte header aligned up to 64
    error = _error(data, path)
    assert (error.offset, error.field) == (24, "x offset")
    assert error.message == (f"truncated: {len(data):,} of {start + 64:,} bytes (the size the "
                             f"header implies): tensor data [{start}, {start + 64}) runs past "
                             "the end of the file")


@pytest.mark.parametrize(("cut", "offset", "field", "size"), [
    (49, 45, "x ne[1]", 8), (55, 53, "x type", 4), (61, 57, "x offset", 8)],
    ids=["ne1", "type", "offset"])
@pytest.mark.parametrize("path", ["fast", "careful"])
def test_a_file_cut_inside_a_tensor_info_names_the_field(path: str, cut: int, offset: int,
                                                         field: str, size: int) -> None:
    """"x" with two dimensions: name length 24, name 32, n_dims 33, ne[0] 37, ne[1] 45, type 53,
    offset 57."""
    error = _error(_tensors((b"x", (16, 2), 0, 0))[:cut], path)
    assert isinstance(error, TruncatedError) and (error.offset, error.field) == (offset, field)
    assert error.message == f"file ends before {size} byte(s) of {field}"


def test_an_overlap_names_the_nearest_tensor_among_those_reaching_furthest() -> None:
    """a holds [0, 128), b [64, 128), c [96, 128) (float32, relative offsets): b overlaps a;
    c overlaps both, and is named after b, the later of the two that end at 128. Infos of 33
    bytes each: b at 57, c at 90."""
    from gguf_inspect.gguf.reader import read_gguf_source
    from tests.conftest import BytesSource
    problems: list = []
    data = _tensors((b"a", (32,), 0, 0), (b"b", (16,), 0, 64), (b"c", (8,), 0, 96))
    read_gguf_source(BytesSource(data), problems)
    assert [(p.message, p.offset, p.field) for p in problems] == [
        ("tensor data overlaps 'a'", 57, "b offset"), ("tensor data overlaps 'b'", 90, "c offset")]


# ---- a file cut after it was opened (or after its header was read): the source's size is stale,
# the bytes are gone; the array whose bytes are missing is still named ------------------------

def _cut_after_opening(path: Path, length: int) -> FormatError:
    from gguf_inspect.gguf.reader import read_gguf_source
    from gguf_inspect.gguf.source import LocalFileSource
    with LocalFileSource(path) as source:
        os.truncate(path, length)
        with pytest.raises(FormatError) as caught:
            read_gguf_source(source)
    return caught.value


@pytest.mark.parametrize("count", [2, 2000])  # decoded at once, and previewed then skipped
def test_a_numeric_array_cut_after_opening_names_the_array(tmp_path: Path, count: int) -> None:
    """Its items start after the uint32 value type, item type and count: offset + 4 + 12. Cut
    2 bytes into them, the read of the two items (or of the 8-item preview) fails there."""
    data, at = header_with("test.arr", TYPE_ARRAY, struct.pack("<IQ", TYPE_UINT32, count)
                           + bytes(4 * count))
    path = tmp_path / "cut.gguf"
    path.write_bytes(data)
    error = _cut_after_opening(path, at + 12 + 2)
    assert isinstance(error, TruncatedError) and (error.offset, error.field) == (at + 12,
                                                                                 "test.arr")
    assert error.message == f"file ends before {4 * min(count, 8)} byte(s) of test.arr"


def test_a_lazy_array_read_after_its_file_was_cut_names_the_item(tmp_path: Path) -> None:
    from gguf_inspect.gguf.reader import iter_array
    from gguf_inspect.gguf.source import LocalFileSource
    data, _ = header_with("test.arr", TYPE_ARRAY, struct.pack("<IQ", TYPE_UINT32, 2000)
                          + struct.pack("<2000I", *range(2000)))
    path = tmp_path / "lazy.gguf"
    path.write_bytes(data)
    array = read_gguf(path).metadata["test.arr"].value
    assert array.items is None
    os.truncate(path, array.offset + 4 * 5 + 2)
    items: list = []
    with LocalFileSource(path) as source, pytest.raises(TruncatedError) as caught:
        items.extend(iter_array(source, array))
    assert items == [0, 1, 2, 3, 4]
    assert (caught.value.offset, caught.value.field) == (array.offset + 20, "array[5]")


def test_invalid_strings_on_a_file_cut_after_its_header_names_the_item(tmp_path: Path) -> None:
    """Items "ok", "ab", "cd" (8-byte length + 2 bytes each); the cut falls inside "cd"."""
    from gguf_inspect.gguf.reader import invalid_strings
    from gguf_inspect.gguf.source import LocalFileSource
    items = b"".join(struct.pack("<Q", 2) + text for text in (b"ok", b"ab", b"cd"))
    data, _ = header_with("test.s", TYPE_ARRAY, struct.pack("<IQ", 8, 3) + items)
    path = tmp_path / "strings.gguf"
    path.write_bytes(data)
    array = read_gguf(path).metadata["test.s"].value
    os.truncate(path, array.offset + 20 + 9)
    with LocalFileSource(path) as source, pytest.raises(TruncatedError) as caught:
        list(invalid_strings(source, array, "test.s"))
    assert (caught.value.message, caught.value.offset, caught.value.field) == (
        "string length 2 exceeds the 1 byte(s) left", array.offset + 20, "test.s[2]")
