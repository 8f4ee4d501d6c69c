"""What an embedding query answers: the result types of every query (ranked neighbours, one row,
whole-matrix statistics) and of the cross-file comparison (--vs), gathered in ``EmbedReport``.
Types only, so the query modules and the renderer share them without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.reports.embed.words import EmbedQuery, ResolvedToken, TokenRef


@dataclass(frozen=True)
class MatrixRef:
    """Which file and matrix answered."""

    path: str
    tensor: str
    type: str
    n_rows: int
    n_cols: int


@dataclass(frozen=True)
class Neighbour:
    """One ranked answer: the token and its cosine similarity to the query vector."""

    id: int
    token: str | None
    score: float


@dataclass(frozen=True)
class TokenRow:
    """One row's numbers, for --token."""

    norm: float
    minimum: float
    maximum: float
    mean: float
    first_values: tuple[float, ...]


@dataclass(frozen=True)
class HistogramBin:
    low: float
    high: float
    count: int


@dataclass(frozen=True)
class DuplicateGroup:
    """Rows with identical values; ``members`` lists the first few."""

    size: int
    members: tuple[TokenRef, ...]


@dataclass(frozen=True)
class EmbeddingStats:
    """The norm distribution over the vocabulary and the rows that often mark unused tokens."""

    norm_min: float
    norm_max: float
    norm_mean: float
    norm_median: float
    histogram: tuple[HistogramBin, ...]
    near_zero_threshold: float
    near_zero_count: int
    near_zero_examples: tuple[TokenRef, ...]
    duplicate_rows: int  # rows equal to an earlier row
    duplicate_groups: int
    duplicate_examples: tuple[DuplicateGroup, ...]  # the largest groups first
    non_finite_rows: int


@dataclass(frozen=True)
class Exploration:
    """One file's answer to the query."""

    matrix: MatrixRef
    inputs: tuple[ResolvedToken, ...]
    results: tuple[Neighbour, ...] = ()
    row: TokenRow | None = None
    stats: EmbeddingStats | None = None


@dataclass(frozen=True)
class CrossFileCosine:
    """Cosine similarity between the same token's rows in two files (None: not comparable)."""

    id: int
    token: str | None
    cosine: float | None


@dataclass(frozen=True)
class RowDrift:
    """How far every row moved between two files (--stats --vs): per-row cosine similarity."""

    mean: float
    minimum: float
    percentile_1: float
    moved_most: tuple[CrossFileCosine, ...]  # lowest cosine first; rows with cosine 1 left out


@dataclass(frozen=True)
class EmbedReport:
    query: EmbedQuery
    primary: Exploration
    other: Exploration | None = None
    cross_file: tuple[CrossFileCosine, ...] = ()
    drift: RowDrift | None = None
    notes: tuple[str, ...] = ()
