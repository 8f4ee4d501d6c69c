"""The ``embed`` command's body: open the model (and the --vs model), answer the query on the
token embedding, render to a string.

From Python: ``run_embed("model.gguf", OutputFormat.JSON, analogy=("king", "man", "woman"))``
returns ``(text, exit code)``; a question the file cannot answer raises ``QueryError`` (a
``UsageError``: exit 2 at the command line).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from typing import Sequence, TextIO

from gguf_inspect.reports.embed import (
    DEFAULT_TOP_K,
    EmbeddingModel,
    EmbedQuery,
    Progress,
    QueryError,
    explore_models,
    open_embedding_model,
)
from gguf_inspect.commands import CommandResult, OutputFormat, render
from gguf_inspect.commands.progress import PhasedProgress
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.gguf.open import open_model
from gguf_inspect.render.embed import embed_json, embed_sections

__all__ = ["QueryError", "StderrProgress", "build_query", "run_embed"]


class StderrProgress:
    """Progress on stderr once the command has run for more than ``delay`` seconds (quick
    queries stay silent), each pass over a matrix from its start (see PhasedProgress)."""

    def __init__(self, stream: TextIO | None = None, delay: float = 1.0) -> None:
        self.progress = PhasedProgress(stream, delay=delay)

    def __call__(self, label: str, done: int, total: int) -> None:
        text = f"{label}: {done:,} / {total:,} ({done / total:.0%})" if total else label
        self.progress.show(label, text, done / total if total else 1.0)


def build_query(nearest: str | None, analogy: Sequence[str] | None, token: str | None,
                stats: bool, top_k: int) -> EmbedQuery:
    """Exactly one of --nearest, --analogy, --token and --stats."""
    chosen = [name for name, given in (("nearest", nearest is not None),
                                       ("analogy", analogy is not None),
                                       ("token", token is not None), ("stats", stats)) if given]
    if len(chosen) != 1:
        raise QueryError("choose exactly one of --nearest, --analogy, --token and --stats"
                         + (f" (got {', '.join('--' + name for name in chosen)})" if chosen
                            else ""))
    words = {"nearest": (nearest,), "analogy": tuple(analogy or ()), "token": (token,),
             "stats": ()}[chosen[0]]
    return EmbedQuery(chosen[0], tuple(str(word) for word in words), top_k)


def _open(stack: ExitStack, location: str, use_tokenizer: bool,
          keep_variants: bool) -> EmbeddingModel:
    model = stack.enter_context(open_model(location))
    embedding = open_embedding_model(model, use_tokenizer=use_tokenizer)
    embedding.vocabulary = replace(embedding.vocabulary, keep_variants=keep_variants)
    stack.callback(embedding.close)
    return embedding


def run_embed(location: str, output_format: OutputFormat | str, *, nearest: str | None = None,
              analogy: Sequence[str] | None = None, token: str | None = None,
              stats: bool = False, top_k: int = DEFAULT_TOP_K, vs: str | None = None,
              use_tokenizer: bool = True, keep_variants: bool = False,
              progress: Progress | None = None,
              stderr: TextIO | None = None) -> CommandResult:
    """Answer one embedding query on ``location`` (and on ``vs`` side by side); exit 0.
    ``keep_variants``: let the inputs' case, marker and plural variants be answers.
    Progress goes to ``progress``, else to a progress line on ``stderr``."""
    query = build_query(nearest, analogy, token, stats, top_k)
    with ExitStack() as stack:
        primary = _open(stack, location, use_tokenizer, keep_variants)
        other = _open(stack, vs, use_tokenizer, keep_variants) if vs is not None else None
        report = explore_models(query, primary, other,
                                progress if progress is not None else StderrProgress(stderr))
    return render(report, output_format, embed_json, embed_sections), ExitCode.OK
