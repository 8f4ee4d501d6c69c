"""The ``gguf-inspect MODEL`` report: the summary plus whichever optional sections were asked for."""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.reports.embeddings import EmbeddingReport, analyze_embeddings
from gguf_inspect.reports.listing import MetadataItem, list_metadata, list_tensors
from gguf_inspect.llamacpp.companions import Companion, describe_companion
from gguf_inspect.llamacpp.summary import ModelSummary, summarize
from gguf_inspect.core.model import TensorInfo
from gguf_inspect.gguf.open import Model


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
    companion: Companion | None = None  # a LoRA adapter or a projector, not a model


def inspect_model(model: Model, options: InspectOptions) -> InspectReport:
    return InspectReport(
        summary=summarize(model.file),
        embeddings=analyze_embeddings(model.file) if options.embeddings else None,
        metadata=list_metadata(model, options.full) if options.metadata else None,
        tensors=list_tensors(model.file, options.tensor_filter) if options.tensors else None,
        companion=describe_companion(model.file),
    )
