"""Tests of the shared dequantizer: rows read alone, in ranges, and as scattered row sets.

Oracle: gguf-py's GGUFReader (its own parser) and gguf.quants.dequantize over each whole tensor;
row groupings worked out by hand from row sizes in bytes.
"""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from gguf_inspect.gguf import dequant
from gguf_inspect.gguf.reader import read_gguf_source
from gguf_inspect.gguf.source import LocalFileSource
from tests.conftest import fixture_path

# f16 and f32 (untied f16), q8_0, q4_K and q6_K (untied q4_k_m): every storage kind.
FIXTURE_NAMES = ("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q8_0.gguf",
                 "tiny-llama-untied-q4_k_m.gguf")


class CountingSource(LocalFileSource):
    """A local file that counts its reads."""

    def __init__(self, path: object) -> None:
        super().__init__(path)  # type: ignore[arg-type]
        self.reads: list[tuple[int, int]] = []

    def read_at(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return super().read_at(offset, length)


def oracle_rows(name: str) -> dict[str, np.ndarray]:
    """Every tensor of a fixture dequantized whole by gguf-py, as (rows, ne[0])."""
    return {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1, int(t.shape[0]))
            for t in gguf.GGUFReader(fixture_path(name)).tensors}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize(("max_gap_bytes", "max_read_bytes"), [
    (0, 1), (0, 1 << 30), (1 << 30, 1 << 30), (2000, 5000)])
def test_row_sets_equal_gguf_py_on_the_whole_tensor(name: str, max_gap_bytes: int,
                                                    max_read_bytes: int) -> None:
    expected = oracle_rows(name)
    rng = np.random.default_rng(3)
    with LocalFileSource(fixture_path(name)) as source:
        model = read_gguf_source(source)
        for tensor in model.tensors:
            total = expected[tensor.name].shape[0]
            for rows in (np.arange(total), np.sort(rng.choice(total, size=min(7, total),
                                                                replace=False))):
                got = dequant.read_row_set(source, tensor, rows, "little", max_gap_bytes,
                                           max_read_bytes)
                assert got.dtype == np.float32
                np.testing.assert_array_equal(got, expected[tensor.name][rows])


def test_scattered_rows_are_read_together_and_dequantized_alike() -> None:
    """The q8_0 embedding is 384 rows of 272 bytes (104,448 B): 50 scattered rows, one read."""
    name = "tiny-llama-untied-q8_0.gguf"
    rows = np.sort(np.random.default_rng(0).choice(384, size=50, replace=False))
    source = CountingSource(fixture_path(name))
    try:
        tensor = read_gguf_source(source).tensor("token_embd.weight")
        assert tensor is not None and dequant.row_byte_size(tensor) == 256 // 32 * 34
        source.reads.clear()
        got = dequant.read_row_set(source, tensor, rows)
        first, last = int(rows[0]), int(rows[-1])
        assert source.reads == [(tensor.offset + first * 272, (last - first + 1) * 272)]
        alone = np.concatenate([dequant.read_rows(source, tensor, int(row), 1) for row in rows])
    finally:
        source.close()
    np.testing.assert_array_equal(got, alone)
    np.testing.assert_array_equal(got, oracle_rows(name)["token_embd.weight"][rows])


def test_read_windows_split_on_gaps_and_size() -> None:
    rows = [0, 1, 2, 10, 11, 40]
    # Rows of 100 bytes; gaps: 7 rows (700 B) between 2 and 10, 28 rows between 11 and 40.
    assert dequant.read_windows(rows, 100, max_gap_bytes=700, max_read_bytes=10_000) == [
        (0, 5), (5, 6)]
    assert dequant.read_windows(rows, 100, max_gap_bytes=699, max_read_bytes=10_000) == [
        (0, 3), (3, 5), (5, 6)]
    assert dequant.read_windows(rows, 100, max_gap_bytes=10_000, max_read_bytes=10_000) == [
        (0, 6)]  # rows 0..40: 4,100 B
    # At most 3 rows' bytes per read: 0-2, then 10-11, then 40; one row always fits.
    assert dequant.read_windows(rows, 100, max_gap_bytes=10_000, max_read_bytes=300) == [
        (0, 3), (3, 5), (5, 6)]
    assert dequant.read_windows([5], 100, 0, 1) == [(0, 1)]
    assert dequant.read_windows([], 100) == []


def test_rows_must_be_sorted_and_distinct() -> None:
    with LocalFileSource(fixture_path("tiny-llama-untied-q8_0.gguf")) as source:
        tensor = read_gguf_source(source).tensor("token_embd.weight")
        assert tensor is not None
        for rows in ([3, 1], [2, 2]):
            with pytest.raises(ValueError):
                dequant.read_row_set(source, tensor, np.array(rows))
