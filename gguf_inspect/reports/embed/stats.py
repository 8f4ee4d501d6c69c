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


# Per-column odd multipliers of the row hash (fixed, so runs agree; any odd values will do).
_HASH_SEED = 0x9E3779B97F4A7C15


class _DuplicateFinder:
    """Groups identical rows: a 64-bit hash of each row's float32 bits computed in numpy over
    the whole chunk, then, after the pass, every row whose hash an earlier row shares compared
    by value with the first row of that hash (only those rows are read again)."""

    def __init__(self, matrix: EmbeddingMatrix) -> None:
        self.matrix = matrix
        self.keys = np.empty(matrix.n_rows, dtype=np.uint64)
        multipliers = np.random.default_rng(_HASH_SEED).integers(
            0, 2**63, size=matrix.n_cols, dtype=np.uint64)
        self.multipliers = multipliers * np.uint64(2) + np.uint64(1)
        self.groups: dict[int, list[int]] = {}

    def add_chunk(self, first_row: int, rows: np.ndarray) -> None:
        bits = (rows + np.float32(0.0)).view(np.uint32)  # -0.0 + 0.0 == +0.0: equal values
        with np.errstate(over="ignore"):  # the sum wraps modulo 2**64, as a hash should
            self.keys[first_row:first_row + len(rows)] = (
                bits.astype(np.uint64) * self.multipliers).sum(axis=1, dtype=np.uint64)

    def _row(self, token_id: int) -> np.ndarray:
        return self.matrix.row(token_id) + np.float32(0.0)

    def finish(self) -> None:
        """Confirm the hash matches by value: each row against the first row of its hash."""
        _, first_ids, inverse, counts = np.unique(self.keys, return_index=True,
                                                  return_inverse=True, return_counts=True)
        for token_id in np.flatnonzero(counts[inverse] > 1):
            earlier = int(first_ids[inverse[token_id]])
            if earlier == token_id:
                continue
            if np.array_equal(self._representative(earlier), self._row(int(token_id))):
                self.groups.setdefault(earlier, [earlier]).append(int(token_id))

    def _representative(self, token_id: int) -> np.ndarray:
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != token_id:
            self._cached = (token_id, self._row(token_id))
        return self._cached[1]

    def result(self, vocabulary: Vocabulary) -> tuple[int, int, tuple[DuplicateGroup, ...]]:
        largest = sorted(self.groups.values(), key=lambda ids: (-len(ids), ids[0]))
        examples = tuple(
            DuplicateGroup(len(ids),
                           tuple(TokenRef(i, vocabulary.token(i)) for i in ids[:EXAMPLES]))
            for ids in largest[:EXAMPLES])
        duplicate_rows = sum(len(ids) - 1 for ids in self.groups.values())
        return duplicate_rows, len(self.groups), examples


class StatsPass:
    """The statistics of one matrix, fed chunk by chunk (so a pass over two files, --vs, can
    feed both and the drift at once)."""

    def __init__(self, model: EmbeddingModel) -> None:
        self.model = model
        self.norms = np.empty(model.matrix.n_rows, dtype=np.float64)
        self.duplicates = _DuplicateFinder(model.matrix)

    def add(self, first_row: int, rows: np.ndarray) -> None:
        wide = rows.astype(np.float64)
        self.norms[first_row:first_row + len(rows)] = np.sqrt(np.einsum("ij,ij->i", wide, wide))
        self.duplicates.add_chunk(first_row, rows)

    def result(self) -> Exploration:
        model, matrix, norms = self.model, self.model.matrix, self.norms
        self.duplicates.finish()
        finite = np.isfinite(norms)
        finite_norms = norms[finite]
        if finite_norms.size == 0:
            raise QueryError(f"{matrix.model.location}: no row of {TOKEN_EMBD} has finite values")
        counts, edges = np.histogram(finite_norms, bins=HISTOGRAM_BINS)
        median = float(np.median(finite_norms))
        threshold = NEAR_ZERO_FRACTION * median
        near_zero_ids = np.flatnonzero(finite & (norms <= threshold))
        duplicate_rows, duplicate_groups, duplicate_examples = self.duplicates.result(
            model.vocabulary)
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


def embedding_stats(model: EmbeddingModel, progress: Progress | None = None) -> Exploration:
    """Norm histogram, near-zero rows and duplicate rows over the whole vocabulary, in one pass."""
    stats = StatsPass(model)
    for first_row, rows in model.matrix.chunks(progress, "reading rows"):
        stats.add(first_row, rows)
    return stats.result()
