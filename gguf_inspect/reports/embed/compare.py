"""The same rows in two files (--vs): whether they can be compared, each involved token's cosine
across the files, the words that resolve differently, and with --stats the per-row drift over
the whole vocabulary."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gguf_inspect.reports.embed.matrix import EmbeddingModel, Progress
from gguf_inspect.reports.embed.queries import cosine
from gguf_inspect.reports.embed.report import CrossFileCosine, Exploration, RowDrift
from gguf_inspect.reports.embed.stats import EXAMPLES, StatsPass
from gguf_inspect.reports.embed.words import QueryError

UNMOVED_TOLERANCE = 1e-12  # cosines this close to 1 are rounding, not movement


def why_not_comparable(primary: EmbeddingModel, other: EmbeddingModel) -> str | None:
    """Why rows of the two files cannot be compared id by id (None when they can)."""
    if primary.matrix.n_cols != other.matrix.n_cols:
        return (f"the embeddings differ in width ({primary.matrix.n_cols} vs "
                f"{other.matrix.n_cols}), so rows cannot be compared across the files")
    return None


def cross_file_cosines(primary: EmbeddingModel, other: EmbeddingModel,
                       ids: Sequence[int]) -> tuple[CrossFileCosine, ...]:
    """For each id: cosine of its row in the two files; None where the token differs, the id
    is missing from one file, or a row is all zero."""
    comparable = why_not_comparable(primary, other) is None
    result = []
    for token_id in dict.fromkeys(ids):  # unique, first-seen order
        token = primary.vocabulary.token(token_id)
        same_token = token == other.vocabulary.token(token_id)
        in_range = token_id < primary.matrix.n_rows and token_id < other.matrix.n_rows
        value = None
        if comparable and same_token and in_range:
            value = cosine(primary.matrix.row(token_id), other.matrix.row(token_id))
        result.append(CrossFileCosine(token_id, token, value))
    return tuple(result)


class DriftPass:
    """Per-row cosine between the two files, fed chunk pairs (same width and chunk size, so
    both files' chunks cover the same rows)."""

    def __init__(self, primary: EmbeddingModel, other: EmbeddingModel) -> None:
        self.primary = primary
        self.rows_to_compare = min(primary.matrix.n_rows, other.matrix.n_rows)
        self.cosines = np.full(self.rows_to_compare, np.nan)

    def add(self, first_row: int, rows: np.ndarray, other_rows: np.ndarray) -> None:
        count = min(len(rows), len(other_rows), self.rows_to_compare - first_row)
        if count <= 0:
            return
        left = rows[:count].astype(np.float64)
        right = other_rows[:count].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", left, left) * np.einsum("ij,ij->i", right, right))
        with np.errstate(divide="ignore", invalid="ignore"):
            self.cosines[first_row:first_row + count] = np.einsum("ij,ij->i", left, right) / norms

    def result(self) -> RowDrift:
        cosines = self.cosines
        measured = np.isfinite(cosines)
        values = cosines[measured]
        if values.size == 0:
            raise QueryError("no row has a direction in both files (all rows zero)")
        # A row moved when its cosine is below 1 by more than float64 rounding of the
        # cosine of two identical rows (a few ulps); identical files list none.
        ids = np.flatnonzero(measured & (cosines < 1 - UNMOVED_TOLERANCE))
        order = ids[np.lexsort((ids, cosines[ids]))][:EXAMPLES]
        moved = tuple(CrossFileCosine(int(i), self.primary.vocabulary.token(int(i)),
                                      float(cosines[i])) for i in order)
        return RowDrift(mean=float(values.mean()), minimum=float(values.min()),
                        percentile_1=float(np.percentile(values, 1)), moved_most=moved)


def row_drift(primary: EmbeddingModel, other: EmbeddingModel,
              progress: Progress | None = None) -> RowDrift:
    """Per-row cosine between the two files over the whole vocabulary (same shape required)."""
    drift = DriftPass(primary, other)
    pairs = zip(primary.matrix.chunks(progress, "comparing rows"), other.matrix.chunks(None, ""))
    for (first_row, rows), (_, other_rows) in pairs:
        if first_row >= drift.rows_to_compare:
            break
        drift.add(first_row, rows, other_rows)
    return drift.result()


def stats_and_drift(primary: EmbeddingModel, other: EmbeddingModel,
                    progress: Progress | None = None,
                    ) -> tuple[Exploration, Exploration, RowDrift]:
    """--stats --vs in one pass over both files: each row chunk of each file is read and
    dequantized once and feeds its file's statistics and the drift between the two."""
    first, second = StatsPass(primary), StatsPass(other)
    drift = DriftPass(primary, other)
    chunks_b = other.matrix.chunks(None, "")
    for first_row, rows in primary.matrix.chunks(progress, "reading both files"):
        first.add(first_row, rows)
        pair = next(chunks_b, None)
        if pair is not None:
            second.add(*pair)
            drift.add(first_row, rows, pair[1])
    for pair in chunks_b:  # B has more rows than A
        second.add(*pair)
    return first.result(), second.result(), drift.result()


def involved_ids(primary: Exploration, other: Exploration) -> list[int]:
    """The ids either file's answer names (inputs, then results), to compare across files."""
    ids = [item.id for item in primary.inputs]
    ids += [item.id for item in other.inputs]
    ids += [item.id for item in primary.results] + [item.id for item in other.results]
    return ids


def resolution_notes(primary: Exploration, other: Exploration) -> list[str]:
    """A note for each query word that resolves to a different id in the two files."""
    notes = []
    for mine, theirs in zip(primary.inputs, other.inputs):
        if mine.id != theirs.id:
            notes.append(f"{mine.word!r} is id {mine.id} in the first file but id {theirs.id} "
                         "in the second: the vocabularies differ")
    return notes
