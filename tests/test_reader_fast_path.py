"""The header reader's fast paths (KV entries and tensor infos decoded straight from the
read-ahead buffer) read exactly what the careful field-by-field path reads: every fixture read
with a tiny read-ahead (so that most entries straddle a refill and go the careful way) equals
the same file read with the default one, and both equal gguf-py's reading."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Callable

import gguf
import pytest

from gguf_inspect.gguf.reader import read_gguf_source
from tests.conftest import BytesSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FILES = sorted(FIXTURES.glob("*.gguf")) + sorted((FIXTURES / "zoo").glob("*.gguf"))


def file_source(path: Path, read_ahead: tuple[int, int] | None = None) -> BytesSource:
    """A fixture's bytes in memory, named by its path."""
    return BytesSource(path.read_bytes(), read_ahead, name=str(path))


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_fast_and_careful_paths_agree(path: Path) -> None:
    fast = read_gguf_source(file_source(path))
    careful = read_gguf_source(file_source(path, read_ahead=(24, 24)))
    assert fast.metadata == careful.metadata
    assert fast.tensors == careful.tensors and fast.data_offset == careful.data_offset
    oracle = gguf.GGUFReader(path)
    assert [t.name for t in fast.tensors] == [t.name for t in oracle.tensors]
    assert [t.ne for t in fast.tensors] == [tuple(int(n) for n in t.shape) for t in oracle.tensors]
    scalars = {name: f.contents() for name, f in oracle.fields.items()
               if not name.startswith("GGUF.") and f.types[0] != gguf.GGUFValueType.ARRAY}
    for name, value in scalars.items():
        assert fast.metadata[name].value == pytest.approx(value), name



def _mixed_header(path: Path) -> None:
    """Keys and tensors of every size the fast paths take or decline: a 40-byte key (so that a
    refill lands inside the metadata), numbers, strings, a bool, a short array, and tensors of
    1 to 4 dimensions with long and short names."""
    import numpy as np
    from tests.conftest import write_gguf
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint8("k" * 40, 7)
    for index in range(24):
        writer.add_uint8(f"u8.{index}", index)
        writer.add_uint32(f"u32.{index}", 1000 + index)
        writer.add_string(f"s.{index}", "x" * (index % 5))
        writer.add_float32(f"f.{index}", index / 4)
    writer.add_bool("b", True)
    writer.add_array("a", [1, 2, 3])
    for index in range(12):
        shape = (2, 3, 4, 5)[:1 + index % 4]
        writer.add_tensor(f"t.{index}" + "n" * (index * 3), np.ones(shape, dtype=np.float32))
    write_gguf(writer)


def _long_first_key(path: Path) -> None:
    """A 40-byte first key, then 16-byte entries (3-byte key, uint8 value). Read with a 64-byte
    first read-ahead, the key's bytes [32, 72) cross its end: the refill starts the buffer at
    byte 32 and holds 128 bytes, so the entries after it lie in the buffer at their position
    less 32, and the position plus 32 would be another whole entry (the fifth after)."""
    entries = [("k" * 40, 7)] + [(f"a{index:02}", index) for index in range(12)]
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(entries))
    for key, value in entries:
        data += struct.pack("<Q", len(key)) + key.encode() + struct.pack("<IB", 0, value)
    path.write_bytes(data)


@pytest.mark.parametrize("first", list(range(16, 200, 3)))  # 64 among them
@pytest.mark.parametrize("build", [_mixed_header, _long_first_key])
def test_every_read_ahead_reads_the_same_header(tmp_path: Path, build: Callable[[Path], None],
                                                first: int) -> None:
    """Read-aheads of every small size move where the buffer starts and ends relative to each
    entry (a refill inside a key, a length, a value, a shape), so each fast-path bound is met
    at its edge somewhere; every reading must equal gguf-py's."""
    path = tmp_path / "mixed.gguf"
    build(path)
    read = read_gguf_source(file_source(path, read_ahead=(first, 1 << 20)))
    oracle = gguf.GGUFReader(path)
    fields = {name: f for name, f in oracle.fields.items() if not name.startswith("GGUF.")}
    assert list(read.metadata) == list(fields)
    for name, field in fields.items():
        assert read.metadata[name].value_type == int(field.types[0]), name
        assert read.metadata[name].offset == field.offset, name
        if field.types[0] != gguf.GGUFValueType.ARRAY:
            assert read.metadata[name].value == pytest.approx(field.contents()), name
    assert [(t.name, t.ne, t.type_id, t.offset, t.info_offset) for t in read.tensors] == [
        (t.name, tuple(int(n) for n in t.shape), int(t.tensor_type), int(t.data_offset),
         int(t.field.offset)) for t in oracle.tensors]
