"""Rendering of the ``gguf-inspect MODEL`` report: layout for table/markdown, and the JSON contract."""

from __future__ import annotations

from typing import Any

from gguf_inspect.reports.embeddings import EmbeddingReport, MatrixFacts
from gguf_inspect.reports.inspect import InspectReport
from gguf_inspect.reports.listing import MetadataItem
from gguf_inspect.llamacpp.summary import ModelSummary
from gguf_inspect.core.constants import SCHEMA_VERSION
from gguf_inspect.core.model import TensorInfo
from gguf_inspect.render.document import KeyValues, Paragraph, Section, Table
from gguf_inspect.render.text import (
    VALUE_LIMIT,
    cut_text,
    format_bytes,
    format_params,
    format_percent,
    format_shape,
    items_text,
    json_text,
    value_text,
)


def _optional(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return _per_layer(value)
    return str(value)


def _per_layer(values: tuple[int, ...]) -> str:
    """A per-layer array shown compactly: one value when uniform, else min..max per layer."""
    if not values:  # an empty array in a hostile header: nothing per layer to show
        return "[] (empty per-layer array)"
    if len(set(values)) == 1:
        return f"{values[0]} (per layer)"
    return f"{min(values)}..{max(values)} per layer ({', '.join(map(str, values[:8]))}" + (
        ", ...)" if len(values) > 8 else ")")


def summary_section(summary: ModelSummary) -> list[Section]:
    rows = [
        ("file", summary.file.path),
        ("GGUF version", f"v{summary.file.gguf_version} ({summary.file.byte_order}-endian)"),
        ("file size on disk", format_bytes(summary.file.file_size)),
        ("architecture", cut_text(_optional(summary.architecture))),
        ("name", cut_text(_optional(summary.name))),
        ("file type", summary.file_type),
        ("model params", f"{summary.n_params:,} ({format_params(summary.n_params)})"),
        ("tensor bytes", f"{format_bytes(summary.tensor_bytes)}, "
                         f"{summary.bits_per_weight:.2f} BPW"),
        ("tensors / metadata keys", f"{summary.file.n_tensors} / {summary.file.n_kv}"),
        ("n_vocab", _optional(summary.n_vocab)),
        ("n_embd", _optional(summary.n_embd)),
        ("n_layer", _optional(summary.n_layer)),
        ("context length", _optional(summary.context_length)),
        ("heads (q / kv)", f"{_optional(summary.n_head)} / {_optional(summary.n_head_kv)}"),
    ]
    counts = Table("tensor types (as llama.cpp's '- type' lines)", ["type", "tensors"],
                   [[name, str(count)] for name, count in summary.type_counts],
                   numeric_columns=frozenset({1}))
    return [KeyValues("model", rows), counts]


def _matrix_rows(facts: MatrixFacts, role: str) -> list[str]:
    return [role, facts.tensor, facts.type, f"{facts.n_rows} x {facts.n_cols}",
            format_shape(facts.ne), f"{facts.n_bytes:,}", f"{facts.bits_per_weight:.2f}",
            f"{facts.f16_bytes:,}", format_percent(facts.ratio_to_f16),
            format_percent(facts.share_of_tensor_bytes)]


def embeddings_sections(report: EmbeddingReport) -> list[Section]:
    rows = [_matrix_rows(report.embedding, "input embedding")]
    if report.output is not None:
        rows.append(_matrix_rows(report.output, "output head"))
    elif not report.has_output_head:
        rows.append(["output head", "(none: an encoder has no output head)"] + [""] * 8)
    else:
        rows.append(["output head", "(tied: reuses token_embd.weight)"] + [""] * 8)
    if report.per_layer is not None:
        rows.append(_matrix_rows(report.per_layer, "per-layer embedding"))
    table = Table("token embedding",
                  ["role", "tensor", "type", "n_vocab x n_embd", "ne", "bytes", "BPW",
                   "f16 bytes", "vs f16", "share"],
                  rows, numeric_columns=frozenset({5, 6, 7, 8, 9}))
    sections: list[Section] = [table, Paragraph("verdict", report.verdict),
                               Paragraph("placement", report.placement.summary)]
    if report.warnings:
        sections.append(Paragraph("warnings", "\n".join(f"warning: {w}" for w in report.warnings)))
    return sections


def _metadata_value(item: MetadataItem, full: bool) -> str:
    """The value cell: cut to about VALUE_LIMIT characters (its length said) unless ``full``."""
    limit = None if full else VALUE_LIMIT
    single = "float32" in item.type_name  # also "array[float32]"
    if item.count is None:
        return value_text(item.value, limit, single)
    return f"[{item.count}] {items_text(item.value, item.count, limit, single)}"


def metadata_section(items: tuple[MetadataItem, ...], full: bool = False) -> Section:
    limit = None if full else VALUE_LIMIT
    title = "metadata" if full else f"metadata (values cut at {VALUE_LIMIT} characters; " \
                                    "--full shows them whole)"
    return Table(title, ["key", "type", "value"],
                 [[cut_text(item.key, limit), item.type_name, _metadata_value(item, full)]
                  for item in items])


def tensors_section(tensors: tuple[TensorInfo, ...]) -> Section:
    split = any(t.shard for t in tensors)  # a shard column only for split models
    headers = ["name", "type", "ne", "bytes", "offset"] + (["shard"] if split else [])
    # The offset inside the file that holds the tensor (its shard), as gguf-py reports it there.
    rows = [[cut_text(t.name), t.type_name, format_shape(t.ne), f"{t.n_bytes:,}", str(t.file_offset)]
            + ([str(t.shard + 1)] if split else []) for t in tensors]
    return Table("tensors", headers, rows, numeric_columns=frozenset({3, 4, 5}))


def inspect_sections(report: InspectReport, full: bool = False) -> list[Section]:
    sections = summary_section(report.summary)
    if report.companion is not None:  # an adapter or projector: say so before anything else
        kind = {"adapter": "a LoRA adapter, not a language model",
                "mmproj": "a multimodal projector (mmproj), not a language model"}
        sections.insert(0, KeyValues("what this file is", [
            ("general.type", f"{report.companion.kind}: {kind[report.companion.kind]}"),
            *report.companion.facts]))
    if report.embeddings is not None:
        sections += embeddings_sections(report.embeddings)
    if report.metadata is not None:
        sections.append(metadata_section(report.metadata, full))
    if report.tensors is not None:
        sections.append(tensors_section(report.tensors))
    return sections


# ---- JSON -------------------------------------------------------------------------------------

def _matrix_json(facts: MatrixFacts) -> dict[str, Any]:
    return {"tensor": facts.tensor, "type": facts.type, "ne": list(facts.ne),
            "n_bytes": facts.n_bytes, "bits_per_weight": facts.bits_per_weight,
            "f16_bytes": facts.f16_bytes, "ratio_to_f16": facts.ratio_to_f16,
            "share_of_tensor_bytes": facts.share_of_tensor_bytes}


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN is not valid JSON
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    return value


def summary_json(summary: ModelSummary) -> dict[str, Any]:
    file = summary.file
    return {
        "file": {"path": file.path, "gguf_version": file.gguf_version,
                 "byte_order": file.byte_order, "file_size": file.file_size,
                 "n_tensors": file.n_tensors, "n_kv": file.n_kv, "alignment": file.alignment,
                 "data_offset": file.data_offset},
        "model": {"architecture": summary.architecture, "name": summary.name,
                  "file_type": summary.file_type, "file_type_id": summary.file_type_id,
                  "file_type_guessed": summary.file_type_guessed, "n_params": summary.n_params,
                  "tensor_bytes": summary.tensor_bytes,
                  "bits_per_weight": summary.bits_per_weight, "n_vocab": summary.n_vocab,
                  "n_embd": summary.n_embd, "n_layer": summary.n_layer,
                  "context_length": summary.context_length,
                  "n_head": _json_value(summary.n_head),
                  "n_head_kv": _json_value(summary.n_head_kv)},
        "type_counts": dict(summary.type_counts),
    }


def embeddings_json(report: EmbeddingReport) -> dict[str, Any]:
    body = _matrix_json(report.embedding)
    body.update({
        "n_vocab": report.embedding.n_rows, "n_embd": report.embedding.n_cols,
        "tied_output": report.tied_output, "has_output_head": report.has_output_head,
        "output": _matrix_json(report.output) if report.output else None,
        "per_layer_token_embd": _matrix_json(report.per_layer) if report.per_layer else None,
        "expected_type": report.expected.type if report.expected else None,
        "expected_reason": report.expected.reason if report.expected else None,
        "verdict": report.verdict,
        "placement": {"input": report.placement.input_device,
                      "output": report.placement.output_device,
                      "tied_gpu_copy_bytes": report.placement.tied_gpu_copy_bytes,
                      "summary": report.placement.summary},
        "warnings": list(report.warnings),
    })
    return body


def inspect_json(report: InspectReport) -> str:
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    document.update(summary_json(report.summary))
    if report.companion is not None:
        document["companion"] = {"general_type": report.companion.kind,
                                 "facts": dict(report.companion.facts)}
    if report.embeddings is not None:
        document["embeddings"] = embeddings_json(report.embeddings)
    if report.metadata is not None:
        document["metadata"] = [
            {"key": item.key, "type": item.type_name, "count": item.count,
             "complete": item.complete, "value": _json_value(item.value)}
            for item in report.metadata]
    if report.tensors is not None:
        document["tensors"] = [
            {"name": t.name, "type": t.type_name, "type_id": t.type_id, "ne": list(t.ne),
             "n_elements": t.n_elements, "n_bytes": t.n_bytes, "offset": t.file_offset,
             "shard": t.shard + 1}
            for t in report.tensors]
    return json_text(document)
