"""The header reader's fast paths (KV entries and tensor infos decoded straight from the
read-ahead buffer) read exactly what the careful field-by-field path reads: every fixture read
with a tiny read-ahead (so that most entries straddle a refill and go the careful way) equals
the same file read with the default one, and both equal gguf-py's reading."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from gguf_inspect.gguf.reader import read_gguf_source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FILES = sorted(FIXTURES.glob("*.gguf")) + sorted((FIXTURES / "zoo").glob("*.gguf"))


class FileSource:
    def __init__(self, path: Path, read_ahead: tuple[int, int] | None = None) -> None:
        self.data = path.read_bytes()
        self.size, self.name = len(self.data), str(path)
        if read_ahead is not None:
            self.read_ahead = read_ahead

    def read_at(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_fast_and_careful_paths_agree(path: Path) -> None:
    fast = read_gguf_source(FileSource(path))
    careful = read_gguf_source(FileSource(path, read_ahead=(24, 24)))
    assert fast.metadata == careful.metadata
    assert fast.tensors == careful.tensors and fast.data_offset == careful.data_offset
    oracle = gguf.GGUFReader(path)
    assert [t.name for t in fast.tensors] == [t.name for t in oracle.tensors]
    assert [t.ne for t in fast.tensors] == [tuple(int(n) for n in t.shape) for t in oracle.tensors]
    scalars = {name: f.contents() for name, f in oracle.fields.items()
               if not name.startswith("GGUF.") and f.types[0] != gguf.GGUFValueType.ARRAY}
    for name, value in scalars.items():
        assert fast.metadata[name].value == pytest.approx(value), name
