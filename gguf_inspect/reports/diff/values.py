"""The values layer of a diff: dequantize both sides of each same-shaped tensor with the shared
chunked dequantizer (all rows, or a seeded sample) and measure RMSE, max abs error, per-row
cosine similarity and relative error, holding one row chunk per side at a time.

``gguf.dequant`` (which imports gguf-py) is imported inside the functions that dequantize, so a
diff without ``--values`` never loads it.
"""

from __future__ import annotations

import math
import zlib
from typing import Iterator

import numpy as np

from gguf_inspect.core.model import GGUFFile, TensorInfo
from gguf_inspect.gguf.open import Model
from gguf_inspect.llamacpp.names import role_sort_key, tensor_role
from gguf_inspect.reports.diff.report import (
    VALUE_SCOPES,
    DiffOptions,
    ProgressCallback,
    ProgressCounter,
    ValueDiff,
    ValueSkip,
    ValuesProgress,
)
from gguf_inspect.reports.diff.structure import tensor_names

ACCUMULATE_BLOCK_ELEMENTS = 1 << 16  # values per side in one step of the error sums
EMBEDDING_ROLES = frozenset({"token_embd", "output"})


def value_targets(a: GGUFFile, b: GGUFFile, scope: str,
                  ) -> tuple[list[tuple[TensorInfo, TensorInfo]], list[ValueSkip]]:
    """The tensor pairs to compare for ``scope`` ("embeddings" or "all"), and those skipped."""
    from gguf_inspect.gguf.dequant import can_dequantize  # imports gguf: values only

    names = tensor_names(a, b)
    if scope == "embeddings":
        names = [name for name in names if tensor_role(name) in EMBEDDING_ROLES]
    pairs, skipped = [], []
    for name in sorted(names, key=role_sort_key):
        tensor_a, tensor_b = a.tensor(name), b.tensor(name)
        if tensor_a is None or tensor_b is None:
            skipped.append(ValueSkip(name, "only in A" if tensor_b is None else "only in B"))
        elif tensor_a.ne != tensor_b.ne:
            skipped.append(ValueSkip(name, f"shapes differ: A {list(tensor_a.ne)}, "
                                           f"B {list(tensor_b.ne)}"))
        elif not (can_dequantize(tensor_a) and can_dequantize(tensor_b)):
            unreadable = tensor_a if not can_dequantize(tensor_a) else tensor_b
            skipped.append(ValueSkip(name, f"cannot dequantize type {unreadable.type_name}"))
        else:
            pairs.append((tensor_a, tensor_b))
    return pairs, skipped


def sample_rows(name: str, total_rows: int, sample: int | None, seed: int) -> np.ndarray:
    """The rows to compare: all of them, or ``sample`` distinct rows drawn with a seeded RNG.

    The generator is seeded with the seed and the tensor name, so a tensor's rows do not depend
    on which other tensors are compared.
    """
    if sample is None or sample >= total_rows:
        return np.arange(total_rows, dtype=np.int64)
    generator = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    return np.sort(generator.choice(total_rows, size=sample, replace=False))


def _row_chunks(rows: np.ndarray, rows_per_chunk: int) -> Iterator[np.ndarray]:
    """Split the rows to compare into chunks of at most ``rows_per_chunk`` rows."""
    for start in range(0, rows.size, rows_per_chunk):
        yield rows[start:start + rows_per_chunk]


class _ErrorAccumulator:
    """Running sums of the error metrics, fed one chunk of rows of both sides at a time."""

    def __init__(self) -> None:
        self.rows = 0
        self.elements = 0
        self.squared_error = 0.0
        self.squared_reference = 0.0
        self.max_abs = 0.0
        self.cos_sum = 0.0
        self.cos_min = 1.0

    def add(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        # A few rows at a time: float64 temporaries of 512 KiB stay in cache and are reused by
        # the allocator, where chunk-sized ones (tens of MiB) cost a page fault every 4 KiB and
        # took most of the time of a sampled diff.
        rows_per_block = max(1, ACCUMULATE_BLOCK_ELEMENTS // max(1, reference.shape[1]))
        for start in range(0, reference.shape[0], rows_per_block):
            self._add_block(reference[start:start + rows_per_block],
                            candidate[start:start + rows_per_block])

    def _add_block(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        # Per-row sums of squares and products first: the totals, the norms of the cosines and
        # the zero-row test all come from them, four float64 passes in all.
        ref = reference.astype(np.float64)
        cand = candidate.astype(np.float64)
        error = cand - ref
        self.rows += ref.shape[0]
        self.elements += ref.size
        self.squared_error += float(np.einsum("ij,ij->", error, error))
        ref_squares = np.einsum("ij,ij->i", ref, ref)
        self.squared_reference += float(ref_squares.sum())
        if error.size:
            self.max_abs = _nan_max(self.max_abs, max(float(error.max()), -float(error.min())))
        cosines = _cosines_from_sums(np.einsum("ij,ij->i", ref, cand), ref_squares,
                                     np.einsum("ij,ij->i", cand, cand))
        self.cos_sum += float(np.sum(cosines))
        if cosines.size:
            self.cos_min = -_nan_max(-self.cos_min, -float(np.min(cosines)))

    def result(self, name: str, total_rows: int) -> ValueDiff:
        reference_norm = self.squared_reference ** 0.5
        return ValueDiff(
            name=name, role=tensor_role(name), rows=self.rows, total_rows=total_rows,
            rmse=(self.squared_error / self.elements) ** 0.5 if self.elements else 0.0,
            max_abs=self.max_abs,
            cos_mean=self.cos_sum / self.rows if self.rows else 1.0,
            cos_min=self.cos_min,
            rel_error=self.squared_error ** 0.5 / reference_norm if reference_norm else None)


def _nan_max(running: float, new: float) -> float:
    """max() that keeps a NaN once seen (Python's max silently drops it when it comes second)."""
    return new if math.isnan(new) or new > running else running


def _cosines_from_sums(dots: np.ndarray, squares_a: np.ndarray, squares_b: np.ndarray,
                       ) -> np.ndarray:
    """Row cosines from per-row dot products and sums of squares (see ``row_cosines``). A row's
    sum of squares is 0 exactly when the row is all zero: float32 values squared in float64
    cannot underflow."""
    norms = np.sqrt(squares_a) * np.sqrt(squares_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosines = np.where(norms == 0, 0.0, dots / norms)
    return np.where((squares_a == 0) & (squares_b == 0), 1.0, cosines)


def row_cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row pair; two zero rows count as 1, one zero row as 0, and a
    row holding NaN gives NaN (damage must show, not average away)."""
    return _cosines_from_sums(np.einsum("ij,ij->i", reference, candidate),
                              np.einsum("ij,ij->i", reference, reference),
                              np.einsum("ij,ij->i", candidate, candidate))


def identical_values(name: str, rows: int, total_rows: int) -> ValueDiff:
    """The result for a tensor whose raw bytes are equal on both sides (same type and shape):
    every value is equal, so the error is zero without dequantizing a row."""
    return ValueDiff(name=name, role=tensor_role(name), rows=rows, total_rows=total_rows,
                     rmse=0.0, max_abs=0.0, cos_mean=1.0, cos_min=1.0, rel_error=0.0,
                     identical=True)


def value_diff(a: Model, b: Model, options: DiffOptions,
               progress: ProgressCallback | None = None,
               identical: frozenset[str] = frozenset(),
               ) -> tuple[tuple[ValueDiff, ...], tuple[ValueSkip, ...]]:
    """Compare dequantized values of same-shaped tensors, holding one row chunk per side.

    Tensors named in ``identical`` (their raw bytes hashed equal) are reported as identical
    without being read."""
    from gguf_inspect.gguf import dequant  # imports gguf: values only

    if options.values not in VALUE_SCOPES:
        raise ValueError(f"values scope must be one of {VALUE_SCOPES}, got {options.values!r}")
    pairs, skipped = value_targets(a.file, b.file, options.values)
    plans = []
    for tensor_a, _ in pairs:
        total_rows = dequant.tensor_row_count(tensor_a)
        plans.append((total_rows, sample_rows(tensor_a.name, total_rows, options.sample,
                                              options.seed)))
    elements_total = sum(rows.size * t.row_length for (t, _), (_, rows) in zip(pairs, plans)
                         if t.name not in identical)
    counter = ProgressCounter(ValuesProgress, elements_total, len(pairs), progress)
    results = []
    for index, ((tensor_a, tensor_b), (total_rows, rows)) in enumerate(zip(pairs, plans), 1):
        if tensor_a.name in identical:
            results.append(identical_values(tensor_a.name, rows.size, total_rows))
            continue
        counter.start(tensor_a.name, index)
        # Both sides' float32 rows together stay within chunk_bytes.
        rows_per_chunk = max(1, options.chunk_bytes // (2 * 4 * tensor_a.row_length))
        accumulator = _ErrorAccumulator()
        for chunk in _row_chunks(rows, rows_per_chunk):
            reference = dequant.read_row_set(a.source, tensor_a, chunk, a.file.byte_order)
            candidate = dequant.read_row_set(b.source, tensor_b, chunk, b.file.byte_order)
            accumulator.add(reference, candidate)
            elements = reference.size
            del reference, candidate  # release this chunk before reading the next
            counter(elements)
        results.append(accumulator.result(tensor_a.name, total_rows))
    return tuple(results), tuple(skipped)
