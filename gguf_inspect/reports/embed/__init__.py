"""Look inside the token embedding: ``explore_models`` answers one query on one model, or on
two side by side (--vs). The parts, each in its own module:

* ``words``: the query, the vocabulary, and each word resolved to one token;
* ``matrix``: ``token_embd.weight`` of an open model, read in bounded chunks;
* ``queries``: nearest tokens and analogies A - B + C ranked by cosine similarity, one row;
* ``stats``: the whole matrix summarized (--stats);
* ``compare``: the same rows across two quantizations of a model (--vs);
* ``report``: the result types they share; this package re-exports them.

Rows are dequantized in bounded chunks (``gguf.dequant``) and scored chunk by chunk, so memory
stays near one float32 chunk whatever the vocabulary size. This package computes only;
``render/embed.py`` formats. Imports numpy and gguf: never import it from the header-only path.
"""

from __future__ import annotations

from gguf_inspect.reports.embed.compare import (
    cross_file_cosines,
    involved_ids,
    resolution_notes,
    row_drift,
    stats_and_drift,
    why_not_comparable,
)
from gguf_inspect.reports.embed.matrix import (
    CHUNK_BYTES,
    EmbeddingMatrix,
    EmbeddingModel,
    Progress,
    open_embedding_model,
    open_matrix,
)
from gguf_inspect.reports.embed.queries import analogy, cosine, nearest, rank_by_cosine, token_row
from gguf_inspect.reports.embed.report import (
    CrossFileCosine,
    DuplicateGroup,
    EmbeddingStats,
    EmbedReport,
    Exploration,
    HistogramBin,
    MatrixRef,
    Neighbour,
    RowDrift,
    TokenRow,
)
from gguf_inspect.reports.embed.stats import embedding_stats
from gguf_inspect.reports.embed.words import (
    DEFAULT_TOP_K,
    EmbedQuery,
    MultiTokenWordError,
    QueryError,
    ResolvedToken,
    TokenRef,
    UnknownWordError,
    Vocabulary,
    load_vocabulary,
    resolve_word,
)

__all__ = [
    "CHUNK_BYTES", "DEFAULT_TOP_K", "CrossFileCosine", "DuplicateGroup", "EmbedQuery",
    "EmbedReport", "EmbeddingMatrix", "EmbeddingModel", "EmbeddingStats", "Exploration",
    "HistogramBin", "MatrixRef", "MultiTokenWordError", "Neighbour", "Progress", "QueryError",
    "ResolvedToken", "RowDrift", "TokenRef", "TokenRow", "UnknownWordError", "Vocabulary",
    "analogy", "cosine", "cross_file_cosines", "embedding_stats", "explore", "explore_models",
    "load_vocabulary", "nearest", "open_embedding_model", "open_matrix", "rank_by_cosine",
    "resolve_word", "row_drift", "token_row",
]


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
    reason = why_not_comparable(primary, other)
    drift = None
    if query.operation == "stats" and reason is None:
        first, second, drift = stats_and_drift(primary, other, _labelled(progress, "A~B"))
    else:
        first = explore(query, primary, _labelled(progress, "A"))
        second = explore(query, other, _labelled(progress, "B"))
    notes = resolution_notes(first, second)
    if reason is not None:
        notes.append(reason)
    if primary.vocabulary.tokens != other.vocabulary.tokens:
        notes.append("the two files' vocabularies differ; ids whose token differs are not "
                     "compared")
    cross = cross_file_cosines(primary, other, involved_ids(first, second))
    return EmbedReport(query, first, second, cross, drift, tuple(notes))
