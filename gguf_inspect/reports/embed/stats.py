"""Whole-matrix statistics of the token embedding (--stats), in one pass over its rows: the norm
distribution, near-zero rows and duplicate rows (both often mark unused tokens)."""

from __future__ import annotations

import numpy as np

from gguf_inspect.core.constants import TOKEN_EMBD
from gguf_inspect.reports.embed.matrix import EmbeddingMatrix, EmbeddingModel, Progress
from gguf_inspect.reports.embed.report import (
    DuplicateGroup,
    EmbeddingStats,
    Exploration,
    HistogramBin,
)
from gguf_inspect.reports.embed.words import QueryError, TokenRef, Vocabulary

HISTOGRAM_BINS = 10
NEAR_ZERO_FRACTION = 0.01  # a row is near-zero when its norm is at most 1% of the median norm
EXAMPLES = 8  # example tokens listed per --stats finding


class _DuplicateFinder:
    """Groups identical rows by hashing their float32 bytes, confirming every hash match by value
    (Python's bytes hash is fast and keeps only one int per distinct row in memory)."""

    def __init__(self, matrix: EmbeddingMatrix) -> None:
        self.matrix = matrix
        self.first_with_hash: dict[int, int] = {}
        self.groups: dict[int, list[int]] = {}
        self.representatives: dict[int, np.ndarray] = {}

    def add_chunk(self, first_row: int, rows: np.ndarray) -> None:
        rows = rows + np.float32(0.0)  # -0.0 + 0.0 == +0.0: equal values, equal bytes
        for offset, row in enumerate(rows):
            token_id = first_row + offset
            key = hash(row.tobytes())
            earlier = self.first_with_hash.setdefault(key, token_id)
            if earlier == token_id:
                continue
            representative = self.representatives.get(earlier)
            if representative is None:
                representative = self.matrix.row(earlier) + np.float32(0.0)
                self.representatives[earlier] = representative
            if np.array_equal(representative, row):
                self.groups.setdefault(earlier, [earlier]).append(token_id)

    def result(self, vocabulary: Vocabulary) -> tuple[int, int, tuple[DuplicateGroup, ...]]:
        largest = sorted(self.groups.values(), key=lambda ids: (-len(ids), ids[0]))
        examples = tuple(
            DuplicateGroup(len(ids),
                           tuple(TokenRef(i, vocabulary.token(i)) for i in ids[:EXAMPLES]))
            for ids in largest[:EXAMPLES])
        duplicate_rows = sum(len(ids) - 1 for ids in self.groups.values())
        return duplicate_rows, len(self.groups), examples


def embedding_stats(model: EmbeddingModel, progress: Progress | None = None) -> Exploration:
    """Norm histogram, near-zero rows and duplicate rows over the whole vocabulary, in one pass."""
    matrix = model.matrix
    norms = np.empty(matrix.n_rows, dtype=np.float64)
    duplicates = _DuplicateFinder(matrix)
    for first_row, rows in matrix.chunks(progress, "reading rows"):
        norms[first_row:first_row + len(rows)] = np.sqrt(
            np.einsum("ij,ij->i", rows.astype(np.float64), rows.astype(np.float64)))
        duplicates.add_chunk(first_row, rows)
    finite = np.isfinite(norms)
    finite_norms = norms[finite]
    if finite_norms.size == 0:
        raise QueryError(f"{matrix.model.location}: no row of {TOKEN_EMBD} has finite values")
    counts, edges = np.histogram(finite_norms, bins=HISTOGRAM_BINS)
    median = float(np.median(finite_norms))
    threshold = NEAR_ZERO_FRACTION * median
    near_zero_ids = np.flatnonzero(finite & (norms <= threshold))
    duplicate_rows, duplicate_groups, duplicate_examples = duplicates.result(model.vocabulary)
    stats = EmbeddingStats(
        norm_min=float(finite_norms.min()), norm_max=float(finite_norms.max()),
        norm_mean=float(finite_norms.mean()), norm_median=median,
        histogram=tuple(HistogramBin(float(edges[i]), float(edges[i + 1]), int(counts[i]))
                        for i in range(len(counts))),
        near_zero_threshold=threshold, near_zero_count=int(near_zero_ids.size),
        near_zero_examples=tuple(TokenRef(int(i), model.vocabulary.token(int(i)))
                                 for i in near_zero_ids[:EXAMPLES]),
        duplicate_rows=duplicate_rows, duplicate_groups=duplicate_groups,
        duplicate_examples=duplicate_examples, non_finite_rows=int((~finite).sum()))
    return Exploration(matrix.ref(), (), stats=stats)
