"""The token embedding of an open model, read in bounded chunks: ``EmbeddingMatrix`` (single
rows on demand, or every row chunk by chunk through ``gguf.dequant``), and ``EmbeddingModel``,
the matrix with the vocabulary and tokenizer that a query needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from gguf_inspect.core.constants import TOKEN_EMBD
from gguf_inspect.core.errors import FormatError
from gguf_inspect.core.model import TensorInfo
from gguf_inspect.gguf.dequant import can_dequantize, iter_row_chunks, read_rows, tensor_row_count
from gguf_inspect.gguf.open import Model
from gguf_inspect.llamacpp.runtime import RuntimeTokenizer
from gguf_inspect.reports.embed.report import MatrixRef
from gguf_inspect.reports.embed.words import (
    ResolvedToken,
    Vocabulary,
    load_vocabulary,
    resolve_word,
)
from gguf_inspect.reports.embeddings import NoEmbeddingError

# Dequantized float32 bytes per chunk. Small enough that a chunk is still in cache when it is
# scored: on the benchmark shapes 1 MiB runs 2-3x faster than 16 MiB (the numpy passes of the
# dequantizer and of the scoring are memory-bound), while 256 KiB chunks pay Python overhead.
CHUNK_BYTES = 1 << 20

# Called as progress(label, rows_done, rows_total) while a pass over the matrix runs.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EmbeddingMatrix:
    """``token_embd.weight`` of an open model: single rows on demand, or all rows in chunks."""

    model: Model
    tensor: TensorInfo
    chunk_bytes: int = CHUNK_BYTES

    @property
    def n_rows(self) -> int:
        return tensor_row_count(self.tensor)

    @property
    def n_cols(self) -> int:
        return self.tensor.row_length

    def row(self, token_id: int) -> np.ndarray:
        return read_rows(self.model.source, self.tensor, token_id, 1,
                         self.model.file.byte_order)[0]

    def chunks(self, progress: Progress | None, label: str) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, rows)`` over the whole matrix, reporting progress after each chunk."""
        for first_row, rows in iter_row_chunks(self.model.source, self.tensor, self.chunk_bytes,
                                               self.model.file.byte_order):
            yield first_row, rows
            if progress is not None:
                progress(label, first_row + len(rows), self.n_rows)

    def ref(self) -> MatrixRef:
        return MatrixRef(self.model.location, self.tensor.name, self.tensor.type_name,
                         self.n_rows, self.n_cols)


def open_matrix(model: Model, chunk_bytes: int = CHUNK_BYTES) -> EmbeddingMatrix:
    """The model's token embedding, checked to be a dequantizable n_embd x n_vocab matrix."""
    tensor = model.file.tensor(TOKEN_EMBD)
    if tensor is None:
        raise NoEmbeddingError(f"{model.file.path}: no {TOKEN_EMBD} in this file")
    problem = None
    if not tensor.known_type or not can_dequantize(tensor):
        problem = f"cannot dequantize {TOKEN_EMBD} of type {tensor.type_name}"
    elif len(tensor.ne) != 2:  # rows are tokens only in an n_embd x n_vocab matrix
        problem = (f"{TOKEN_EMBD} has {len(tensor.ne)} dimension(s), ne {list(tensor.ne)}, not "
                   "the 2 of an n_embd x n_vocab matrix")
    if problem is not None:
        raise FormatError(problem, path=model.file.file_of(tensor).path,
                          offset=tensor.file_info_offset, field=TOKEN_EMBD)
    return EmbeddingMatrix(model, tensor, chunk_bytes)


@dataclass
class EmbeddingModel:
    """What a query needs from one model: its matrix, vocabulary and (lazily) its tokenizer.
    Closing it closes the tokenizer; the ``Model`` it reads stays its opener's to close."""

    matrix: EmbeddingMatrix
    vocabulary: Vocabulary
    tokenizer: RuntimeTokenizer | None

    def resolve(self, word: str) -> ResolvedToken:
        return resolve_word(word, self.vocabulary, self.matrix.n_rows, self.tokenizer)

    def close(self) -> None:
        if self.tokenizer is not None:
            self.tokenizer.close()


def open_embedding_model(model: Model, *, use_tokenizer: bool = True,
                         chunk_bytes: int = CHUNK_BYTES) -> EmbeddingModel:
    matrix = open_matrix(model, chunk_bytes)
    tokenizer = RuntimeTokenizer(model.location) if use_tokenizer else None
    return EmbeddingModel(matrix, load_vocabulary(model), tokenizer)
