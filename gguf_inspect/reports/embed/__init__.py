"""Look inside the token embedding: resolve words to tokens, rank rows by cosine similarity
(nearest tokens, analogies A - B + C), describe one row, summarize the whole matrix (--stats),
and compare the same rows across two quantizations of a model (--vs).

Rows of ``token_embd.weight`` are dequantized in bounded chunks (``gguf.dequant``) and scored
chunk by chunk, so memory stays near one float32 chunk whatever the vocabulary size. This module
computes only; ``render/embed.py`` formats. Imports numpy and gguf: never import it from the
header-only path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from gguf_inspect.gguf.dequant import (
    can_dequantize,
    iter_row_chunks,
    read_rows,
    tensor_row_count,
)
from gguf_inspect.reports.embeddings import NoEmbeddingError
from gguf_inspect.core.constants import TOKEN_EMBD, VALUE_TYPE_STRING
from gguf_inspect.core.errors import FormatError
from gguf_inspect.core.model import ArrayValue, GGUFFile, TensorInfo
from gguf_inspect.gguf.reader import iter_array
from gguf_inspect.gguf.source import ByteSource
from gguf_inspect.llamacpp.runtime import RuntimeTokenizer

SENTENCEPIECE_SPACE = "\u2581"  # "▁": SentencePiece's word-start marker
GPT2_SPACE = "\u0120"  # "Ġ": GPT-2 byte-level BPE's encoding of a leading space
DEFAULT_TOP_K = 10
FIRST_VALUES = 8  # values of a row shown by --token
HISTOGRAM_BINS = 10
NEAR_ZERO_FRACTION = 0.01  # a row is near-zero when its norm is at most 1% of the median norm
EXAMPLES = 8  # example tokens listed per --stats finding
MAX_PIECES_LISTED = 16  # pieces of a multi-token word named in the error

# Dequantized float32 bytes per chunk. Small enough that a chunk is still in cache when it is
# scored: on the benchmark shapes 1 MiB runs 2-3x faster than 16 MiB (the numpy passes of the
# dequantizer and of the scoring are memory-bound), while 256 KiB chunks pay Python overhead.
CHUNK_BYTES = 1 << 20

# Called as progress(label, rows_done, rows_total) while a pass over the matrix runs.
Progress = Callable[[str, int, int], None]

WORDS_PER_OPERATION = {"nearest": 1, "analogy": 3, "token": 1, "stats": 0}


class QueryError(Exception):
    """A query the file cannot answer as asked (a usage error, not a broken file)."""


class UnknownWordError(QueryError):
    """No vocabulary entry matches the word, by any of the resolution steps."""

    def __init__(self, word: str, tried: Sequence[str], tokenizer_note: str) -> None:
        self.word = word
        self.tried = tuple(tried)
        tried_text = ", ".join(repr(candidate) for candidate in self.tried)
        super().__init__(f"{word!r} is not in the vocabulary (tried {tried_text}; "
                         f"{tokenizer_note})")


class MultiTokenWordError(QueryError):
    """The model's tokenizer splits the word into several tokens; there is no single row."""

    def __init__(self, word: str, pieces: Sequence["TokenRef"]) -> None:
        self.word = word
        self.pieces = tuple(pieces)
        listed = " + ".join(f"{piece.token!r} (id {piece.id})"
                            for piece in self.pieces[:MAX_PIECES_LISTED])
        if len(self.pieces) > MAX_PIECES_LISTED:
            listed += " + ..."
        super().__init__(f"{word!r} is {len(self.pieces)} tokens, not one: {listed}. Their "
                         "rows are not averaged; query one piece by its id instead")


@dataclass(frozen=True)
class TokenRef:
    """A token id with its vocabulary string (None when the file has no vocabulary)."""

    id: int
    token: str | None


@dataclass(frozen=True)
class ResolvedToken:
    """How one word of the query became one row: ``method`` is id, exact, space marker or
    tokenizer (the model's own, through llama-cpp-python)."""

    word: str
    id: int
    token: str | None
    method: str


@dataclass(frozen=True)
class EmbedQuery:
    """What was asked: one operation, its words (none for stats) and how many answers."""

    operation: str
    words: tuple[str, ...] = ()
    top_k: int = DEFAULT_TOP_K

    def __post_init__(self) -> None:
        expected = WORDS_PER_OPERATION.get(self.operation)
        if expected is None:
            raise QueryError(f"unknown operation {self.operation!r}")
        if len(self.words) != expected:
            raise QueryError(f"{self.operation} takes {expected} word(s), got {len(self.words)}")
        if self.top_k < 1:
            raise QueryError(f"--top must be at least 1, got {self.top_k}")


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
    moved_most: tuple[CrossFileCosine, ...]  # lowest cosine first


@dataclass(frozen=True)
class EmbedReport:
    query: EmbedQuery
    primary: Exploration
    other: Exploration | None = None
    cross_file: tuple[CrossFileCosine, ...] = ()
    drift: RowDrift | None = None
    notes: tuple[str, ...] = ()


# ---- vocabulary and the model's own tokenizer ---------------------------------------------------

@dataclass(frozen=True)
class Vocabulary:
    """``tokenizer.ggml.tokens`` decoded once (streamed), plus the tokenizer model name."""

    tokens: tuple[str, ...]
    model: str | None

    def token(self, token_id: int) -> str | None:
        return self.tokens[token_id] if 0 <= token_id < len(self.tokens) else None

    def find(self, text: str) -> int | None:
        try:
            return self.tokens.index(text)  # a C-level scan: milliseconds even at 262k
        except ValueError:
            return None


def load_vocabulary(gguf: GGUFFile, source: ByteSource) -> Vocabulary:
    """Stream the token strings out of the header (an empty vocabulary when the file has none)."""
    array = gguf.value("tokenizer.ggml.tokens")
    model = gguf.value("tokenizer.ggml.model")
    model = model if isinstance(model, str) else None
    if not isinstance(array, ArrayValue) or array.item_type != VALUE_TYPE_STRING:
        return Vocabulary((), model)
    return Vocabulary(tuple(iter_array(source, array, gguf.byte_order)), model)


def _space_markers(vocabulary: Vocabulary) -> tuple[str, str]:
    """Both markers are tried; the tokenizer's own comes first."""
    if vocabulary.model == "gpt2":
        return GPT2_SPACE, SENTENCEPIECE_SPACE
    return SENTENCEPIECE_SPACE, GPT2_SPACE


def resolve_word(word: str, vocabulary: Vocabulary, n_rows: int,
                 tokenizer: RuntimeTokenizer | None) -> ResolvedToken:
    """A word (or a decimal token id) to one row: id, exact entry, space marker, then tokenizer."""
    if word.isascii() and word.isdigit():
        token_id = int(word)
        if token_id >= n_rows:
            raise QueryError(f"token id {token_id} is out of range (the embedding has "
                             f"{n_rows} rows)")
        return ResolvedToken(word, token_id, vocabulary.token(token_id), "id")
    if not vocabulary.tokens:
        raise QueryError(f"{word!r}: this file has no tokenizer.ggml.tokens; query by token id")
    candidates = [word] + [marker + word for marker in _space_markers(vocabulary)]
    for candidate, method in zip(candidates, ("exact", "space marker", "space marker")):
        token_id = vocabulary.find(candidate)
        if token_id is not None and token_id >= n_rows:  # a vocabulary longer than the matrix
            raise QueryError(f"{word!r} is token {token_id}, beyond the embedding's {n_rows} "
                             "rows")
        if token_id is not None:
            return ResolvedToken(word, token_id, candidate, method)
    ids = tokenizer.tokenize(word) if tokenizer is not None else None
    if ids is None:
        note = (tokenizer.unavailable if tokenizer is not None and tokenizer.unavailable
                else "the model's own tokenizer was not tried")
        raise UnknownWordError(word, candidates, note)
    if not ids:
        raise UnknownWordError(word, candidates, "the model's tokenizer gives no tokens")
    if len(ids) == 1 and ids[0] < n_rows:
        return ResolvedToken(word, ids[0], vocabulary.token(ids[0]), "tokenizer")
    if len(ids) == 1:
        raise QueryError(f"{word!r} is token {ids[0]}, beyond the embedding's {n_rows} rows")
    raise MultiTokenWordError(word, [TokenRef(i, vocabulary.token(i)) for i in ids])


# ---- the matrix, read in chunks ------------------------------------------------------------------

@dataclass(frozen=True)
class EmbeddingMatrix:
    """``token_embd.weight`` of an open file: single rows on demand, or all rows in chunks."""

    source: ByteSource
    tensor: TensorInfo
    byte_order: str
    chunk_bytes: int = CHUNK_BYTES

    @property
    def n_rows(self) -> int:
        return tensor_row_count(self.tensor)

    @property
    def n_cols(self) -> int:
        return self.tensor.row_length

    def row(self, token_id: int) -> np.ndarray:
        return read_rows(self.source, self.tensor, token_id, 1, self.byte_order)[0]

    def chunks(self, progress: Progress | None, label: str) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, rows)`` over the whole matrix, reporting progress after each chunk."""
        for first_row, rows in iter_row_chunks(self.source, self.tensor, self.chunk_bytes,
                                               self.byte_order):
            yield first_row, rows
            if progress is not None:
                progress(label, first_row + len(rows), self.n_rows)

    def ref(self) -> MatrixRef:
        return MatrixRef(self.source.name, self.tensor.name, self.tensor.type_name,
                         self.n_rows, self.n_cols)


def open_matrix(gguf: GGUFFile, source: ByteSource,
                chunk_bytes: int = CHUNK_BYTES) -> EmbeddingMatrix:
    tensor = gguf.tensor(TOKEN_EMBD)
    if tensor is None:
        raise NoEmbeddingError(f"{gguf.path}: no {TOKEN_EMBD} in this file")
    if not tensor.known_type or not can_dequantize(tensor):
        raise FormatError(f"cannot dequantize {TOKEN_EMBD} of type {tensor.type_name}",
                          path=gguf.file_of(tensor).path, offset=tensor.file_info_offset,
                          field=TOKEN_EMBD)
    if len(tensor.ne) != 2:  # rows are tokens only in an n_embd x n_vocab matrix
        raise FormatError(f"{TOKEN_EMBD} has {len(tensor.ne)} dimension(s), ne "
                          f"{list(tensor.ne)}, not the 2 of an n_embd x n_vocab matrix",
                          path=gguf.file_of(tensor).path, offset=tensor.file_info_offset,
                          field=TOKEN_EMBD)
    return EmbeddingMatrix(source, tensor, gguf.byte_order, chunk_bytes)


@dataclass
class EmbeddingModel:
    """What a query needs from one file: its matrix, vocabulary and (lazily) its tokenizer."""

    matrix: EmbeddingMatrix
    vocabulary: Vocabulary
    tokenizer: RuntimeTokenizer | None

    def resolve(self, word: str) -> ResolvedToken:
        return resolve_word(word, self.vocabulary, self.matrix.n_rows, self.tokenizer)

    def close(self) -> None:
        if self.tokenizer is not None:
            self.tokenizer.close()


def open_embedding_model(gguf: GGUFFile, source: ByteSource, *, use_tokenizer: bool = True,
                         chunk_bytes: int = CHUNK_BYTES) -> EmbeddingModel:
    matrix = open_matrix(gguf, source, chunk_bytes)
    tokenizer = RuntimeTokenizer(source.name) if use_tokenizer else None
    return EmbeddingModel(matrix, load_vocabulary(gguf, source), tokenizer)


# ---- cosine ranking ----------------------------------------------------------------------------

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
    length = float(np.linalg.norm(target64))
    if length == 0.0 or not np.isfinite(length):
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
    ranked = rank_by_cosine(model.matrix, target, top_k, (resolved.id,), progress)
    return Exploration(model.matrix.ref(), (resolved,), _neighbours(model, ranked))


def analogy(model: EmbeddingModel, words: Sequence[str], top_k: int,
            progress: Progress | None = None) -> Exploration:
    """The rows closest to A - B + C, the three inputs excluded (as in word2vec's evaluation)."""
    inputs = tuple(model.resolve(word) for word in words)
    first, second, third = (model.matrix.row(item.id).astype(np.float64) for item in inputs)
    target = first - second + third
    ranked = rank_by_cosine(model.matrix, target, top_k, [item.id for item in inputs], progress)
    return Exploration(model.matrix.ref(), inputs, _neighbours(model, ranked))


def token_row(model: EmbeddingModel, word: str) -> Exploration:
    """One row's norm, extremes, mean and first values."""
    resolved = model.resolve(word)
    values = model.matrix.row(resolved.id).astype(np.float64)
    row = TokenRow(norm=float(np.linalg.norm(values)), minimum=float(values.min()),
                   maximum=float(values.max()), mean=float(values.mean()),
                   first_values=tuple(float(v) for v in values[:FIRST_VALUES]))
    return Exploration(model.matrix.ref(), (resolved,), row=row)


# ---- whole-matrix statistics ---------------------------------------------------------------------

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
            DuplicateGroup(len(ids), tuple(TokenRef(i, vocabulary.token(i)) for i in ids[:EXAMPLES]))
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
        raise QueryError(f"{matrix.source.name}: no row of {TOKEN_EMBD} has finite values")
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


# ---- two files ------------------------------------------------------------------------------------

def _comparable(primary: EmbeddingModel, other: EmbeddingModel) -> str | None:
    """Why rows of the two files cannot be compared id by id (None when they can)."""
    if primary.matrix.n_cols != other.matrix.n_cols:
        return (f"the embeddings differ in width ({primary.matrix.n_cols} vs "
                f"{other.matrix.n_cols}), so rows cannot be compared across the files")
    return None


def cross_file_cosines(primary: EmbeddingModel, other: EmbeddingModel,
                       ids: Sequence[int]) -> tuple[CrossFileCosine, ...]:
    """For each id: cosine of its row in the two files; None where the token differs, the id
    is missing from one file, or a row is all zero."""
    comparable = _comparable(primary, other) is None
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


def row_drift(primary: EmbeddingModel, other: EmbeddingModel,
              progress: Progress | None = None) -> RowDrift:
    """Per-row cosine between the two files over the whole vocabulary (same shape required)."""
    rows_to_compare = min(primary.matrix.n_rows, other.matrix.n_rows)
    cosines = np.full(rows_to_compare, np.nan)
    # Same width and chunk size, so both files' chunks cover the same rows, pair by pair.
    pairs = zip(primary.matrix.chunks(progress, "comparing rows"), other.matrix.chunks(None, ""))
    for (first_row, rows), (_, other_rows) in pairs:
        if first_row >= rows_to_compare:
            break
        count = min(len(rows), len(other_rows), rows_to_compare - first_row)
        left = rows[:count].astype(np.float64)
        right = other_rows[:count].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", left, left) * np.einsum("ij,ij->i", right, right))
        with np.errstate(divide="ignore", invalid="ignore"):
            cosines[first_row:first_row + count] = np.einsum("ij,ij->i", left, right) / norms
    measured = np.isfinite(cosines)
    values = cosines[measured]
    if values.size == 0:
        raise QueryError("no row has a direction in both files (all rows zero)")
    ids = np.flatnonzero(measured)
    order = ids[np.lexsort((ids, cosines[ids]))][:EXAMPLES]
    moved = tuple(CrossFileCosine(int(i), primary.vocabulary.token(int(i)), float(cosines[i]))
                  for i in order)
    return RowDrift(mean=float(values.mean()), minimum=float(values.min()),
                    percentile_1=float(np.percentile(values, 1)), moved_most=moved)


# ---- the query, end to end ------------------------------------------------------------------------

def explore(query: EmbedQuery, model: EmbeddingModel,
            progress: Progress | None = None) -> Exploration:
    """Answer the query on one file."""
    if query.operation == "nearest":
        return nearest(model, query.words[0], query.top_k, progress)
    if query.operation == "analogy":
        return analogy(model, query.words, query.top_k, progress)
    if query.operation == "token":
        return token_row(model, query.words[0])
    return embedding_stats(model, progress)


def _involved_ids(primary: Exploration, other: Exploration) -> list[int]:
    ids = [item.id for item in primary.inputs]
    ids += [item.id for item in other.inputs]
    ids += [item.id for item in primary.results] + [item.id for item in other.results]
    return ids


def _resolution_notes(primary: Exploration, other: Exploration) -> list[str]:
    notes = []
    for mine, theirs in zip(primary.inputs, other.inputs):
        if mine.id != theirs.id:
            notes.append(f"{mine.word!r} is id {mine.id} in the first file but id {theirs.id} "
                         "in the second: the vocabularies differ")
    return notes


def _labelled(progress: Progress | None, side: str) -> Progress | None:
    """Progress whose labels say which file (or pair) a pass is reading."""
    if progress is None:
        return None
    return lambda label, done, total: progress(f"{side}: {label}", done, total)


def explore_models(query: EmbedQuery, primary: EmbeddingModel,
                   other: EmbeddingModel | None = None,
                   progress: Progress | None = None) -> EmbedReport:
    """The query on one file, or on two side by side with the rows' cross-file cosine."""
    if other is None:
        return EmbedReport(query, explore(query, primary, progress))
    first = explore(query, primary, _labelled(progress, "A"))
    second = explore(query, other, _labelled(progress, "B"))
    notes = _resolution_notes(first, second)
    reason = _comparable(primary, other)
    if reason is not None:
        notes.append(reason)
    if primary.vocabulary.tokens != other.vocabulary.tokens:
        notes.append("the two files' vocabularies differ; ids whose token differs are not "
                     "compared")
    drift = None
    if query.operation == "stats" and reason is None:
        drift = row_drift(primary, other, _labelled(progress, "A~B"))
    cross = cross_file_cosines(primary, other, _involved_ids(first, second))
    return EmbedReport(query, first, second, cross, drift, tuple(notes))
