"""The one-file queries on the token embedding: nearest tokens and analogies (A - B + C), ranked
by cosine similarity chunk by chunk over the whole matrix, and one row described (--token)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gguf_inspect.reports.embed.matrix import EmbeddingMatrix, EmbeddingModel, Progress
from gguf_inspect.reports.embed.report import Exploration, Neighbour, TokenRow
from gguf_inspect.reports.embed.words import QueryError

FIRST_VALUES = 8  # values of a row shown by --token


def cosine(first: np.ndarray, second: np.ndarray) -> float | None:
    """Cosine similarity in float64; None when either vector is all zero (no direction)."""
    first64, second64 = first.astype(np.float64), second.astype(np.float64)
    norms = float(np.linalg.norm(first64)) * float(np.linalg.norm(second64))
    if norms == 0.0 or not np.isfinite(norms):
        return None
    return float(first64 @ second64) / norms


def chunk_cosines(rows: np.ndarray, unit_target: np.ndarray) -> np.ndarray:
    """Cosine of every row with a unit-length target, in the rows' float32 (a fast first pass);
    -inf for zero or non-finite rows, which have no direction."""
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    dots = rows @ unit_target
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = dots / norms
    scores[~np.isfinite(scores)] = -np.inf
    return scores


def exact_cosines(rows: np.ndarray, unit_target: np.ndarray) -> np.ndarray:
    """Cosine of a few rows in float64, row by row with numpy's own sums (not BLAS), so equal
    rows score exactly equal wherever they sit in the matrix."""
    rows64 = rows.astype(np.float64)
    return (rows64 * unit_target).sum(axis=1) / np.sqrt((rows64 * rows64).sum(axis=1))


def rank_by_cosine(matrix: EmbeddingMatrix, target: np.ndarray, top_k: int,
                   exclude: Sequence[int] = (), progress: Progress | None = None,
                   ) -> list[tuple[int, float]]:
    """The ``top_k`` rows most cosine-similar to ``target``, best first (ties: lower id first).

    Each chunk is scored in float32; its best ``2 * top_k`` rows are rescored in float64 while
    still in memory, and only those exact scores compete across chunks.
    """
    target64 = target.astype(np.float64)
    # Non-finite values first: a NaN row's norm is NaN, which is not "all zero".
    non_finite = int(np.count_nonzero(~np.isfinite(target64)))
    if non_finite:
        raise QueryError(f"the query vector has {non_finite} non-finite value(s) (NaN or "
                         "infinity), so no direction to compare with")
    length = float(np.linalg.norm(target64))
    if length == 0.0:
        raise QueryError("the query vector is all zero, so no direction to compare with")
    unit64 = target64 / length
    unit32 = unit64.astype(np.float32)
    excluded = np.asarray(sorted(set(exclude)), dtype=np.int64)
    best_ids = np.empty(0, dtype=np.int64)
    best_scores = np.empty(0, dtype=np.float64)
    for first_row, rows in matrix.chunks(progress, "scoring rows"):
        scores = chunk_cosines(rows, unit32)
        inside = excluded[(excluded >= first_row) & (excluded < first_row + len(rows))]
        scores[inside - first_row] = -np.inf
        pool = 2 * top_k
        keep = (np.argpartition(-scores, pool - 1)[:pool] if len(scores) > pool
                else np.arange(len(scores)))
        keep = keep[np.isfinite(scores[keep])]
        best_ids = np.concatenate([best_ids, keep + first_row])
        best_scores = np.concatenate([best_scores, exact_cosines(rows[keep], unit64)])
        order = np.lexsort((best_ids, -best_scores))[:top_k]
        best_ids, best_scores = best_ids[order], best_scores[order]
    return [(int(i), float(s)) for i, s in zip(best_ids, best_scores)]


def _neighbours(model: EmbeddingModel, ranked: list[tuple[int, float]]) -> tuple[Neighbour, ...]:
    return tuple(Neighbour(token_id, model.vocabulary.token(token_id), score)
                 for token_id, score in ranked)


def nearest(model: EmbeddingModel, word: str, top_k: int,
            progress: Progress | None = None) -> Exploration:
    """The rows closest to the word's row (the word itself excluded)."""
    resolved = model.resolve(word)
    target = model.matrix.row(resolved.id)
    ranked = rank_by_cosine(model.matrix, target, top_k, resolved.excluded, progress)
    return Exploration(model.matrix.ref(), (resolved,), _neighbours(model, ranked))


def analogy(model: EmbeddingModel, words: Sequence[str], top_k: int,
            progress: Progress | None = None) -> Exploration:
    """The rows closest to A - B + C, the three inputs excluded (as in word2vec's evaluation)."""
    inputs = tuple(model.resolve(word) for word in words)
    first, second, third = (model.matrix.row(item.id).astype(np.float64) for item in inputs)
    target = first - second + third
    ranked = rank_by_cosine(model.matrix, target, top_k, [i for item in inputs for i in item.excluded], progress)
    return Exploration(model.matrix.ref(), inputs, _neighbours(model, ranked))


def token_row(model: EmbeddingModel, word: str) -> Exploration:
    """One row's norm, extremes, mean and first values."""
    resolved = model.resolve(word)
    values = model.matrix.row(resolved.id).astype(np.float64)
    row = TokenRow(norm=float(np.linalg.norm(values)), minimum=float(values.min()),
                   maximum=float(values.max()), mean=float(values.mean()),
                   first_values=tuple(float(v) for v in values[:FIRST_VALUES]))
    return Exploration(model.matrix.ref(), (resolved,), row=row)
