"""The ``gguf-inspect MODEL`` report: the summary plus whichever optional sections were asked for."""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.reports.embeddings import EmbeddingReport, analyze_embeddings
from gguf_inspect.reports.listing import MetadataItem, list_metadata, list_tensors
from gguf_inspect.llamacpp.summary import ModelSummary, summarize
from gguf_inspect.core.model import GGUFFile, TensorInfo
from gguf_inspect.gguf.source import ByteSource


@dataclass(frozen=True)
class InspectOptions:
    embeddings: bool = False
    metadata: bool = False
    full: bool = False
    tensors: bool = False
    tensor_filter: str | None = None


@dataclass(frozen=True)
class InspectReport:
    summary: ModelSummary
    embeddings: EmbeddingReport | None
    metadata: tuple[MetadataItem, ...] | None
    tensors: tuple[TensorInfo, ...] | None


def inspect_model(gguf: GGUFFile, source: ByteSource | None, options: InspectOptions,
                  ) -> InspectReport:
    return InspectReport(
        summary=summarize(gguf),
        embeddings=analyze_embeddings(gguf) if options.embeddings else None,
        metadata=list_metadata(gguf, source, options.full) if options.metadata else None,
        tensors=list_tensors(gguf, options.tensor_filter) if options.tensors else None,
    )
