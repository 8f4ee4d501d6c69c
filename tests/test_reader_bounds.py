"""The reader's bounds, each at its edge (issue 21): expected offsets from the GGUF layout
(docs/gguf.md of ggml: magic, version, counts, then key = u64 length + bytes, u32 value type,
value) and tensor ends from gguf-py's own offsets."""

from __future__ import annotations

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
